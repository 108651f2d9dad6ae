"""`wardrobe corrections export DIR`: the caretaker's corrections as a training data folder.

The folder has the home photos' layout (labels.csv with image,label,kids,sender_id, photos under images/),
so `wardrobe train classifier --data clothing-photos=DIR` reads it and weights it like home photos. Each
garment is written under the home photos' own label for it when they have one ("T-Shirt"), else under the
garment class itself, which the taxonomy maps to itself. All corrections share one sender, "household":
a sender's photos never straddle splits, so they train together. The colour families and the pattern are
kept in extra columns for the colour and pattern heads. (What the closet does with a review at once, before any
retraining, is wardrobe.reviews.)
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
