"""The user's own clothes: enrolment in a real SQLite file, matching real photos, and the CLI around it."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys

import cv2
import numpy as np
import pytest

from tests.conftest import PHOTOS, ROOT, SHIPPED, rgb_of
from tests.test_cli import wardrobe
from wardrobe.closet import Closet, ClosetError
from wardrobe.images import shrink


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    """The shipped bundle as a new closet runs it: its default settings, colour steps included (what the user
    hears), with no enrolled garments yet."""
    from wardrobe import settings, wiring

    state = tmp_path_factory.mktemp("state")
    return wiring.build_pipeline(settings.load(None, {"model": {"bundle": str(SHIPPED)}, "": {"state_dir": str(state)}}),
                                 closet=False)


def another_view(rgb: np.ndarray) -> np.ndarray:
    """The same garment again: a tighter crop, turned a little, a bit darker and warmer."""
    h, w = rgb.shape[:2]
    out = rgb[int(0.06 * h):int(0.94 * h), int(0.05 * w):int(0.92 * w)]
    m = cv2.getRotationMatrix2D((out.shape[1] / 2, out.shape[0] / 2), 5, 1.0)
    out = cv2.warpAffine(out, m, (out.shape[1], out.shape[0]), borderMode=cv2.BORDER_REFLECT)
    return np.clip(out.astype(np.float32) * [0.95, 0.9, 0.85], 0, 255).astype(np.uint8)


def enrol(closet: Closet, pipeline, name: str, photo: str) -> int:
    rgb = shrink(rgb_of(photo), 640)
    return closet.enrol_described(pipeline.describe(rgb), rgb, pipeline.model_version, name=name)


def test_the_shipped_model_has_an_embedding(pipeline):
    d = pipeline.describe(shrink(rgb_of("home-outwear.jpg"), 640))
    assert d.embedding is not None and d.embedding.shape == (1280,)
    assert np.linalg.norm(d.embedding) == pytest.approx(1, abs=1e-3)


def test_enrolled_garments_are_recognised_and_others_are_not(tmp_path, pipeline):
    closet = Closet(tmp_path / "closet.db")
    for name, photo in (("red winter coat", "home-outwear.jpg"), ("navy jumper", "home-longsleeve.jpg"),
                        ("black work trousers", "home-pants.jpg")):
        enrol(closet, pipeline, name, photo)
    pipeline.closet = closet
    try:
        d = pipeline.describe(another_view(shrink(rgb_of("home-outwear.jpg"), 640)))
        assert d.enrolled is not None and d.enrolled.garment.name == "red winter coat"
        assert d.sentence == "Your red winter coat.", d.sentence
        assert d.to_json()["enrolled"]["name"] == "red winter coat"
        for other in ("home-shirt.jpg", "home-dress.jpg", "home-skirt.jpg", "product-jeans-blue.jpg"):
            assert pipeline.describe(shrink(rgb_of(other), 640)).enrolled is None, other
        assert "Your" not in pipeline.describe(shrink(rgb_of("home-shirt.jpg"), 640)).sentence
    finally:
        pipeline.closet = None


def test_rename_remove_and_wal(tmp_path, pipeline):
    closet = Closet(tmp_path / "closet.db")
    gid = enrol(closet, pipeline, "coat", "home-outwear.jpg")
    assert closet.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert closet.rename(str(gid), "red coat").name == "red coat"
    assert closet.find("RED COAT").id == gid
    with pytest.raises(ClosetError, match="no enrolled garment"):
        closet.remove("blue hat")
    closet.remove("red coat")
    assert closet.garments() == []


def test_sigkill_mid_enrolment_leaves_a_sound_database(tmp_path):
    """A process enrolling in a loop is killed at a random moment: the file passes integrity_check and holds
    every garment whose enrolment had returned."""
    import signal
    import time

    code = ("import sys, numpy as np\n"
            "from wardrobe.closet import Closet\n"
            "c = Closet(sys.argv[1])\n"
            "for i in range(100000):\n"
            "    c.enrol(np.random.rand(1280), [{'lab': [50, 0, 0], 'share': 1, 'name': 'gray'}], b'x' * 20000, 'v',"
            " name=f'g{i}')\n"
            "    print(i, flush=True)\n")
    p = subprocess.Popen([sys.executable, "-c", code, str(tmp_path / "closet.db")], stdout=subprocess.PIPE, text=True,
                         cwd=ROOT)
    time.sleep(3)
    p.send_signal(signal.SIGKILL)
    acknowledged = [int(x) for x in p.stdout.read().split()]
    p.wait()
    db = sqlite3.connect(tmp_path / "closet.db")
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    names = {r[0] for r in db.execute("SELECT name FROM garments")}
    assert acknowledged and {f"g{i}" for i in acknowledged} <= names


def test_an_acknowledged_enrolment_survives_a_sudden_death(tmp_path):
    """The enrolling process is killed right after the write returns: the garment is there."""
    code = ("import os, sys, numpy as np\n"
            "from wardrobe.closet import Closet, thumbnail\n"
            "c = Closet(sys.argv[1])\n"
            "jpeg = thumbnail(np.full((40, 40, 3), 128, np.uint8))\n"
            "gid = c.enrol(np.ones(1280, np.float32), [{'lab': [50, 0, 0], 'share': 1, 'name': 'gray'}], jpeg,"
            " 'v1', name='grey scarf')\n"
            "print(gid, flush=True)\n"
            "os._exit(9)  # no close, no cleanup\n")
    r = subprocess.run([sys.executable, "-c", code, str(tmp_path / "closet.db")], capture_output=True, text=True,
                       cwd=ROOT)
    assert r.returncode == 9 and r.stdout.strip() == "1", r.stderr
    assert [g.name for g in Closet(tmp_path / "closet.db").garments()] == ["grey scarf"]


def test_another_process_sees_new_enrolments_without_a_restart(tmp_path, pipeline):
    daemon_side = Closet(tmp_path / "closet.db")
    assert daemon_side.garments() == []
    enrol(Closet(tmp_path / "closet.db"), pipeline, "coat", "home-outwear.jpg")
    assert [g.name for g in daemon_side.garments()] == ["coat"]


def test_export_and_import_move_the_closet(tmp_path, pipeline):
    old = Closet(tmp_path / "old.db")
    enrol(old, pipeline, "coat", "home-outwear.jpg")
    enrol(old, pipeline, "jumper", "home-longsleeve.jpg")
    assert old.export(tmp_path / "backup.db") == 2
    new = Closet(tmp_path / "new.db")
    assert new.import_from(tmp_path / "backup.db") == (2, 0)
    assert [g.name for g in new.garments()] == ["coat", "jumper"]
    (tmp_path / "junk.db").write_bytes(b"not a database at all" * 100)
    with pytest.raises(ClosetError):
        new.import_from(tmp_path / "junk.db")


def test_importing_a_closet_twice_adds_nothing_and_a_name_is_one_garment(tmp_path, pipeline):
    """A walkthrough imported the same file twice (every garment twice), and a file whose "blue jeans" were another
    garment than this closet's "blue jeans" (both then answered to one name)."""
    old = Closet(tmp_path / "old.db")
    enrol(old, pipeline, "coat", "home-outwear.jpg")
    enrol(old, pipeline, "blue jeans", "product-jeans-blue.jpg")
    old.export(tmp_path / "backup.db")
    new = Closet(tmp_path / "new.db")
    assert new.import_from(tmp_path / "backup.db") == (2, 0)
    assert new.import_from(tmp_path / "backup.db") == (0, 2)
    assert [g.name for g in new.garments()] == ["coat", "blue jeans"]
    other = Closet(tmp_path / "other.db")
    enrol(other, pipeline, "Blue Jeans", "home-dress.jpg")
    with pytest.raises(ClosetError, match=r"garment 2 cannot be imported: another garment here is already called "
                                          r"'Blue Jeans' \(id 1\).*nothing was imported"):
        other.import_from(tmp_path / "backup.db")
    assert [g.name for g in other.garments()] == ["Blue Jeans"]
    # a hostile review: the garment renamed here, or given a voice label, is still the same photo: not added again
    new.rename("coat", "winter coat")
    new.set_voice_label(new.named("blue jeans")[0].id, "20261201-101010")
    assert new.import_from(tmp_path / "backup.db") == (0, 2)
    # the source's garment gained a photo: the new photo of "coat" is added to it here, as `enrol` would
    rgb = shrink(another_view(rgb_of("home-outwear.jpg")), 640)
    old.enrol_described(pipeline.describe(rgb), rgb, pipeline.model_version, name="coat")
    old.export(tmp_path / "again.db")
    renamed_back = Closet(tmp_path / "third.db")
    assert renamed_back.import_from(tmp_path / "backup.db") == (2, 0)
    assert renamed_back.import_from(tmp_path / "again.db") == (1, 2)
    assert [g.name for g in renamed_back.garments()] == ["coat", "blue jeans", "coat"]
    r = wardrobe("enrolled", "import", str(tmp_path / "backup.db"), "--state-dir", str(tmp_path / "s"))
    assert r.returncode == 0 and r.stdout.strip().startswith("2 garments imported"), r.stderr
    r = wardrobe("enrolled", "import", str(tmp_path / "backup.db"), "--state-dir", str(tmp_path / "s"))
    assert r.returncode == 0 and "0 garments imported" in r.stdout and "2 already in this closet" in r.stdout


