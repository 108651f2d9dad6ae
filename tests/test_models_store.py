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
    from tests.conftest import TRUSTED
    from wardrobe.signing import key_id, read_public

    (pub,) = TRUSTED.glob("*.pub")
    assert r.stdout.count(f"  signed by {pub.stem} ({key_id(read_public(pub))})\n") == 2  # as the page says it
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


def test_the_replay_guard_records_before_the_switch_and_holds_after_pruning(tmp_path):
    """newest.json was written after the install and only when newer than itself, so never: once the newest
    model was pruned, an older signed bundle installed again."""
    store = ModelStore(tmp_path / "models")
    old, mid, new = (make_version(tmp_path, v) for v in ("old", "mid", "new"))  # made in this order
    store.install(old, trust())
    store.install(new, trust())
    assert json.loads(store.newest_file.read_text())["version"] == "new"
    store.rollback("old")
    shutil.rmtree(store.root / "new")  # as pruning it would
    with pytest.raises(ModelError, match="older than new"):
        store.install(mid, trust())
    assert store.current() == "old"


@pytest.mark.parametrize("name", ["current", "newest", "history", "Current"])
def test_the_stores_own_names_are_no_versions(tmp_path, name):
    """A signed bundle called "current" said "installed and current" and was never copied; `rollback current`
    left current -> current and said it had worked."""
    store = ModelStore(tmp_path / "models")
    store.install(make_version(tmp_path, "v1"), trust())
    d = tmp_path / "evil"
    shutil.copytree(make_version(tmp_path, "v2"), d)
    meta = json.loads((d / "bundle.json").read_text())
    meta["version"] = name
    (d / "bundle.json").write_text(json.dumps(meta))
    write_manifest(d)
    sign_bundle(d, SIGNING_KEY, loadable=False)  # a stolen key signs anything
    with pytest.raises(ModelError, match="keeps for itself"):
        store.install(d, trust())
    with pytest.raises(ModelError, match="keeps for itself"):
        store.rollback(name)
    assert store.current() == "v1" and (store.root / "current" / "bundle.json").is_file()


