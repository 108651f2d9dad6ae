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
    "no garment" class. Which model that is takes hashing the bundle (tens of ms here, more on a Pi), so the answer
    is kept until the model store, the model's files or the trusted keys change."""
    from wardrobe.bundle import Bundle
    from wardrobe.models_store import bundle_to_load
    from wardrobe.taxonomy import packaged

    key = model_stamp(settings)
    kept = current_app.config.get("GARMENT_CLASSES_KEPT")
    if kept is not None and kept[0] == key:
        return kept[1]
    answer = packaged().classes, None
    try:
        path, _warning = bundle_to_load(settings)
        if path is not None:
            b = Bundle.load(path, verify=False)
            answer = list(b.classes), b.background_class
    except (ModelError, OSError) as e:
        log.error("the model bundle's classes cannot be read (%s); the taxonomy's are offered", e)
    current_app.config["GARMENT_CLASSES_KEPT"] = (key, answer)
    return answer


def model_stamp(settings) -> tuple:
    """What decides which model the closet loads, cheaply: the configured bundle and trust, the store's versions,
    its current link and history, and the names, sizes and times of the files of the bundle it points to and of the
    trusted keys (any change to a file is a new stamp)."""
    import os

    def listing(folder) -> tuple:
        try:
            with os.scandir(folder) as entries:
                return tuple(sorted((e.name, e.stat(follow_symlinks=False).st_mtime_ns,
                                     e.stat(follow_symlinks=False).st_size) for e in entries))
        except OSError:
            return ()

    store = settings.state_dir / "models"
    try:
        current = os.readlink(store / "current")
    except OSError:
        current = None
    model = settings.model
    return (str(model.bundle), str(model.trusted_keys), model.allow_unsigned, listing(store), current,
            listing(store / current) if current else (), listing(model.bundle) if model.bundle else (),
            listing(model.trusted_keys) if model.trusted_keys else ())


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
