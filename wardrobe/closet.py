"""The user's own clothes: enrolled garments in SQLite, and matching a photo against them.

One table in state_dir/closet.db (WAL mode, synchronous=FULL: an acknowledged enrolment survives a power
cut). Each garment keeps its name (or a recorded voice label: its id and the recording), a thumbnail
(JPEG of the photo it was enrolled from), the model's embedding of that photo and the model version that
made it, and a colour signature (the main colours in CIELAB with their shares). When the model changes, embeddings are
made again from the thumbnails, so enrolment never has to be repeated.

A photo matches a garment when the embeddings are close (cosine similarity) and the colours are close
(CIEDE2000, colour_gap): a wrong "your navy sweater" is worse than none, so both must agree.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from wardrobe.classify import unit
from wardrobe.colours import ciede2000
from wardrobe.errors import WardrobeError

MATCH_SIMILARITY = 0.70
"""Cosine similarity of embeddings at or above which a photo may be an enrolled garment (chosen on
validation garments for 98 % precision: docs/closet.md)."""
MATCH_DELTA_E = 20.0
"""Largest colour gap (CIEDE2000, colour_gap) between the photo and the enrolled garment: a safety for two
garments of one model in different colours (costs 2 points of identification on validation)."""
SCHEMA = """
CREATE TABLE IF NOT EXISTS garments (
    id INTEGER PRIMARY KEY,
    name TEXT,
    voice_label TEXT,
    created REAL NOT NULL,
    thumbnail BLOB NOT NULL,
    embedding BLOB NOT NULL,
    model_version TEXT NOT NULL,
    colours TEXT NOT NULL,
    voice_clip BLOB
);
"""
COLUMNS = "id, name, voice_label, created, thumbnail, embedding, model_version, colours"
"""What a Garment holds: the recordings stay on disk until one is played (Closet.voice_clip)."""
FULL_BELOW = 1 << 20
"""Free bytes under which a failed write is put down to a full disk."""


DAMAGED = ("SQLITE_CORRUPT", "SQLITE_NOTADB")
"""SQLite's names for a database file that is damaged (not merely unwritable)."""


class ClosetError(WardrobeError):
    """The enrolled closet cannot do what was asked (unknown garment, unreadable database, ...)."""

    def __init__(self, message: str, damaged: bool = False, full: bool = False) -> None:
        super().__init__(message)
        self.damaged = damaged
        """The database file itself is damaged (it can only be moved aside)."""
        self.full = full
        """The disk is full (nothing is wrong with the database)."""


@dataclass(frozen=True)
class Garment:
    """One enrolled garment."""

    id: int
    name: str | None
    voice_label: str | None
    created: float
    thumbnail: bytes
    embedding: np.ndarray
    model_version: str
    colours: list[dict]
    """[{"lab": [L, a, b], "share": s, "name": "navy blue"}, ...], main colour first."""

    @property
    def label(self) -> str:
        """What the user calls it (the name, or the voice label's id)."""
        return self.name or f"voice label {self.voice_label}"


@dataclass(frozen=True)
class Match:
    """An enrolled garment the photo matches, and how closely."""

    garment: Garment
    similarity: float
    delta_e: float

    def to_json(self) -> dict:
        return {"id": self.garment.id, "name": self.garment.name, "voice_label": self.garment.voice_label,
                "similarity": round(self.similarity, 4), "delta_e": round(self.delta_e, 2)}


def colour_gap(a: list, b: list) -> float:
    """How far apart two garments' colours are (CIEDE2000): the main colour of either against the first two
    colours of the other, whichever pair is closest. A crop or a shadow can swap a garment's first and second
    colour; a different garment still differs in both."""
    if not a or not b:
        return float("inf")
    return min(min(ciede2000(a[0], y) for y in b[:2]), min(ciede2000(b[0], x) for x in a[:2]))


def thumbnail(rgb: np.ndarray, side: int = 320) -> bytes:
    """The JPEG kept with an enrolled garment (its embedding is made again from it after a model update)."""
    import cv2

    from wardrobe.images import shrink

    ok, jpeg = cv2.imencode(".jpg", cv2.cvtColor(shrink(rgb, side), cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 90])
    if not ok:
        raise ClosetError("the photo could not be stored as a thumbnail")
    return jpeg.tobytes()


def signature(colours) -> list[dict]:
    """A colour signature from the pipeline's Colour list."""
    return [{"lab": [round(float(v), 2) for v in c.lab], "share": round(float(c.share), 3), "name": c.name}
            for c in colours]