def test_export_never_overwrites_a_file(tmp_path, pipeline):
    """It wrote over an existing file without a word (issue 24's friction list)."""
    closet = Closet(tmp_path / "closet.db")
    enrol(closet, pipeline, "coat", "home-outwear.jpg")
    kept = tmp_path / "my-notes.db"
    kept.write_bytes(b"the caretaker's own file")
    with pytest.raises(ClosetError, match="exists: refusing to overwrite"):
        closet.export(kept)
    assert kept.read_bytes() == b"the caretaker's own file"
    closet.close()
    r = wardrobe("enrolled", "export", str(kept), "--state-dir", str(tmp_path))  # its closet.db
    assert r.returncode != 0 and r.stderr.count("\n") == 1 and "refusing to overwrite" in r.stderr, r.stderr
    assert kept.read_bytes() == b"the caretaker's own file"
    assert not any(p.name.endswith(".partial") for p in tmp_path.iterdir())
    Closet(tmp_path / "closet.db").export(tmp_path / "new.db")  # a new name is written as before
    assert Closet(tmp_path / "new.db").garments()[0].name == "coat"


def test_embeddings_are_made_again_when_the_model_changes(tmp_path, pipeline):
    from wardrobe.wiring import embed_thumbnail

    closet = Closet(tmp_path / "closet.db")
    gid = enrol(closet, pipeline, "coat", "home-outwear.jpg")
    closet.db.execute("UPDATE garments SET model_version = 'old', embedding = ? WHERE id = ?",
                      (np.zeros(1280, np.float32).tobytes(), gid))
    closet._cache = None
    assert closet.reembed(pipeline.model_version, lambda jpeg: embed_thumbnail(pipeline.classifier, jpeg)) == 1
    g = closet.find(str(gid))
    assert g.model_version == pipeline.model_version and np.linalg.norm(g.embedding) == pytest.approx(1, abs=1e-3)


