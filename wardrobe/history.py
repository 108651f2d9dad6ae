"""The presses the closet answered, and the caretaker's corrections of them, in one SQLite file (WAL).

state_dir/history.db holds two tables. `presses`: the photo (JPEG), the JSON of what was said, when, the
model version; bounded by count and bytes (history_keep, history_max_mb), oldest first out. `corrections`:
the caretaker's "right" or "wrong" on a press, and for a wrong one the right garment, colour families and
pattern, with its own copy of the photo, so that pruning the history never loses a correction that has
not been exported for training yet.

The daemon writes a press on a thread of its own (`History`), off the press's critical path, in one
transaction; a full disk or a damaged file costs one log line and the press goes on. The caretaker's page
reads and corrects through `PressStore`; ids are integers from the database, never paths.
"""

from __future__ import annotations

import json
import logging
import queue
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from wardrobe import phrase
from wardrobe.colours import FAMILIES, Colour, spoken_colours
from wardrobe.errors import WardrobeError
from wardrobe.files import SqliteTrouble, open_sqlite_read_only, sqlite_trouble
from wardrobe.taxonomy import PATTERNS

log = logging.getLogger(__name__)

FILE_NAME = "history.db"
SCHEMA = """
CREATE TABLE IF NOT EXISTS presses (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created REAL NOT NULL,
    photo BLOB NOT NULL,
    result TEXT NOT NULL,
    sentence TEXT NOT NULL,
    model_version TEXT,
    confidence REAL,
    unsure INTEGER NOT NULL,
    audio BLOB
);
CREATE TABLE IF NOT EXISTS corrections (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    press_id INTEGER NOT NULL UNIQUE,
    created REAL NOT NULL,
    verdict TEXT NOT NULL CHECK (verdict IN ('right', 'wrong')),
    garment TEXT,
    families TEXT NOT NULL DEFAULT '[]',
    pattern TEXT,
    said TEXT NOT NULL,
    model_version TEXT,
    photo BLOB,
    exported REAL,
    seen TEXT
);
"""
# AUTOINCREMENT: a correction names its press by id, so an id is never given to a second press.
# corrections.seen: the press's colours as the camera saw them (CIELAB, main first, JSON), kept with the verdict so
# that a colour the caretaker gave is said again only of a garment that looks the same (wardrobe.reviews).


class HistoryError(WardrobeError):
    """The press history cannot be read or written (damaged file, full disk, unknown press)."""

    def __init__(self, message: str, trouble: SqliteTrouble | None = None) -> None:
        super().__init__(message)
        self.trouble = trouble
        """What SQLite's failure was, in plain words (None: not a database failure)."""


@dataclass(frozen=True)
class Correction:
    """The caretaker's verdict on one press."""

    id: int
    press_id: int
    created: float
    verdict: str
    """"right" or "wrong"."""
    garment: str | None
    families: list[str]
    """The garment's colour families, main first: those the caretaker gave (wrong), or those said (right)."""
    pattern: str | None
    said: str
    model_version: str | None
    exported: float | None
    seen: tuple[tuple[float, float, float], ...] = ()
    """The press's colours as seen then (CIELAB, main first): history.seen_colours of its answer."""
    main_known: bool = True
    """False for a correction kept before the colours seen were (its `seen` is NULL): those kept their families in
    alphabetical order, so the first is not known to be the main colour."""


@dataclass(frozen=True)
class Press:
    """One answered press as the history keeps it (the photo is read separately, by id)."""

    id: int
    created: float
    result: dict
    sentence: str
    model_version: str | None
    confidence: float | None
    unsure: bool
    correction: Correction | None = None
    spoken: bool = False
    """Whether the audio of what was said is kept (PressStore.audio)."""

    @property
    def problems(self) -> list[str]:
        """The problem codes of the answer."""
        p = self.result.get("problems")
        return [str(x) for x in p] if isinstance(p, list) else []

    @property
    def hedges(self) -> list[str]:
        """The garments a hedged answer named ("probably a coat, maybe a blazer"); empty when it was plain."""
        garment, conf = self.result.get("garment"), self.confidence
        if not garment or conf is None or conf >= phrase.SURE:
            return []
        alts = self.result.get("alternatives")
        runner = alts[0] if isinstance(alts, list) and alts and isinstance(alts[0], dict) else {}
        said_too = isinstance(runner.get("confidence"), int | float) and runner["confidence"] >= phrase.MAYBE
        return [str(garment)] + ([str(runner["garment"])] if said_too and runner.get("garment") else [])