class Closet:
    """The enrolled garments of one closet (a SQLite file)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(self.path, timeout=10, isolation_level=None)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=FULL")
            self.db.executescript(SCHEMA)
            if "voice_clip" not in {r[1] for r in self.db.execute("PRAGMA table_info(garments)")}:
                self.db.execute("ALTER TABLE garments ADD COLUMN voice_clip BLOB")  # a closet made before clips
        except (OSError, sqlite3.Error) as e:
            raise self.failed(f"cannot open the closet database {self.path}", e) from None
        self._cache: list[Garment] | None = None
        self._gallery: np.ndarray | None = None
        """The enrolled embeddings as one matrix, made with the cache."""
        self._version = -1

    def close(self) -> None:
        self.db.close()

    def failed(self, what: str, e: Exception, folder: Path | None = None, writing: bool = True) -> ClosetError:
        """The ClosetError for a failed database call in folder (the closet's own by default): a full disk is
        named as such (SQLite often calls it an I/O error), a damaged file is marked damaged."""
        name = getattr(e, "sqlite_errorname", "")
        try:
            full = shutil.disk_usage(folder or self.path.parent).free < FULL_BELOW
        except OSError:
            full = False
        if full or name == "SQLITE_FULL":
            saved = ", so nothing was saved" if writing else ""
            return ClosetError(f"{what}: the disk is full{saved} (free some space and try again)", full=True)
        return ClosetError(f"{what}: {e}", damaged=name in DAMAGED)

    def _rows(self, where: str = "", args: tuple = ()) -> list[Garment]:
        try:
            rows = self.db.execute(f"SELECT {COLUMNS} FROM garments {where} ORDER BY id", args).fetchall()
        except sqlite3.Error as e:
            raise self.failed(f"cannot read the closet database {self.path}", e, writing=False) from None
        return [Garment(r[0], r[1], r[2], r[3], r[4], np.frombuffer(r[5], np.float32).copy(), r[6], json.loads(r[7]))
                for r in rows]

    def garments(self) -> list[Garment]:
        """Every enrolled garment, oldest first (read again when another process changed the database)."""
        try:
            version = self.db.execute("PRAGMA data_version").fetchone()[0]
        except sqlite3.Error as e:
            raise self.failed(f"cannot read the closet database {self.path}", e, writing=False) from None
        if self._cache is None or version != self._version:
            self._cache, self._version = self._rows(), version
            self._gallery = np.stack([g.embedding for g in self._cache]) if self._cache else None
        return self._cache

    def voice_clip(self, gid: int) -> bytes | None:
        """A garment's recorded voice label as a WAV file's bytes (None: no recording, or one kept as a file
        by a closet made before recordings were kept here, in state_dir/voice-labels)."""
        try:
            row = self.db.execute("SELECT voice_clip FROM garments WHERE id = ?", (gid,)).fetchone()
        except sqlite3.Error as e:
            raise self.failed(f"cannot read the closet database {self.path}", e, writing=False) from None
        return row[0] if row else None

    def enrol(self, embedding: np.ndarray, colours: list[dict], thumbnail: bytes, model_version: str,
              name: str | None = None, voice_label: str | None = None, voice_clip: bytes | None = None) -> int:
        """Store a garment (with its recorded voice label's WAV bytes, if any); its id once the write is on disk."""
        if not (name or voice_label):
            raise ClosetError("an enrolled garment needs a name or a voice label")
        if name is not None and not name.strip():
            raise ClosetError("the name is empty")
        return self._insert([(name.strip() if name else None, voice_label, time.time(), thumbnail,
                              unit(embedding).tobytes(), model_version, json.dumps(colours), voice_clip)])

    def _insert(self, rows: list[tuple]) -> int:
        """Add garments in one transaction (all or none); the last one's id."""
        try:
            with self.db:
                self.db.execute("BEGIN IMMEDIATE")
                for row in rows:
                    cur = self.db.execute(
                        "INSERT INTO garments (name, voice_label, created, thumbnail, embedding, model_version, "
                        "colours, voice_clip) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", row)
        except sqlite3.Error as e:
            raise self.failed(f"cannot write the closet database {self.path}", e) from None
        self._cache = None
        return int(cur.lastrowid)

    def enrol_described(self, d, rgb: np.ndarray, model_version: str, name: str | None = None,
                        voice_label: str | None = None, voice_clip: bytes | None = None) -> int:
        """Enrol the garment of a pipeline Description (its embedding and colours) with its photo."""
        return self.enrol(d.embedding, signature(d.colours), thumbnail(rgb), model_version, name, voice_label,
                          voice_clip)

    def named(self, name: str) -> list[Garment]:
        """The enrolled views called name (case-insensitive): one garment, enrolled from one or more photos."""
        return self._rows("WHERE lower(name) = lower(?)", (name.strip(),))

    def views(self, which: str) -> list[Garment]:
        """One garment's enrolled views: by id (that view) or by name (every view of that name)."""
        found = self._rows("WHERE id = ?", (int(which),)) if which.isdigit() else self.named(which)
        if not found:
            raise ClosetError(f"no enrolled garment {which!r} (see `wardrobe enrolled`)")
        return found

    def find(self, which: str) -> Garment:
        """A garment by id or by name (case-insensitive; its first view when it has several)."""
        return self.views(which)[0]

    def _write(self, sql: str, args: tuple) -> None:
        try:
            with self.db:
                self.db.execute("BEGIN IMMEDIATE")
                self.db.execute(sql, args)
        except sqlite3.Error as e:
            raise self.failed(f"cannot write the closet database {self.path}", e) from None
        self._cache = None

    def rename(self, which: str, name: str) -> Garment:
        """Give a garment a new name."""
        if not name.strip():
            raise ClosetError("the new name is empty")
        views = self.views(which)
        ids = {g.id for g in views}
        taken = [g for g in self.named(name) if g.id not in ids]
        if taken:
            raise ClosetError(f"another garment is already called {taken[0].name!r} (id {taken[0].id}): "
                              f"choose another name")
        self._write(f"UPDATE garments SET name = ? WHERE id IN ({', '.join('?' * len(ids))})",
                    (name.strip(), *sorted(ids)))
        return self.find(str(views[0].id))

    def set_voice_label(self, gid: int, label: str, clip: bytes | None = None) -> Garment:
        """Give a garment a (new) recorded voice label: its id and the recording's WAV bytes."""
        self._write("UPDATE garments SET voice_label = ?, voice_clip = ? WHERE id = ?", (label, clip, gid))
        return self.find(str(gid))

    def remove(self, which: str) -> list[Garment]:
        """Forget a garment: by name, every view of it; by id, that view."""
        views = self.views(which)
        self._write(f"DELETE FROM garments WHERE id IN ({', '.join('?' * len(views))})", tuple(g.id for g in views))
        return views

    def reembed(self, model_version: str, embed) -> int:
        """Make the embeddings of garments enrolled with another model again from their thumbnails."""
        stale = [g for g in self.garments() if g.model_version != model_version]
        for g in stale:
            self._write("UPDATE garments SET embedding = ?, model_version = ? WHERE id = ?",
                        (unit(embed(g.thumbnail)).tobytes(), model_version, g.id))
        return len(stale)

    def match(self, embedding: np.ndarray | None, colours: list, min_similarity: float = MATCH_SIMILARITY,
              max_delta_e: float = MATCH_DELTA_E) -> Match | None:
        """The enrolled garment this photo shows, or None: the most similar embedding, if it is similar
        enough and its main colour is close enough."""
        garments = self.garments()
        if embedding is None or not garments or not colours:
            return None
        sims = self._gallery @ unit(embedding)
        best = int(np.argmax(sims))
        g = garments[best]
        if sims[best] < min_similarity or not g.colours:
            return None
        de = colour_gap([c.lab for c in colours], [c["lab"] for c in g.colours])
        return Match(g, float(sims[best]), de) if de <= max_delta_e else None

    def export(self, target: Path) -> int:
        """Copy the closet to a file (SQLite's online backup: consistent while the appliance runs); a copy
        that could not be finished is removed."""
        target = Path(target)
        existed = target.exists()
        try:
            out = sqlite3.connect(target)
            try:
                with out:
                    self.db.backup(out)
            finally:
                out.close()
        except sqlite3.Error as e:
            if not existed:
                target.unlink(missing_ok=True)
            raise self.failed(f"cannot write {target}", e, target.resolve().parent) from None
        return len(self.garments())

    def import_from(self, source: Path) -> int:
        """Add every garment of an exported closet file; the number added."""
        try:  # read-only: importing never changes the file imported from
            other = sqlite3.connect(f"file:{Path(source).resolve()}?mode=ro", uri=True)
            has_clips = "voice_clip" in {r[1] for r in other.execute("PRAGMA table_info(garments)")}
            rows = other.execute("SELECT name, voice_label, thumbnail, embedding, model_version, colours, "
                                 f"{'voice_clip' if has_clips else 'NULL'} FROM garments ORDER BY id").fetchall()
            other.close()
        except sqlite3.Error as e:
            raise ClosetError(f"{source} is not an exported closet: {e}") from None
        try:
            new = [(r[0], r[1], time.time(), r[2], unit(np.frombuffer(r[3], np.float32)).tobytes(), r[4],
                    json.dumps(json.loads(r[5])), r[6]) for r in rows if r[0] or r[1]]
        except (TypeError, ValueError) as e:
            raise ClosetError(f"{source} is not an exported closet: a garment is damaged ({e})") from None
        if len(new) < len(rows):
            raise ClosetError(f"{source} has a garment with neither a name nor a voice label")
        if new:  # all or none: a full disk half way through adds nothing
            self._insert(new)
        return len(rows)