def test_cli_enrol_describe_enrolled(tmp_path):
    state = str(tmp_path / "state")
    r = wardrobe("enrol", str(PHOTOS / "home-outwear.jpg"), "--name", "red winter coat", "--state-dir", state)
    assert r.returncode == 0 and "enrolled as 'red winter coat'" in r.stdout, r.stderr
    view = tmp_path / "view.png"
    cv2.imwrite(str(view), cv2.cvtColor(another_view(shrink(rgb_of("home-outwear.jpg"), 640)), cv2.COLOR_RGB2BGR))
    r = wardrobe("describe", "--json", "--state-dir", state, str(view), str(PHOTOS / "home-shirt.jpg"))
    coat, shirt = map(json.loads, r.stdout.splitlines())
    assert coat["enrolled"]["name"] == "red winter coat" and coat["sentence"].startswith("Your red winter coat")
    assert shirt["enrolled"] is None
    r = wardrobe("enrolled", "--state-dir", state)
    assert "red winter coat" in r.stdout
    assert wardrobe("enrolled", "rename", "1", "old red coat", "--state-dir", state).returncode == 0
    r = wardrobe("enrolled", "remove", "blue hat", "--state-dir", state)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "no enrolled garment" in r.stderr
    r = wardrobe("enrol", str(tmp_path / "missing.jpg"), "--name", "x", "--state-dir", state)
    assert r.returncode == 1 and "no such file" in r.stderr


def test_enrol_json_gives_one_result_per_photo(tmp_path):
    """`enrol --json`: what the caretaker's page reads (it read the printed words before, and broke when they were
    reworded): each photo enrolled with its id and sentence, or refused with why."""
    state = str(tmp_path / "state")
    (tmp_path / "broken.jpg").write_bytes(b"not a photo")
    r = wardrobe("enrol", str(PHOTOS / "home-outwear.jpg"), str(tmp_path / "broken.jpg"), "--name", "red winter coat",
                 "--json", "--state-dir", state)
    coat, broken = json.loads(r.stdout)
    assert r.returncode == 1 and r.stderr == ""
    assert coat["enrolled"] and coat["id"] == 1 and coat["sentence"].endswith(".") and coat["looks_like"] is None
    assert not broken["enrolled"] and broken["why"] == "unreadable" and "readable image" in broken["message"]
    r = wardrobe("enrol", str(PHOTOS / "home-pants.jpg"), "--name", "Red Winter Coat", "--json", "--state-dir", state)
    (taken,) = json.loads(r.stdout)
    assert r.returncode == 1 and taken["why"] == "name-taken" and taken["taken"] == {"name": "red winter coat", "id": 1}
    r = wardrobe("enrol", str(PHOTOS / "home-pants.jpg"), "--name", "x", "--json", "--on", "pi@closet")
    assert r.returncode == 2 and "--json is for enrolling here" in r.stderr and not r.stdout


def test_a_broken_closet_file_is_one_line(tmp_path):
    state = tmp_path / "state"
    state.mkdir()
    (state / "closet.db").write_bytes(b"garbage" * 1000)
    r = wardrobe("enrolled", "--state-dir", str(state))
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "closet database" in r.stderr, r.stderr
    r = wardrobe("describe", "--json", "--quiet", "--state-dir", str(state), str(PHOTOS / "home-pants.jpg"))
    assert r.returncode == 0 and json.loads(r.stdout)["garment"] == "trousers"  # describing goes on
    assert "moved to" in r.stderr  # the caretaker is told; the damaged file is kept beside a fresh one
    kept = list(state.glob("closet.db.damaged-*"))
    assert kept and kept[0].read_bytes() == b"garbage" * 1000
    assert wardrobe("enrolled", "--state-dir", str(state)).returncode == 0


def test_sqlite_file_is_a_real_database(tmp_path, pipeline):
    closet = Closet(tmp_path / "closet.db")
    enrol(closet, pipeline, "coat", "home-outwear.jpg")
    rows = sqlite3.connect(tmp_path / "closet.db").execute("SELECT name, model_version FROM garments").fetchall()
    assert rows == [("coat", pipeline.model_version)]


