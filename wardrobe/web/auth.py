"""Logging in and out: the password form, rate limited per client, and the sessions it opens."""

from __future__ import annotations

import functools
import hashlib
import hmac
import time

from flask import Blueprint, abort, current_app, redirect, render_template, request, session, url_for

from wardrobe.web.password import check_password, load_record

bp = Blueprint("auth", __name__)


def password_mark(record: dict) -> str:
    """A mark of the current password kept in the session: setting a new password ends every session."""
    key = current_app.config["SECRET_KEY"]
    return hmac.new(key, record["hash"].encode(), hashlib.sha256).hexdigest()[:32]


def logged_in() -> bool:
    """Whether this request carries a live session of the current password."""
    record = load_record(current_app.config["STATE_DIR"])
    since = session.get("since")
    lifetime = current_app.permanent_session_lifetime.total_seconds()
    return (record is not None and isinstance(since, int | float) and 0 <= time.time() - since < lifetime
            and hmac.compare_digest(str(session.get("pw", "")), password_mark(record))
            and current_app.config["LIVE_SESSIONS"].holds(session.get("sid")))


def login_required(view):
    """Send a visitor without a live session to the login form."""
    @functools.wraps(view)
    def wrapped(*args, **kwargs):
        if not logged_in():
            session.pop("since", None)
            return redirect(url_for("auth.login", next=request.path))
        return view(*args, **kwargs)
    return wrapped


def safe_next(target: str | None) -> str:
    """Where to go after logging in: a path on this site only (never //elsewhere or https://elsewhere)."""
    if (target and target.startswith("/") and not target.startswith("//") and "\\" not in target
            and all(" " < c != "\x7f" for c in target)):  # browsers drop tabs and newlines: "/\t/evil" is //evil
        return target
    return url_for("presses.index")


@bp.route("/login", methods=["GET", "POST"])
def login():
    """The password form."""
    error = None
    if request.method == "POST":
        wait = current_app.config["LOGIN_LIMIT"].allow(request.remote_addr or "?")
        if wait:
            response = current_app.make_response((render_template(
                "login.html", error=f"Too many tries. Wait {int(wait) + 1} seconds, then try again."), 429))
            response.headers["Retry-After"] = str(int(wait) + 1)
            return response
        record = load_record(current_app.config["STATE_DIR"])
        if record is None:
            abort(503, description="No password is set: run `wardrobe web password` on the closet.")
        if check_password(record, request.form.get("password", "")):
            current_app.config["LOGIN_LIMIT"].succeeded(request.remote_addr or "?")
            session.clear()  # a fresh session and CSRF token at login: nothing from before it carries over
            session.permanent = True
            session.update(since=time.time(), pw=password_mark(record),
                           sid=current_app.config["LIVE_SESSIONS"].open())
            return redirect(safe_next(request.args.get("next")))
        error = "That password is not right."
    return render_template("login.html", error=error), 200 if error is None else 403


@bp.route("/logout", methods=["POST"])
def logout():
    """End the session, on the server too: a copy of the cookie taken on the way is worthless from now on."""
    current_app.config["LIVE_SESSIONS"].close(session.get("sid"))
    session.clear()
    return redirect(url_for("auth.login"))
