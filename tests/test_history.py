"""The press history and its corrections: a real SQLite file (WAL) with real photos."""

from __future__ import annotations

import sqlite3
import threading

import pytest

from tests.conftest import rgb_of
from wardrobe.history import History, HistoryError, PressStore, encode_photo


def result(garment="trousers", confidence=0.97, problems=(), sentence=None, alternatives=()):
    return {"garment": garment, "garment_confidence": confidence, "problems": list(problems),
            "sentence": sentence or f"Blue {garment}.", "alternatives": list(alternatives), "colours": []}


@pytest.fixture
def jeans():
    return encode_photo(rgb_of("product-jeans-blue.jpg"))


def test_presses_are_kept_in_wal_mode_and_bounded_by_count(tmp_path, jeans):
    store = PressStore(tmp_path / "history.db")
    ids = [store.add(jeans, result(sentence=f"press {i}"), "v1", keep=3, max_bytes=10 << 20) for i in range(5)]
    assert sqlite3.connect(tmp_path / "history.db").execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert [p.id for p in store.presses()] == ids[:1:-1]  # the newest three, newest first
    assert store.photo(ids[0]) is None and store.photo(ids[-1]) == jeans


def test_presses_are_bounded_by_bytes(tmp_path, jeans):
    store = PressStore(tmp_path / "history.db")
    for _ in range(6):
        store.add(jeans, result(), "v1", keep=100, max_bytes=int(2.5 * len(jeans)))
    assert len(store.presses()) == 2


def test_unsure_answers_come_first_until_reviewed(tmp_path, jeans):
    store = PressStore(tmp_path / "history.db")
    sure = store.add(jeans, result(), "v1", 20, 1 << 30)
    hedged = store.add(jeans, result("coat or jacket", 0.6, alternatives=[{"garment": "blazer", "confidence": 0.3}]),
                       "v1", 20, 1 << 30)
    newest = store.add(jeans, result(), "v1", 20, 1 << 30)
    dark = store.add(jeans, result(None, None, ["too-dark"], "It's too dark."), "v1", 20, 1 << 30)
    assert [p.id for p in store.presses()] == [dark, hedged, newest, sure]
    assert store.press(hedged).hedges == ["coat or jacket", "blazer"] and store.press(sure).hedges == []
    assert store.press(dark).problems == ["too-dark"]
    store.correct(dark, "right")
    assert [p.id for p in store.presses()] == [hedged, dark, newest, sure]


def test_a_wrong_answer_keeps_its_photo_after_the_press_is_pruned_until_exported(tmp_path, jeans):
    store = PressStore(tmp_path / "history.db")
    pid = store.add(jeans, result("shirt", 0.5), "v1", 2, 1 << 30)
    c = store.correct(pid, "wrong", "trousers", ["blue", "white"], "solid")
    assert (c.verdict, c.garment, c.families, c.pattern, c.said) == ("wrong", "trousers", ["blue", "white"], "solid",
                                                                      "Blue shirt.")  # the main colour first
    right = store.add(jeans, result(), "v1", 2, 1 << 30)
    store.correct(right, "right")
    for _ in range(3):
        store.add(jeans, result(), "v1", 2, 1 << 30)
    assert store.press(pid) is None
    assert store.photo(pid) == jeans  # the page can still show it
    assert [x.press_id for x in store.corrections()] == [pid]  # the "right" of a pruned press is let go
    (waiting,) = store.corrections(unexported_wrong=True)
    assert store.correction_photo(waiting.id) == jeans
    store.mark_exported([waiting.id])
    store.add(jeans, result(), "v1", 2, 1 << 30)
    assert store.corrections() == [] and store.photo(pid) is None


def test_corrections_are_checked(tmp_path, jeans):
    store = PressStore(tmp_path / "history.db")
    pid = store.add(jeans, result(), "v1", 20, 1 << 30)
    for args, message in (((pid, "maybe"), "right or wrong"), ((pid, "wrong"), "needs the right garment"),
                          ((pid, "wrong", "shirt", ["navy"]), "'navy' is not a colour family"),
                          ((pid, "wrong", "shirt", ["blue"], "tartan"), "'tartan' is not a pattern"),
                          ((pid + 1, "right"), "not in the history")):
        with pytest.raises(HistoryError, match=message):
            store.correct(*args)
    assert store.corrections() == []