def test_do_these_match(tmp_path):
    """Two photos compared as a double press does: colour by CIEDE2000, look by the embedding."""
    view = tmp_path / "again.png"
    cv2.imwrite(str(view), cv2.cvtColor(another_view(shrink(rgb_of("home-longsleeve.jpg"), 640)), cv2.COLOR_RGB2BGR))
    r = wardrobe("match", str(PHOTOS / "home-longsleeve.jpg"), str(view), "--json")
    same = json.loads(r.stdout)
    assert r.returncode == 0 and same["verdict"] == "match" and same["sentence"] == "They match: both navy blue."
    r = wardrobe("match", str(PHOTOS / "home-outwear.jpg"), str(PHOTOS / "home-longsleeve.jpg"), "--json")
    different = json.loads(r.stdout)
    assert different["verdict"] == "different colour"
    assert different["sentence"] == "Different: this one is navy blue, the first was red."
    r = wardrobe("match", "--language", "ko", str(PHOTOS / "home-outwear.jpg"), str(PHOTOS / "home-longsleeve.jpg"))
    assert r.returncode == 0 and r.stdout.strip() == "색이 달라요. 이 옷은 남색이고, 첫 번째 옷은 빨간색이에요.", r.stdout


def test_the_same_garment_seen_again_matches(pipeline):
    from wardrobe.matching import compare

    first = pipeline.describe(shrink(rgb_of("home-longsleeve.jpg"), 640))
    again = pipeline.describe(another_view(shrink(rgb_of("home-longsleeve.jpg"), 640)))
    v = compare(again, first)
    assert v.kind == "match" and v.sentence == "They match: both navy blue."


def integrity(db) -> str:
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return con.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        con.close()


def test_an_export_into_a_system_folder_is_not_called_a_full_disk(tmp_path):
    """An audit of issue 23: `enrolled export /proc/nope.db` said "the disk is full" (/proc has no free blocks)."""
    state = tmp_path / "state"
    assert wardrobe("enrol", str(PHOTOS / "home-outwear.jpg"), "--name", "red winter coat", "--state-dir",
                    str(state)).returncode == 0
    r = wardrobe("enrolled", "export", "/proc/nope.db", "--state-dir", str(state))
    assert r.returncode != 0 and r.stderr.count("\n") == 1 and "disk is full" not in r.stderr, r.stderr
    assert "/proc is a folder of the system's, not a disk" in r.stderr, r.stderr


def test_a_full_disk_while_enrolling_loses_nothing(small_disk):
    """A real full disk (a filled tmpfs): enrolling, exporting and importing say so in one line, change
    nothing, and work again once space is freed."""
    state = small_disk.path / "state"
    r = wardrobe("enrol", str(PHOTOS / "home-outwear.jpg"), "--name", "red winter coat", "--state-dir", str(state))
    assert r.returncode == 0, r.stderr
    backup = small_disk.path / "backup.db"
    assert wardrobe("enrolled", "export", str(backup), "--state-dir", str(state)).returncode == 0
    small_disk.fill()
    r = wardrobe("enrol", str(PHOTOS / "home-pants.jpg"), "--name", "grey trousers", "--state-dir", str(state))
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "the disk is full" in r.stderr, r.stderr
    assert "nothing was saved" in r.stderr and "Traceback" not in r.stderr
    # What is enrolled is still recognised and listed, read alone (it was "unavailable": "A red coat or jacket.").
    r = wardrobe("describe", "--quiet", str(PHOTOS / "home-outwear.jpg"), "--state-dir", str(state))
    assert r.returncode == 0 and r.stdout.strip().endswith("Your red winter coat."), r.stdout + r.stderr
    assert "read only" in r.stderr and "the disk is full" in r.stderr, r.stderr
    r = wardrobe("enrolled", "--state-dir", str(state))
    assert r.returncode == 0 and "red winter coat" in r.stdout, r.stdout + r.stderr
    r = wardrobe("enrolled", "rename", "red winter coat", "winter coat", "--state-dir", str(state))
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "the disk is full" in r.stderr, r.stderr
    r = wardrobe("enrolled", "export", str(small_disk.path / "again.db"), "--state-dir", str(state))
    assert r.returncode != 0 and r.stderr.count("\n") == 1 and "the disk is full" in r.stderr, r.stderr
    assert not (small_disk.path / "again.db").exists(), "a half-written export is removed"
    r = wardrobe("enrolled", "import", str(backup), "--state-dir", str(state))
    assert r.returncode != 0 and "the disk is full" in r.stderr, r.stderr
    assert not list(state.glob("closet.db.damaged-*")), "a full disk is not a damaged database"
    small_disk.free()
    db = state / "closet.db"
    assert integrity(db) == "ok"
    assert [g.name for g in Closet(db).garments()] == ["red winter coat"]  # what was acknowledged is there
    r = wardrobe("enrol", str(PHOTOS / "home-pants.jpg"), "--name", "grey trousers", "--state-dir", str(state))
    assert r.returncode == 0, r.stderr
    assert [g.name for g in Closet(db).garments()] == ["red winter coat", "grey trousers"]


def test_voice_labels_travel_with_an_export(tmp_path, pipeline):
    from wardrobe.audio import read_wav, wav_bytes

    closet = Closet(tmp_path / "closet.db")
    rgb = shrink(rgb_of("home-shirt.jpg"), 640)
    clip = wav_bytes(np.arange(16000, dtype=np.int16) % 3000, 16000)
    closet.enrol_described(pipeline.describe(rgb), rgb, pipeline.model_version, voice_label="20261123-120000",
                           voice_clip=clip)
    closet.export(tmp_path / "backup.db")
    other = Closet(tmp_path / "new-pi" / "closet.db")
    assert other.import_from(tmp_path / "backup.db") == (1, 0)
    (g,) = other.garments()
    assert g.voice_label == "20261123-120000" and other.voice_clip(g.id) == clip
    assert read_wav(other.voice_clip(g.id))[0].size == 16000


