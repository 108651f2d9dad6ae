"""`wardrobe corrections export DIR`: the corrected photos as a folder the training script really reads."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from tests.conftest import SHIPPED, rgb_of
from tests.test_cli import wardrobe
from wardrobe.bundle import Bundle
from wardrobe.history import PressStore, encode_photo
from wardrobe.taxonomy import Taxonomy
from wardrobe.train.data import build_splits, read_source


@pytest.fixture
def corrected(tmp_path):
    """A history of four presses: two wrong answers corrected, one right, one wrong marked "no garment"; the
    first corrected press is pruned from the history afterwards."""
    state = tmp_path / "state"
    store = PressStore(state / "history.db")
    said = {"garment": "shirt", "garment_confidence": 0.5, "problems": [], "sentence": "Probably a shirt."}
    ids = [store.add(encode_photo(rgb_of(name)), said, "v1", keep=3, max_bytes=50 << 20)
           for name in ("home-pants.jpg", "home-outwear.jpg", "home-longsleeve.jpg")]
    store.correct(ids[0], "wrong", "trousers", ["blue"], "solid")
    store.correct(ids[1], "wrong", "coat or jacket", ["red", "black"], "checked")
    store.correct(ids[2], "right")
    empty = store.add(encode_photo(rgb_of("home-hat.jpg")), said, "v1", keep=3, max_bytes=50 << 20)
    store.correct(empty, "wrong", "no garment")
    assert store.press(ids[0]) is None  # pruned, its correction kept
    return state, store, ids


def test_export_writes_the_home_photos_layout_that_training_reads(tmp_path, corrected):
    state, store, ids = corrected
    out = tmp_path / "household"
    r = wardrobe("corrections", "export", str(out), "--state-dir", str(state))
    assert r.returncode == 0, r.stderr
    assert "2 corrected photos exported" in r.stdout and "left out 1 marked 'no garment'" in r.stdout
    with open(out / "labels.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(x["label"], x["families"], x["pattern"], x["sender_id"]) for x in rows] == [
        ("Pants", "blue", "solid", "household"), ("Outwear", "red black", "checked", "household")]
    records = read_source(f"clothing-photos={out}")
    assert {r.source for r in records} == {"clothing-photos"}  # weighted like the home photos
    taxonomy = Taxonomy.load()
    pre = Bundle.load(SHIPPED, verify=False).preprocess
    classes, splits = build_splits([f"clothing-photos={out}"], taxonomy, pre, seed=0, cache_dir=None)
    assert classes == ["coat or jacket", "trousers"]
    train = splits["train"]  # one household: its photos train together, never straddling splits
    assert len(train.records) == 2 and not splits["val"].records and not splits["test"].records
    assert train.images.shape == (2, pre.resize, pre.resize, 3) and train.images.std() > 10
    by_path = {r.path: classes[t] for r, t in zip(train.records, train.targets, strict=True)}
    assert sorted(by_path.values()) == ["coat or jacket", "trousers"]
    assert np.frombuffer((out / rows[0]["image"]).read_bytes(), np.uint8)[:2].tolist() == [0xFF, 0xD8]


def test_an_exported_correction_is_not_exported_again_and_may_be_pruned(tmp_path, corrected):
    state, store, ids = corrected
    assert wardrobe("corrections", "export", str(tmp_path / "a"), "--state-dir", str(state)).returncode == 0
    r = wardrobe("corrections", "export", str(tmp_path / "b"), "--state-dir", str(state))
    assert r.returncode == 2 and r.stderr.strip().splitlines() == [
        "wardrobe: no corrections to export: mark wrong answers on the caretaker's page first"]
    assert store.photo(ids[0]) is not None
    store.add(encode_photo(rgb_of("home-hat.jpg")), {"sentence": "A hat."}, "v1", keep=3, max_bytes=50 << 20)
    assert store.photo(ids[0]) is None  # exported, and its press long pruned: the photo goes


def test_export_never_overwrites_and_says_so_in_one_line(tmp_path, corrected):
    state, store, _ids = corrected
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "labels.csv").write_text("mine\n")
    r = wardrobe("corrections", "export", str(taken), "--state-dir", str(state))
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "never overwrites" in r.stderr
    assert (taken / "labels.csv").read_text() == "mine\n"
    assert len(store.corrections(unexported_wrong=True)) == 3  # nothing was marked exported
    r = wardrobe("corrections", "export", str(tmp_path / "x"), "--state-dir", str(tmp_path / "no-state"))
    assert r.returncode == 2 and "no press history yet" in r.stderr and "Traceback" not in r.stderr


def test_a_closet_never_pressed_has_nothing_to_export(tmp_path):
    (tmp_path / "state").mkdir()  # installed, never pressed: not the caretaker's mistake, so not an error
    r = wardrobe("corrections", "export", str(tmp_path / "out"), "--state-dir", str(tmp_path / "state"))
    assert r.returncode == 0 and "no press history yet" in r.stdout and "was not made" in r.stdout, r.stderr
    assert not (tmp_path / "out").exists()


def test_a_history_on_a_read_only_disk_is_exported_and_left_unmarked(tmp_path, small_disk):
    """The closet's card gone read-only (or full): the corrected photos are still exported, with one line saying
    nothing was marked, so the next export writes them again; no traceback."""
    import subprocess

    state = small_disk.path / "state"
    store = PressStore(state / "history.db")
    said = {"garment": "shirt", "garment_confidence": 0.5, "problems": [], "sentence": "Probably a shirt."}
    press = store.add(encode_photo(rgb_of("home-pants.jpg")), said, "v1", keep=3, max_bytes=50 << 20)
    store.correct(press, "wrong", "trousers", ["blue"], "solid")
    store.close()
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk.path)], check=True)
    try:
        r = wardrobe("corrections", "export", str(tmp_path / "out"), "--state-dir", str(state))
    finally:
        subprocess.run(["mount", "-o", "remount,rw", str(small_disk.path)], check=True)
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    assert "1 corrected photo exported" in r.stdout and "nothing was marked exported" in r.stdout, r.stdout
    assert "read-only filesystem" in r.stdout and "free space" not in r.stdout  # the cause, and its own advice
    with open(tmp_path / "out" / "labels.csv", newline="") as f:
        assert [x["label"] for x in csv.DictReader(f)] == ["Pants"]
    assert len(PressStore(state / "history.db").corrections(unexported_wrong=True)) == 1  # exported again next time
