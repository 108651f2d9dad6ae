"""The caretaker's password: a salted scrypt hash in state_dir/web-password, never the password itself."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from pathlib import Path

from wardrobe.errors import WardrobeError
from wardrobe.files import read_json, undecodable, write_atomic

FILE_NAME = "web-password"
SECRET_NAME = "web-secret"
MIN_LENGTH = 8
MAX_LENGTH = 1024
SCRYPT = {"n": 1 << 14, "r": 8, "p": 1}
"""scrypt's cost: 16 MiB and about 0.1 s per try on a Pi 4, which also slows guessing."""


class PasswordError(WardrobeError):
    """The password cannot be set or read."""


def password_file(state_dir: Path) -> Path:
    """Where the hash is kept."""
    return Path(state_dir) / FILE_NAME


def _derive(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, maxmem=128 << 20, dklen=32)


def write_private(path: Path, data: bytes) -> None:
    """Write a file readable by its owner only, whole or not at all."""
    write_atomic(path, data, mode=0o600)


def set_password(state_dir: Path, password: str) -> Path:
    """Store a new password's salted hash; the file's path."""
    if len(password) < MIN_LENGTH:
        raise PasswordError(f"the password must be at least {MIN_LENGTH} characters long")
    if len(password) > MAX_LENGTH:
        raise PasswordError(f"the password must be at most {MAX_LENGTH} characters long")
    if undecodable(password):
        raise PasswordError("the password is not UTF-8 text; nothing was changed")
    salt = secrets.token_bytes(16)
    record = {"scheme": "scrypt", **SCRYPT, "salt": salt.hex(), "hash": _derive(password, salt, **SCRYPT).hex()}
    path = password_file(state_dir)
    try:
        write_private(path, json.dumps(record).encode())
    except OSError as e:
        raise PasswordError(f"cannot write {path}: {e.strerror or e}; use --state-dir to choose a writable "
                            f"folder") from None
    return path


def load_record(state_dir: Path) -> dict | None:
    """The stored hash record (None: no password set yet)."""
    path = password_file(state_dir)
    try:
        record = read_json(path)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        raise PasswordError(f"{path} cannot be read ({e}); set the password again: wardrobe web password") from None
    ok = (isinstance(record, dict) and record.get("scheme") == "scrypt"
          and all(isinstance(record.get(k), int) and 0 < record[k] <= 1 << 20 for k in ("n", "r", "p"))
          and all(isinstance(record.get(k), str) for k in ("salt", "hash")))
    if not ok:
        raise PasswordError(f"{path} is not a password hash wardrobe wrote; set the password again: "
                            f"wardrobe web password")
    return record


def check_password(record: dict, password: str) -> bool:
    """Whether the password is the one stored (compared in constant time)."""
    if not isinstance(password, str) or not password or len(password) > MAX_LENGTH:
        return False
    try:
        salt, expected = bytes.fromhex(record["salt"]), bytes.fromhex(record["hash"])
        got = _derive(password, salt, record["n"], record["r"], record["p"])
    except (ValueError, MemoryError):
        return False
    return hmac.compare_digest(got, expected)


def session_secret(state_dir: Path) -> bytes:
    """The key that signs session cookies, made once and kept in the state folder (sessions outlive restarts)."""
    path = Path(state_dir) / SECRET_NAME
    try:
        data = path.read_bytes()
        if len(data) >= 32:
            return data
    except FileNotFoundError:
        pass
    except OSError as e:
        raise PasswordError(f"cannot read {path}: {e.strerror or e}") from None
    data = secrets.token_bytes(32)
    try:
        write_private(path, data)
    except OSError as e:
        raise PasswordError(f"cannot write {path}: {e.strerror or e}; use --state-dir to choose a writable "
                            f"folder") from None
    return data
