"""Signed model bundles: Ed25519 keys for the caretaker, a signature over the manifest, trusted keys on the closet.

The manifest lists every file of a bundle with its SHA-256, so a signature over the manifest's exact bytes
covers the whole bundle. The signature lives beside it:
    signature.json   {"format": "wardrobe-ed25519-1", "key": KEY_ID, "signature": BASE64}

Keys:
    NAME.key   the caretaker's private key (PKCS#8 PEM, mode 0600); never leaves the caretaker's machine
    NAME.pub   one line: "wardrobe-ed25519 BASE64 COMMENT"; copied into /etc/wardrobe/trusted-keys/ on the closet
The key id is the first 16 hex digits of the SHA-256 of the raw 32-byte public key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from wardrobe.bundle import SIGNATURE, Bundle, verify_manifest
from wardrobe.errors import ModelError, SigningKeyError
from wardrobe.files import read_json, read_small, undecodable

FORMAT = "wardrobe-ed25519-1"
PUBLIC_PREFIX = "wardrobe-ed25519"


def key_id(raw_public: bytes) -> str:
    """Short fingerprint of a raw Ed25519 public key."""
    return hashlib.sha256(raw_public).hexdigest()[:16]


def key_label(name: str, kid: str) -> str:
    """A key named the same way everywhere (sign, install, doctor, the page): "caretaker (0123456789abcdef)"."""
    return f"{name} ({kid})"


def keygen(stem: Path, comment: str = "") -> tuple[Path, Path]:
    """Write STEM.key (private, 0600) and STEM.pub; refuse to overwrite either."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    comment = comment or Path(stem).name
    for text, what in ((Path(stem).name, "the key's name"), (comment, "the comment")):
        if not text.strip() or text.strip(".") == "":
            raise SigningKeyError(f"{what} is empty: name the key, e.g. `wardrobe keygen caretaker`")
        if undecodable(text) or any(unicodedata.category(ch)[0] == "C" for ch in text):
            raise SigningKeyError(f"{what} {text!r} must be UTF-8 text without control characters")
    private_path, public_path = Path(f"{stem}.key"), Path(f"{stem}.pub")
    for p in (private_path, public_path):
        if p.exists():
            raise SigningKeyError(f"{p} exists: refusing to overwrite a key (choose another name)")
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    written = []
    try:
        fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        written.append(private_path)
        with os.fdopen(fd, "wb") as f:
            f.write(pem)
        fd = os.open(public_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        written.append(public_path)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(f"{PUBLIC_PREFIX} {base64.b64encode(raw).decode()} {comment}\n")
    except OSError as e:
        for p in written:  # never half a pair: the next keygen of the name would say it "exists"
            p.unlink(missing_ok=True)
        raise SigningKeyError(f"cannot write the key pair {stem}: {e.strerror or e}") from e
    return private_path, public_path


def load_private(path: Path):
    """The Ed25519 private key in a file made by keygen; SigningKeyError if it is not one."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise SigningKeyError(f"cannot read the signing key {path}: {e.strerror or e}") from e
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as e:
        raise SigningKeyError(f"{path} is not a private key made by `wardrobe keygen`") from e
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningKeyError(f"{path} is not an Ed25519 key (make one with `wardrobe keygen`)")
    return key


def read_public(path: Path) -> bytes:
    """The raw 32-byte public key of a .pub file; SigningKeyError if it is not one."""
    try:
        parts = Path(path).read_text().split()
    except (OSError, UnicodeDecodeError) as e:
        raise SigningKeyError(f"cannot read the public key {path}: {getattr(e, 'strerror', None) or e}") from e
    try:
        if len(parts) < 2 or parts[0] != PUBLIC_PREFIX:
            raise ValueError
        raw = base64.b64decode(parts[1], validate=True)
        if len(raw) != 32:
            raise ValueError
    except (ValueError, binascii.Error):
        raise SigningKeyError(f"{path} is not a wardrobe public key (a line starting '{PUBLIC_PREFIX} ')") from None
    return raw


def sign_bundle(bundle: Path, private_key: Path, loadable: bool = True) -> str:
    """Check the bundle (loadable: that a closet can load it; else only its manifest), then write signature.json
    over the manifest's exact bytes; return the key id. (loadable=False signs what a stolen key would: the
    tests' hostile bundles, which the closet must refuse by itself.)"""
    from cryptography.hazmat.primitives import serialization

    key = load_private(private_key)
    bundle = Path(bundle)
    if loadable:
        Bundle.load(bundle)  # sign only a bundle a closet can load, whose manifest describes it exactly
    else:
        verify_manifest(bundle)
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    signature = key.sign((bundle / "manifest.json").read_bytes())
    kid = key_id(raw)
    doc = {"format": FORMAT, "key": kid, "signature": base64.b64encode(signature).decode()}
    (bundle / SIGNATURE).write_text(json.dumps(doc, indent=2) + "\n")
    return kid


@dataclass(frozen=True)
class Trust:
    """What the closet accepts: bundles signed by a key in keys_dir, or unsigned ones if allowed."""

    keys_dir: Path
    allow_unsigned: bool = False

    def keys(self) -> dict[str, tuple[Path, bytes]]:
        """key id -> (file, raw key) for every *.pub in keys_dir (a file that is not a key is skipped)."""
        out: dict[str, tuple[Path, bytes]] = {}
        try:
            files = sorted(self.keys_dir.glob("*.pub"))
        except OSError:
            return out
        for f in files:
            try:
                raw = read_public(f)
            except SigningKeyError:
                continue
            out[key_id(raw)] = (f, raw)
        return out

    def check(self, bundle: Path) -> str:
        """Which trusted key signed the bundle ("unsigned (allowed)" if allowed); ModelError otherwise.

        Call after verify_manifest: the signature vouches for the manifest, the manifest for every file."""
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

        sig_file = Path(bundle) / SIGNATURE
        if not sig_file.is_file():
            if not (Path(bundle) / "bundle.json").is_file():  # only whether it is there: nothing unsigned is read
                raise ModelError(f"{bundle} is not a model bundle (no bundle.json): a bundle is the folder "
                                 f"`wardrobe train export` writes")
            if self.allow_unsigned:
                return "unsigned (allowed by the configuration)"
            raise ModelError(f"{bundle} is not signed: sign it with `wardrobe sign {bundle} --key KEY` "
                             f"(or allow unsigned models in the closet's configuration)")
        try:
            doc = read_json(sig_file)
            if doc.get("format") != FORMAT:
                raise ValueError(f"format {doc.get('format')!r}")
            kid, signature = str(doc["key"]), base64.b64decode(doc["signature"], validate=True)
        except (OSError, ValueError, KeyError, TypeError, AttributeError, binascii.Error) as e:
            raise ModelError(f"{bundle}/{SIGNATURE} is unreadable: {e}") from e
        keys = self.keys()
        if kid not in keys:
            where = (f"{self.keys_dir} is a file: trusted_keys names a folder of .pub files"
                     if Path(self.keys_dir).is_file() else f"none in {self.keys_dir}")
            raise ModelError(f"{bundle} is signed by key {kid}, which this closet does not trust "
                             f"(trusted: {', '.join(sorted(keys)) or where})")
        try:
            manifest = read_small(Path(bundle) / "manifest.json")
        except (OSError, ValueError) as e:  # missing, a folder, a FIFO: the bundle cannot be trusted, never a crash
            raise ModelError(f"{bundle}/manifest.json cannot be read: {getattr(e, 'strerror', None) or e}") from None
        try:
            Ed25519PublicKey.from_public_bytes(keys[kid][1]).verify(signature, manifest)
        except InvalidSignature:
            raise ModelError(f"{bundle}: the signature does not match its manifest: the bundle was altered after "
                             "it was signed") from None
        return f"signed by {key_label(keys[kid][0].stem, kid)}"
