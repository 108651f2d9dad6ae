"""The CSS3 colour names, as every part that names colours reads them: sorted, their sRGB, and the one name said for
each colour (CSS3 names some colours twice)."""

from __future__ import annotations

from functools import lru_cache

import numpy as np


@lru_cache(maxsize=1)
def names_and_rgb() -> tuple[tuple[str, ...], np.ndarray]:
    """The CSS3 names, sorted, and their sRGB (uint8, one row each, read-only: shared by every namer)."""
    import webcolors

    names = tuple(sorted(webcolors.names("css3")))
    rgb = np.array([tuple(webcolors.name_to_rgb(n)) for n in names], np.uint8)
    rgb.setflags(write=False)
    return names, rgb


def twin_not_said(name: str) -> bool:
    """CSS3 names some colours twice ("dimgray" and "dimgrey", "cyan" and "aqua", "magenta" and "fuchsia"): whether
    this is the twin never said ("gray" as the family word spells it; the common words)."""
    return "grey" in name or name in ("aqua", "fuchsia")


def said_indices(names: tuple[str, ...], rgb: np.ndarray) -> np.ndarray:
    """The index of the one name said for each distinct colour (of twins, the one twin_not_said spares), ascending."""
    chosen: dict[tuple[int, ...], int] = {}
    for i, colour in enumerate(rgb):
        key = tuple(int(v) for v in colour)
        if key not in chosen or twin_not_said(names[chosen[key]]):
            chosen[key] = i
    return np.array(sorted(chosen.values()))
