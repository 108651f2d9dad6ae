"""What several pages share: the closet's settings read afresh, the password asked again, a note after a change."""

from __future__ import annotations

import logging

from flask import abort, current_app, flash, request

from wardrobe.errors import ConfigError, ModelError
from wardrobe.web.password import check_password, load_record

log = logging.getLogger(__name__)


def current_settings():
    """The closet's settings as the daemon would read them now: the config file, then the page's overlay."""
    from wardrobe import settings as settings_mod

    try:
        return settings_mod.load(current_app.config["CONFIG_PATH"],
                                 {"": {"state_dir": str(current_app.config["STATE_DIR"])}})
    except ConfigError as e:
        abort(500, description=f"The closet's settings cannot be read: {e}")


def garment_classes(settings) -> tuple[list[str], str | None]:
    """The garments a correction may name: the classes of the model the closet loads now (after an install or a
    rollback too; its sidecar only, the network is not loaded), else the packaged taxonomy's; and that model's
    "no garment" class."""
    from wardrobe.bundle import Bundle
    from wardrobe.models_store import bundle_to_load
    from wardrobe.taxonomy import packaged

    path, _warning = bundle_to_load(settings)
    try:
        if path is not None:
            b = Bundle.load(path, verify=False)
            return list(b.classes), b.background_class
    except ModelError as e:
        log.error("the model bundle's classes cannot be read (%s); the taxonomy's are offered", e)
    return packaged().classes, None


def password_again() -> str | None:
    """Check the password typed again on a form that changes something serious (rate limited like the login);
    None when it is right, otherwise why not in one line."""
    wait = current_app.config["LOGIN_LIMIT"].allow(request.remote_addr or "?")
    if wait:
        return f"Too many tries. Wait {int(wait) + 1} seconds, then try again."
    record = load_record(current_app.config["STATE_DIR"])
    if record is None or not check_password(record, request.form.get("password", "")):
        return "That password is not right; nothing was changed."
    current_app.config["LOGIN_LIMIT"].succeeded(request.remote_addr or "?")
    return None


def done(message: str) -> None:
    """A one-line note shown on the next page (kept in the signed session cookie)."""
    flash(message)
