"""The README stays short enough to read (issue 24: at most 450 lines), and no document links to a missing file."""

from __future__ import annotations

import re
from pathlib import Path

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


def test_every_setting_is_in_the_configuration_page_with_its_default():
    """docs/configuration.md promises every setting: each field of each [section] appears under its section (set,
    or commented out when it has no default), and the config file it shows loads as it is."""
    import tomllib
    from dataclasses import fields

    from wardrobe import settings

    text = (ROOT / "docs" / "configuration.md").read_text()
    block = text.split("```toml\n", 1)[1].split("```", 1)[0]
    shown = tomllib.loads(block)
    sections = {name: body for name, body in re.findall(r"^\[(\w+)\]\n(.*?)(?=^\[|\Z)", block, re.S | re.M)}
    missing = []
    for f in fields(settings.Settings):
        if f.name == "state_dir":
            assert "state_dir" in shown
            continue
        for g in fields(f.default_factory()):
            default = getattr(f.default_factory(), g.name)
            set_here = shown.get(f.name, {}).get(g.name)
            if not re.search(rf"^#? ?{g.name} = ", sections.get(f.name, ""), re.M):
                missing.append(f"{f.name}.{g.name}")
            elif set_here is not None and default is not None and set_here != (
                    str(default) if isinstance(default, Path) else default):
                missing.append(f"{f.name}.{g.name} = {set_here!r}, default {default!r}")
    assert missing == []
