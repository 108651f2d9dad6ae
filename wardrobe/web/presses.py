"""The recent presses page: each answer with its photo, unsure ones first, marked right or corrected."""

from __future__ import annotations

import time

from flask import Blueprint, Response, abort, current_app, g, redirect, render_template, request, url_for
from markupsafe import Markup

from wardrobe.colours import FAMILIES
from wardrobe.history import FILE_NAME, HistoryError, PressStore
from wardrobe.lang import available as available_languages
from wardrobe.taxonomy import PATTERNS
from wardrobe.web.auth import login_required
from wardrobe.web.common import current_settings, garment_classes

bp = Blueprint("presses", __name__)


def store() -> PressStore | None:
    """This request's connection to the history (None: the closet has not kept a press yet)."""
    if "store" not in g:
        try:
            g.store = PressStore(current_app.config["STATE_DIR"] / FILE_NAME, create=False)
        except HistoryError as e:
            if "no press history yet" not in str(e):
                abort(500, description=str(e))
            g.store = None
    return g.store


def close_store(_exc=None) -> None:
    """Close the request's connection (registered as a teardown)."""
    s = g.pop("store", None)
    if s is not None:
        s.close()


def when(created: float) -> str:
    """A press's time as the caretaker reads it."""
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(created))


@bp.app_template_global()
def said_lang(press) -> Markup:
    """` lang="ko"` on what a press said when it is not in the page's English (nothing when it is)."""
    code = press.result.get("language")
    if isinstance(code, str) and code != "en" and code in available_languages():
        return Markup(' lang="{}"').format(code)
    return Markup("")


@bp.route("/")
@login_required
def index():
    """The review queue: unsure answers not yet reviewed first, then the rest, newest first."""
    s = store()
    try:
        presses = s.presses() if s is not None else []
    except HistoryError as e:
        abort(500, description=str(e))
    return render_template("presses.html", presses=presses, when=when)


@bp.route("/presses/<int:press_id>/photo")
@login_required
def photo(press_id: int):
    """A press's photo, found by its id in the database (no path from the request reaches the file system)."""
    return kept(lambda s: s.photo(press_id), "image/jpeg")


@bp.route("/presses/<int:press_id>/audio")
@login_required
def audio(press_id: int):
    """What the closet said for a press, as the WAV it played (by id, from the database)."""
    return kept(lambda s: s.audio(press_id), "audio/wav")


def kept(read, mimetype: str) -> Response:
    """Bytes the history keeps for a press, read by `read(store)`; 404 when there are none."""
    s = store()
    data = read(s) if s is not None else None
    if data is None:
        abort(404)
    return Response(data, mimetype=mimetype)


@bp.route("/presses/<int:press_id>/right", methods=["POST"])
@login_required
def right(press_id: int):
    """The answer was right."""
    correct(press_id, "right")
    return redirect(url_for("presses.index") + f"#press-{press_id}")


@bp.route("/presses/<int:press_id>/wrong", methods=["GET", "POST"])
@login_required
def wrong(press_id: int):
    """The short form for a wrong answer: the right garment, its main colour and any others, and the pattern."""
    s = store()
    press = s.press(press_id) if s is not None else None
    if press is None:
        abort(404)
    classes, background = garment_classes(current_settings())
    chosen = {"garment": press.result.get("garment"), "main": "", "families": [], "pattern": ""}
    c = press.correction
    if c is not None and c.verdict == "wrong":  # corrected before: the form shows what the caretaker gave then
        main = c.families[0] if c.families and (c.main_known or len(c.families) == 1) else ""
        chosen = {"garment": c.garment, "main": main, "families": c.families[1:] if main else c.families,
                  "pattern": c.pattern or ""}
    error = None
    if request.method == "POST":
        chosen = {"garment": request.form.get("garment", ""), "main": request.form.get("main", ""),
                  "families": request.form.getlist("family"), "pattern": request.form.get("pattern", "")}
        error = form_problem(chosen, classes, background)
        if error is None:  # the main colour first: the closet says it first, and of the garment's largest part
            families = [chosen["main"], *chosen["families"]] if chosen["main"] else chosen["families"]
            nothing = chosen["garment"] == background  # no garment: no colour, no pattern
            correct(press_id, "wrong", chosen["garment"], [] if nothing else families,
                    None if nothing else chosen["pattern"] or None)
            return redirect(url_for("presses.index") + f"#press-{press_id}")
    return render_template("wrong.html", press=press, classes=classes, families=FAMILIES, patterns=PATTERNS,
                           chosen=chosen, error=error, when=when), 400 if error else 200


def form_problem(chosen: dict, classes: list[str], background: str | None) -> str | None:
    """What is wrong with a filled-in correction form, in one sentence (None: nothing)."""
    if chosen["garment"] not in classes:
        return "Choose the right garment from the list."
    if not chosen["main"] and chosen["garment"] != background:
        return "Choose the main colour."
    if any(f not in FAMILIES for f in [chosen["main"], *chosen["families"]] if f):
        return "Choose colours from the list."
    if chosen["pattern"] and chosen["pattern"] not in PATTERNS:
        return "Choose a pattern from the list, or \"not sure\"."
    return None


def correct(press_id: int, verdict: str, garment=None, families=(), pattern=None) -> None:
    """Store a verdict; an unknown press is 404, a store failure one line on an error page."""
    s = store()
    if s is None or s.press(press_id) is None:
        abort(404)
    try:
        s.correct(press_id, verdict, garment, list(families), pattern)
    except HistoryError as e:
        abort(500, description=str(e))
