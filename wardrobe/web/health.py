"""The health page: what `wardrobe doctor` checks, as far as the page's service can see, and the closet's state.

The page's unit has no devices (PrivateDevices=yes), cannot read the journal, and must not load the model or the
voice. So the camera, button, light, speaker and voice are shown as the running closet found them (its
state_dir/status.json, wardrobe/status.py), with its last warnings and errors; the model's signature and checksums
and the trusted keys are checked here with doctor's and the models store's own functions.
"""

from __future__ import annotations

import shutil
import time

from flask import Blueprint, render_template

from wardrobe.bundle import Bundle
from wardrobe.doctor import CHECKS, check_storage, check_updates, model_to_load
from wardrobe.running import running, start_time
from wardrobe.status import read_status
from wardrobe.web.auth import login_required
from wardrobe.web.common import current_settings

bp = Blueprint("health", __name__)

DEVICES = ("camera", "button", "light", "audio")
"""doctor's checks of devices the page's sandbox cannot reach."""
LOADS = {"model": "it would load the model, which the page must not hold in memory",
         "voice": "it would load the voice, which the page must not hold in memory"}
JOURNAL = "journalctl -u wardrobe -p warning -n 50"
"""Everything the closet logged, on the closet itself (the page's sandbox keeps it from the system's logs)."""


def check_model_files(settings) -> str:
    """The model the closet loads: its signature and checksums hold (models_store.bundle_to_load), not loaded."""
    path = model_to_load(settings)
    bundle = Bundle.load(path)  # the manifest's checksums (hashing the files; nothing is loaded to run)
    signed = "its signature and checksums hold" if path.parent == settings.state_dir / "models" else \
        "its checksums hold (the shipped or configured model: no caretaker's signature is asked of it)"
    return f"the closet loads model {bundle.version} from {path}; {signed} (not loaded here: {LOADS['model']})"


def clock(t: float) -> str:
    """A moment as the caretaker reads it, in the closet's local time."""
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(t))


def as_the_closet_found(name: str, status: dict | None, up: bool) -> tuple[str, str] | None:
    """(state, what was found) of a part as the running closet last found it; None when it never said."""
    part = status["parts"].get(name) if status else None
    if part is None:
        return None
    if not up:
        return "NOT CHECKED", f"the closet is not running; when it last ran it found (at {clock(part['at'])}): " \
                              f"{part['found']}"
    return ("OK" if part["ok"] else "PROBLEM"), f"as the closet found it at {clock(part['at'])}: {part['found']}"


def checks(settings, status: dict | None = None, up: bool = False) -> list[tuple[str, str, str]]:
    """(part, "OK" / "PROBLEM" / "NOT CHECKED", what was found) for each of doctor's checks, in doctor's order:
    the model's files and the trusted keys checked here, the devices and the voice as the closet found them
    (status: read_status's; up: whether the closet is running)."""
    here = {"updates": check_updates, "model": check_model_files, "storage": check_storage}
    out = []
    for name, _check in CHECKS:
        seen = as_the_closet_found(name, status, up) if name not in here else None
        if seen:
            out.append((name, *seen))
        elif name in DEVICES:
            out.append((name, "NOT CHECKED", "the page's service cannot reach the devices, and the closet has not "
                                             "said; run `wardrobe doctor` on the closet"))
        elif name in here:
            try:
                out.append((name, "OK", here[name](settings)))
            except Exception as e:  # as doctor: every failure becomes a plain sentence
                out.append((name, "PROBLEM", str(e) or type(e).__name__))
        else:
            out.append((name, "NOT CHECKED", f"{LOADS.get(name, 'not a check the page knows')}; run `wardrobe "
                                             f"doctor` on the closet"))
    return out


def duration(seconds: float) -> str:
    """A length of time in days, hours and minutes."""
    m = int(seconds // 60)
    d, h, m = m // 1440, m // 60 % 24, m % 60
    return ", ".join(p for p in (f"{d} days" if d else "", f"{h} hours" if h or d else "", f"{m} minutes") if p)


def uptimes(pid: int | None) -> tuple[str, str]:
    """How long the system and the daemon (pid: the running closet's, or None) have been up (CLOCK_BOOTTIME:
    /proc/uptime is hidden from the page)."""
    import os

    boot = time.clock_gettime(time.CLOCK_BOOTTIME)
    started = start_time(pid) if pid else None
    if started is None:
        return duration(boot), "not running"
    return duration(boot), f"running for {duration(boot - int(started) / os.sysconf('SC_CLK_TCK'))} (process {pid})"


@bp.route("/health")
@login_required
def index():
    """The checks, free disk space, uptime and where the errors are."""
    settings = current_settings()
    usage = shutil.disk_usage(settings.state_dir) if settings.state_dir.is_dir() else None
    pid = running(settings.state_dir)
    system_up, daemon_up = uptimes(pid)
    status = read_status(settings.state_dir)
    errors = [(clock(e["at"]), e["level"], e["message"], e["times"]) for e in reversed(status["errors"])] \
        if status else None
    up = pid is not None
    return render_template("health.html", checks=checks(settings, status, up), usage=usage, up=up,
                           state_dir=settings.state_dir, system_up=system_up, daemon_up=daemon_up, errors=errors,
                           since=clock(status["started"]) if status else None, journal=JOURNAL)