def is_unsure(result: dict) -> bool:
    """An answer the caretaker should look at first: hedged, no garment named, or a problem said."""
    conf = result.get("garment_confidence")
    return bool(result.get("problems")) or not isinstance(conf, int | float) or conf < phrase.SURE


def said_families(result: dict) -> list[str]:
    """The colour families an answer's sentence said (colours.spoken_colours: the main one, and a second that is a
    real part of the garment), main first; none when its main colour was a hedged pair ("navy blue or black":
    marked right, the page cannot tell which of the two was) or the answer was the user's own garment ("Your red
    coat." says no colour) or one that said a problem instead ("It's too bright...")."""
    colours, problems = result.get("colours"), result.get("problems")
    blocked = isinstance(problems, list) and any(p in phrase.BLOCKING for p in problems if isinstance(p, str))
    if result.get("enrolled") or blocked or not isinstance(colours, list) or not colours:
        return []
    if not all(isinstance(c, dict) and c.get("family") in FAMILIES and isinstance(c.get("share", 0), int | float)
               for c in colours) or colours[0].get("or"):
        return []
    said = spoken_colours([Colour("", "", c["family"], (0, 0, 0), float(c.get("share", 0))) for c in colours])
    return list(dict.fromkeys(c.family for c in said))


def camera_colours(result: dict) -> list:
    """An answer's colours as the camera saw them (JSON dicts with "rgb", main first): those said, unless they were
    the caretaker's words for a reviewed photo, whose "example" keeps the camera's own as "seen"."""
    example = result.get("example")
    if isinstance(example, dict) and isinstance(example.get("seen"), list):
        return [{"rgb": rgb} for rgb in example["seen"]]
    return result.get("colours") if isinstance(result.get("colours"), list) else []


def seen_colours(colours) -> tuple[tuple[float, float, float], ...]:
    """CIELAB of the colours of an answer's JSON (their "rgb"), main first; nothing when the main one is not three
    whole numbers from 0 to 255, and later ones that are not left out (the history is a file another process
    writes: the second colour must never become the main one)."""
    from wardrobe.images import rgb_to_lab

    def ok(c) -> bool:
        return (isinstance(c, dict) and isinstance(c.get("rgb"), list) and len(c["rgb"]) == 3
                and all(type(v) is int and 0 <= v <= 255 for v in c["rgb"]))
    if not isinstance(colours, list) or not colours or not ok(colours[0]):
        return ()
    rgb = [c["rgb"] for c in colours if ok(c)]
    return tuple(tuple(round(float(v), 2) for v in lab) for lab in rgb_to_lab(np.asarray(rgb, np.uint8)))


def encode_photo(rgb: np.ndarray) -> bytes:
    """The JPEG kept for a press."""
    import cv2

    ok, jpg = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 85])
    if not ok:
        raise HistoryError("the photo could not be encoded as JPEG")
    return jpg.tobytes()


OPEN_TRIES = 5
"""How often opening the history is tried when SQLite says "locked" at once (openers racing at first use); a lock
that is held is waited for once, the connection's timeout (10 s), never five times."""


