"""The versioned model store: verified install, atomic switch, health check, rollback, pruning."""

from __future__ import annotations

import itertools
import json
import shutil

import pytest

from tests.conftest import SHIPPED, SIGNING_KEY, trust
from tests.test_cli import wardrobe
from wardrobe.bundle import write_manifest
from wardrobe.errors import ModelError
from wardrobe.models_store import ModelStore
from wardrobe.signing import sign_bundle

_made = itertools.count()


def make_version(tmp_path, version: str, broken_bias: bool = False, sign: bool = True):
    """A copy of the shipped bundle under another version name, newer than the ones made before it,
    signed with the test caretaker's key (optionally unsigned, or rigged to answer one class)."""
    d = tmp_path / f"bundle-{version}"
    shutil.copytree(SHIPPED, d)
    meta = json.loads((d / "bundle.json").read_text())
    meta["version"] = version
    n = next(_made)
    meta["created"] = f"2026-01-01T{n // 3600:02d}:{n // 60 % 60:02d}:{n % 60:02d}+00:00"
    if broken_bias:
        # A model that answers class 0 whatever it sees: rig the last layer's bias (torch weights).
        from safetensors.torch import load_file, save_file

        state = load_file(str(d / "model.safetensors"))
        outputs = (len(meta["classes"]) + len(meta.get("colour_families", [])) + len(meta.get("occasions", {}))
                   + len(meta.get("patterns", {})))
        bias = next(v for k, v in reversed(state.items()) if k.endswith(".bias") and v.shape == (outputs,))
        bias[: len(meta["classes"])] = -1e4
        bias[0] = 1e4
        save_file(state, str(d / "model.safetensors"))
        meta["default_runtime"] = "torch"
    (d / "bundle.json").write_text(json.dumps(meta))
    write_manifest(d)
    if sign:
        sign_bundle(d, SIGNING_KEY)
    return d


def test_install_switch_rollback_prune(tmp_path):
    from wardrobe.cli import health_photos

    store = ModelStore(tmp_path / "models")
    for v in ("v1", "v22", "v333", "v4444"):
        store.install(make_version(tmp_path, v), trust(), health_photos(), keep=3)
        assert store.current() == v
        assert (store.root / "current" / "bundle.json").is_file()
    assert [i.version for i in store.versions()] == ["v22", "v333", "v4444"]  # v1 pruned, keep 3
    assert store.rollback() == "v333" and store.current() == "v333"
    assert store.rollback("v22") == "v22"
    with pytest.raises(ModelError, match="not installed"):
        store.rollback("v1")


def test_tampered_bundle_is_refused_and_current_stays(tmp_path):
    store = ModelStore(tmp_path / "models")
    store.install(make_version(tmp_path, "good"), trust())
    bad = make_version(tmp_path, "bad")
    (bad / "model.onnx").write_bytes((bad / "model.onnx").read_bytes()[:-10])
    with pytest.raises(ModelError, match="checksum"):
        store.install(bad, trust())
    assert store.current() == "good" and not (store.root / "bad").exists()


def test_model_that_sees_one_class_fails_its_health_check(tmp_path):
    from wardrobe.cli import health_photos

    store = ModelStore(tmp_path / "models")
    store.install(make_version(tmp_path, "good"), trust(), health_photos())
    with pytest.raises(ModelError, match="failed its health check.*good stays current"):
        store.install(make_version(tmp_path, "rigged", broken_bias=True), trust(), health_photos())
    assert store.current() == "good"


def test_half_copied_install_leaves_the_old_model(tmp_path):
    """A copy cut off before its rename is just a hidden temp dir: current never points at it."""
    store = ModelStore(tmp_path / "models")
    store.install(make_version(tmp_path, "good"), trust())
    partial = store.root / ".incoming-next-999"
    shutil.copytree(SHIPPED, partial)
    (partial / "model.onnx").write_bytes(b"half")
    assert store.current() == "good" and [i.version for i in store.versions()] == ["good"]


def test_cli_install_models_rollback(tmp_path):
    state = tmp_path / "state"
    for v in ("a1", "b22"):
        r = wardrobe("install-model", str(make_version(tmp_path, v)), "--state-dir", str(state))
        assert r.returncode == 0, r.stderr
    r = wardrobe("models", "--state-dir", str(state))
    assert "* b22" in r.stdout and "  a1" in r.stdout and "test top-1" in r.stdout
    r = wardrobe("rollback", "--state-dir", str(state))
    assert r.returncode == 0 and "current model is now a1" in r.stdout
    r = wardrobe("describe", "--json", "--quiet", "--state-dir", str(state), str(SHIPPED.parent.parent / "assets"
                                                                                  / "photos" / "home-pants.jpg"))
    assert json.loads(r.stdout)["garment"] is not None


def test_a_model_that_fails_its_health_check_is_never_installed(tmp_path):
    """Not listed, not a rollback target, and the corrected bundle with the same version installs."""
    from wardrobe.cli import health_photos

    store = ModelStore(tmp_path / "models")
    store.install(make_version(tmp_path / "a", "good"), trust(), health_photos())
    with pytest.raises(ModelError, match="failed its health check"):
        store.install(make_version(tmp_path / "b", "fixed", broken_bias=True), trust(), health_photos())
    assert [i.version for i in store.versions()] == ["good"] and not (store.root / "fixed").exists()
    with pytest.raises(ModelError, match="not installed"):
        store.rollback("fixed")
    assert store.install(make_version(tmp_path / "c", "fixed"), trust(), health_photos()) == "fixed"
    assert store.current() == "fixed"
    assert not list(store.root.glob(".incoming-*"))


def test_a_killed_install_leaves_nothing_behind(tmp_path):
    """The temp folder of an install whose process died is removed by the next install."""
    import subprocess

    store = ModelStore(tmp_path / "models")
    store.install(make_version(tmp_path / "a", "good"), trust())
    child = subprocess.Popen(["true"])  # a process that has exited: its pid no longer exists
    child.wait()
    left = store.root / f".incoming-next-{child.pid}"
    shutil.copytree(SHIPPED, left)
    store.install(make_version(tmp_path / "b", "next"), trust())
    assert not left.exists() and store.current() == "next"
