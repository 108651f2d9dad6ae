"""The settings page: the settings the user lives with (colour words, volume, aiming help, language).

They are written to the overlay in the state folder (settings.write_overlay: checked by Settings.validate, then
written to a temporary file and renamed), which the daemon reads after /etc/wardrobe/config.toml; then the running
daemon is asked to reload (SIGHUP, as `systemctl reload wardrobe`), so no restart is needed.
"""

from __future__ import annotations

import math

from flask import Blueprint, current_app, redirect, render_template, request, url_for

from wardrobe.errors import ConfigError
from wardrobe.lang import available, load
from wardrobe.running import request_reload
from wardrobe.settings import COLOUR_WORDS, overlay_path, overlay_problem, write_overlay
from wardrobe.web.auth import login_required
from wardrobe.web.common import current_settings, done

bp = Blueprint("settings", __name__)

COLOUR_EXAMPLES = {"basic": "the 12 families: blue, gray, brown", "plain": "navy blue, heather gray, peach",
                   "descriptive": "the CSS names: dark slate gray, teal, burly wood"}


def languages() -> list[tuple[str, str]]:
    """(code, the language's own name) for each language the closet can speak."""
    return [(code, load(code).name) for code in available()]


def form_values(settings) -> dict:
    return {"colour_names": settings.vision.colour_names, "volume": round(settings.speech.volume * 100),
            "aiming": settings.vision.aiming, "language": settings.speech.language}


@bp.route("/settings", methods=["GET", "POST"])
@login_required
def index():
    """Show the settings; a saved form is checked, written atomically and handed to the running daemon."""
    settings = current_settings()
    values, error = form_values(settings), None
    if request.method == "POST":
        f = request.form
        values = {"colour_names": f.get("colour_names", ""), "volume": f.get("volume", "").strip(),
                  "aiming": f.get("aiming") == "on", "language": f.get("language", "")}
        try:
            volume = float(values["volume"]) / 100 if values["volume"] else float("nan")
        except ValueError:
            volume = float("nan")
        try:
            if not math.isfinite(volume):  # empty, words, NaN and infinity alike
                raise ConfigError("the volume must be a number from 0 to 100")
            write_overlay(settings, {"vision": {"colour_names": values["colour_names"], "aiming": values["aiming"]},
                                     "speech": {"volume": volume, "language": values["language"]}})
        except ConfigError as e:  # Settings.validate's words; the volume is shown in percent on the page
            said = str(e).replace("speech.volume must be between 0 and 1", "the volume must be from 0 to 100")
            error = f"Not saved: {said}."
        else:
            not_told = request_reload(settings.state_dir)
            current_app.logger.info("settings saved to %s from the caretaker's page", overlay_path(settings.state_dir))
            done("Saved." + (f" Note: {not_told}." if not_told else " The closet uses them from its next press."))
            return redirect(url_for("settings.index"))
    damaged = overlay_problem(settings)
    if damaged is not None:  # the closet speaks with its config file alone until the form is saved again
        why = damaged.replace(str(overlay_path(settings.state_dir)), "the settings file")
        damaged = (f"The settings saved here before are not in use ({why}); the closet uses its configuration "
                   f"file. Save this form to replace them.")
    return render_template("settings.html", values=values, colour_words=COLOUR_WORDS, examples=COLOUR_EXAMPLES,
                           languages=languages(), error=error, damaged=damaged), 400 if error else 200
