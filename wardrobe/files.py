"""Small files wardrobe reads and writes: JSON that may be hostile, and output paths that must be plain files."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

MAX_JSON_BYTES = 8 << 20
"""Largest JSON file read (a bundle's bundle.json is about 50 kB; the white card's place a few dozen bytes)."""


def read_json(path: Path | str, max_bytes: int = MAX_JSON_BYTES):
    """Parse a small JSON file. ValueError, in one line, for anything that is not one: not a regular file (a FIFO
    would wait forever, /dev/zero never ends), too large, not UTF-8, not JSON, or nested so deeply that parsing
    it would exhaust the interpreter's stack. FileNotFoundError and other OSErrors pass through."""
    path = Path(path)
    with open(path, "rb", opener=lambda p, flags: os.open(p, flags | os.O_NONBLOCK)) as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            raise ValueError(f"{path.name} is not a regular file")
        data = f.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise ValueError(f"{path.name} is larger than {max_bytes >> 20} MB")
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


def check_writable_file(path: Path | str, what: str = "the output") -> None:
    """Before minutes of work whose result goes to path: ValueError, in one line, unless it can be written there
    (absent or a regular file, in a folder that takes a new file: not /proc, not read-only)."""
    import tempfile

    path = Path(path)
    check_output_file(path, what)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path.parent):
            pass
    except OSError as e:
        raise ValueError(f"{what} {path} cannot be written: {e.strerror or e}") from None