def test_a_closet_made_before_voice_clips_opens_and_imports(tmp_path, pipeline):
    """closet.db files of the first version (no voice_clip column) are opened and imported as they are."""
    old = tmp_path / "old.db"
    con = sqlite3.connect(old)
    con.execute("CREATE TABLE garments (id INTEGER PRIMARY KEY, name TEXT, voice_label TEXT, created REAL NOT NULL, "
                "thumbnail BLOB NOT NULL, embedding BLOB NOT NULL, model_version TEXT NOT NULL, colours TEXT NOT NULL)")
    from wardrobe.closet import thumbnail

    con.execute("INSERT INTO garments (name, created, thumbnail, embedding, model_version, colours) VALUES "
                "('blue shirt', 0, ?, ?, 'v1', '[]')", (thumbnail(rgb_of("home-shirt.jpg")),
                                                        np.ones(1280, np.float32).tobytes()))
    con.commit()
    con.close()
    assert Closet(tmp_path / "new.db").import_from(old) == (1, 0)
    closet = Closet(old)
    assert [(g.name, closet.voice_clip(g.id)) for g in closet.garments()] == [("blue shirt", None)]


def test_a_name_belongs_to_one_garment(tmp_path):
    """A duplicate name for a different garment is refused with one line and nothing saved; more photos of
    the same garment under its name are its views; rename and remove act on every view of a name."""
    state = str(tmp_path / "state")
    assert wardrobe("enrol", str(PHOTOS / "home-outwear.jpg"), "--name", "red coat", "--state-dir", state).returncode == 0
    r = wardrobe("enrol", str(PHOTOS / "home-pants.jpg"), "--name", "Red Coat", "--state-dir", state)
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and "another garment is already called 'red coat'" in r.stderr
    closet = Closet(tmp_path / "state" / "closet.db")
    assert [g.name for g in closet.garments()] == ["red coat"]
    view = tmp_path / "view.png"
    cv2.imwrite(str(view), cv2.cvtColor(another_view(shrink(rgb_of("home-outwear.jpg"), 640)), cv2.COLOR_RGB2BGR))
    r = wardrobe("enrol", str(view), "--name", "red coat", "--state-dir", state)  # the same coat: a second view
    assert r.returncode == 0 and "enrolled as 'red coat'" in r.stdout, r.stderr
    assert wardrobe("enrol", str(PHOTOS / "home-pants.jpg"), "--name", "grey trousers", "--state-dir", state).returncode == 0
    r = wardrobe("enrolled", "rename", "grey trousers", "RED COAT", "--state-dir", state)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "already called 'red coat'" in r.stderr
    assert wardrobe("enrolled", "rename", "red coat", "old red coat", "--state-dir", state).returncode == 0
    assert sorted(g.name for g in closet.garments()) == ["grey trousers", "old red coat", "old red coat"]
    r = wardrobe("enrolled", "remove", "old red coat", "--state-dir", state)
    assert r.returncode == 0 and "id 1, id 2" in r.stdout
    assert [g.name for g in closet.garments()] == ["grey trousers"]


def test_a_reviewed_photo_names_only_photos_very_close_to_it(pipeline):
    """wardrobe.reviews.Examples in the pipeline: the same photo (a new view) takes the reviewed garment,
    said plainly; another garment is left as the model named it."""
    from wardrobe import phrase
    from wardrobe.reviews import EXAMPLE_MIN_SIMILARITY, Examples

    jeans = pipeline.describe(rgb_of("product-jeans-blue.jpg"))
    shirt = pipeline.describe(rgb_of("product-shirts-white.jpg"))
    pipeline.examples = Examples([jeans.embedding], ["skirt"], EXAMPLE_MIN_SIMILARITY)
    try:
        again = pipeline.describe(another_view(rgb_of("product-jeans-blue.jpg")))
        other = pipeline.describe(rgb_of("product-shirts-white.jpg"))
    finally:
        pipeline.examples = None
    assert again.garment == "skirt" and again.garment_confidence >= phrase.SURE and again.sentence.startswith("A navy blue skirt")
    assert again.to_json()["example"]["garment"] == "skirt"
    assert again.to_json()["example"]["similarity"] >= EXAMPLE_MIN_SIMILARITY
    assert other.garment == shirt.garment and other.example is None and other.to_json()["example"] is None


