"""The user's clothes page: enrolled garments with their thumbnails and voice labels; rename, remove, enrol.

Enrolling runs `wardrobe enrol --json` as a child process, the same command the caretaker runs over SSH
(`enrol --on`): it is the one enrolment path, with its checks (a readable photo, a garment clearly in view, a name
that belongs to one garment), its result read as JSON and worded for the page, and it loads the model only for as
long as the enrolment takes. The page's own
process never loads the model, so it stays small; handing enrolment to the running daemon instead would need a
new channel into the appliance's press loop, and would block the user's button while it ran.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from flask import Blueprint, Response, abort, current_app, g, redirect, render_template, request, url_for

from wardrobe.closet import Closet, ClosetError, name_problem
from wardrobe.errors import ImageError
from wardrobe.history import FILE_NAME as HISTORY_FILE
from wardrobe.history import HistoryError, PressStore
from wardrobe.images import check_header
from wardrobe.web.auth import login_required
from wardrobe.web.common import done

log = logging.getLogger(__name__)
bp = Blueprint("clothes", __name__)

UPLOAD_MAX_BYTES = 16 << 20
"""Largest photo uploaded (a 12 MP phone JPEG is 3 to 6 MB); pixels are bounded by wardrobe.images.MAX_PIXELS."""
ENROL_TIMEOUT_S = 300
"""How long `wardrobe enrol` may take (loading the model and describing one photo takes seconds on a Pi 4)."""
CLOSET_FILE = "closet.db"
ADD_VIEW_LABEL = "Another photo of a garment already enrolled under this name"
"""The enrol forms' checkbox (templates clothes.html and enrol_press.html), named in the answers that need it."""
ENROLLING = threading.Lock()
"""One enrolment at a time: each loads the model in a child process, and a Pi has the memory for one."""


def closet() -> Closet | None:
    """This request's connection to the enrolled garments (None: nothing was ever enrolled; no file is made)."""
    if "closet" not in g:
        path = current_app.config["STATE_DIR"] / CLOSET_FILE
        try:
            g.closet = Closet(path) if path.is_file() else None
        except ClosetError as e:
            abort(500, description=str(e))
    return g.closet


def close_closet(_exc=None) -> None:
    """Close the request's connection (registered as a teardown)."""
    c = g.pop("closet", None)
    if c is not None:
        c.close()


def garment_or_404(gid: int):
    """One enrolled view by its integer id."""
    c = closet()
    if c is None:
        abort(404)
    try:
        return c.find(str(gid))
    except ClosetError:
        abort(404)


@bp.route("/clothes")
@login_required
def index():
    """The enrolled garments, oldest first, each with its thumbnail, name or voice label, and its forms."""
    c = closet()
    try:
        garments = c.garments() if c is not None else []
        clips = c.recorded() if c is not None else set()
    except ClosetError as e:
        abort(500, description=str(e))
    return render_template("clothes.html", garments=garments, clips=clips, when=when, max_mb=UPLOAD_MAX_BYTES >> 20)


def when(created: float) -> str:
    """An enrolment's day as the caretaker reads it."""
    return time.strftime("%Y-%m-%d", time.localtime(created))


@bp.route("/clothes/<int:gid>/thumbnail")
@login_required
def thumbnail(gid: int):
    """A garment's thumbnail, by its id in the database (no path from the request reaches the file system)."""
    return Response(garment_or_404(gid).thumbnail, mimetype="image/jpeg")


@bp.route("/clothes/<int:gid>/voice")
@login_required
def voice(gid: int):
    """A garment's recorded voice label as a WAV file, by its id."""
    garment_or_404(gid)
    try:
        clip = closet().voice_clip(gid)
    except ClosetError as e:
        abort(500, description=str(e))
    if not clip:
        abort(404)
    return Response(clip, mimetype="audio/wav")


@bp.route("/clothes/<int:gid>/rename", methods=["POST"])
@login_required
def rename(gid: int):
    """Give a garment a new name (the closet's own checks: printable, short, not another garment's)."""
    garment_or_404(gid)
    try:
        g_ = closet().rename(str(gid), request.form.get("name", ""))
    except ClosetError as e:
        return problem(str(e))
    done(f"Garment {g_.id} is now called “{g_.name}”.")
    return redirect(url_for("clothes.index") + f"#garment-{gid}")


@bp.route("/clothes/<int:gid>/remove", methods=["POST"])
@login_required
def remove(gid: int):
    """Forget one enrolled view."""
    garment_or_404(gid)
    try:
        (g_,) = closet().remove(str(gid))
    except ClosetError as e:
        return problem(str(e))
    done(f"Forgot “{g_.label}” (id {g_.id}).")
    return redirect(url_for("clothes.index"))


