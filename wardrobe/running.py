"""The running daemon's mark in the state folder, and the one thing another process may ask of it: reload.

The daemon writes state_dir/daemon.pid (its process id and start time) once its signal handlers are in place,
and removes it when it stops. The caretaker's page cannot run `systemctl reload` (its unit has no privileges and
no D-Bus), so it sends the same SIGHUP that `ExecReload=` sends, to the process the file names, after checking
that the process is still the one that wrote it (a process id can be reused after a crash).
"""

from __future__ import annotations

import logging
import os
import signal
from pathlib import Path

from wardrobe.files import write_atomic

log = logging.getLogger(__name__)

PID_NAME = "daemon.pid"


def pid_path(state_dir: Path) -> Path:
    """Where the running daemon leaves its mark."""
    return Path(state_dir) / PID_NAME


def start_time(pid: int) -> str | None:
    """A process's start time in clock ticks since boot (/proc/PID/stat field 22); None when it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2:].split()  # the name in parentheses may hold spaces
    return fields[19] if len(fields) > 19 else None


def write_pid(state_dir: Path) -> None:
    """Leave this process's mark (whole or not at all: a reader never sees half of it). A state folder that
    cannot take it (read-only, full) is logged, and the daemon works on."""
    path = pid_path(state_dir)
    try:
        write_atomic(path, f"{os.getpid()} {start_time(os.getpid()) or 0}\n".encode(), sync=False)
    except OSError as e:  # the page then cannot ask for a reload; the daemon itself works on
        log.error("cannot write %s (the caretaker's page cannot reload the closet): %s", path, e.strerror or e)


def clear_pid(state_dir: Path) -> None:
    """Remove the mark, if it is still this process's."""
    if running(state_dir) == os.getpid():
        pid_path(state_dir).unlink(missing_ok=True)


def running(state_dir: Path) -> int | None:
    """The daemon's process id, when the mark names a process that is still the one that wrote it."""
    try:
        pid_text, started = pid_path(state_dir).read_text().split()
        pid = int(pid_text)
    except (OSError, ValueError):
        return None
    return pid if pid > 1 and start_time(pid) == started else None


def request_reload(state_dir: Path) -> str | None:
    """Ask the running daemon to read its settings and model again (SIGHUP); None when asked, otherwise why not,
    in words for the caretaker."""
    pid = running(state_dir)
    if pid is None:
        return "the closet is not running, so it will use this when it next starts"
    try:
        os.kill(pid, signal.SIGHUP)
    except OSError as e:
        return f"the running closet could not be told ({e.strerror or e}): run `sudo systemctl reload wardrobe`"
    return None
