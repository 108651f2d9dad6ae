"""The model page: the version in use, who signed it, its test figures, the installed versions, and rollback.

Installing stays with `wardrobe push-model` over SSH. Rolling back asks for the password again, switches the
models store's `current` (the same ModelStore.rollback as `wardrobe rollback`), then asks the running daemon to
reload, as `systemctl reload wardrobe` would.
"""

from __future__ import annotations

from flask import Blueprint, current_app, redirect, render_template, request, url_for

from wardrobe.bundle import Bundle
from wardrobe.errors import ModelError
from wardrobe.models_store import ModelStore, bundle_to_load, verified
from wardrobe.running import request_reload
from wardrobe.settings import shipped_bundle
from wardrobe.signing import Trust
from wardrobe.web.auth import login_required
from wardrobe.web.common import current_settings, done, password_again

bp = Blueprint("model", __name__)


def signer_of(path, settings) -> str:
    """Who signed a bundle, as `wardrobe sign` and the trust check say it: "signed by NAME (FINGERPRINT)"."""
    if shipped_bundle() is not None and path.resolve() == shipped_bundle().resolve():
        return "the model that came with wardrobe (installed with the software; no caretaker's signature)"
    try:
        return verified(path, Trust(settings.model.trusted_keys, settings.model.allow_unsigned))
    except ModelError as e:
        return f"not trusted: {e}"


def figures(bundle: Bundle, runtime: str) -> dict:
    """The bundle's test figures for the runtime in use: the named one every command shows (Bundle.test_figure), per
    set of photos against the datasets' labels (n, top-1, top-2), and the rest."""
    test = bundle.metrics.get("test", {}) if isinstance(bundle.metrics, dict) else {}
    rt = test.get(runtime) or test.get(bundle.default_runtime) or {}
    sets = [(name, v) for name, v in rt.items() if isinstance(v, dict) and isinstance(v.get("top1"), int | float)]
    sets.sort(key=lambda s: s[0] != "all")
    return {"named": bundle.test_figure(runtime), "sets": sets, "colour": rt.get("colour_family_acc"),
            "latency": rt.get("latency_ms_median")}


def page(error: str | None = None, code: int = 200):
    settings = current_settings()
    store = ModelStore(settings.state_dir / "models")
    path, warning = bundle_to_load(settings)
    bundle = None
    if path is not None:
        try:
            bundle = Bundle.load(path, verify=False)
        except ModelError as e:
            warning = f"{warning + '; ' if warning else ''}{e}"
    runtime = settings.model.runtime or (bundle.default_runtime if bundle else "")
    installed = store.versions()
    current = store.current()
    return render_template(
        "model.html", bundle=bundle, path=path, warning=warning, runtime=runtime,
        signer=signer_of(path, settings) if path is not None else None,
        figures=figures(bundle, runtime) if bundle else None, installed=installed, order=store.history(),
        choices=[i.version for i in reversed(installed) if i.version != current], current=current,
        from_store=path is not None and path.parent.resolve() == store.root.resolve(),
        configured=settings.model.bundle is not None, error=error), code


@bp.route("/model")
@login_required
def index():
    """The model in use and the installed versions."""
    return page()


@bp.route("/model/rollback", methods=["POST"])
@login_required
def rollback():
    """Switch back to an earlier installed version, once the password is typed again; then reload the daemon."""
    wrong = password_again()
    if wrong:
        return page(wrong, 429 if wrong.startswith("Too many") else 403)
    settings = current_settings()
    store = ModelStore(settings.state_dir / "models")
    wanted = request.form.get("version") or None
    if wanted is not None and wanted not in {i.version for i in store.versions()}:
        return page("Choose an installed version from the list; nothing was changed.", 400)
    try:
        version = store.rollback(wanted)
    except ModelError as e:
        return page(f"Nothing was changed: {e}.", 400)
    current_app.logger.info("model rolled back to %s from the caretaker's page", version)
    not_told = request_reload(settings.state_dir)
    done(f"The current model is now {version}." + (f" Note: {not_told}." if not_told else
                                                    " The closet is loading it now."))
    return redirect(url_for("model.index"))
