"""What the running closet found when it started, and the last things that went wrong, kept in the state folder.

The caretaker's page runs in a sandbox that reaches neither the devices nor the system journal, so the daemon
writes them down for it: state_dir/status.json, replaced whole (a reader never sees half of it), on a thread of
its own at most once a second, so that a warning logged during a press costs the press nothing.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections import deque
from pathlib import Path

from wardrobe.files import read_json, write_atomic

STATUS_NAME = "status.json"
KEEP = 20
"""The last warnings and errors kept: enough for a morning's trouble, small enough to read on a phone."""
MAX_BYTES = 256 << 10
"""A status file larger than this is not one the daemon wrote."""
PARTS = ("camera", "button", "light", "audio", "model", "voice")
"""The parts the daemon opens at start, named as `wardrobe doctor` names its checks."""
FIRST_LINE = 300
"""Characters of a message kept (its first line): a traceback's first line says what went wrong."""


def status_path(state_dir: Path) -> Path:
    return Path(state_dir) / STATUS_NAME


class StatusLog(logging.Handler):
    """The daemon's parts as it found them and its last KEEP warnings and errors (a logging handler on the
    `wardrobe` logger), written to status.json by a thread of its own. A status that cannot be written is lost
    quietly: it is the journal's copy for the page, and the journal has it all."""

    def __init__(self, state_dir: Path) -> None:
        super().__init__(logging.WARNING)
        self.path = status_path(state_dir)
        self.started = time.time()
        self.parts: dict[str, dict] = {}
        self.errors: deque[dict] = deque(maxlen=KEEP)
        self.guard = threading.Lock()  # not logging.Handler.lock, which handle() holds around emit()
        self.changed = threading.Event()
        self.closing = False
        self.writer = threading.Thread(target=self.write_when_changed, name="status", daemon=True)
        self.writer.start()

    def part(self, name: str, ok: bool, found: str) -> None:
        """What the daemon found of one part (at start, and again when a part comes back or a reload changes it)."""
        with self.guard:
            self.parts[name] = {"ok": bool(ok), "found": found[:FIRST_LINE], "at": time.time()}
        self.changed.set()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage().splitlines()[0][:FIRST_LINE] if record.getMessage() else record.levelname
        except Exception:  # a message whose arguments do not format: its template says enough
            text = str(record.msg)[:FIRST_LINE]
        self.add(record.levelname.lower(), text, record.created)
        self.changed.set()

    def add(self, level: str, text: str, at: float) -> None:
        """One warning or error kept; the same one said again (a retry failing again) is counted, not repeated."""
        with self.guard:
            last = self.errors[-1] if self.errors else None
            if last and (last["level"], last["message"]) == (level, text):
                last["at"], last["times"] = at, last["times"] + 1
            else:
                self.errors.append({"at": at, "level": level, "message": text, "times": 1})

    def stopped(self, reason: str) -> None:
        """The closet is ending on an error (one that never reached the log: the command line prints it): kept as
        its last error and written at once, so the page says why, not "no errors"."""
        first = reason.splitlines()[0] if reason else ""
        self.add("error", f"the closet stopped: {first}"[:FIRST_LINE], time.time())
        self.write()

    def snapshot(self) -> dict:
        with self.guard:
            return {"started": self.started, "parts": dict(self.parts), "errors": list(self.errors)}

    def write_when_changed(self) -> None:
        while not self.closing:
            self.changed.wait()
            self.changed.clear()
            self.write()
            time.sleep(1.0)  # at most one write a second, whatever a storm of warnings does

    def write(self) -> None:
        try:
            write_atomic(self.path, json.dumps(self.snapshot()).encode(), sync=False)
        except OSError:  # a read-only or full state folder: the journal keeps it all
            pass

    def close(self) -> None:
        """The last state written, and the writer ended."""
        self.closing = True
        self.changed.set()
        self.write()
        super().close()


def moment(value) -> float:
    """A time as the daemon writes it (seconds since the epoch, no later than tomorrow); ValueError for anything
    else (1e18 is no time a clock can show)."""
    t = float(value)
    if not math.isfinite(t) or not 0 <= t <= time.time() + 86400:
        raise ValueError(f"not a time: {value!r}")
    return t


def read_status(state_dir: Path) -> dict | None:
    """The status the daemon last wrote, in the shape it writes (anything else, or none: None): started (a time),
    parts {name: {ok, found, at}} of PARTS only, errors [{at, level, message, times}], newest last."""
    try:
        raw = read_json(status_path(state_dir), MAX_BYTES)
    except (OSError, ValueError):
        return None
    try:
        parts = {name: {"ok": bool(p["ok"]), "found": str(p["found"])[:FIRST_LINE], "at": moment(p["at"])}
                 for name, p in raw["parts"].items() if name in PARTS}
        errors = [{"at": moment(e["at"]), "level": str(e["level"])[:10], "message": str(e["message"])[:FIRST_LINE],
                   "times": min(max(1, int(e.get("times", 1))), 10**9)} for e in raw["errors"][-KEEP:]]
        return {"started": moment(raw["started"]), "parts": parts, "errors": errors}
    except (KeyError, TypeError, ValueError, AttributeError, OverflowError):
        return None