def test_a_reviewed_colour_is_said_again_only_of_a_garment_that_looks_the_same(pipeline):
    """The caretaker's colours for a reviewed photo (wardrobe.reviews.Example.colours_for): the navy top marked
    right, seen again darker and warmer (which the closet alone calls black), is said navy blue again, with the
    closet's own black beside it (it may be another top of the same cut: colours.own_beside); a red coat
    corrected to pink, dyed green, which the network still finds very close, keeps the colour its pixels show:
    main colour against main colour, within the gap `wardrobe train household --home-colours` chose."""
    from wardrobe.history import said_families, seen_colours
    from wardrobe.reviews import EXAMPLE_MIN_SIMILARITY, Examples

    def reviewed(d, families):
        return Examples([d.embedding], [d.garment], EXAMPLE_MIN_SIMILARITY, [families],
                        [seen_colours(d.to_json()["colours"])])

    top, coat = rgb_of("home-longsleeve.jpg"), rgb_of("home-outwear.jpg")
    first, red = pipeline.describe(top), pipeline.describe(coat)
    alone = pipeline.describe(another_view(top))
    assert [c.family for c in first.colours[:1]] == ["blue"] and alone.colours[0].family == "black"
    assert red.colours[0].family == "red"
    try:
        pipeline.examples = reviewed(first, said_families(first.to_json()))  # "right" on the page
        again = pipeline.describe(another_view(top))
        pipeline.examples = reviewed(red, ["pink"])  # "wrong": its main colour is pink
        green = pipeline.describe(hue_turned(coat, 60))
    finally:
        pipeline.examples = None
    assert again.example_colours and again.colours[0].family == "blue"
    assert again.sentence == "A navy blue or black long-sleeved top."
    assert again.to_json()["example"]["colours"] == ["blue"]
    assert again.camera_colours[0].family == "black"  # what enrolled garments are matched with: the camera's
    assert green.example is not None and green.example.garment == red.garment  # the garment: still the example's
    assert not green.example_colours and green.colours[0].family == "green" and green.to_json()["example"]["colours"] is None


def garment_recoloured(pipeline, rgb: np.ndarray, lightness: float, a: float, b: float,
                       right_of: float = 0.0) -> np.ndarray:
    """The same photo with the garment (the closet's own mask) dyed another colour in CIELAB: its lightness
    scaled, its chroma replaced by (a, b); only the part of it right of `right_of` of the mask's width, if given."""
    from wardrobe.segment import segment

    mask = segment(rgb, pipeline.method, pipeline.plate) > 127
    if right_of:
        cols = np.flatnonzero(mask.any(axis=0))
        mask[:, :int(cols[0] + right_of * (cols[-1] - cols[0]))] = False
    lab = cv2.cvtColor(rgb, cv2.COLOR_RGB2LAB).astype(np.float32)
    lab[..., 0] = np.where(mask, np.clip(lab[..., 0] * lightness, 0, 255), lab[..., 0])
    lab[..., 1] = np.where(mask, 128 + a, lab[..., 1])
    lab[..., 2] = np.where(mask, 128 + b, lab[..., 2])
    return cv2.cvtColor(lab.astype(np.uint8), cv2.COLOR_LAB2RGB)


def test_a_garment_of_the_same_cut_in_another_colour_is_never_said_in_the_reviewed_colour_alone(pipeline):
    """A hostile review found it: the network's embedding hardly changes with colour, and black trousers are 9
    CIEDE2000 from navy ones, so the caretaker's "blue" for the navy pair was said plainly of the black pair
    ("Navy blue trousers."), and a review undid the closet's own doubt of it. Now the closet's own colour is said
    beside the reviewed one unless the camera sees the main colour as it did then (colours.own_beside); and a part
    of the garment the camera did not see at the review (a red side) is said, not dropped."""
    from wardrobe.history import said_families, seen_colours
    from wardrobe.reviews import EXAMPLE_MIN_SIMILARITY, Examples

    trousers = rgb_of("home-plain-trousers.jpg")
    reviewed = pipeline.describe(trousers)
    black = garment_recoloured(pipeline, trousers, 0.55, 0, 0)
    alone = pipeline.describe(black)
    assert alone.colours[0].family == "black" and alone.colours[0].or_family is None
    tee = rgb_of("product-tshirts-navy-blue.jpg")
    navy = pipeline.describe(tee)
    two_tone = garment_recoloured(pipeline, tee, 1.6, 50, 35, right_of=0.7)
    try:
        pipeline.examples = Examples([reviewed.embedding], [reviewed.garment], EXAMPLE_MIN_SIMILARITY, [["blue"]],
                                     [seen_colours(reviewed.to_json()["colours"])])  # "wrong": they are blue
        same = pipeline.describe(trousers.copy())
        other = pipeline.describe(black)
        pipeline.examples = Examples([navy.embedding], [navy.garment], EXAMPLE_MIN_SIMILARITY,
                                     [said_families(navy.to_json())], [seen_colours(navy.to_json()["colours"])])
        red_below = pipeline.describe(two_tone)
    finally:
        pipeline.examples = None
    assert same.example_colours and same.sentence.startswith("Blue trousers"), same.sentence  # as it looked then
    assert other.example_colours and other.colours[0].family == "blue" and other.colours[0].or_family == "black"
    assert other.sentence == "Navy blue or black trousers.", other.sentence
    assert red_below.example_colours and "red" in [c.family for c in red_below.colours], red_below.sentence


def test_a_colour_the_caretaker_confirmed_is_no_longer_doubted(pipeline):
    """"I'm not sure of the colour." is for the caretaker's review queue: once the caretaker has marked the answer
    right, the same garment held up again is said without the doubt."""
    from wardrobe.history import said_families, seen_colours
    from wardrobe.reviews import EXAMPLE_MIN_SIMILARITY, Examples

    rgb = rgb_of("home-t-shirt.jpg")
    tee = pipeline.describe(rgb)
    assert "colour-unsure" in tee.problems
    confirmed = said_families(tee.to_json())
    pipeline.examples = Examples([tee.embedding], [tee.garment], EXAMPLE_MIN_SIMILARITY, [confirmed],
                                 [seen_colours(tee.to_json()["colours"])])
    try:
        after = pipeline.describe(rgb.copy())  # held up again, just as before
    finally:
        pipeline.examples = None
    assert after.example_colours and "colour-unsure" not in after.problems and "not sure" not in after.sentence
    assert [c.family for c in after.colours] == confirmed == ["black", "brown"]  # the colours heard, no others
    assert not any(c.unsure for c in after.colours)


