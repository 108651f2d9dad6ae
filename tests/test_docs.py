"""The README stays short enough to read (issue 24: at most 450 lines), and no document links to a missing file."""

from __future__ import annotations

import re

from tests.conftest import ROOT


def test_the_readme_is_at_most_450_lines():
    assert len((ROOT / "README.md").read_text().splitlines()) <= 450


def test_every_relative_link_in_the_docs_exists():
    missing = []
    for doc in [ROOT / "README.md", ROOT / "ARCHITECTURE.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", doc.read_text()):
            if not re.match(r"[a-z]+:", target) and not (doc.parent / target).exists():
                missing.append(f"{doc.relative_to(ROOT)} -> {target}")
    assert missing == []
