"""Small files wardrobe reads and writes: JSON that may be hostile, and output paths that must be plain files."""

from __future__ import annotations

import json
import os
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path

MAX_JSON_BYTES = 8 << 20
"""Largest JSON file read (a bundle's bundle.json is about 50 kB; the white card's place a few dozen bytes)."""


def read_small(path: Path | str, max_bytes: int = MAX_JSON_BYTES) -> bytes:
    """The bytes of a small file. ValueError, in one line, when it is not a regular file (a FIFO would wait forever,
    /dev/zero never ends) or is larger than max_bytes. FileNotFoundError and other OSErrors pass through."""
    path = Path(path)
    with open(path, "rb", opener=lambda p, flags: os.open(p, flags | os.O_NONBLOCK)) as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            raise ValueError(f"{path.name} is not a regular file")
        data = f.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise ValueError(f"{path.name} is larger than {max_bytes >> 20} MB")
    return data


def read_json(path: Path | str, max_bytes: int = MAX_JSON_BYTES):
    """Parse a small JSON file. ValueError, in one line, for anything that is not one: not a regular file, too
    large (read_small), not UTF-8, not JSON, or nested so deeply that parsing it would exhaust the interpreter's
    stack. FileNotFoundError and other OSErrors pass through."""
    data = read_small(path, max_bytes)
    path = Path(path)
    try:
        return json.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise ValueError(f"{path.name} is not UTF-8 text") from None
    except RecursionError:
        raise ValueError(f"{path.name} is nested too deeply") from None


def check_output_file(path: Path | str, what: str = "the output") -> None:
    """ValueError unless path is absent or a regular file: writing by rename would replace a device, a FIFO or a
    folder's entry with a plain file (`--wav /dev/null` would delete /dev/null)."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return
    except OSError as e:
        raise ValueError(f"{what} {path} cannot be used: {e.strerror or e}") from None
    if not stat.S_ISREG(mode):
        kind = "a folder" if stat.S_ISDIR(mode) else "not a regular file"
        raise ValueError(f"{what} {path} is {kind}; name a new or ordinary file")


def check_speech_file(path: Path | str, what: str = "the speech file") -> None:
    """check_output_file, and ValueError when the file is there and holds something other than speech (not empty,
    not a WAV): `describe --wav hat.jpg skirt.jpg` must not turn the photo of the hat into a WAV."""
    check_output_file(path, what)
    try:
        with open(path, "rb") as f:
            head = f.read(12)
    except FileNotFoundError:
        return
    except OSError as e:
        raise ValueError(f"{what} {path} cannot be used: {e.strerror or e}") from None
    if head and not (head[:4] == b"RIFF" and head[8:12] == b"WAVE"):
        raise ValueError(f"{what} {path} is a file that is not speech (not a WAV); it is left as it is: name a new "
                         f"file")


def check_folder_takes_files(folder: Path | str, what: str) -> None:
    """ValueError, in one line, unless folder exists (or can be made) and takes a new file: not /proc, not
    read-only, not another user's."""
    import tempfile

    try:
        Path(folder).mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as e:
        raise ValueError(f"{what} cannot be written: {e.strerror or e}") from None


def check_writable_file(path: Path | str, what: str = "the output") -> None:
    """Before minutes of work whose result goes to path: ValueError, in one line, unless it can be written there
    (absent or a regular file, in a folder that takes a new file)."""
    path = Path(path)
    check_output_file(path, what)
    check_folder_takes_files(path.parent, f"{what} {path}")


def undecodable(text: str) -> bool:
    """Whether text holds bytes that were not UTF-8 (kept by Python as surrogate escapes: a file name, an argument
    or standard input that came as other bytes); such text cannot be stored, printed as UTF-8 or hashed."""
    return any("\ud800" <= ch <= "\udfff" for ch in text)


def write_atomic(path: Path | str, data: bytes, mode: int = 0o644, sync: bool = True) -> None:
    """Write a file whole or not at all: a temporary file of its own beside it (mode, as the umask allows; synced to
    the disk unless sync is False), then a rename. OSError, with no temporary file left, when it cannot."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            if sync:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:  # an OSError, or Ctrl-C halfway: no temporary file is left behind
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass
        raise


def open_sqlite_read_only(path: Path | str, table: str):
    """A SQLite database for reading alone, where nothing can be written (a full or read-only disk): as it stands
    with its write-ahead log, or, when SQLite cannot even make the log's index there, its main file as last
    checkpointed (a clean stop checkpoints everything). sqlite3.Error when neither holds the table."""
    import sqlite3
    from urllib.parse import quote

    url = f"file:{quote(str(Path(path).resolve()))}"  # a name with '#', '?' or '%' stays a name
    for how in ("mode=ro", "immutable=1"):
        db = sqlite3.connect(f"{url}?{how}", uri=True, timeout=10, isolation_level=None, check_same_thread=False)
        try:
            db.execute(f"SELECT count(*) FROM {table}").fetchone()
            return db
        except sqlite3.Error:
            db.close()
            if how == "immutable=1":
                raise
    raise AssertionError("unreachable")


SQLITE_DAMAGED = ("SQLITE_CORRUPT", "SQLITE_NOTADB")
"""SQLite's names for a file that is not (or no longer) a database: it can only be moved aside."""
DISK_FULL_BELOW = 1 << 20
"""Free bytes under which a failed write is put down to a full disk."""


@dataclass(frozen=True)
class SqliteTrouble:
    """A failed SQLite call in plain words."""

    text: str
    full: bool = False
    """The disk is full (nothing is wrong with the database)."""
    damaged: bool = False
    """The database file itself is damaged."""
    unwritable: bool = False
    """Its folder cannot be written: a read-only filesystem, or another user's folder."""


def sqlite_trouble(e: Exception, folder: Path | None, writing: bool = True) -> SqliteTrouble:
    """What went wrong with a database in folder, as the closet's and the history's messages say it: a folder that
    cannot be written (SQLite says "unable to open database file"; asked only when writing), a folder of the
    system's with no disk behind it, a full disk (SQLite often calls it an I/O error), a damaged file; else
    SQLite's own words."""
    import shutil

    name = getattr(e, "sqlite_errorname", "")
    if name in SQLITE_DAMAGED:
        return SqliteTrouble(f"the database is damaged ({e})", damaged=True)
    if writing and folder is not None and folder.is_dir() and not os.access(folder, os.W_OK):
        try:
            read_only = bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
        except OSError:
            read_only = False
        if read_only:
            return SqliteTrouble(f"{folder} is on a read-only filesystem (a card mounted read-only, often because it "
                                 f"is failing: check it, or replace it)", unwritable=True)
        return SqliteTrouble(f"{folder} is not writable here (another user's: run the command as the closet's "
                             f"user, e.g. sudo -u wardrobe wardrobe ...)", unwritable=True)
    try:
        usage = shutil.disk_usage(folder) if folder is not None else None
    except OSError:
        usage = None
    if usage is not None and usage.total == 0:  # /proc, /sys: a folder of the system's, no disk behind it
        return SqliteTrouble(f"{folder} is a folder of the system's, not a disk (name a file elsewhere)")
    if (usage is not None and usage.free < DISK_FULL_BELOW) or name == "SQLITE_FULL" or getattr(e, "errno", None) == 28:
        saved = ", so nothing was saved" if writing else ""
        return SqliteTrouble(f"the disk is full{saved} (free some space and try again)", full=True)
    return SqliteTrouble(str(getattr(e, "strerror", None) or e))