def problem(message: str, code: int = 400):
    """The clothes page again, with one line saying what went wrong (nothing was changed)."""
    c = closet()
    garments = c.garments() if c is not None else []
    clips = c.recorded() if c is not None else set()
    return render_template("clothes.html", garments=garments, clips=clips, when=when, error=message,
                           max_mb=UPLOAD_MAX_BYTES >> 20), code


@bp.route("/clothes/enrol", methods=["POST"])
@login_required
def enrol_upload():
    """Enrol a garment from an uploaded photo (bounded in bytes by MAX_CONTENT_LENGTH, in pixels by its header)."""
    upload = request.files.get("photo")
    data = upload.read(UPLOAD_MAX_BYTES + 1) if upload is not None else b""
    if not data:
        return problem("Choose a photo of the garment to enrol.")
    message, ok = enrol(data, request.form.get("name", ""), bool(request.form.get("add_view")))
    if not ok:
        return problem(message)
    done(message)
    return redirect(url_for("clothes.index"))


@bp.route("/presses/<int:press_id>/enrol", methods=["GET", "POST"])
@login_required
def enrol_press(press_id: int):
    """Enrol the garment of a past press from its kept photo."""
    store = None
    try:
        store = PressStore(current_app.config["STATE_DIR"] / HISTORY_FILE, create=False)
        press = store.press(press_id)
        data = store.photo(press_id) if press is not None else None
    except HistoryError:
        press = data = None
    finally:
        if store is not None:
            store.close()
    if press is None or data is None:
        abort(404)
    error = None
    if request.method == "POST":
        message, ok = enrol(data, request.form.get("name", ""), bool(request.form.get("add_view")))
        if ok:
            done(message)
            return redirect(url_for("clothes.index"))
        error = message
    return render_template("enrol_press.html", press=press, error=error, name=request.form.get("name", ""),
                           when=time.strftime("%Y-%m-%d %H:%M", time.localtime(press.created))), 400 if error else 200


def enrol(photo: bytes, name: str, add_view: bool) -> tuple[str, bool]:
    """Run `wardrobe enrol` on the photo; (what it said, in one line, and whether the garment was enrolled)."""
    name = " ".join(name.split())
    if why := name_problem(name):  # a new name's own rules (not digits alone) are `wardrobe enrol`'s
        return f"The garment needs a name: {why}.", False
    try:
        check_header(photo, "the photo")
    except ImageError as e:
        return f"{str(e)[0].upper()}{str(e)[1:]}.", False
    if not ENROLLING.acquire(blocking=False):
        return "Another garment is being enrolled right now; try again in a moment.", False
    try:
        return run_enrol(photo, name, add_view)
    finally:
        ENROLLING.release()


def run_enrol(photo: bytes, name: str, add_view: bool) -> tuple[str, bool]:
    """`wardrobe enrol PHOTO --name NAME --json` on this closet's state and config, its answer in one line."""
    with tempfile.TemporaryDirectory(prefix="wardrobe-enrol-") as tmp:
        path = Path(tmp) / "photo"
        path.write_bytes(photo)
        cmd = [sys.executable, "-m", "wardrobe", "enrol", str(path), f"--name={name}", "--json",
               f"--state-dir={current_app.config['STATE_DIR']}"]
        if current_app.config["CONFIG_PATH"] is not None:
            cmd.append(f"--config={current_app.config['CONFIG_PATH']}")
        if add_view:
            cmd.append("--add-view")
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=ENROL_TIMEOUT_S, stdin=subprocess.DEVNULL)
        except (OSError, subprocess.TimeoutExpired) as e:
            return f"Enrolling could not run: {e}.", False
    try:
        (result,) = json.loads(r.stdout) if r.returncode in (0, 1) else ()
    except ValueError:  # no JSON, or not one result: the command stopped before the photo (one line on stderr)
        result = None
    if result is not None and result.get("enrolled"):
        message = f"Enrolled as {name!r} (id {result['id']}; {result['sentence']})"
        if result.get("looks_like") is not None:
            message += f" Note: it looks like {result['looks_like']!r}, already enrolled."
        return message, True
    if result is not None and result.get("why") == "name-taken":
        taken = result["taken"]
        reason = (f"another garment is already called {taken['name']!r} (id {taken['id']}) and this does not look "
                  f"like it; choose another name, or tick \"{ADD_VIEW_LABEL}\" if it is the same garment")
    elif result is not None:  # unreadable, or not a garment: the closet's own words
        reason = str(result.get("message", "")).replace(str(path), "the photo")
    else:
        log.warning("wardrobe enrol from the page: exit %d: %s", r.returncode, r.stderr.strip()[-2000:])
        lines = r.stderr.strip().splitlines()
        reason = (lines[-1].removeprefix("wardrobe: ") if lines else "the enrol command said nothing; the journal "
                  "says why").replace(str(path), "the photo").replace("without --add-view",
                                                                         f"without \"{ADD_VIEW_LABEL}\"")
    return f"Not enrolled: {reason}", False