def test_a_verdict_keeps_the_colours_confirmed_or_given_and_as_the_camera_saw_them(tmp_path, jeans):
    """"Right" keeps the families said (none for a hedged pair: which of the two was right?); "wrong" those given;
    both keep the press's colours in CIELAB, so the closet says them again only of a garment that looks the same."""
    navy = {"name": "navy blue", "family": "blue", "rgb": [30, 40, 90], "share": 0.7}
    white = {"name": "white", "family": "white", "rgb": [250, 250, 250], "share": 0.3}
    store = PressStore(tmp_path / "history.db")
    plain = store.add(jeans, {**result(), "colours": [navy, white]}, "v1", 20, 1 << 30)
    hedged = store.add(jeans, {**result(), "colours": [{**navy, "or": {"name": "black", "family": "black"}}]},
                       "v1", 20, 1 << 30)
    wrong = store.add(jeans, {**result(), "colours": [white]}, "v1", 20, 1 << 30)
    store.correct(plain, "right")
    store.correct(hedged, "right")
    store.correct(wrong, "wrong", "trousers", ["gray"])
    kept = {c.press_id: c for c in store.corrections()}
    assert kept[plain].families == ["blue", "white"] and kept[hedged].families == [] and kept[wrong].families == ["gray"]
    (lab,) = kept[wrong].seen
    assert lab[0] == pytest.approx(98.0, abs=0.5) and abs(lab[1]) < 0.5 and abs(lab[2]) < 0.5
    assert len(kept[plain].seen) == 2 and kept[plain].seen[0][2] < -30  # navy: blue in CIELAB's b


def test_right_keeps_only_the_colours_heard(tmp_path, jeans):
    """The families a sentence said (the main one and a second that is a real part of the garment), not every
    cluster; none for the user's own garment ("Your red coat." says no colour)."""
    from wardrobe.history import said_families

    navy, grey, white = ({"family": f, "rgb": [9, 9, 9], "share": s} for f, s in
                         (("blue", 0.6), ("gray", 0.3), ("white", 0.1)))
    assert said_families({"colours": [navy, grey, white]}) == ["blue", "gray"]
    assert said_families({"colours": [navy, {**grey, "share": 0.1}, white]}) == ["blue"]
    assert said_families({"colours": [navy, grey], "enrolled": {"id": 1, "name": "red coat"}}) == []
    assert said_families({"colours": [{**navy, "family": "navy"}, grey]}) == []
    assert said_families({"colours": [navy, grey], "problems": ["overexposed"]}) == []  # a problem said instead


