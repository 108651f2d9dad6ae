"""The spoken garment classes and how every dataset label maps onto them."""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path

PATTERNS = ("solid", "striped", "checked", "printed", "floral", "dotted")
"""The pattern head's classes, in the order of its outputs (a bundle's pattern probabilities follow it): what a
sentence may say, what a correction may name, what `wardrobe train patterns` learns."""


@dataclass(frozen=True)
class Taxonomy:
    """(source, label) -> spoken garment class, from a CSV with columns source,label,garment,region and, on a rule
    that reads the shop's product name, named,unless."""

    mapping: dict[tuple[str, str], str]
    regions: dict[str, str] = field(default_factory=dict)
    """Garment class -> where it sits on a worn figure: "upper", "lower" or "whole"."""
    named: dict[tuple[str, str], tuple[tuple[str, str, tuple[str, ...]], ...]] = field(default_factory=dict)
    """(source, label) -> rules (word, garment, patterns to ignore): a photo of that label whose product name has
    the word, outside what those regular expressions match, is that garment; the first rule that matches decides.
    The shop files polo shirts under "Tshirts" and names them "... Polo T-shirt"; "U.S. Polo Assn." is a brand,
    not a polo."""

    @classmethod
    def load(cls, path: Path | None = None) -> Taxonomy:
        """Read a taxonomy CSV; the packaged one by default."""
        if path is None:
            text = resources.files("wardrobe.data").joinpath("taxonomy.csv").read_text()
        else:
            text = Path(path).read_text()
        rows = list(csv.DictReader(text.splitlines()))
        named: dict[tuple[str, str], list[tuple[str, str, tuple[str, ...]]]] = {}
        for r in rows:
            if r.get("named"):
                unless = tuple(p for p in (r.get("unless") or "").split(";") if p)
                named.setdefault((r["source"], r["label"]), []).append((r["named"].lower(), r["garment"], unless))
        return cls({(r["source"], r["label"]): r["garment"] for r in rows if not r.get("named")},
                   {r["garment"]: r.get("region") or "whole" for r in rows},
                   {k: tuple(v) for k, v in named.items()})

    def garment(self, source: str, label: str, name: str = "") -> str | None:
        """The spoken class for a dataset label (and the product's name, where a rule reads it); a folder label
        that is itself a class maps to itself."""
        for word, garment, unless in self.named.get((source, label), ()):
            if name and names_word(name, word, unless):
                return garment
        found = self.mapping.get((source, label))
        if found is None and label in self.classes:
            return label
        return found

    @property
    def classes(self) -> list[str]:
        """All spoken classes, sorted."""
        return sorted(set(self.mapping.values()) | {g for rules in self.named.values() for _, g, _ in rules})


def names_word(name: str, word: str, unless: tuple[str, ...] = ()) -> bool:
    """Whether a product name has the word (or its plural) once what the regular expressions unless match is taken
    out, ignoring case: "Puma Men White Polo T-shirt" names "polo"; "U.S. Polo Assn. Men Grey Tshirt", without
    that brand, does not."""
    text = name.lower()
    for pattern in unless:
        text = re.sub(pattern, " ", text, flags=re.IGNORECASE)
    words = re.findall(r"[a-z]+", text)
    return word in words or word + "s" in words


@lru_cache(maxsize=1)
def packaged() -> Taxonomy:
    """The taxonomy shipped with the package (read once)."""
    return Taxonomy.load()


def region_of(garment: str | None) -> str:
    """Where a garment class sits on a worn figure: 'upper', 'lower' or 'whole' (unknown: 'whole')."""
    return packaged().regions.get(garment or "", "whole")