class PressStore:
    """A connection to state_dir/history.db; one per thread (SQLite connections are not shared)."""

    def __init__(self, path: Path, create: bool = True, synchronous: str = "FULL", read_only: bool = False) -> None:
        self.path = Path(path)
        self.read_only = read_only
        """Opened for reading alone (its disk is full or read-only): presses and corrections are read, nothing is
        written."""
        self.db = None
        try:
            if (not create or read_only) and not self.path.is_file():
                raise HistoryError(f"no press history yet ({self.path} does not exist)")
            if read_only:
                self.db = open_sqlite_read_only(self.path, "corrections")
                return
            if create:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(self.path, timeout=10, isolation_level=None, check_same_thread=False)
            for attempt in range(OPEN_TRIES):
                started = time.monotonic()
                try:
                    self._set_up(synchronous)
                    break
                except sqlite3.OperationalError as e:  # SQLite answers "locked" without waiting in a few cases
                    at_once = time.monotonic() - started < 1.0  # (another opener turning on WAL); a lock held
                    if "locked" not in str(e) or not at_once or attempt == OPEN_TRIES - 1:  # is waited for once
                        raise
                    time.sleep(0.05 * (attempt + 1))
        except (OSError, sqlite3.Error) as e:
            if self.db is not None:
                self.db.close()
            raise self.failed("open", e) from e

    def failed(self, doing: str, e: Exception) -> HistoryError:
        """The HistoryError for a failed call ("open", "read", "write"), in plain words (files.sqlite_trouble; a full
        disk in three words: the daemon's line already says the press was not saved)."""
        trouble = sqlite_trouble(e, self.path.parent, writing=doing != "read")
        return HistoryError(f"cannot {doing} the press history {self.path}: "
                            f"{'the disk is full' if trouble.full else trouble.text}", trouble)

    def _set_up(self, synchronous: str) -> None:
        """WAL, the schema, and the columns an older history lacks."""
        self.db.execute("PRAGMA auto_vacuum=INCREMENTAL")  # only takes on a new file: pruned pages go back
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute(f"PRAGMA synchronous={synchronous}")
        self.db.executescript(SCHEMA)
        self._add_column("presses", "audio BLOB")  # a history from before the audio
        self._add_column("corrections", "seen TEXT")  # from before the colours seen were kept

    def _add_column(self, table: str, column: str) -> None:
        """Add a column a history made by an older version lacks. The page opens a connection per request and the
        daemon two: whichever adds it first wins, the others find it there (no "duplicate column" error)."""
        name = column.split()[0]

        def missing() -> bool:
            return name not in {r[1] for r in self.db.execute(f"PRAGMA table_info({table})")}
        if missing():  # only then the write lock, and the question again under it
            with self.db:
                self.db.execute("BEGIN IMMEDIATE")
                if missing():
                    self.db.execute(f"ALTER TABLE {table} ADD COLUMN {column}")

    def close(self) -> None:
        """Close the connection."""
        self.db.close()

    def add(self, photo: bytes, result: dict, model_version: str | None, keep: int, max_bytes: int,
            audio: bytes | None = None) -> int:
        """Store one press (and the WAV of what was said, when there is one) and prune to the bounds, in one
        transaction; its id."""
        conf = result.get("garment_confidence")
        conf = float(conf) if isinstance(conf, int | float) else None
        try:
            with self.db:
                self.db.execute("BEGIN IMMEDIATE")
                cur = self.db.execute(
                    "INSERT INTO presses (created, photo, result, sentence, model_version, confidence, unsure, "
                    "audio) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (time.time(), photo, json.dumps(result), str(result.get("sentence", "")), model_version, conf,
                     int(is_unsure(result)), audio))
                self._prune(keep, max_bytes)
            self.db.execute("PRAGMA incremental_vacuum").fetchall()  # each row returned is a page freed
        except sqlite3.Error as e:
            raise self.failed("write", e) from e
        return int(cur.lastrowid)

    def _prune(self, keep: int, max_bytes: int) -> None:
        """Drop the oldest presses beyond the count and byte bounds, and the corrections nobody needs any more:
        a "right" one of a press gone, a "wrong" one already exported whose press is gone."""
        self.db.execute(
            "DELETE FROM presses WHERE id IN (SELECT id FROM (SELECT id, "
            "ROW_NUMBER() OVER (ORDER BY id DESC) AS n, "
            "SUM(length(photo) + length(result) + coalesce(length(audio), 0)) OVER (ORDER BY id DESC) AS total "
            "FROM presses) "
            "WHERE n > ? OR total > ?)", (keep, max_bytes))
        self.db.execute("DELETE FROM corrections WHERE press_id NOT IN (SELECT id FROM presses) "
                        "AND (verdict = 'right' OR exported IS NOT NULL)")

    def _read(self, sql: str, args: tuple = ()) -> list[tuple]:
        try:
            return self.db.execute(sql, args).fetchall()
        except sqlite3.Error as e:
            raise self.failed("read", e) from e

    def presses(self, limit: int = 200) -> list[Press]:
        """The kept presses: unsure ones not yet reviewed first (the review queue), then the rest, newest first."""
        rows = self._read(
            "SELECT p.id, p.created, p.result, p.sentence, p.model_version, p.confidence, p.unsure, c.id, "
            "p.audio IS NOT NULL FROM presses p LEFT JOIN corrections c ON c.press_id = p.id "
            "ORDER BY (p.unsure AND c.id IS NULL) DESC, p.id DESC LIMIT ?", (limit,))
        corrections = {c.press_id: c for c in self.corrections()}
        return [self._press(r, corrections.get(r[0])) for r in rows]

    def press(self, press_id: int) -> Press | None:
        """One press by id (None: never kept, or pruned)."""
        if not 0 < press_id < 1 << 63:  # SQLite's integers: a larger id is no press (not an OverflowError)
            return None
        rows = self._read("SELECT id, created, result, sentence, model_version, confidence, unsure, NULL, "
                          "audio IS NOT NULL FROM presses WHERE id = ?", (press_id,))
        if not rows:
            return None
        found = [c for c in self.corrections() if c.press_id == press_id]
        return self._press(rows[0], found[0] if found else None)

    @staticmethod
    def _press(r: tuple, correction: Correction | None) -> Press:
        try:
            result = json.loads(r[2])
        except (TypeError, ValueError, RecursionError):
            result = {}
        return Press(r[0], r[1], result if isinstance(result, dict) else {}, r[3], r[4], r[5], bool(r[6]),
                     correction, bool(r[8]))

    def audio(self, press_id: int) -> bytes | None:
        """The WAV of what was said for a press (None: nothing was spoken, or the press is gone)."""
        if not 0 < press_id < 1 << 63:
            return None
        rows = self._read("SELECT audio FROM presses WHERE id = ? AND audio IS NOT NULL", (press_id,))
        return rows[0][0] if rows else None

    def photo(self, press_id: int) -> bytes | None:
        """A press's JPEG, or a corrected press's kept copy once the press itself was pruned."""
        if not 0 < press_id < 1 << 63:
            return None
        rows = self._read("SELECT photo FROM presses WHERE id = ? UNION ALL "
                          "SELECT photo FROM corrections WHERE press_id = ? AND photo IS NOT NULL", (press_id, press_id))
        return rows[0][0] if rows else None

    def correct(self, press_id: int, verdict: str, garment: str | None = None, families: list[str] | tuple = (),
                pattern: str | None = None) -> Correction:
        """Record (or replace) the caretaker's verdict on a press; a wrong one keeps a copy of the photo. A right one
        keeps the garment and the colour families that were said; both keep the colours as the camera saw them."""
        if verdict not in ("right", "wrong"):
            raise HistoryError(f"the verdict must be right or wrong, not {verdict!r}")
        bad = [f for f in families if f not in FAMILIES]
        if bad:
            raise HistoryError(f"{bad[0]!r} is not a colour family (one of {', '.join(FAMILIES)})")
        if pattern is not None and pattern not in PATTERNS:
            raise HistoryError(f"{pattern!r} is not a pattern (one of {', '.join(PATTERNS)})")
        p = self.press(press_id)
        if p is None:
            raise HistoryError(f"press {press_id} is not in the history (it may have been pruned)")
        if verdict == "wrong" and not garment:
            raise HistoryError("a wrong answer needs the right garment")
        if verdict == "right":
            garment, families, pattern = p.result.get("garment"), said_families(p.result), None
        else:
            families = list(dict.fromkeys(families))  # the main colour first, as the form gives it
        try:
            with self.db:
                self.db.execute("BEGIN IMMEDIATE")
                self.db.execute(
                    "INSERT INTO corrections (press_id, created, verdict, garment, families, pattern, said, "
                    "model_version, photo, seen) SELECT id, ?, ?, ?, ?, ?, sentence, model_version, "
                    "CASE WHEN ? = 'wrong' THEN photo END, ? FROM presses WHERE id = ? "
                    "ON CONFLICT(press_id) DO UPDATE SET created = excluded.created, verdict = excluded.verdict, "
                    "garment = excluded.garment, families = excluded.families, pattern = excluded.pattern, "
                    "photo = excluded.photo, exported = NULL, seen = excluded.seen",
                    (time.time(), verdict, garment, json.dumps(families), pattern, verdict,
                     json.dumps(seen_colours(camera_colours(p.result))), press_id))
        except sqlite3.Error as e:
            raise self.failed("write", e) from e
        return next(c for c in self.corrections() if c.press_id == press_id)

    def corrections(self, unexported_wrong: bool = False) -> list[Correction]:
        """Every correction, oldest first; or only the wrong ones not exported yet."""
        where = "WHERE verdict = 'wrong' AND exported IS NULL AND photo IS NOT NULL" if unexported_wrong else ""
        rows = self._read("SELECT id, press_id, created, verdict, garment, families, pattern, said, model_version, "
                          f"exported, seen FROM corrections {where} ORDER BY id")
        return [Correction(r[0], r[1], r[2], r[3], r[4], family_list(loaded(r[5])), r[6], r[7], r[8], r[9],
                           lab_list(loaded(r[10])), r[10] is not None) for r in rows]

    def correction_photo(self, correction_id: int) -> bytes | None:
        """The photo kept with a wrong answer's correction."""
        rows = self._read("SELECT photo FROM corrections WHERE id = ?", (correction_id,))
        return rows[0][0] if rows else None

    def mark_exported(self, ids: list[int]) -> None:
        """These corrections are in a training folder now: the history may let their photos go."""
        try:
            with self.db:
                self.db.execute("BEGIN IMMEDIATE")
                self.db.executemany("UPDATE corrections SET exported = ? WHERE id = ?", [(time.time(), i) for i in ids])
        except sqlite3.Error as e:
            raise self.failed("write", e) from e