def test_concurrent_installs_lose_nothing(tmp_path):
    """Eight installs at once (one lock on the store, temporary names of their own): every one is in the history."""
    import subprocess
    import sys

    from tests.conftest import ROOT

    state = tmp_path / "state"
    bundles = [make_version(tmp_path, f"c{i}") for i in range(8)]
    procs = [subprocess.Popen([sys.executable, "-m", "wardrobe", "install-model", str(b), "--keep", "20",
                               "--state-dir", str(state)], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for b in bundles]
    results = [(p.wait(timeout=600), p.stderr.read()) for p in procs]
    errors = [e for rc, e in results if rc != 0 and "older than" not in e]
    assert not errors, errors
    store = ModelStore(state / "models")
    installed = {i.version for i in store.versions()}
    assert set(store._history()) == installed and store.current() in installed
    assert not list(store.root.glob(".*.tmp")) and not list(store.root.glob(".incoming-*"))


@pytest.mark.parametrize("odd", ["fifo", "symlink", "hardlink", "dev-zero"])
def test_only_regular_files_are_read(tmp_path, odd):
    """A FIFO hung the install, a link to /dev/zero ran out of memory, and links inside a signed bundle were
    followed (/etc/passwd was copied into the store): each is refused before anything is read."""
    import os

    d = make_version(tmp_path, "odd", sign=False)
    if odd == "fifo":
        os.mkfifo(d / "extra")
    elif odd == "symlink":
        os.symlink("/etc/passwd", d / "extra")
    elif odd == "hardlink":
        (tmp_path / "elsewhere").write_text("x")
        os.link(tmp_path / "elsewhere", d / "extra")
    else:
        (d / "bundle.json").unlink()
        os.symlink("/dev/zero", d / "bundle.json")
    store = ModelStore(tmp_path / "models")
    with pytest.raises(ModelError, match="not a regular file|hard link"):
        store.install(d, trust())
    assert not (store.root / "odd").exists()


def test_a_model_dropped_into_the_store_is_not_used(tmp_path):
    """An unsigned bundle copied into state/models with `current` pointed at it was loaded and doctor said OK.
    Now describe uses the last good signed model, says why in the log, and doctor reports it."""
    import os

    state = tmp_path / "state"
    store = ModelStore(state / "models")
    store.install(make_version(tmp_path, "good"), trust())
    dropped = store.root / "dropped"
    shutil.copytree(make_version(tmp_path, "dropped", sign=False), dropped)
    os.symlink("dropped", store.root / ".link")
    os.replace(store.root / ".link", store.link)
    r = wardrobe("describe", "--json", "--quiet", "--state-dir", str(state), str(SHIPPED.parent.parent / "assets"
                                                                               / "photos" / "home-shirt.jpg"))
    assert r.returncode == 0 and "installed model dropped is not used" in r.stderr and "using good" in r.stderr
    r = wardrobe("doctor", "--state-dir", str(state), "--camera", "folder", "--camera-source",
                 str(SHIPPED.parent.parent / "assets" / "photos"), "--output", "wav")
    assert "PROBLEM  model: the installed model dropped is not used" in r.stdout, r.stdout


def test_a_folder_where_the_current_link_belongs_is_not_loaded(tmp_path):
    """models/current replaced by a real folder holding an unsigned bundle was loaded with no check."""
    state = tmp_path / "state"
    store = ModelStore(state / "models")
    store.install(make_version(tmp_path, "good"), trust())
    store.link.unlink()
    shutil.copytree(make_version(tmp_path, "dropped", sign=False), store.link)
    r = wardrobe("describe", "--json", "--quiet", "--state-dir", str(state), str(SHIPPED.parent.parent / "assets"
                                                                               / "photos" / "home-shirt.jpg"))
    assert r.returncode == 0 and "is not a link to an installed model" in r.stderr, r.stderr
    assert json.loads(r.stdout)["garment"] is not None


@pytest.mark.parametrize("damage", ["manifest gone", "manifest a FIFO", "history a folder"])
def test_a_damaged_store_falls_back_to_the_last_good_model_never_a_traceback(tmp_path, damage):
    """A review found the current model's manifest.json missing (signature.json still there) crashing describe,
    the daemon and doctor with FileNotFoundError, and history.json made a folder crashing the fallback; a FIFO in
    the manifest's place would have hung them. Each is now the last good model (or the shipped one), said once."""
    import os

    from wardrobe import settings as settings_mod
    from wardrobe.models_store import bundle_to_load

    state = tmp_path / "state"
    store = ModelStore(state / "models")
    store.install(make_version(tmp_path, "good"), trust())
    store.install(make_version(tmp_path, "newer"), trust())
    if damage == "manifest gone":
        (store.root / "newer" / "manifest.json").unlink()
    elif damage == "manifest a FIFO":
        (store.root / "newer" / "manifest.json").unlink()
        os.mkfifo(store.root / "newer" / "manifest.json")
    else:
        (store.root / "newer" / "bundle.json").write_text("{}")  # the current one fails its checks, and then
        store.history_file.unlink()
        store.history_file.mkdir()  # the list of earlier versions cannot be read
    settings = settings_mod.load(None, {"": {"state_dir": str(state)}})
    path, warning = bundle_to_load(settings)
    assert warning and "the installed model newer is not used" in warning
    expected = SHIPPED if damage == "history a folder" else store.root / "good"  # no history: the shipped one
    assert path.resolve() == expected.resolve()
    r = wardrobe("describe", "--json", "--quiet", "--state-dir", str(state),
                 str(SHIPPED.parent.parent / "assets" / "photos" / "home-shirt.jpg"), timeout=120)
    assert r.returncode == 0 and "Traceback" not in r.stderr and json.loads(r.stdout)["garment"], r.stderr


def test_a_bundle_with_odd_metrics_is_still_listed(tmp_path):
    """`wardrobe models`, the page's model tab and every install list the versions; one whose bundle.json holds
    its test metrics as a list raised AttributeError there (an unused top-1 field read with a chain of .get)."""
    store = ModelStore(tmp_path / "state" / "models")
    odd = make_version(tmp_path, "odd")
    meta = json.loads((odd / "bundle.json").read_text())
    meta["metrics"]["test"] = [1, 2]
    (odd / "bundle.json").write_text(json.dumps(meta))
    write_manifest(odd)
    sign_bundle(odd, SIGNING_KEY)
    store.install(odd, trust())
    store.install(make_version(tmp_path, "next"), trust())
    assert [(i.version, i.figure) for i in store.versions()][0] == ("odd", None)
    r = wardrobe("models", "--state-dir", str(tmp_path / "state"))
    assert r.returncode == 0 and "odd" in r.stdout and "Traceback" not in r.stderr, r.stderr


def test_a_full_disk_during_an_install_names_the_store_not_the_bundle(tmp_path, small_disk):
    """On a full disk install-model said "<the bundle being installed>/bundle.json: No space left on device": the
    file it read from, on a disk with room. Now it names the closet's disk and says nothing changed. (The 8 MiB disk
    cannot hold the 21 MB bundle: it fills during the copy.)"""
    state = small_disk.path / "state"
    bundle = make_version(tmp_path, "big")
    r = wardrobe("install-model", str(bundle), "--state-dir", str(state))
    assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
    assert "the closet's disk is full" in r.stderr and "nothing changed" in r.stderr and str(bundle) not in r.stderr
    store = ModelStore(state / "models")
    assert store.current() is None and not list(store.root.glob(".incoming-*"))
