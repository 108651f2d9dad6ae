"""`wardrobe corrections export DIR`: the caretaker's corrections as a training data folder.

The folder has the home photos' layout (labels.csv with image,label,kids,sender_id, photos under images/),
so `wardrobe train classifier --data clothing-photos=DIR` reads it and weights it like home photos. Each
garment is written under the home photos' own label for it when they have one ("T-Shirt"), else under the
garment class itself, which the taxonomy maps to itself. All corrections share one sender, "household":
a sender's photos never straddle splits, so they train together. The colour families and the pattern are
kept in extra columns for the colour and pattern heads.

Every review, right or wrong, is also kept as a labelled example the closet uses at once (Examples, below): the
garment, the colour families (given on the "wrong" form, main first, or those said when marked right) and the
colours the camera saw.
"""

from __future__ import annotations

import csv
import io
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from wardrobe.errors import WardrobeError
from wardrobe.history import PressStore
from wardrobe.taxonomy import Taxonomy

SOURCE = "clothing-photos"
SENDER = "household"
COLUMNS = ("image", "label", "kids", "sender_id", "families", "pattern", "press_id", "said")


@dataclass(frozen=True)
class Exported:
    """What an export wrote and what it left out."""

    written: int
    skipped: dict[str, int]
    """Garment -> corrections left out because training cannot learn that garment from a photo folder."""
    unreadable: int = 0
    """Corrections left out because their kept photo is missing or not a JPEG photo."""
    marked: bool = True
    """False when the history could only be read (its disk is full or read-only): nothing was marked exported, so
    the same corrections are exported again next time."""


def dataset_label(taxonomy: Taxonomy, garment: str) -> str | None:
    """The label under which the home photos file this garment (None: the taxonomy cannot map it)."""
    labels = sorted(label for (source, label), g in taxonomy.mapping.items() if source == SOURCE and g == garment)
    if labels:
        return labels[0]
    return garment if taxonomy.garment(SOURCE, garment) == garment else None


def export(store: PressStore, folder: Path, taxonomy: Taxonomy | None = None) -> Exported:
    """Write the wrong answers' corrections not exported yet into a new folder, then mark them exported (unless
    the store was opened read-only: then they stay as they were, and Exported.marked says so)."""
    taxonomy = taxonomy or Taxonomy.load()
    folder = Path(folder)
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise WardrobeError(f"{folder} already exists and is not an empty folder; choose a new one "
                            f"(an export never overwrites)")
    pending = store.corrections(unexported_wrong=True)
    if not pending:
        raise WardrobeError("no corrections to export: mark wrong answers on the caretaker's page first")
    rows, done, left_out, skipped, unreadable = [], [], [], {}, 0
    tmp = folder.with_name(f".{folder.name}.partial")
    try:
        shutil.rmtree(tmp, ignore_errors=True)
        for c in pending:
            label = dataset_label(taxonomy, c.garment or "")
            photo = store.correction_photo(c.id)
            if not is_jpeg(photo):  # the page keeps the press's JPEG; anything else cannot be trained from
                unreadable += 1
                left_out.append(c.id)
                continue
            if label is None:
                skipped[c.garment or "nothing"] = skipped.get(c.garment or "nothing", 0) + 1
                left_out.append(c.id)
                continue
            image = f"images/{label}/correction-{c.id}.jpg"
            (tmp / image).parent.mkdir(parents=True, exist_ok=True)
            (tmp / image).write_bytes(photo)
            rows.append((image, label, "False", SENDER, " ".join(c.families), c.pattern or "", c.press_id, c.said))
            done.append(c.id)
        if not rows:
            if not store.read_only:
                store.mark_exported(left_out)
            return Exported(0, skipped, unreadable, marked=not store.read_only)
        text = io.StringIO()
        writer = csv.writer(text, lineterminator="\n")
        writer.writerow(COLUMNS)
        writer.writerows(rows)
        tmp.mkdir(parents=True, exist_ok=True)
        (tmp / "labels.csv").write_text(text.getvalue())
        if folder.exists():
            folder.rmdir()  # an empty folder the caretaker made for it
        os.replace(tmp, folder)
    except OSError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        raise WardrobeError(f"cannot write {folder}: {e.strerror or e}; nothing was marked exported") from None
    if store.read_only:
        return Exported(len(done), skipped, unreadable, marked=False)
    store.mark_exported(done + left_out)  # those left out were reported: they must not wait for ever
    return Exported(len(done), skipped, unreadable)


def is_jpeg(photo: bytes | None) -> bool:
    """Whether photo is a JPEG whose header gives a photo's size (not empty, not another format, not truncated to
    nothing)."""
    from wardrobe.images import pixel_size

    return bool(photo) and photo[:3] == b"\xff\xd8\xff" and pixel_size(photo) is not None


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
