"""Model bundles: weights plus a sidecar describing labels, preprocessing, metrics and a SHA-256 manifest.

A bundle is a directory:
    bundle.json      format_version, version, created, arch, classes, preprocess, runtimes, temperature, metrics
    manifest.json    {"files": {name: sha256}} for every other file
    signature.json   optional Ed25519 signature over manifest.json (see signing.py)
    model.onnx       ONNX, fp32 or int8 (bundle.json's onnx_precision; the describe default: `default_runtime`)
    model.safetensors  fp32 weights for the torch runtime (quantized dynamically at load)
No pickled code: loading never executes anything from the bundle.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from wardrobe.errors import ModelError
from wardrobe.files import read_json
from wardrobe.preprocess import Preprocess

if TYPE_CHECKING:
    from wardrobe.colour_decision import ColourDecision

FORMAT_VERSION = 1
REQUIRED = ("format_version", "version", "created", "arch", "classes", "preprocess", "runtimes")
SIGNATURE = "signature.json"
UNHASHED = ("manifest.json", SIGNATURE)
"""The two files the manifest cannot list: itself, and the signature over it."""
VERSION_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
"""A version names a folder on the closet: letters, digits, dot, dash and underscore, no path."""


RESERVED_VERSIONS = frozenset({"current", "newest", "history", "lock"})
"""Names the model store uses for itself: a bundle called "current" would be the link, not a version."""
MAX_FILE_BYTES = {"bundle.json": 4 << 20, "manifest.json": 1 << 20, SIGNATURE: 64 << 10}
"""Largest sidecar files read (a link to /dev/zero must not be read to the end)."""


def check_version(version: str) -> str:
    """The version if it is a safe folder name; ModelError otherwise (never a path like ../x or a/b, never one of
    the store's own names)."""
    if not isinstance(version, str) or not VERSION_PATTERN.fullmatch(version) or version in (".", ".."):
        raise ModelError(f"model version {version!r} is not a plain name (letters, digits, . _ -; no paths)")
    if version.lower() in RESERVED_VERSIONS:
        raise ModelError(f"model version {version!r} is a name the model store keeps for itself")
    return version


def check_files(path: Path) -> None:
    """Every entry of a bundle folder is a plain regular file, not a link (symbolic or hard), FIFO or device, and
    the sidecars are of a sane size; ModelError otherwise. Nothing is opened or parsed here."""
    import stat

    if not Path(path).is_dir():
        raise ModelError(f"{path} is not a model bundle: {'not a folder' if Path(path).exists() else 'no such folder'}")
    try:
        entries = list(Path(path).iterdir())
    except OSError as e:
        raise ModelError(f"{path}: cannot list the bundle: {e.strerror or e}") from None
    for f in entries:
        st = f.lstat()
        if not stat.S_ISREG(st.st_mode):
            raise ModelError(f"{path}: {f.name!r} is not a regular file (links, folders, FIFOs and devices are refused)")
        if st.st_nlink > 1:
            raise ModelError(f"{path}: {f.name!r} is a hard link to a file elsewhere: refused")
        if st.st_size > MAX_FILE_BYTES.get(f.name, 64 << 20):
            raise ModelError(f"{path}: {f.name!r} is too large ({st.st_size} bytes)")


FILE_NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
"""A bundle's file names: letters, digits, . _ -, starting with a letter or digit (never an option to scp or ssh
such as "-oProxyCommand=...", never hidden, never a path)."""


def plain_file_name(name: str, what: str, path: Path) -> str:
    """A file name inside the bundle folder itself, of FILE_NAME_PATTERN: no directories, no .., not absolute,
    not hidden, not starting with "-"."""
    if not isinstance(name, str) or not FILE_NAME_PATTERN.fullmatch(name):
        raise ModelError(f"{path}: {what} {name!r} is not a plain file name inside the bundle")
    return name


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file, read in blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_manifest(directory: Path) -> dict:
    """Hash every file in the bundle except the manifest and its signature, and write manifest.json.

    A new manifest invalidates an old signature, so that is removed: sign again after this."""
    (directory / SIGNATURE).unlink(missing_ok=True)
    files = {p.name: sha256_file(p) for p in sorted(directory.iterdir()) if p.is_file() and p.name not in UNHASHED}
    manifest = {"format_version": FORMAT_VERSION, "files": files}
    (directory / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


@dataclass(frozen=True)
class Bundle:
    """A verified model bundle on disk."""

    path: Path
    version: str
    created: str
    arch: str
    classes: list[str]
    preprocess: Preprocess
    runtimes: dict[str, str]
    """runtime name ("onnx", "torch") -> file name in the bundle."""
    default_runtime: str
    temperature: float
    colour_families: list[str] = field(default_factory=list)
    """Names of the colour-family outputs that follow the garment logits (empty: no colour head)."""
    occasions: dict[str, float] = field(default_factory=dict)
    """Occasion outputs (e.g. "usage:formal") that follow the colour outputs, each with the sigmoid
    probability above which it may be spoken (empty: no occasion head)."""
    background_class: str | None = None
    """The class that means "no garment in the photo" (None: the model has no such class)."""
    patterns: dict[str, float] = field(default_factory=dict)
    """Pattern outputs ("striped", ...) that follow the occasions, each with the probability above which it
    may be said (empty: no pattern head)."""
    embedding: str | None = None
    """The name of the model's embedding output (pooled features), or None when it has none."""
    cutout_weight: float = 0.0
    """Share of the garment cut out on white in the garment probabilities, beside the photo (0: the photo
    alone); chosen on validation (`wardrobe train evaluate`, set by `wardrobe train rebuild --cutout-weight`)."""
    colour_decision: ColourDecision | None = None
    """The main colour's family as learnt from photos labelled by eye and by the shop, fitted to this bundle's
    colour head (None: the hand-made rule alone); `wardrobe train colour-decision` writes it."""
    metrics: dict = field(default_factory=dict)
    meta: dict = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path | str, verify: bool = True) -> Bundle:
        """Read and verify a bundle directory; raise ModelError with a plain reason if it is unusable."""
        path = Path(path)
        if not path.is_dir():
            raise ModelError(f"no model bundle at {path}")
        try:
            meta = read_json(path / "bundle.json")
        except FileNotFoundError:
            raise ModelError(f"{path} is not a model bundle (no bundle.json)") from None
        except (OSError, ValueError) as e:
            raise ModelError(f"{path}/bundle.json is unreadable: {e}") from e
        if not isinstance(meta, dict):
            raise ModelError(f"{path}/bundle.json is not a JSON object")
        missing = [k for k in REQUIRED if k not in meta]
        if missing:
            raise ModelError(f"{path}/bundle.json lacks {', '.join(missing)}")
        if isinstance(meta["format_version"], bool) or not isinstance(meta["format_version"], int):
            raise ModelError(f"{path}/bundle.json: format_version must be a whole number, not "
                             f"{str(meta['format_version'])[:40]!r}")
        if meta["format_version"] != FORMAT_VERSION:
            raise ModelError(f"bundle format {meta['format_version']} is not supported (this wardrobe reads format "
                             f"{FORMAT_VERSION}); export it again with this version's training script")
        if verify:
            verify_manifest(path)
        try:
            pre = Preprocess.from_dict(meta["preprocess"])
        except (KeyError, TypeError, ValueError, OverflowError) as e:  # OverflowError: a 400-digit number
            raise ModelError(f"{path}: bad preprocessing block: {e}") from e
        classes = meta["classes"]
        if (not isinstance(classes, list) or not all(isinstance(c, str) and c for c in classes) or len(classes) < 2
                or len(set(classes)) != len(classes)):
            raise ModelError(f"{path}: the class list must hold at least two distinct names")
        check_version(meta["version"])
        runtimes = meta["runtimes"]
        if (not isinstance(runtimes, dict) or not runtimes
                or not all(isinstance(k, str) and isinstance(v, str) for k, v in runtimes.items())):
            raise ModelError(f"{path}: runtimes must map runtime names to file names")
        for rt, fname in runtimes.items():
            plain_file_name(fname, f"the {rt} weights file", path)
            if not (path / fname).is_file():
                raise ModelError(f"{path}: the {rt} weights file {fname} is missing")
        default = meta.get("default_runtime") or next(iter(runtimes))
        if not isinstance(default, str) or default not in runtimes:
            raise ModelError(f"{path}: default_runtime {default!r} is not one of its runtimes")
        families = meta.get("colour_families", [])
        if not isinstance(families, list) or not all(isinstance(f, str) for f in families):
            raise ModelError(f"{path}: colour_families must be a list of names")
        temperature = meta.get("temperature", 1.0)
        if isinstance(temperature, bool) or not isinstance(temperature, int | float) or not 0.01 <= temperature <= 100:
            raise ModelError(f"{path}: temperature must be a number from 0.01 to 100")
        if not isinstance(meta.get("occasions", {}), dict) or not isinstance(meta.get("patterns", {}), dict):
            raise ModelError(f"{path}: occasions and patterns must be objects")
        try:
            occasions = {str(k): float(v) for k, v in meta.get("occasions", {}).items()}
        except (AttributeError, TypeError, ValueError, OverflowError) as e:
            raise ModelError(f"{path}: bad occasions block: {e}") from e
        try:
            patterns = {str(k): float(v) for k, v in meta.get("patterns", {}).items()}
        except (AttributeError, TypeError, ValueError, OverflowError) as e:
            raise ModelError(f"{path}: bad patterns block: {e}") from e
        cutout_weight = meta.get("cutout_weight", 0.0)
        if isinstance(cutout_weight, bool) or not isinstance(cutout_weight, int | float) or not 0 <= cutout_weight <= 1:
            raise ModelError(f"{path}: cutout_weight must be a number from 0 to 1")
        decision = meta.get("colour_decision")
        if decision is not None:
            if not isinstance(decision, dict) or not families:
                raise ModelError(f"{path}: a colour_decision block needs an object and a colour head")
            from wardrobe.colour_decision import ColourDecision

            decision = ColourDecision.from_json(decision, families, f"{path}/bundle.json")
        background = meta.get("background_class")
        if background is not None and background not in classes:
            raise ModelError(f"{path}: background_class {background!r} is not one of the classes")
        return cls(path=path, version=str(meta["version"]), created=str(meta["created"]), arch=str(meta["arch"]),
                   classes=classes, preprocess=pre, runtimes=runtimes, default_runtime=default,
                   temperature=float(temperature),
                   colour_families=list(families), occasions=occasions,
                   background_class=background, patterns=patterns,
                   embedding=str(meta["embedding"]) if meta.get("embedding") else None,
                   cutout_weight=float(cutout_weight), colour_decision=decision, metrics=meta.get("metrics", {}),
                   meta=meta)

    @property
    def outputs(self) -> int:
        """Width of the model's logits: garments, colour families, occasions, patterns."""
        return len(self.classes) + len(self.colour_families) + len(self.occasions) + len(self.patterns)

    def test_figure(self, runtime: str | None = None) -> str | None:
        """The one accuracy figure every command shows, named: "test top-1 81.9 % home / 90.8 % product" (the
        classifier on the held-out test split, with its default runtime unless another is named), or, where the
        export was given the photos named by eye, "test top-1 83.6 % home by eye / 94.6 % product by eye": the product
        photos judged by a sighted person's names (the shop's labels misfile about one in seven), the home photos
        by eye too where named, else by the sender's folder."""
        def top1(block, name: str):  # a sidecar is read as it comes: any level may be of another type
            entry = block.get(name) if isinstance(block, dict) else None
            return entry.get("top1") if isinstance(entry, dict) else None

        test = self.metrics.get("test", {}) if isinstance(self.metrics, dict) else None
        scores = test.get(runtime or self.default_runtime) if isinstance(test, dict) else None
        if not isinstance(scores, dict):
            return None
        home, shop = (top1(scores, s) for s in ("clothing-photos", "product-photos"))
        home_eye, shop_eye = (top1(scores.get("by_eye"), s) for s in ("clothing-photos", "product-photos"))
        if isinstance(home, float) and isinstance(shop, float):
            if isinstance(shop_eye, float):  # named by eye: what the user hears, judged as a sighted person would
                home_part = (f"{100 * home_eye:.1f} % home by eye" if isinstance(home_eye, float)
                             else f"{100 * home:.1f} % home")
                return f"test top-1 {home_part} / {100 * shop_eye:.1f} % product by eye"
            return f"test top-1 {100 * home:.1f} % home / {100 * shop:.1f} % product"
        every = top1(scores, "all")
        return f"test top-1 {100 * every:.1f} %" if isinstance(every, float) else None


def verify_manifest(path: Path) -> None:
    """Every file listed matches its SHA-256 and no unlisted file is present; ModelError otherwise."""
    try:
        manifest = read_json(path / "manifest.json")
        if not isinstance(manifest, dict):
            raise ValueError("it must be a JSON object")
        files: dict[str, str] = manifest["files"]
        if not isinstance(files, dict) or not all(isinstance(v, str) for v in files.values()):
            raise ValueError("files must map file names to SHA-256 digests")
    except FileNotFoundError:
        raise ModelError(f"{path} has no manifest.json: refusing an unverifiable bundle") from None
    except (OSError, ValueError, KeyError) as e:
        raise ModelError(f"{path}/manifest.json is unreadable: {e}") from e
    for name in files:
        plain_file_name(name, "the manifest entry", path)
    try:
        present = {p.name for p in path.iterdir() if p.name not in UNHASHED}  # hidden files and folders count too
        for name in present:
            plain_file_name(name, "the file", path)
        extra = present - set(files)
        if extra:
            raise ModelError(f"{path} holds files the manifest does not list: {', '.join(sorted(extra))}")
        for name, digest in files.items():
            f = path / name
            if not f.is_file():
                raise ModelError(f"{path}: {name} is missing (listed in the manifest)")
            if sha256_file(f) != digest:
                raise ModelError(f"{path}: {name} does not match its checksum: the bundle is damaged or was altered")
    except OSError as e:
        raise ModelError(f"{path}: cannot read the bundle's files: {e.strerror or e}") from None
