"""A closet file is untrusted input (issue 23, part A): `enrolled import` refuses a hostile file in one line with
nothing added, and a hostile row already in closet.db is skipped by describe and the daemon, never used or fatal.

Each attack is a real exported closet (one garment enrolled from a real photo with the shipped model) changed
with SQL, as an attacker with the file would change it."""

from __future__ import annotations

import json
import sqlite3
import time

import cv2
import numpy as np
import pytest

from tests.conftest import PHOTOS, SHIPPED, rgb_of
from tests.test_cli import wardrobe
from wardrobe.closet import Closet, ClosetError, thumbnail
from wardrobe.images import shrink

NAN = np.full(1280, np.nan, np.float32).tobytes()
ATTACKS = {
    "NaN embedding": ("UPDATE garments SET embedding = ?, name = 'impostor trousers'", (NAN,)),
    "3-float embedding": ("UPDATE garments SET embedding = ?", (np.ones(3, np.float32).tobytes(),)),
    "empty embedding": ("UPDATE garments SET embedding = x''", ()),
    "thumbnail not a JPEG, another model": ("UPDATE garments SET thumbnail = x'00112233', model_version = 'x'", ()),
    "oversized thumbnail": ("UPDATE garments SET thumbnail = ?", (b"\xff\xd8" + b"\0" * (2 << 20),)),
    # small in bytes, large in pixels: a 3-megapixel JPEG of one colour is 47 KB, and decoding it costs 9 MB
    "thumbnail of 3 megapixels": ("UPDATE garments SET thumbnail = ?",
                                  (cv2.imencode(".jpg", np.zeros((1500, 2000, 3), np.uint8))[1].tobytes(),)),
    "colours a string": ("UPDATE garments SET colours = '\"navy\"'", ()),
    "colours without lab": ("UPDATE garments SET colours = '[{\"name\": \"navy\", \"share\": 1}]'", ()),
    "voice label a path": ("UPDATE garments SET name = NULL, voice_label = '../../../../somewhere/evil'", ()),
    "20,000-character name": ("UPDATE garments SET name = ?", ("a" * 20000,)),
    "name with ESC and CR": ("UPDATE garments SET name = ?", ("coat\x1b[2J\rrm -rf",)),
    "16-float embedding of the current model": ("UPDATE garments SET embedding = ?",
                                                (np.ones(16, np.float32).tobytes(),)),
    "embedding far from unit length": ("UPDATE garments SET embedding = ?, name = 'impostor'",
                                       (np.full(1280, 3e38, np.float32).tobytes(),)),
    "a 400-digit CIELAB number": ("UPDATE garments SET colours = ?",
                                  ('[{"lab": [' + "9" * 400 + ', 0, 0], "share": 1, "name": "x"}]',)),
    "colours nested 100,000 deep": ("UPDATE garments SET colours = ?", ("[" * 100000,)),
    "enrolment time not a number": ("UPDATE garments SET created = 'x'", ()),
    "model version with ESC": ("UPDATE garments SET model_version = ?", ("v\x1b[2J",)),
}


def strict(constant: str):
    """json.loads reads NaN and Infinity, which are not JSON: a reader of describe --json would choke on them."""
    raise AssertionError(f"{constant} in the JSON")


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A closet with the coat enrolled, exported to a file (the form `enrolled import` takes)."""
    from wardrobe.classify import Classifier
    from wardrobe.pipeline import Pipeline

    d = tmp_path_factory.mktemp("exported")
    pipe = Pipeline(Classifier.load(SHIPPED))
    closet = Closet(d / "closet.db")
    rgb = shrink(rgb_of("home-outwear.jpg"), 640)
    closet.enrol_described(pipe.describe(rgb), rgb, pipe.model_version, name="red winter coat")
    closet.export(d / "export.db")
    return d / "export.db"


def changed(f, sql: str, args=(), start=None, many: bool = False):
    """An SQLite file f (a copy of start, when given) changed by one statement, as an attacker with the file would."""
    if start is not None:
        f.write_bytes(start.read_bytes())
    con = sqlite3.connect(f)
    (con.executemany if many else con.execute)(sql, args)
    con.commit()
    con.close()
    return f


def hostile(exported, tmp_path, attack: str):
    sql, args = ATTACKS[attack]
    return changed(tmp_path / "hostile.db", sql, args, start=exported)


@pytest.mark.parametrize("attack", list(ATTACKS))
def test_a_hostile_closet_file_is_refused_whole(exported, tmp_path, attack):
    state = tmp_path / "state"
    assert wardrobe("enrol", str(PHOTOS / "home-shirt.jpg"), "--name", "blue shirt", "--state-dir",
                    str(state)).returncode == 0
    r = wardrobe("enrolled", "import", str(hostile(exported, tmp_path, attack)), "--state-dir", str(state))
    if attack in ("enrolment time not a number", "embedding far from unit length"):
        # imported as they are harmless: an import gets the time of the import, and an embedding is a direction
        # (made unit length here, so its size cannot outvote the threshold)
        assert r.returncode == 0, r.stderr
        r = wardrobe("describe", "--json", "--quiet", "--state-dir", str(state), str(PHOTOS / "home-pants.jpg"))
        assert json.loads(r.stdout)["enrolled"] is None and "impostor" not in r.stdout, r.stdout
        return
    if attack == "16-float embedding of the current model":  # another model's width: refused as this model's
        assert r.returncode != 0 and "cannot be imported" in r.stderr, r.stderr
        return
    assert r.returncode != 0 and "cannot be imported" in r.stderr and "garment 1" in r.stderr, r.stderr
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
    assert [g.name for g in Closet(state / "closet.db").garments()] == ["blue shirt"]  # nothing added


@pytest.mark.parametrize("attack", list(ATTACKS))
def test_a_hostile_row_in_the_closet_is_skipped_not_used(exported, tmp_path, attack):
    """As if the file had been copied over closet.db: describe, enrolled and the JSON stay sound, and no photo
    is called the attacker's garment."""
    state = tmp_path / "state"
    state.mkdir()
    hostile(exported, tmp_path, attack).rename(state / "closet.db")
    r = wardrobe("describe", "--json", "--quiet", "--state-dir", str(state), str(PHOTOS / "home-outwear.jpg"),
                 str(PHOTOS / "home-pants.jpg"))
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    said = [json.loads(line, parse_constant=strict) for line in r.stdout.splitlines()]  # a bare NaN fails here
    assert all(d["enrolled"] is None for d in said), said
    if attack not in ("16-float embedding of the current model", "embedding far from unit length"):
        assert "skipped" in r.stderr  # (those two are valid rows: of another width, never matched; a direction)
    r = wardrobe("enrolled", "--state-dir", str(state))
    assert r.returncode == 0 and "Traceback" not in r.stderr and "\x1b" not in r.stdout, r.stderr


