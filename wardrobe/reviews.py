"""The caretaker's reviews, used at once: every answer marked right or corrected on the page is kept as a labelled
example (its garment, the colour families given on the "wrong" form, main first, or those said when marked right,
and the colours the camera saw), and a new photo very close to one is said as reviewed. The slower, general fix is
retraining on `wardrobe corrections export` (wardrobe.corrections).
"""

from __future__ import annotations

from dataclasses import dataclass

from wardrobe.errors import WardrobeError
from wardrobe.history import PressStore

EXAMPLE_MIN_SIMILARITY = 0.70
"""Chosen by `wardrobe train household` on validation senders: the lowest similarity at which none of a
household's unreviewed photos was made wrong (docs/closet.md, runs/household.json)."""
EXAMPLE_COLOUR_GAP = 20.0
"""Chosen by `wardrobe train household --home-colours` on validation senders: the widest CIEDE2000 gap between a
new photo's main colour and a reviewed photo's at which no unreviewed photo's colour, nor a confirmed one, was made
wrong, and none said with a hedge it did not need (docs/closet.md, runs/household-colours.json). Also how far a
colour must be from every colour the camera saw at the review to be a part of the garment it did not see then."""
MAX_EXAMPLES = 500
"""The most recent reviews kept as examples (each costs one embedding at start, about 10 ms)."""


@dataclass(frozen=True)
class Example:
    """The reviewed photo nearest a new one: its garment, and how alike the two are (cosine of embeddings)."""

    garment: str
    similarity: float
    families: tuple[str, ...] = ()
    """The colour families the caretaker gave it, or confirmed (main first); empty: none known."""
    seen: tuple = ()
    """Its colours as the camera saw them at the review (CIELAB, main first)."""

    def colours_for(self, colours, gap: float = EXAMPLE_COLOUR_GAP) -> tuple[str, ...] | None:
        """The caretaker's families for a photo whose colours (CIELAB, main first) are these, when its main colour
        is within `gap` (CIEDE2000) of the reviewed photo's (the same garment in much the same light; main against
        main, so a white shirt with a red print never takes the words of a red shirt with a white one); None
        otherwise, and the closet's own colours are said."""
        from wardrobe.colours import ciede2000

        if not self.families or not self.seen or not len(colours):
            return None
        return self.families if ciede2000(self.seen[0], colours[0]) <= gap else None


class Examples:
    """Photos the caretaker reviewed on the page (marked right, or corrected), kept as labelled examples: a new
    photo very close to one of them (cosine similarity at least `threshold`) is that garment. The immediate
    effect of a correction, before any retraining; `wardrobe train household` measures it and chooses the
    threshold on held-out senders."""

    def __init__(self, embeddings: list, garments: list[str], threshold: float, families: list | None = None,
                 seen: list | None = None) -> None:
        import numpy as np

        families = list(families) if families is not None else [()] * len(garments)
        seen = list(seen) if seen is not None else [()] * len(garments)
        rows, keep = [], []
        for i, e in enumerate(embeddings):
            r = np.asarray(e, np.float32).reshape(-1)
            if (n := float(np.linalg.norm(r))) > 0 and np.isfinite(n):
                rows.append(r / n)
                keep.append(i)
        self.matrix = np.stack(rows) if rows else np.zeros((0, 0), np.float32)
        self.garments = [garments[i] for i in keep]
        self.families = [tuple(families[i]) for i in keep]
        self.seen = [tuple(seen[i]) for i in keep]
        self.threshold = threshold

    def __len__(self) -> int:
        return len(self.garments)

    def nearest(self, embedding) -> Example | None:
        """The nearest example at or above the threshold, or None. (Its colours, not those of the example whose
        main colour is nearest this photo's: that made a confirmed colour wrong on validation senders, the nearest
        did not; docs/closet.md.)"""
        import numpy as np

        if not len(self) or embedding is None:
            return None
        e = np.asarray(embedding, np.float32).reshape(-1)
        if e.shape[0] != self.matrix.shape[1] or not np.isfinite(e).all() or not np.linalg.norm(e):
            return None
        sims = self.matrix @ (e / np.linalg.norm(e))
        best = int(sims.argmax())
        if sims[best] < self.threshold:
            return None
        return Example(self.garments[best], float(sims[best]), self.families[best], self.seen[best])


def reviews_key(store: PressStore) -> tuple:
    """Changes whenever a review is added, changed or removed: the daemon rebuilds its examples then."""
    return tuple(store._read("SELECT count(*), max(created), max(id) FROM corrections")[0])


def reviewed_examples(store: PressStore, embed, classes: list[str],
                      threshold: float = EXAMPLE_MIN_SIMILARITY) -> Examples:
    """The history's reviewed photos as labelled examples: each wrong answer's right garment (its photo is kept
    with the correction) and each answer marked right while its press is still kept, with the colour families
    given or confirmed and the colours seen then. Only garments of the model's `classes` are kept (the history
    is a file another process writes: nothing else is ever said). `embed(jpeg)` is the classifier's embedding; a
    photo it cannot read is left out."""
    embeddings, garments, families, seen = [], [], [], []
    for c in store.corrections()[-MAX_EXAMPLES:]:
        if c.garment not in classes or c.garment == "no garment":
            continue
        jpeg = store.correction_photo(c.id) if c.verdict == "wrong" else store.photo(c.press_id)
        if not jpeg:
            continue
        try:
            embedding = embed(jpeg)
        except WardrobeError:
            continue
        if embedding is not None:
            embeddings.append(embedding)
            garments.append(c.garment)
            families.append(tuple(c.families))
            seen.append(c.seen)
    return Examples(embeddings, garments, threshold, families, seen)
