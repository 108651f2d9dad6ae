"""The language files: English says exactly what it said before them, every language has every key, and Korean
is Korean: Hangul only, particles by the last syllable, spoken by espeak-ng, in the daemon and in describe."""

from __future__ import annotations

import gzip
import json
import re
import unicodedata

import pytest

from tests.conftest import ROOT
from tests.data import make_en_golden as golden
from wardrobe import lang, matching, phrase
from wardrobe.colours import Colour
from wardrobe.lang import particle
from wardrobe.phrase import Alternative

GOLDEN = json.loads(gzip.open(ROOT / "tests/data/en-golden.json.gz", "rt").read())
EN, KO = lang.load("en"), lang.load("ko")
HANGUL = re.compile(r"[\uac00-\ud7a3]")


def test_english_sentences_are_unchanged():
    """25,830 sentences from the phrase code before the language files (tests/data/make_en_golden.py)."""
    for row in GOLDEN["phrases"]:
        alts = golden.tiers(row["garment"], row["runner"])[row["tier"]]
        got = phrase.clauses_for(alts, golden.COLOURS[row["colours"]], row.get("problems", []), row.get("detail", False),
                                 row.get("occasion"), row["pattern"])
        assert got == row["clauses"], row


def test_english_messages_are_unchanged():
    for row in GOLDEN["yours"]:
        assert phrase.yours(row["name"], row["garment"]) == row["said"]
    pairs = golden.compare_pairs()
    assert {k: matching.compare(a, b).sentence for k, (a, b) in pairs.items()} == GOLDEN["compare"]
    assert {f"SAY_{k.upper()}": v for k, v in EN.data["daemon"].items() if k not in ("gestures", "yours")} \
        == GOLDEN["daemon"]
    assert EN.list("daemon", "gestures") == GOLDEN["gestures"]
    assert EN.data["problems"] == GOLDEN["problems"]


def keys(table: dict, prefix: str = "") -> set[str]:
    out = set()
    for k, v in table.items():
        out |= keys(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}"}
    return out


@pytest.mark.parametrize("code", [c for c in lang.available() if c != "en"])
def test_every_language_has_every_english_key_and_slot(code):
    """A new language is one file: it must say everything English says, with the slots the code fills."""
    other = lang.load(code)
    english = {k for k in keys(EN.data) if not k.startswith("grammar.")}
    assert english - keys(other.data) == set()
    for key in english:
        section, name = key.split(".", 1)
        mine, theirs = EN.data[section][name], other.data[section][name]
        if isinstance(mine, str):
            assert {m[0] for m in lang.SLOT.findall(theirs)} <= {m[0] for m in lang.SLOT.findall(mine)}, key
        elif isinstance(mine, list):
            assert len(theirs) == len(mine), key
    for template in (v for table in other.data.values() for v in table.values() if isinstance(v, str)):
        for _, how in lang.SLOT.findall(template):
            assert how in ("", "a") or re.fullmatch(r"[\uac00-\ud7a3]+/[\uac00-\ud7a3]*", how), template


def test_an_unknown_language_is_one_line():
    with pytest.raises(lang.ConfigError, match="unknown language 'xx'; choose from en, ko"):
        lang.load("xx")