def test_a_view_or_trigger_is_no_closet(exported, tmp_path):
    """A garments VIEW that recurses forever (it hung the import and filled /var/tmp) is refused at once."""
    f = changed(tmp_path / "view.db", "CREATE VIEW garments AS WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT "
                "n + 1 FROM r) SELECT n AS id, 'x' AS name, NULL AS voice_label, 0 AS thumbnail, 0 AS embedding, "
                "'v' AS model_version, '[]' AS colours FROM r")
    t = time.monotonic()
    with pytest.raises(ClosetError, match="not an exported closet: it holds view garments"):
        Closet(tmp_path / "closet.db").import_from(f)
    assert time.monotonic() - t < 5
    g = changed(tmp_path / "trigger.db", "CREATE TRIGGER t AFTER INSERT ON garments BEGIN DELETE FROM garments; END",
                start=exported)
    with pytest.raises(ClosetError, match="trigger t"):
        Closet(tmp_path / "closet.db").import_from(g)


def test_a_computed_column_or_a_huge_row_is_refused_before_it_is_read(exported, tmp_path):
    """An audit of issue 23: a garments table whose thumbnail column was GENERATED ALWAYS AS (zeroblob(200000000))
    made an 8 KB file cost 817 MB of memory as its rows were read. Computed columns are refused from the schema,
    and a stored row far larger than any the closet writes is refused from its length, before its bytes are read."""
    f = changed(tmp_path / "computed.db", "CREATE TABLE garments (id INTEGER PRIMARY KEY, name TEXT, voice_label "
                "TEXT, created REAL, embedding BLOB, model_version TEXT, colours TEXT, "
                "thumbnail BLOB GENERATED ALWAYS AS (zeroblob(200000000)) VIRTUAL)")
    changed(f, "INSERT INTO garments (name, created, embedding, model_version, colours) VALUES (?, 0, ?, 'v', '[]')",
            [("coat", np.ones(1280, np.float32).tobytes())] * 3, many=True)
    t = time.monotonic()
    with pytest.raises(ClosetError, match="its column thumbnail is computed, not stored"):
        Closet(tmp_path / "closet.db").import_from(f)
    assert time.monotonic() - t < 5
    g = changed(tmp_path / "huge.db", "UPDATE garments SET thumbnail = zeroblob(60000000)", start=exported)
    with pytest.raises(ClosetError, match="garment 1 cannot be imported: it is far larger than any this closet "
                                          "stores; nothing was imported"):
        Closet(tmp_path / "closet.db").import_from(g)


def test_an_embedding_of_another_width_is_refused_into_an_empty_closet_too(exported, tmp_path):
    """An audit of issue 23: the width was checked only against garments already enrolled with the same model, so
    a 16-float embedding of the model in use went into an empty closet as a garment that could never match."""
    r = wardrobe("enrolled", "import", str(hostile(exported, tmp_path, "16-float embedding of the current model")),
                 "--state-dir", str(tmp_path / "state"))
    assert r.returncode != 0 and "garment 1 cannot be imported: its embedding has 16 numbers, the model's 1280" in \
        r.stderr, r.stderr
    assert not Closet(tmp_path / "state" / "closet.db").garments()


def test_odd_file_names_import_and_the_closet_never_imports_itself(exported, tmp_path):
    odd = tmp_path / "a#b?c%20d.db"  # '#', '?' and '%' were read as parts of an SQLite URI
    odd.write_bytes(exported.read_bytes())
    closet = Closet(tmp_path / "closet.db")
    assert closet.import_from(odd) == (1, 0)
    with pytest.raises(ClosetError, match="this closet itself"):
        closet.import_from(tmp_path / "closet.db")
    assert len(closet.garments()) == 1  # not duplicated
    big = tmp_path / "big.db"
    with open(big, "wb") as f:
        f.truncate(300 << 20)  # sparse: no disk used
    with pytest.raises(ClosetError, match="larger than"):
        closet.import_from(big)


def test_names_are_bounded_and_printable(tmp_path):
    closet = Closet(tmp_path / "closet.db")
    jpeg = thumbnail(np.full((40, 40, 3), 128, np.uint8))
    for bad in ("a" * 81, "coat\x1b[2J", "\x00coat", "coat\u202e"):
        with pytest.raises(ClosetError):
            closet.enrol(np.ones(1280, np.float32), [], jpeg, "v", name=bad)
    gid = closet.enrol(np.ones(1280, np.float32), [], jpeg, "v", name="  Sunday \r\n  best ")
    assert closet.find(str(gid)).name == "Sunday best"  # line breaks and runs of spaces are one space
    with pytest.raises(ClosetError, match="control characters"):
        closet.rename(str(gid), "x\x07")
