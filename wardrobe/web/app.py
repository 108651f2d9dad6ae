"""The app factory: settings in, a Flask app out, with every page's routes and the security checks wired."""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path

from flask import Flask, jsonify, render_template
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from wardrobe.web import auth, clothes, health, model, presses, security, settings_page
from wardrobe.web.password import session_secret

log = logging.getLogger(__name__)

SESSION_HOURS = 8.0
"""How long a login lasts."""


def create_app(settings, session_hours: float = SESSION_HOURS, login_tries: int = 5,
               config_path: Path | None = None) -> Flask:
    """The caretaker's page for the closet whose state is in settings.state_dir; config_path: the config file
    the settings came from (read again by the settings page, and handed to `wardrobe enrol`)."""
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=session_secret(settings.state_dir),
        STATE_DIR=settings.state_dir,
        CONFIG_PATH=config_path,
        LOGIN_LIMIT=security.RateLimit(login_tries, 60.0),
        LIVE_SESSIONS=security.LiveSessions(),
        SESSION_COOKIE_NAME="wardrobe_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
        SESSION_COOKIE_SECURE=settings.web.certificate is not None,  # over HTTPS, never sent in the clear
        PERMANENT_SESSION_LIFETIME=timedelta(hours=session_hours),
        MAX_CONTENT_LENGTH=clothes.UPLOAD_MAX_BYTES,  # a photo to enrol is the largest thing ever posted
        MAX_FORM_MEMORY_SIZE=64 << 10,  # a form's text fields: nothing larger is ever typed
    )
    security.install(app)
    app.register_blueprint(auth.bp)
    app.register_blueprint(presses.bp)
    app.register_blueprint(clothes.bp)
    app.register_blueprint(model.bp)
    app.register_blueprint(health.bp)
    app.register_blueprint(settings_page.bp)
    app.teardown_appcontext(presses.close_store)
    app.teardown_appcontext(clothes.close_closet)

    @app.get("/healthz")
    def healthz():
        """Alive, and nothing private."""
        return jsonify(ok=True)

    @app.errorhandler(RequestEntityTooLarge)
    def too_large(e: RequestEntityTooLarge):
        """An upload over the byte limit, or a form over its own, in one line (nothing of it was kept)."""
        from flask import request

        if request.mimetype == "multipart/form-data" and (request.content_length or 0) > clothes.UPLOAD_MAX_BYTES:
            message = f"That is larger than {clothes.UPLOAD_MAX_BYTES >> 20} MB: choose a smaller photo."
        else:  # a text field or a form far longer than any this page sends
            message = "That form is far larger than any this page sends; nothing was changed."
        return render_template("error.html", code=413, title="Too large", message=message), 413

    @app.errorhandler(HTTPException)
    def http_error(e: HTTPException):
        """Every error as a short page in plain words (never a traceback)."""
        return render_template("error.html", code=e.code, title=e.name, message=e.description), e.code

    @app.errorhandler(Exception)
    def unexpected(e: Exception):
        log.exception("unexpected error on the caretaker's page")
        return render_template("error.html", code=500, title="Something went wrong",
                               message="Something went wrong on the closet; the log says what."), 500

    return app
