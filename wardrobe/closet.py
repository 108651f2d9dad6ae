"""The user's own clothes: enrolled garments in SQLite, and matching a photo against them.

One table in state_dir/closet.db (WAL mode, synchronous=FULL: an acknowledged enrolment survives a power
cut). Each garment keeps its name (or the id of a recorded voice label), a thumbnail (JPEG of the photo
it was enrolled from), the model's embedding of that photo and the model version that made it, and a
colour signature (the main colours in CIELAB with their shares). When the model changes, embeddings are
made again from the thumbnails, so enrolment never has to be repeated.

A photo matches a garment when the embeddings are close (cosine similarity) and the colours are close
(CIEDE2000, colour_gap): a wrong "your navy sweater" is worse than none, so both must agree.
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

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
    colours TEXT NOT NULL
);
"""


class ClosetError(WardrobeError):
    """The enrolled closet cannot do what was asked (unknown garment, unreadable database, ...)."""


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
        except (OSError, sqlite3.Error) as e:
            raise ClosetError(f"cannot open the closet database {self.path}: {e}") from None
        self._cache: list[Garment] | None = None
        self._gallery: np.ndarray | None = None
        """The enrolled embeddings as one matrix, made with the cache."""
        self._version = -1

    def close(self) -> None:
        self.db.close()

    def _rows(self, where: str = "", args: tuple = ()) -> list[Garment]:
        try:
            rows = self.db.execute(f"SELECT id, name, voice_label, created, thumbnail, embedding, model_version, "
                                   f"colours FROM garments {where} ORDER BY id", args).fetchall()
        except sqlite3.Error as e:
            raise ClosetError(f"cannot read the closet database {self.path}: {e}") from None
        return [Garment(r[0], r[1], r[2], r[3], r[4], np.frombuffer(r[5], np.float32).copy(), r[6], json.loads(r[7]))
                for r in rows]

    def garments(self) -> list[Garment]:
        """Every enrolled garment, oldest first (read again when another process changed the database)."""
        try:
            version = self.db.execute("PRAGMA data_version").fetchone()[0]
        except sqlite3.Error as e:
            raise ClosetError(f"cannot read the closet database {self.path}: {e}") from None
        if self._cache is None or version != self._version:
            self._cache, self._version = self._rows(), version
            self._gallery = np.stack([g.embedding for g in self._cache]) if self._cache else None
        return self._cache

    def enrol(self, embedding: np.ndarray, colours: list[dict], thumbnail: bytes, model_version: str,
              name: str | None = None, voice_label: str | None = None) -> int:
        """Store a garment; its id once the write is on disk."""
        if not (name or voice_label):
            raise ClosetError("an enrolled garment needs a name or a voice label")
        if name is not None and not name.strip():
            raise ClosetError("the name is empty")
        emb = np.asarray(embedding, np.float32)
        emb = emb / max(float(np.linalg.norm(emb)), 1e-12)
        try:
            with self.db:
                self.db.execute("BEGIN IMMEDIATE")
                cur = self.db.execute(
                    "INSERT INTO garments (name, voice_label, created, thumbnail, embedding, model_version, colours) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (name.strip() if name else None, voice_label, time.time(), thumbnail, emb.tobytes(),
                     model_version, json.dumps(colours)))
        except sqlite3.Error as e:
            raise ClosetError(f"cannot write the closet database {self.path}: {e}") from None
        self._cache = None
        return int(cur.lastrowid)

    def enrol_described(self, d, rgb: np.ndarray, model_version: str, name: str | None = None,
                        voice_label: str | None = None) -> int:
        """Enrol the garment of a pipeline Description (its embedding and colours) with its photo."""
        return self.enrol(d.embedding, signature(d.colours), thumbnail(rgb), model_version, name, voice_label)

    def find(self, which: str) -> Garment:
        """A garment by id or by name (case-insensitive)."""
        found = self._rows("WHERE id = ?", (int(which),)) if which.isdigit() else \
            self._rows("WHERE lower(name) = lower(?)", (which.strip(),))
        if not found:
            raise ClosetError(f"no enrolled garment {which!r} (see `wardrobe enrolled`)")
        if len(found) > 1:
            raise ClosetError(f"{len(found)} garments are called {which!r}: use the id ({', '.join(str(g.id) for g in found)})")
        return found[0]

    def _write(self, sql: str, args: tuple) -> None:
        try:
            with self.db:
                self.db.execute("BEGIN IMMEDIATE")
                self.db.execute(sql, args)
        except sqlite3.Error as e:
            raise ClosetError(f"cannot write the closet database {self.path}: {e}") from None
        self._cache = None

    def rename(self, which: str, name: str) -> Garment:
        """Give a garment a new name."""
        if not name.strip():
            raise ClosetError("the new name is empty")
        g = self.find(which)
        self._write("UPDATE garments SET name = ? WHERE id = ?", (name.strip(), g.id))
        return self.find(str(g.id))

    def set_voice_label(self, gid: int, label: str) -> Garment:
        """Give a garment a (new) recorded voice label."""
        self._write("UPDATE garments SET voice_label = ? WHERE id = ?", (label, gid))
        return self.find(str(gid))

    def remove(self, which: str) -> Garment:
        """Forget a garment."""
        g = self.find(which)
        self._write("DELETE FROM garments WHERE id = ?", (g.id,))
        return g

    def reembed(self, model_version: str, embed) -> int:
        """Make the embeddings of garments enrolled with another model again from their thumbnails."""
        stale = [g for g in self.garments() if g.model_version != model_version]
        for g in stale:
            emb = np.asarray(embed(g.thumbnail), np.float32)
            emb = emb / max(float(np.linalg.norm(emb)), 1e-12)
            self._write("UPDATE garments SET embedding = ?, model_version = ? WHERE id = ?",
                        (emb.tobytes(), model_version, g.id))
        return len(stale)

    def match(self, embedding: np.ndarray | None, colours: list, min_similarity: float = MATCH_SIMILARITY,
              max_delta_e: float = MATCH_DELTA_E) -> Match | None:
        """The enrolled garment this photo shows, or None: the most similar embedding, if it is similar
        enough and its main colour is close enough."""
        garments = self.garments()
        if embedding is None or not garments or not colours:
            return None
        emb = np.asarray(embedding, np.float32)
        emb = emb / max(float(np.linalg.norm(emb)), 1e-12)
        sims = self._gallery @ emb
        best = int(np.argmax(sims))
        g = garments[best]
        if sims[best] < min_similarity or not g.colours:
            return None
        de = colour_gap([c.lab for c in colours], [c["lab"] for c in g.colours])
        return Match(g, float(sims[best]), de) if de <= max_delta_e else None

    def export(self, target: Path) -> int:
        """Copy the closet to a file (SQLite's online backup: consistent while the appliance runs)."""
        try:
            out = sqlite3.connect(target)
            with out:
                self.db.backup(out)
            out.close()
        except sqlite3.Error as e:
            raise ClosetError(f"cannot write {target}: {e}") from None
        return len(self.garments())

    def import_from(self, source: Path) -> int:
        """Add every garment of an exported closet file; the number added."""
        try:  # read-only: importing never changes the file imported from
            other = sqlite3.connect(f"file:{Path(source).resolve()}?mode=ro", uri=True)
            rows = other.execute("SELECT name, voice_label, thumbnail, embedding, model_version, colours "
                                 "FROM garments ORDER BY id").fetchall()
            other.close()
        except sqlite3.Error as e:
            raise ClosetError(f"{source} is not an exported closet: {e}") from None
        garments = [Garment(0, r[0], r[1], 0.0, r[2], np.frombuffer(r[3], np.float32), r[4], json.loads(r[5]))
                    for r in rows]
        for g in garments:
            self.enrol(g.embedding, g.colours, g.thumbnail, g.model_version, g.name, g.voice_label)
        return len(garments)