def loaded(text) -> list:
    """A JSON list kept in a column; [] for anything else (the history is a file another process writes)."""
    try:
        value = json.loads(text) if isinstance(text, str | bytes) else []
    except (ValueError, RecursionError):
        return []
    return value if isinstance(value, list) else []


def family_list(rows: list) -> list[str]:
    """The colour families of a kept list, main first; none when the first is not a family (the second must never
    become the main colour)."""
    if not rows or rows[0] not in FAMILIES:
        return []
    return list(dict.fromkeys(f for f in rows if f in FAMILIES))


def lab_list(rows: list) -> tuple[tuple[float, float, float], ...]:
    """The CIELAB colours of a kept list, those that are three finite numbers in CIELAB's range; nothing when the
    first (the main colour) is not."""
    def ok(lab) -> bool:
        return (isinstance(lab, list) and len(lab) == 3 and all(type(v) in (int, float) for v in lab)
                and 0 <= lab[0] <= 100 and all(-128 <= v <= 128 for v in lab[1:]))
    if not rows or not ok(rows[0]):
        return ()
    return tuple(tuple(float(v) for v in lab) for lab in rows if ok(lab))


class History:
    """The daemon's side: presses saved on a writer thread of their own; saving never raises or delays a press."""

    def __init__(self, folder: Path, keep: int, max_mb: float) -> None:
        self.path = Path(folder) / FILE_NAME
        self.keep, self.max_bytes = keep, int(max_mb * 1024 * 1024)
        self.jobs: queue.Queue = queue.Queue(maxsize=2)
        self.thread: threading.Thread | None = None
        self.store: PressStore | None = None

    def save(self, rgb: np.ndarray, result: dict, model_version: str | None = None,
             said: tuple[np.ndarray, int] | None = None) -> bool:
        """Hand a press to the writer thread; False when it is not kept (history off, or the writer is behind)."""
        if self.keep <= 0:
            return False
        if self.thread is None:
            self.thread = threading.Thread(target=self._work, name="history", daemon=True)
            self.thread.start()
        try:
            self.jobs.put_nowait((rgb, result, model_version, said))
        except queue.Full:
            log.warning("history not saved (the writer is still busy with earlier presses); describing goes on")
            return False
        return True

    def _work(self) -> None:
        while True:
            job = self.jobs.get()
            if job is None:
                return
            try:
                self.write(*job)
            except Exception:  # the writer thread must outlive anything a single press brings
                log.exception("history not saved (unexpected error); describing goes on")
            finally:
                self.jobs.task_done()

    def write(self, rgb: np.ndarray, result: dict, model_version: str | None,
              said: tuple[np.ndarray, int] | None = None) -> int | None:
        """Encode and store one press now (the writer thread's job): the photo, the answer and the audio of what
        was said (samples, rate); its id, None when it could not be kept."""
        from wardrobe.audio import wav_bytes

        try:
            photo = encode_photo(rgb)
            audio = wav_bytes(*said) if said is not None and len(said[0]) else None
            if self.store is None:
                self.store = PressStore(self.path, synchronous="NORMAL")
            pid = self.store.add(photo, result, model_version, self.keep, self.max_bytes, audio)
        except HistoryError as e:
            log.warning("history not saved (%s); describing goes on", e)
            self._set_aside_if_damaged(e)
            return None
        log.debug("history: press %d saved", pid)
        return pid

    def _set_aside_if_damaged(self, e: HistoryError) -> None:
        """A damaged file is moved aside (kept for a look), so the next press starts a new history."""
        if self.store is not None:
            self.store.close()
            self.store = None
        if e.trouble is None or not e.trouble.damaged:
            return
        aside = self.path.with_name(f"{FILE_NAME}.damaged-{time.strftime('%Y%m%d-%H%M%S')}")
        try:
            self.path.rename(aside)
            for extra in ("-wal", "-shm"):
                Path(f"{self.path}{extra}").unlink(missing_ok=True)
            log.error("the press history was damaged; moved aside to %s, a new one is started", aside)
        except OSError as err:
            log.error("the damaged press history %s cannot be moved aside: %s", self.path, err.strerror or err)

    def flush(self, timeout: float = 10.0) -> None:
        """Wait until the presses handed over are written (for shutdown and tests)."""
        deadline = time.monotonic() + timeout
        while self.jobs.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.02)

    def close(self) -> None:
        """Finish the queued writes and stop the writer."""
        if self.thread is not None:
            self.flush()
            try:
                self.jobs.put(None, timeout=1)
                self.thread.join(timeout=5)
            except queue.Full:
                pass
        if self.store is not None:
            self.store.close()
            self.store = None