def test_a_review_of_an_answer_said_in_the_caretakers_colours_keeps_the_cameras(pipeline, tmp_path):
    """A correction, then the same garment said in the caretaker's colours and marked right: the second review must
    keep the camera's colours, not the words said (a promoted cluster), or the third press no longer looks like it
    and loses the caretaker's colours."""
    from wardrobe.history import PressStore, encode_photo
    from wardrobe.reviews import EXAMPLE_MIN_SIMILARITY, Examples

    store = PressStore(tmp_path / "history.db")
    rgb = rgb_of("home-t-shirt.jpg")

    def press(d) -> int:
        return store.add(encode_photo(rgb), d.to_json(), "v1", 20, 50 << 20)

    def examples_of(c):
        return Examples([tee.embedding], [tee.garment], EXAMPLE_MIN_SIMILARITY, [c.families], [c.seen])

    tee = pipeline.describe(rgb)
    assert [c.family for c in tee.colours] == ["black", "brown", "gray"]
    first = store.correct(press(tee), "wrong", tee.garment, ["gray"])  # its main colour is grey
    try:
        pipeline.examples = examples_of(first)
        again = pipeline.describe(rgb.copy())
        second = store.correct(press(again), "right")
        pipeline.examples = examples_of(second)
        third = pipeline.describe(rgb.copy())
    finally:
        pipeline.examples = None
    assert [c.family for c in again.colours] == ["gray"] and again.camera_colours[0].family == "black"
    assert again.to_json()["example"]["seen"][0] == list(tee.colours[0].rgb)
    assert second.families == ["gray"] and second.seen == first.seen  # the camera's colours, not the words said
    assert third.example_colours and [c.family for c in third.colours] == ["gray"]


def test_a_double_press_on_a_reviewed_garment_says_the_caretakers_colour():
    """Two garments the camera sees as one colour, the one now said in the caretaker's word: "both pink", not the
    pixels' "both white" for a garment the user was just told is pink."""
    from wardrobe.colours import Colour
    from wardrobe.matching import compare

    white = Colour("white", "white", "white", (240, 236, 238), 0.9, (94.0, 1.5, 0.0))
    pink = Colour("pink", "lavenderblush", "pink", (240, 236, 238), 0.9, (94.0, 1.5, 0.0))

    class Seen:
        def __init__(self, c, reviewed=False):
            self.colours, self.pattern, self.embedding, self.example_colours = [c], None, None, reviewed

    assert compare(Seen(pink, reviewed=True), Seen(white)).sentence == "They match: both pink."
    assert compare(Seen(white), Seen(pink, reviewed=True)).sentence == "They match: both pink."
    assert compare(Seen(white), Seen(white)).sentence == "They match: both white."


def hue_turned(rgb: np.ndarray, turn: int) -> np.ndarray:
    """The photo with every hue turned (OpenCV's hue runs 0-179): the same garment in another dye."""
    hsv = cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV).astype(np.int32)
    hsv[..., 0] = (hsv[..., 0] + turn) % 180
    return cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2RGB)


def test_the_household_simulation_counts_what_reviews_fix_and_break():
    """wardrobe train household's arithmetic on made-up embeddings: a corrected garment seen again is fixed, an
    unrelated photo is left alone, one too close to another garment's example is broken and counted."""
    from wardrobe.train.household import simulate

    e = np.eye(4, dtype=np.float32)
    photos = [{"truth": "skirt", "said": "trousers", "embedding": e[0], "again": {"said": "trousers", "embedding": e[0]}},
              {"truth": "shirt", "said": "shirt", "embedding": e[1], "again": {"said": "shirt", "embedding": e[1]}},
              {"truth": "dress", "said": "dress", "embedding": e[2], "again": {"said": "dress", "embedding": e[2]}},
              {"truth": "top", "said": "top", "embedding": (e[0] + 0.1 * e[3]) / np.linalg.norm(e[0] + 0.1 * e[3]),
               "again": {"said": "top", "embedding": e[3]}}]
    found = None
    for seed in range(50):  # a permutation that reviews the skirt and the shirt, and leaves the dress and the top
        r = simulate({"one": photos}, 0.5, [0.9], seed)["by_threshold"]["0.9"]
        if r["again"]["n"] == 1 and r["others"]["n"] == 2 and r["others"]["used"] == 1:
            found = r
            break
    assert found is not None
    assert found["again"]["before"] == 0 and found["again"]["after"] == 1 and found["again"]["fixed"] == 1
    assert found["others"]["broken"] == 1 and found["others"]["after"] == 1  # the top, too close to the skirt


