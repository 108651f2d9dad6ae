"""Signed model bundles: keys, signatures, the closet's trusted keys, no replay of old versions, key rotation.

Each attack is tried as a hostile tester would, through the caretaker's own commands, and must be refused
with one line while nothing in the store changes."""

from __future__ import annotations

import json
import os
import stat

import pytest

from tests.conftest import SIGNING_KEY, TRUSTED, trust
from tests.test_cli import wardrobe
from tests.test_models_store import make_version
from wardrobe.errors import ModelError, SigningKeyError
from wardrobe.models_store import ModelStore
from wardrobe.signing import Trust, keygen, sign_bundle


def snapshot(root) -> dict:
    """Every path under the store with its size, to prove nothing changed."""
    return {str(p.relative_to(root)): (p.is_symlink() and os.readlink(p)) or (p.is_file() and p.stat().st_size)
            for p in sorted(root.rglob("*"))} if root.exists() else {}


def test_keygen_writes_a_private_key_only_its_owner_reads_and_never_overwrites(tmp_path):
    private, public = keygen(tmp_path / "mine", "Ann")
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert public.read_text().startswith("wardrobe-ed25519 ") and public.read_text().strip().endswith("Ann")
    with pytest.raises(SigningKeyError, match="exists"):
        keygen(tmp_path / "mine")
    r = wardrobe("keygen", str(tmp_path / "mine"))
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "refusing to overwrite" in r.stderr


def test_cli_keygen_sign_and_install(tmp_path):
    assert wardrobe("keygen", str(tmp_path / "ct")).returncode == 0
    bundle = make_version(tmp_path, "cli-signed", sign=False)
    r = wardrobe("sign", str(bundle), "--key", str(tmp_path / "ct.key"))
    kid = json.loads((bundle / "signature.json").read_text())["key"]
    assert r.returncode == 0 and f"signed with key ct ({kid})" in r.stdout, r.stderr
    keys = tmp_path / "trusted"
    keys.mkdir()
    (keys / "ct.pub").write_bytes((tmp_path / "ct.pub").read_bytes())
    # the same key named the same way by the closet's doctor (it named only the file before)
    r = wardrobe("doctor", "--state-dir", str(tmp_path / "doc"), env={"WARDROBE_TRUSTED_KEYS": str(keys)})
    assert f"new models must be signed by: ct ({kid})" in r.stdout, r.stdout
    state = tmp_path / "state"
    r = wardrobe("install-model", str(bundle), "--state-dir", str(state), env={"WARDROBE_TRUSTED_KEYS": str(keys)})
    assert r.returncode == 0, r.stderr
    assert os.readlink(state / "models" / "current") == "cli-signed"
    assert (state / "models" / "cli-signed" / "signature.json").is_file()


def test_a_file_that_is_not_a_key_is_one_line(tmp_path):
    bundle = make_version(tmp_path, "k", sign=False)
    for bad in (tmp_path / "missing.key", bundle / "bundle.json", tmp_path / "k.pub"):
        if bad.name == "k.pub":
            keygen(tmp_path / "k")
        r = wardrobe("sign", str(bundle), "--key", str(bad))
        assert r.returncode == 2 and r.stderr.count("\n") == 1 and "Traceback" not in r.stderr, r.stderr


def test_unsigned_bundle_is_refused_unless_the_caretaker_allows_it(tmp_path):
    store = ModelStore(tmp_path / "models")
    store.install(make_version(tmp_path, "good"), trust())
    before = snapshot(store.root)
    with pytest.raises(ModelError, match="not signed"):
        store.install(make_version(tmp_path, "unsigned", sign=False), trust())
    assert snapshot(store.root) == before
    assert store.install(make_version(tmp_path, "unsigned-ok", sign=False), Trust(TRUSTED, allow_unsigned=True))


def test_a_folder_that_is_not_a_bundle_is_called_so_not_unsigned(tmp_path):
    """A walkthrough installed assets/photos and was told to sign it, which `sign` then refused."""
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "a.jpg").write_bytes(b"\xff\xd8\xff")
    state = str(tmp_path / "state")
    r = wardrobe("install-model", str(photos), "--state-dir", state)
    assert r.returncode == 2 and "is not a model bundle (no bundle.json)" in r.stderr and "sign it" not in r.stderr
    r = wardrobe("install-model", str(tmp_path / "bundel"), "--state-dir", state)
    assert r.returncode == 2 and "is not a model bundle: no such folder" in r.stderr, r.stderr
    assert r.stderr.count("\n") == 1


