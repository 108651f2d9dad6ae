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
import logging
import math
import os
import re
import sqlite3
import time
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from wardrobe.colours import ciede2000
from wardrobe.errors import WardrobeError
from wardrobe.files import open_sqlite_read_only, sqlite_trouble, undecodable

log = logging.getLogger(__name__)

MATCH_SIMILARITY = 0.70
"""Cosine similarity of embeddings at or above which a photo may be an enrolled garment (chosen on
validation garments for 98 % precision: docs/closet.md)."""
MATCH_DELTA_E = 12.0
"""Largest colour gap (CIEDE2000, colour_gap) between the photo and the enrolled garment: a safety for two
garments of one model in different colours, and against look-alikes of the same colour family. 12: with 0.70, the
most garments identified on validation at 98 % precision or more, the colours decided as a closet decides them
(2026-12-01; 20 before, chosen when the measure's colour step was the head alone, is 97.0 % there; docs/closet.md)."""
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


NAME_MAX = 80
"""Longest garment name, in characters."""
THUMBNAIL_MAX_BYTES = 1 << 20
THUMBNAIL_MAX_PIXELS = 2_000_000
"""Bounds of a stored thumbnail (the closet writes 320 px JPEGs of about 20 KB)."""
CLIP_MAX_BYTES = 4 << 20
"""Largest stored voice recording (a 3 s label at 16 kHz is about 100 KB)."""
IMPORT_MAX_BYTES = 256 << 20
"""Largest closet file imported."""
EMBEDDING_WIDTHS = range(16, 4097)
LABEL_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
"""A voice label is the id of a stored recording (a time stamp), never a path."""
MAX_COLOURS = 8


def unit(embedding) -> np.ndarray:
    """An embedding of length 1 (classify.unit, imported when used: the caretaker's page reads the closet without
    the classifier's module)."""
    from wardrobe.classify import unit as classify_unit

    return classify_unit(embedding)


def plain_number(v, limit: float) -> bool:
    """A real number (not a bool) no larger than limit in size (a 400-digit integer is not one)."""
    return isinstance(v, int | float) and not isinstance(v, bool) and abs(v) <= limit and math.isfinite(v)


def printable(text, longest: int) -> bool:
    """Text of at most `longest` characters without control characters (nothing that moves a terminal)."""
    return isinstance(text, str) and len(text) <= longest and not any(
        unicodedata.category(ch)[0] == "C" for ch in text)


def name_problem(name) -> str | None:
    """Why a garment's name cannot be stored or said (None: it can): printable, at most NAME_MAX characters."""
    if not isinstance(name, str) or not name.strip():
        return "the name is empty"
    if len(name) > NAME_MAX:
        return f"the name is longer than {NAME_MAX} characters"
    if undecodable(name):
        return "the name is not UTF-8 text"
    if any(unicodedata.category(ch)[0] == "C" for ch in name):
        return "the name holds control characters"
    return None


def new_name_problem(name) -> str | None:
    """Why a garment cannot be given this name from now on (None: it can): name_problem, and digits alone (`enrolled
    remove 2` takes 2 for an id) or a leading "-" (a command line takes it for an option). Names stored before keep
    working."""
    if problem := name_problem(name):
        return problem
    if name.strip().isdigit():
        return "a name of digits alone would be taken for an id: add a word (for example \"jumper 2\")"
    if name.strip().startswith("-"):
        return "a name may not start with \"-\""
    return None