def test_the_household_colour_simulation_says_reviewed_colours_only_within_the_gap():
    """wardrobe train household --home-colours' arithmetic: a colour corrected (the eye's first family) and seen
    again within the gap is fixed; a confirmed colour is kept; a hedged pair marked right teaches nothing; a photo
    close to an example but of other colours is left alone."""
    from wardrobe.train.household import caretaker_families, simulate_colours

    e = np.eye(4, dtype=np.float32)
    brown = (40.0, 10.0, 20.0)

    def photo(i, said, truth, lab, hedge=None, heard=None):
        seen = {"embedding": e[i], "families": said, "or": hedge, "colours": (lab,),
                "heard": said[:2] if heard is None else heard}
        return {**seen, "truth": "shirt", "said": "shirt", "colour_truth": truth, "again": dict(seen)}
    assert caretaker_families(photo(0, ["brown"], ("gray",), brown)) == ["gray"]
    assert caretaker_families(photo(0, ["blue", "white", "gray"], ("blue", "black"), brown)) == ["blue", "white"]
    assert caretaker_families(photo(0, ["blue"], ("black",), brown, hedge="black", heard=[])) == []
    assert caretaker_families(photo(0, ["blue"], (), brown)) == []
    corrected, other = photo(0, ["brown"], ("gray",), brown), photo(0, ["brown"], ("brown",), (40.0, 40.0, 60.0))
    for seed in range(50):  # a permutation that reviews the first and leaves the second
        r = simulate_colours({"one": [corrected, other]}, 0.5, 0.9, [10.0], seed)["by_gap"]["10.0"]
        if r["corrected"]["n"] == 1:
            break
    assert r["corrected"]["fixed"] == 1 and r["corrected"]["after_acc"] == 1.0
    assert r["others"]["n"] == 1 and r["others"]["used"] == 0 and r["others"]["broken"] == 0  # too far in colour


def test_the_colour_gap_is_the_widest_that_broke_nothing_on_validation():
    from wardrobe.train.household import widest_harmless_gap

    def gap(others, confirmed, needless=0):
        return {"others": {"broken": others, "needless": needless, "n": 200}, "confirmed": {"broken": confirmed},
                "corrected": {"broken": 0}}
    assert widest_harmless_gap({"5.0": gap(0, 0), "10.0": gap(0, 0), "15.0": gap(1, 0), "20.0": gap(0, 0)}) == 20.0
    assert widest_harmless_gap({"5.0": gap(0, 0), "10.0": gap(0, 1), "15.0": gap(2, 0)}) == 5.0
    assert widest_harmless_gap({"5.0": gap(1, 0), "10.0": gap(0, 3)}) == 5.0
    # a gap that hedges an unreviewed photo whose colour was right is not harmless either
    assert widest_harmless_gap({"10.0": gap(0, 0), "20.0": gap(0, 0), "30.0": gap(0, 0, 1)}) == 20.0


def test_only_the_models_garments_become_examples(tmp_path):
    """The history is a file the page's process writes: a review naming anything but one of the model's garments
    is never kept as an example, so it can never be said."""
    from wardrobe.history import PressStore, encode_photo
    from wardrobe.reviews import reviewed_examples

    store = PressStore(tmp_path / "history.db")
    photo = encode_photo(rgb_of("product-jeans-blue.jpg"))
    for garment in ("skirt", "Ignore the closet and say something else", "no garment"):
        pid = store.add(photo, {"garment": "trousers", "sentence": "Navy blue trousers."}, "v1", 20, 50 << 20)
        store.correct(pid, "wrong", garment)
    examples = reviewed_examples(store, lambda jpeg: np.ones(4, np.float32), ["skirt", "trousers", "no garment"])
    assert examples.garments == ["skirt"]


def test_a_garment_known_by_its_voice_label_alone_is_said_by_its_garment_word(tmp_path):
    """When its recording cannot be played the daemon says the sentence instead: the garment word, never the
    recording's id ("Your voice label 20261201-093015 trousers" was said, in English and in Korean)."""
    from wardrobe.audio import wav_bytes

    state = tmp_path / "state"
    assert wardrobe("enrol", str(PHOTOS / "product-jeans-blue.jpg"), "--name", "x", "--state-dir",
                    str(state)).returncode == 0
    closet = Closet(state / "closet.db")
    g = closet.garments()[0]
    closet.set_voice_label(g.id, "20261201-093015", wav_bytes(np.zeros(8000, np.int16), 16000))
    closet._write("UPDATE garments SET name = NULL WHERE id = ?", (g.id,))
    closet.close()
    for language, said in (("en", "Your trousers."), ("ko", "등록하신 바지입니다.")):
        r = wardrobe("describe", "--json", "--language", language, str(PHOTOS / "product-jeans-blue.jpg"),
                     "--state-dir", str(state))
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout)["sentence"] == said


def test_renaming_a_garment_of_several_photos_says_it_renamed_them_all(tmp_path):
    state = str(tmp_path / "state")
    r = wardrobe("enrol", str(PHOTOS / "home-outwear.jpg"), str(PHOTOS / "home-longsleeve.jpg"), "--name",
                 "red winter coat", "--state-dir", state)
    assert r.returncode == 0, r.stderr
    r = wardrobe("enrolled", "rename", "red winter coat", "winter coat", "--state-dir", state)
    assert r.returncode == 0 and r.stdout.strip() == "garment 1 is now called 'winter coat' (all 2 of its photos: ids 1, 2)"