def test_allow_unsigned_is_a_config_setting(tmp_path):
    bundle = make_version(tmp_path, "plain", sign=False)
    state = tmp_path / "state"
    r = wardrobe("install-model", str(bundle), "--state-dir", str(state))
    assert r.returncode == 2 and "is not signed" in r.stderr and r.stderr.count("\n") == 1
    config = tmp_path / "config.toml"
    config.write_text("[model]\nallow_unsigned = true\n")
    r = wardrobe("install-model", str(bundle), "--state-dir", str(state), "--config", str(config))
    assert r.returncode == 0, r.stderr


def test_rewriting_the_checksums_breaks_the_signature(tmp_path):
    """The attack of the issue: change a file, write a matching manifest, keep the old signature."""
    from wardrobe.bundle import SIGNATURE, write_manifest

    store = ModelStore(tmp_path / "models")
    store.install(make_version(tmp_path, "good"), trust())
    bad = make_version(tmp_path, "evil")
    signature = (bad / SIGNATURE).read_bytes()
    meta = json.loads((bad / "bundle.json").read_text())
    meta["classes"][0], meta["classes"][1] = meta["classes"][1], meta["classes"][0]  # jeans become dresses
    (bad / "bundle.json").write_text(json.dumps(meta))
    write_manifest(bad)
    (bad / SIGNATURE).write_bytes(signature)
    before = snapshot(store.root)
    with pytest.raises(ModelError, match="signature does not match"):
        store.install(bad, trust())
    assert snapshot(store.root) == before and store.current() == "good"


def test_a_key_the_closet_does_not_trust_is_refused(tmp_path):
    keygen(tmp_path / "stranger")
    bundle = make_version(tmp_path, "strange", sign=False)
    sign_bundle(bundle, tmp_path / "stranger.key")
    store = ModelStore(tmp_path / "models")
    with pytest.raises(ModelError, match="does not trust"):
        store.install(bundle, trust())
    assert not store.root.exists() or store.versions() == []


def test_an_old_signed_bundle_sent_again_is_refused_but_rollback_by_name_works(tmp_path):
    store = ModelStore(tmp_path / "models")
    older = make_version(tmp_path / "c", "2025-12")  # signed, genuine, but older than what gets installed
    old = make_version(tmp_path / "a", "2026-01")
    new = make_version(tmp_path / "b", "2026-02")
    store.install(old, trust())
    store.install(new, trust())
    with pytest.raises(ModelError, match="older than 2026-02"):
        store.install(older, trust())
    assert store.current() == "2026-02"
    assert store.rollback("2026-01") == "2026-01"
    with pytest.raises(ModelError, match="older than 2026-02"):
        store.install(older, trust())  # still older than the newest ever installed
    # the replay guard survives the newest version being pruned away
    store.rollback("2026-02")
    store.install(make_version(tmp_path / "d", "2026-03"), trust(), keep=1)
    with pytest.raises(ModelError, match="older than 2026-03"):
        store.install(new, trust())


def test_key_rotation(tmp_path):
    """Add the new key, sign with it, then retire the old one: its bundles are refused from then on."""
    keys = tmp_path / "trusted-keys"
    keys.mkdir()
    old_private, old_public = keygen(tmp_path / "old")
    new_private, new_public = keygen(tmp_path / "new")
    (keys / "old.pub").write_bytes(old_public.read_bytes())
    closet = Trust(keys)
    store = ModelStore(tmp_path / "models")

    def signed(version, key):
        b = make_version(tmp_path / version, version, sign=False)
        sign_bundle(b, key)
        return b

    store.install(signed("r1", old_private), closet)
    with pytest.raises(ModelError, match="does not trust"):
        store.install(signed("r2", new_private), closet)
    (keys / "new.pub").write_bytes(new_public.read_bytes())  # step 1: trust both
    store.install(signed("r3", new_private), closet)
    (keys / "old.pub").unlink()  # step 2: retire the old key
    with pytest.raises(ModelError, match="does not trust"):
        store.install(signed("r4", old_private), closet)
    assert store.current() == "r3"
    assert store.rollback("r1") == "r1"  # installed models stay usable by name


def test_a_broken_key_file_in_the_trust_folder_does_not_stop_the_others(tmp_path):
    keys = tmp_path / "trusted-keys"
    keys.mkdir()
    (keys / "junk.pub").write_text("ssh-ed25519 AAAA not ours\n")
    (keys / "caretaker.pub").write_bytes((TRUSTED / "caretaker.pub").read_bytes())
    assert "caretaker" in Trust(keys).check(make_version(tmp_path, "ok"))


def test_signing_a_bundle_whose_manifest_is_wrong_is_refused(tmp_path):
    bundle = make_version(tmp_path, "wrong", sign=False)
    (bundle / "taxonomy.csv").write_text("altered\n")
    with pytest.raises(ModelError, match="checksum"):
        sign_bundle(bundle, SIGNING_KEY)
    assert not (bundle / "signature.json").exists()