def row_problem(name, voice_label, thumbnail_bytes, embedding, colours_text, voice_clip=None,
                width: int | None = None, decode_thumbnail: bool = True) -> str | None:
    """Why one stored or imported garment cannot be trusted (None: it can). A closet file is untrusted input:
    a NaN embedding would match every photo ("Your impostor trousers")."""
    from wardrobe.errors import ImageError
    from wardrobe.images import pixel_size

    if name is None and voice_label is None:
        return "it has neither a name nor a voice label"
    if name is not None and (problem := name_problem(name)):
        return problem
    if voice_label is not None and (not isinstance(voice_label, str) or not LABEL_PATTERN.fullmatch(voice_label)):
        return "its voice label is not the id of a stored recording"
    if voice_clip is not None and (not isinstance(voice_clip, bytes) or len(voice_clip) > CLIP_MAX_BYTES
                                   or voice_clip[:4] != b"RIFF"):
        return "its recording is not a bounded WAV file"
    if not isinstance(thumbnail_bytes, bytes) or not thumbnail_bytes or len(thumbnail_bytes) > THUMBNAIL_MAX_BYTES:
        return "its thumbnail is missing or too large"
    size = pixel_size(thumbnail_bytes)
    if thumbnail_bytes[:2] != b"\xff\xd8" or size is None or size[0] * size[1] > THUMBNAIL_MAX_PIXELS:
        return "its thumbnail is not a bounded JPEG"
    if decode_thumbnail:
        try:
            from wardrobe.images import decode

            decode(thumbnail_bytes, "thumbnail")
        except ImageError:
            return "its thumbnail does not decode"
    if embedding is not None:  # None: not checked (a garment about to be embedded again from its thumbnail)
        if not isinstance(embedding, bytes) or len(embedding) % 4:
            return "its embedding is not float32"
        vec = np.frombuffer(embedding, np.float32).astype(np.float64)
        if len(vec) not in EMBEDDING_WIDTHS or (width is not None and len(vec) != width):
            return f"its embedding has {len(vec)} numbers" + (f", the model's {width}" if width else "")
        norm = float(np.linalg.norm(vec)) if np.all(np.isfinite(vec)) else float("nan")
        if not (math.isfinite(norm) and norm > 1e-12):
            return "its embedding is not finite"
    try:
        colours = json.loads(colours_text)
    except (TypeError, ValueError, RecursionError):
        return "its colours are not JSON"
    if not isinstance(colours, list) or len(colours) > MAX_COLOURS:
        return "its colours are not a short list"
    for c in colours:
        lab = c.get("lab") if isinstance(c, dict) else None
        if (not isinstance(lab, list) or len(lab) != 3 or not all(plain_number(v, 1000) for v in lab)
                or not plain_number(c.get("share", 0), 1) or not printable(c.get("name", ""), 40)):
            return "its colours do not hold three finite CIELAB numbers, a share and a short name each"
    return None


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

    def __init__(self, path: Path, read_only: bool = False) -> None:
        self.path = Path(path)
        self.read_only = read_only
        """Opened for reading alone (its disk is full or read-only): garments are listed and recognised, nothing
        is saved."""
        try:
            if read_only:
                self.db = open_sqlite_read_only(self.path, "garments")
            else:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self.db = sqlite3.connect(self.path, timeout=10, isolation_level=None)
                self.db.execute("PRAGMA journal_mode=WAL")
                self.db.execute("PRAGMA synchronous=FULL")
                self.db.executescript(SCHEMA)
                if "voice_clip" not in {r[1] for r in self.db.execute("PRAGMA table_info(garments)")}:
                    self.db.execute("ALTER TABLE garments ADD COLUMN voice_clip BLOB")  # a closet made before clips
        except (OSError, sqlite3.Error) as e:
            raise self.failed(f"cannot open the closet database {self.path}", e) from None
        self._skipped: set[int] = set()
        """Rows already logged as unusable."""
        self._cache: list[Garment] | None = None
        self._gallery: np.ndarray | None = None
        """The enrolled embeddings as one matrix, made with the cache."""
        self._version = -1

    def close(self) -> None:
        self.db.close()

    def failed(self, what: str, e: Exception, folder: Path | None = None, writing: bool = True) -> ClosetError:
        """The ClosetError for a failed database call in folder (the closet's own by default), in plain words
        (files.sqlite_trouble)."""
        trouble = sqlite_trouble(e, folder or self.path.parent, writing)
        return ClosetError(f"{what}: {trouble.text}", damaged=trouble.damaged, full=trouble.full)

    def _rows(self, where: str = "", args: tuple = (), embeddings: bool = True) -> list[Garment]:
        """The garments that pass row_problem (a bad one is logged once and skipped, never used or fatal);
        embeddings=False leaves their embeddings unchecked (they are about to be made again)."""
        try:
            rows = self.db.execute(f"SELECT {COLUMNS} FROM garments {where} ORDER BY id", args).fetchall()
        except sqlite3.Error as e:
            raise self.failed(f"cannot read the closet database {self.path}", e, writing=False) from None
        out = []
        for r in rows:
            problem = row_problem(r[1], r[2], r[4], r[5] if embeddings else None, r[7], decode_thumbnail=False)
            if problem is None and not printable(r[6], 64):
                problem = "its model version is not a short text"
            if problem is None and not (isinstance(r[0], int) and plain_number(r[3], 1e11) and r[3] >= 0):
                problem = "its id or enrolment time is not a number"
            if problem is not None:
                if r[0] not in self._skipped:
                    self._skipped.add(r[0])
                    log.error("enrolled garment %s is skipped: %s", r[0], problem)
                continue
            vec = np.frombuffer(r[5], np.float32).astype(np.float64)
            if embeddings:  # unit length, as enrol stores it: a stored length cannot outvote the threshold
                vec = vec / np.linalg.norm(vec)
            out.append(Garment(r[0], r[1], r[2], float(r[3]), r[4], vec.astype(np.float32), r[6], json.loads(r[7])))
        return out

    def garments(self) -> list[Garment]:
        """Every enrolled garment, oldest first (read again when another process changed the database)."""
        try:
            version = self.db.execute("PRAGMA data_version").fetchone()[0]
        except sqlite3.Error as e:
            raise self.failed(f"cannot read the closet database {self.path}", e, writing=False) from None
        if self._cache is None or version != self._version:
            self._cache, self._version = self._rows(), version
            same = len({len(g.embedding) for g in self._cache}) == 1
            self._gallery = np.stack([g.embedding for g in self._cache]) if self._cache and same else None
        return self._cache

    def voice_clip(self, gid: int) -> bytes | None:
        """A garment's recorded voice label as a WAV file's bytes (None: no recording, or one kept as a file
        by a closet made before recordings were kept here, in state_dir/voice-labels)."""
        try:
            row = self.db.execute("SELECT voice_clip FROM garments WHERE id = ?", (gid,)).fetchone()
        except sqlite3.Error as e:
            raise self.failed(f"cannot read the closet database {self.path}", e, writing=False) from None
        return row[0] if row else None

    def recorded(self) -> set[int]:
        """The ids of the garments whose voice label is recorded here (one query; the recordings are not read)."""
        try:
            return {r[0] for r in self.db.execute("SELECT id FROM garments WHERE voice_clip IS NOT NULL")}
        except sqlite3.Error as e:
            raise self.failed(f"cannot read the closet database {self.path}", e, writing=False) from None

    def enrol(self, embedding: np.ndarray, colours: list[dict], thumbnail: bytes, model_version: str,
              name: str | None = None, voice_label: str | None = None, voice_clip: bytes | None = None) -> int:
        """Store a garment (with its recorded voice label's WAV bytes, if any); its id once the write is on disk."""
        if not (name or voice_label):
            raise ClosetError("an enrolled garment needs a name or a voice label")
        tidy = " ".join(name.split()) or name if name else None
        check = name_problem if tidy is not None and self.named(tidy) else new_name_problem  # another view: as stored
        if tidy is not None and (problem := check(tidy)):
            raise ClosetError(problem)
        return self._insert([(tidy, voice_label, time.time(), thumbnail,
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
        """Enrol the garment of a pipeline Description (its embedding and colours as the camera saw them) with its
        photo."""
        return self.enrol(d.embedding, signature(d.as_seen), thumbnail(rgb), model_version, name, voice_label,
                          voice_clip)

    def named(self, name: str) -> list[Garment]:
        """The enrolled views called name (case-insensitive): one garment, enrolled from one or more photos. A name
        that could not be stored (not UTF-8, control characters) names none."""
        if name_problem(" ".join(name.split()) or name):
            return []
        return self._rows("WHERE lower(name) = lower(?)", (name.strip(),))

    def views(self, which: str) -> list[Garment]:
        """One garment's enrolled views: by id (that view) or by name (every view of that name)."""
        if which.isdigit():  # an id; one too large for SQLite names no garment
            found = self._rows("WHERE id = ?", (int(which),)) if len(which) <= 18 else []
        else:
            found = self.named(which)
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
        name = " ".join(name.split()) or name
        if problem := new_name_problem(name):
            raise ClosetError(f"the new name cannot be used: {problem}")
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
        stale = [g for g in self._rows(embeddings=False) if g.model_version != model_version]
        done = 0
        for g in stale:
            try:
                vec = np.asarray(embed(g.thumbnail), np.float32)
            except WardrobeError as e:  # a damaged thumbnail: that garment is skipped, the rest go on
                log.error("enrolled garment %s keeps its old embedding: %s", g.id, e)
                continue
            self._write("UPDATE garments SET embedding = ?, model_version = ? WHERE id = ?",
                        (unit(vec).tobytes(), model_version, g.id))
            done += 1
        return done

    def match(self, embedding: np.ndarray | None, colours: list, min_similarity: float = MATCH_SIMILARITY,
              max_delta_e: float = MATCH_DELTA_E) -> Match | None:
        """The enrolled garment this photo shows, or None: the most similar embedding, if it is similar
        enough and its main colour is close enough."""
        garments = self.garments()
        if embedding is None or not garments or not colours:
            return None
        emb = unit(embedding)
        mine = [i for i, g in enumerate(garments) if len(g.embedding) == len(emb)]  # the photo's model's width
        if not mine:
            return None
        gallery = self._gallery if self._gallery is not None and len(mine) == len(garments) else self._gallery_of(mine)
        sims = gallery @ emb
        best = int(np.argmax(sims))
        g = garments[mine[best]]
        if sims[best] < min_similarity or not g.colours:
            return None
        de = colour_gap([c.lab for c in colours], [c["lab"] for c in g.colours])
        return Match(g, float(sims[best]), de) if de <= max_delta_e else None

    def _gallery_of(self, rows: list[int]) -> np.ndarray:
        """The embeddings of these garments as one matrix (garments of another width are left out of matching)."""
        garments = self.garments()
        return np.stack([garments[i].embedding for i in rows])

    def export(self, target: Path) -> int:
        """Copy the closet to a new file (SQLite's online backup: consistent while the appliance runs). An
        existing file is never overwritten; a copy that could not be finished leaves nothing behind."""
        target = Path(target)
        if target.exists() or target.is_symlink():
            raise ClosetError(f"{target} exists: refusing to overwrite it (choose another name)")
        partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
        try:
            out = sqlite3.connect(partial)
            try:
                with out:
                    self.db.backup(out)
            finally:
                out.close()
            os.link(partial, target)  # fails if the name appeared meanwhile: still no overwrite
        except FileExistsError:
            raise ClosetError(f"{target} exists: refusing to overwrite it (choose another name)") from None
        except (sqlite3.Error, OSError) as e:
            raise self.failed(f"cannot write {target}", e, target.resolve().parent) from None
        finally:
            partial.unlink(missing_ok=True)
        return len(self.garments())

    def import_from(self, source: Path, widths: dict[str, int] | None = None) -> tuple[int, int]:
        """Add every garment of an exported closet file: the number added, and the number already here (the same
        photo, renamed or given a voice label here since or not: a file imported twice adds nothing the second
        time). A photo whose name a garment here has is added to it when it looks like it, and refused otherwise, as
        `enrol` takes or refuses it. The file is untrusted: it must be a
        plain SQLite file of ours (one garments table of stored columns: no views, triggers, other objects or
        generated columns), bounded in size and in each row's sizes (measured before any row is read), not this
        closet itself, and every row must pass row_problem (a row of a model in `widths`, version: the width of its
        embedding, or of this closet's own garments, with an embedding that wide). All or none; the first bad row
        is named."""
        source = Path(source)
        try:
            if not source.is_file():
                raise ClosetError(f"{source} is not a file")
            if source.stat().st_size > IMPORT_MAX_BYTES:
                raise ClosetError(f"{source} is larger than {IMPORT_MAX_BYTES >> 20} MB: not an exported closet")
            if self.path.exists() and os.path.samefile(source, self.path):
                raise ClosetError(f"{source} is this closet itself: nothing to import")
        except OSError as e:
            raise ClosetError(f"{source} cannot be read: {e.strerror or e}") from None
        try:  # read-only, by a URI whose path is escaped (a '#', '?' or '%' in a file name is a file name)
            other = sqlite3.connect(f"{source.resolve().as_uri()}?mode=ro", uri=True)
        except sqlite3.Error as e:
            raise ClosetError(f"{source} is not an exported closet: {e}") from None
        try:
            other.execute("PRAGMA trusted_schema = OFF")
            objects = other.execute("SELECT type, name FROM sqlite_master").fetchall()
            odd = [f"{t} {n}" for t, n in objects if not (t == "table" and n == "garments")
                   and not (t == "index" and str(n).startswith("sqlite_autoindex_garments"))]
            if ("table", "garments") not in objects or odd:
                raise ClosetError(f"{source} is not an exported closet: it holds "
                                  + (", ".join(odd[:3]) if odd else "no garments table"))
            columns = other.execute("PRAGMA table_xinfo(garments)").fetchall()  # hidden: 2 or 3 when generated
            made = [c[1] for c in columns if c[6] != 0]
            if made:  # a generated column computes its value as it is read: zeroblob(2e8) in every row
                raise ClosetError(f"{source} is not an exported closet: its column {made[0]} is computed, not stored")
            has_clips = "voice_clip" in {c[1] for c in columns}
            clip = "voice_clip" if has_clips else "NULL"
            big = other.execute(f"SELECT id FROM garments WHERE length(thumbnail) > ? OR length(embedding) > ? OR "
                                f"length(name) > ? OR length(voice_label) > ? OR length(colours) > ? OR "
                                f"length({clip}) > ? OR length(model_version) > ? LIMIT 1",
                                (THUMBNAIL_MAX_BYTES, 4 * max(EMBEDDING_WIDTHS), 4 * NAME_MAX, 200, 1 << 16,
                                 CLIP_MAX_BYTES, 256)).fetchone()
            if big:  # refused before its bytes are read: a 256 MB file of one row is not read into memory
                raise ClosetError(f"{source}: garment {big[0]} cannot be imported: it is far larger than any this "
                                  f"closet stores; nothing was imported")
            rows = other.execute("SELECT id, name, voice_label, thumbnail, embedding, model_version, colours, "
                                 f"{clip} FROM garments ORDER BY id").fetchall()
        except sqlite3.Error as e:
            raise ClosetError(f"{source} is not an exported closet: {e}") from None
        finally:
            other.close()
        here = self.garments()
        known = {**{g.model_version: len(g.embedding) for g in here}, **(widths or {})}
        present = {g.thumbnail for g in here}  # the same photo: renamed or given a voice label here since, or not
        names = {g.name.lower(): g for g in here if g.name}  # lower(), as named() asks SQLite
        new, already = [], 0
        for r in rows:
            want = known.get(r[5]) if isinstance(r[5], str) else None
            problem = row_problem(r[1], r[2], r[3], r[4], r[6], r[7], want)
            if problem is None and not printable(r[5], 64):
                problem = "its model version is not a short text"
            if problem is not None:
                raise ClosetError(f"{source}: garment {r[0]} cannot be imported: {problem}; nothing was imported")
            name = " ".join(r[1].split()) if r[1] else None
            if r[3] in present:
                already += 1
                continue
            vec = np.frombuffer(r[4], np.float32).astype(np.float64)
            if name and name.lower() in names:  # another photo of that garment, as `enrol` takes one: if it looks so
                g = names[name.lower()]
                seen = self.match(vec, [SimpleNamespace(lab=c["lab"]) for c in json.loads(r[6])])
                if seen is None or (seen.garment.name or "").lower() != name.lower():
                    raise ClosetError(f"{source}: garment {r[0]} cannot be imported: another garment here is already "
                                      f"called {g.name!r} (id {g.id}) and this one does not look like it; rename one "
                                      f"of them first; nothing was imported")
            new.append((name, r[2], time.time(), r[3],
                        (vec / np.linalg.norm(vec)).astype(np.float32).tobytes(), r[5], json.dumps(json.loads(r[6])),
                        r[7]))
        if new:  # all or none: a full disk half way through adds nothing
            self._insert(new)
        return len(new), already
