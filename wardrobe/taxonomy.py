"""The spoken garment classes and how every dataset label maps onto them."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from importlib import resources
from pathlib import Path


@dataclass(frozen=True)
class Taxonomy:
    """(source, label) -> spoken garment class, from a CSV with columns source,label,garment."""

    mapping: dict[tuple[str, str], str]

    @classmethod
    def load(cls, path: Path | None = None) -> Taxonomy:
        """Read a taxonomy CSV; the packaged one by default."""
        if path is None:
            text = resources.files("wardrobe.data").joinpath("taxonomy.csv").read_text()
        else:
            text = Path(path).read_text()
        rows = list(csv.DictReader(text.splitlines()))
        return cls({(r["source"], r["label"]): r["garment"] for r in rows})

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
