"""The spoken garment classes and how every dataset label maps onto them."""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path


@dataclass(frozen=True)
class Taxonomy:
    """(source, label) -> spoken garment class, from a CSV with columns source,label,garment."""

    mapping: dict[tuple[str, str], str]
    regions: dict[str, str] = field(default_factory=dict)
    """Garment class -> where it sits on a worn figure: "upper", "lower" or "whole"."""

    @classmethod
    def load(cls, path: Path | None = None) -> Taxonomy:
        """Read a taxonomy CSV; the packaged one by default."""
        if path is None:
            text = resources.files("wardrobe.data").joinpath("taxonomy.csv").read_text()
        else:
            text = Path(path).read_text()
        rows = list(csv.DictReader(text.splitlines()))
        return cls({(r["source"], r["label"]): r["garment"] for r in rows},
                   {r["garment"]: r.get("region") or "whole" for r in rows})

    def garment(self, source: str, label: str) -> str | None:
        """The spoken class for a dataset label; a folder label that is itself a class maps to itself."""
        found = self.mapping.get((source, label))
        if found is None and label in self.classes:
            return label
        return found

    @property
    def classes(self) -> list[str]:
        """All spoken classes, sorted."""
        return sorted(set(self.mapping.values()))


@lru_cache(maxsize=1)
def packaged() -> Taxonomy:
    """The taxonomy shipped with the package (read once)."""
    return Taxonomy.load()


def region_of(garment: str | None) -> str:
    """Where a garment class sits on a worn figure: 'upper', 'lower' or 'whole' (unknown: 'whole')."""
    return packaged().regions.get(garment or "", "whole")