def test_concurrent_openers_of_an_old_history_add_its_column_once(tmp_path, jeans):
    """The page opens a store per request and the daemon two: opening a history from before `seen` at once raised
    "duplicate column name: seen" in most of them."""
    for trial in range(3):
        path = tmp_path / f"old-{trial}.db"
        db = sqlite3.connect(path)
        db.executescript(SCHEMA_BEFORE_SEEN)
        db.close()
        errors, start = [], threading.Barrier(8)

        def open_it(path=path, start=start, errors=errors):
            start.wait()
            try:
                PressStore(path).close()
            except HistoryError as e:
                errors.append(str(e))
        threads = [threading.Thread(target=open_it) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        cols = [r[1] for r in sqlite3.connect(path).execute("PRAGMA table_info(corrections)")]
        assert cols.count("seen") == 1


def test_a_history_from_before_the_colours_were_kept_is_read_and_written(tmp_path, jeans):
    """A closet updated in place: its history.db has the corrections table without `seen`."""
    db = sqlite3.connect(tmp_path / "history.db")
    db.executescript(SCHEMA_BEFORE_SEEN)
    db.execute("INSERT INTO presses (created, photo, result, sentence, unsure) VALUES (1, ?, '{}', 'Blue trousers.', 0)",
               (jeans,))
    db.execute("INSERT INTO corrections (press_id, created, verdict, garment, families, said) "
               "VALUES (1, 1, 'wrong', 'skirt', '[\"blue\"]', 'Blue trousers.')")
    db.commit()
    db.close()
    store = PressStore(tmp_path / "history.db")
    (old,) = store.corrections()
    assert (old.garment, old.families, old.seen) == ("skirt", ["blue"], ())
    pid = store.add(jeans, {**result(), "colours": [{"family": "blue", "rgb": [30, 40, 90]}]}, "v1", 20, 1 << 30)
    assert len(store.correct(pid, "right").seen) == 1


def test_kept_colours_that_are_not_colours_are_left_out(tmp_path, jeans):
    """The history is a file the page's process writes: a `seen` column that is not a list of three finite CIELAB
    numbers gives no colours, never an exception."""
    store = PressStore(tmp_path / "history.db")
    pid = store.add(jeans, result(), "v1", 20, 1 << 30)
    store.correct(pid, "right")
    kept = ((50.0, 0.0, 0.0),)
    for junk, seen in (("NaN", ()), ("[[NaN, 0, 0]]", ()), ("[[1e999, 0, 0]]", ()), ('[["50", 0, 0]]', ()),
                       ("[[50, 0]]", ()), ("{}", ()), ("not json", ()), ("[[[[[]]]]]", ()), ("[" * 5000 + "]" * 5000, ()),
                       ("[[50, 0, 0], [101, 0, 0], [50, 300, 0], true]", kept), ("[[50, 0, 0]]", kept),
                       ("[[101, 0, 0], [50, 0, 0]]", ())):  # a bad main colour: never the second in its place
        store.db.execute("UPDATE corrections SET seen = ?", (junk,))
        (c,) = store.corrections()
        assert c.seen == seen, junk


SCHEMA_BEFORE_SEEN = """
CREATE TABLE presses (id INTEGER PRIMARY KEY AUTOINCREMENT, created REAL NOT NULL, photo BLOB NOT NULL,
    result TEXT NOT NULL, sentence TEXT NOT NULL, model_version TEXT, confidence REAL, unsure INTEGER NOT NULL,
    audio BLOB);
CREATE TABLE corrections (id INTEGER PRIMARY KEY AUTOINCREMENT, press_id INTEGER NOT NULL UNIQUE,
    created REAL NOT NULL, verdict TEXT NOT NULL CHECK (verdict IN ('right', 'wrong')), garment TEXT,
    families TEXT NOT NULL DEFAULT '[]', pattern TEXT, said TEXT NOT NULL, model_version TEXT, photo BLOB,
    exported REAL);
"""


def test_a_second_verdict_replaces_the_first(tmp_path, jeans):
    store = PressStore(tmp_path / "history.db")
    pid = store.add(jeans, result(), "v1", 20, 1 << 30)
    store.correct(pid, "right")
    store.correct(pid, "wrong", "skirt", ["black"])
    (c,) = store.corrections()
    assert c.verdict == "wrong" and c.garment == "skirt" and store.correction_photo(c.id) == jeans


def test_the_daemon_side_writes_on_its_own_thread_and_readers_see_it(tmp_path):
    history = History(tmp_path, keep=5, max_mb=10)
    rgb = rgb_of("home-outwear.jpg")
    assert history.save(rgb, result("coat or jacket"), "v7")
    history.flush()
    assert history.thread is not None and history.thread is not threading.current_thread()
    reader = PressStore(tmp_path / "history.db", create=False)
    (p,) = reader.presses()
    assert p.model_version == "v7" and p.result["garment"] == "coat or jacket"
    assert reader.photo(p.id)[:2] == b"\xff\xd8"
    history.close()


def test_history_off_keeps_nothing(tmp_path):
    history = History(tmp_path, keep=0, max_mb=10)
    assert not history.save(rgb_of("home-outwear.jpg"), result(), "v1")
    assert not (tmp_path / "history.db").exists()


def test_a_missing_or_damaged_history_is_one_clear_error_for_readers(tmp_path):
    with pytest.raises(HistoryError, match="no press history yet"):
        PressStore(tmp_path / "history.db", create=False)
    (tmp_path / "history.db").write_bytes(b"garbage" * 1000)
    with pytest.raises(HistoryError, match="the database is damaged"):
        PressStore(tmp_path / "history.db", create=False)


def test_saving_never_waits_for_the_database(tmp_path, caplog):
    """While another process holds the database's write lock (the page saving a correction, say), a press hands
    its photo over at once; the writer catches up when the lock is released, and a press beyond what it can
    hold is dropped with one log line instead of delaying the user."""
    import time

    history = History(tmp_path, keep=10, max_mb=10)
    rgb = rgb_of("home-outwear.jpg")
    assert history.save(rgb, result(), "v1")
    history.flush()
    blocker = sqlite3.connect(tmp_path / "history.db", isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    t0 = time.perf_counter()
    assert history.save(rgb, result(), "v1")
    time.sleep(0.5)  # the writer has taken it and waits on the lock
    assert history.save(rgb, result(), "v1") and history.save(rgb, result(), "v1")
    assert not history.save(rgb, result(), "v1")
    assert time.perf_counter() - t0 < 0.5 + 0.2
    assert "the writer is still busy" in caplog.text
    blocker.execute("ROLLBACK")
    history.flush()
    assert len(PressStore(tmp_path / "history.db").presses()) == 4
    history.close()


def test_a_held_lock_is_waited_for_once_not_once_per_retry(tmp_path, jeans):
    """A review: the retry of SQLite's immediate "locked" also retried a lock another process holds, five times
    its 10 s timeout, longer than the daemon's 30 s watchdog."""
    import time as clock

    PressStore(tmp_path / "history.db").close()
    holder = sqlite3.connect(tmp_path / "history.db", isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        started = clock.monotonic()
        with pytest.raises(HistoryError, match="locked"):
            PressStore(tmp_path / "history.db")
        assert clock.monotonic() - started < 25  # one wait of the connection's timeout, not five
    finally:
        holder.rollback()
        holder.close()
