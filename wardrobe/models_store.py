"""Installed model versions: verify, install into a new directory, switch `current` atomically, roll back.

Layout under the state directory:
    models/<version>/     one verified bundle per version (never changed after install)
    models/current        symlink to the version in use (replaced atomically by rename)
    models/history.json   install and switch order, for rollback
    models/newest.json    the version and creation time of the newest model ever installed: an older bundle
                          is refused (a replayed old signed bundle), going back is `rollback VERSION`
A power cut at any moment leaves either the old or the new `current`, never a half-copied one.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from wardrobe.bundle import Bundle, check_files, check_version
from wardrobe.errors import ModelError
from wardrobe.files import read_json, write_atomic
from wardrobe.signing import Trust

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Installed:
    """One installed version."""

    version: str
    path: Path
    created: str
    current: bool
    figure: str | None = None
    """Bundle.test_figure: the named accuracy figure every command shows."""


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _alive(pid: int) -> bool:
    """Whether a process with this id exists."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        pass
    return True


def health_check(bundle_path: Path, photos: list[Path]) -> str:
    """Load the bundle and describe the photos; ModelError if it fails, gives NaN, sees one class in all, or
    disagrees with its own fp32 references on this processor with no fallback that agrees."""
    from wardrobe.classify import Classifier
    from wardrobe.images import read_image

    clf = Classifier.load(bundle_path)
    if not clf.agrees_here:
        raise ModelError(f"on this processor the model {clf.self_check}")
    garments = [clf.predict(read_image(p)).garment for p in photos]
    if len(photos) >= 3 and len(set(garments)) == 1:
        raise ModelError(f"the model calls every health photo {garments[0]!r}: it is broken")
    return f"{len(photos)} photos described: {', '.join(garments)}; self-check: {clf.self_check}"


def _created(text: str, where: Path) -> datetime:
    """A bundle's creation time, comparable with the others (naive times are read as UTC)."""
    try:
        t = datetime.fromisoformat(str(text))
    except ValueError:
        raise ModelError(f"{where}: its creation time {text!r} is not a date and time") from None
    return t if t.tzinfo else t.replace(tzinfo=UTC)


class ModelStore:
    """The versioned model directory of one closet."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.link = self.root / "current"
        self.history_file = self.root / "history.json"
        self.newest_file = self.root / "newest.json"

    def _history(self) -> list[str]:
        try:
            doc = read_json(self.history_file)
        except (OSError, ValueError):  # missing, a folder, damaged: no history (never a crash)
            return []
        return [v for v in doc if isinstance(v, str)] if isinstance(doc, list) else []

    def _write_json(self, target: Path, doc) -> None:
        """Write JSON atomically under a temporary name of its own (two writers never share one)."""
        write_atomic(target, json.dumps(doc).encode(), mode=0o600)

    def _write_history(self, order: list[str]) -> None:
        self._write_json(self.history_file, order)

    @contextlib.contextmanager
    def locked(self):
        """Hold the store's lock: installs, switches and rollbacks run one at a time, in any process."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.root / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as e:
            raise ModelError(f"cannot make the model store {self.root}: {e.strerror or e} (use --state-dir to "
                             "choose a writable folder)") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def current(self) -> str | None:
        """The version `current` points at."""
        return os.readlink(self.link) if self.link.is_symlink() else None

    def history(self) -> list[str]:
        """The versions in the order they were last switched to (the current one last): what rollback reads."""
        return self._history()

    def versions(self) -> list[Installed]:
        """Installed versions, oldest first."""
        cur = self.current()
        out = []
        for p in sorted(self.root.iterdir()) if self.root.is_dir() else []:
            if p.is_dir() and not p.is_symlink() and not p.name.startswith("."):
                try:
                    b = Bundle.load(p, verify=False)
                except ModelError:
                    continue
                out.append(Installed(p.name, p, b.created, p.name == cur, b.test_figure()))
        return sorted(out, key=lambda i: i.created)

    def _newest(self) -> tuple[str, datetime] | None:
        """The newest model ever installed here (from newest.json, else from the installed versions)."""
        try:
            doc = read_json(self.newest_file)
            return str(doc["version"]), _created(doc["created"], self.newest_file)
        except (FileNotFoundError, ValueError, KeyError, TypeError, ModelError):
            pass
        dated = []
        for i in self.versions():
            try:
                dated.append((i.version, _created(i.created, i.path)))
            except ModelError:
                continue
        return max(dated, key=lambda d: d[1]) if dated else None

    def _record_newest(self, version: str, created: datetime) -> None:
        """Remember the newest creation time ever installed (never lowered), before `current` moves to it: once
        recorded, an older signed bundle is refused even after the newest is pruned."""
        newest = self._newest() if self.newest_file.exists() else None
        if newest is None or created >= newest[1]:
            self._write_json(self.newest_file, {"version": version, "created": created.isoformat()})

    def _refuse_downgrade(self, version: str, created: datetime) -> None:
        newest = self._newest()
        if newest and created < newest[1] and version != self.current():
            raise ModelError(f"model {version} is older than {newest[0]}, already installed here: refusing to go "
                             f"back (an old bundle sent again?); to use an older installed model on purpose: "
                             f"wardrobe rollback VERSION")

    def install(self, bundle_dir: Path, trust: Trust, health_photos: list[Path] | None = None, keep: int = 3) -> str:
        """Verify, check the signature, copy to a temp dir, fsync, health-check the copy, rename into place, switch.

        A bundle that fails any step is never installed: no folder, no listing, nothing to roll back to,
        and a corrected bundle with the same version installs normally afterwards. A bundle older than the
        newest one installed is refused: versions only go forward, except by `rollback VERSION`.
        """
        check_files(Path(bundle_dir))  # regular files only: no links, FIFOs or devices, sane sizes
        signer = trust.check(Path(bundle_dir))  # the signature first: nothing unsigned is parsed
        bundle = Bundle.load(bundle_dir)  # refuses tampered or incompatible bundles with the reason
        with self.locked():
            return self._install(bundle, Path(bundle_dir), trust, signer, health_photos, keep)

    def _install(self, bundle: Bundle, bundle_dir: Path, trust: Trust, signer: str, health_photos: list[Path] | None,
                 keep: int) -> str:
        version = bundle.version
        created = _created(bundle.created, Path(bundle_dir))
        self.remove_leftovers()
        self._refuse_downgrade(version, created)
        target = self.root / version
        previous = self.current()
        if not target.exists():
            tmp = self.root / f".incoming-{version}-{os.getpid()}"
            shutil.rmtree(tmp, ignore_errors=True)
            try:
                try:
                    tmp.mkdir()
                    for f in sorted(Path(bundle_dir).iterdir()):
                        if f.is_file() and not f.is_symlink():
                            shutil.copyfile(f, tmp / f.name, follow_symlinks=False)
                            with open(tmp / f.name, "rb+") as fh:
                                os.fsync(fh.fileno())
                except OSError as e:  # shutil names the file it read from; the trouble is the store's disk
                    raise ModelError(self._copy_failed(e)) from None
                check_files(tmp)
                trust.check(tmp)  # the copy itself must verify, signature first
                copied = Bundle.load(tmp)
                if (copied.version, copied.created) != (version, bundle.created):
                    raise ModelError(f"{bundle_dir} changed while it was being installed: nothing installed")
                self._health(tmp, version, health_photos, previous)
                os.rename(tmp, target)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
            _fsync_dir(self.root)
            log.info("installed model %s, %s", version, signer)
        else:
            try:
                same = (target / "manifest.json").read_bytes() == (Path(bundle_dir) / "manifest.json").read_bytes()
            except OSError:
                same = False
            if not same:  # installing would quietly keep the files already there under this name
                raise ModelError(f"version {version} is already installed with other contents: nothing changed "
                                 f"(export the new model again; it gets a version of its own)")
            self._health(target, version, health_photos, previous)
        self._record_newest(version, created)
        self._switch(version)
        self.prune(keep)
        return version

    def _copy_failed(self, e: OSError) -> str:
        """Why the model could not be copied into the store, in words: a full disk is said as such."""
        import errno

        if e.errno in (errno.ENOSPC, errno.EDQUOT):
            return (f"the closet's disk is full: the model could not be copied into {self.root}; nothing changed "
                    f"(free some space, or remove old models: `wardrobe models`)")
        return f"the model could not be copied into {self.root} ({e.strerror or e}); nothing changed"

    @staticmethod
    def _health(path: Path, version: str, photos: list[Path] | None, previous: str | None) -> None:
        if photos:
            try:
                log.info("health check: %s", health_check(path, photos))
            except ModelError as e:
                raise ModelError(f"model {version} failed its health check ({e}); {previous or 'no model'} stays "
                                 "current") from e

    def remove_leftovers(self) -> list[str]:
        """Delete temp folders of installs that were killed (their process is gone)."""
        removed = []
        for p in self.root.glob(".incoming-*"):
            pid = p.name.rsplit("-", 1)[-1]
            if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
                shutil.rmtree(p, ignore_errors=True)
                removed.append(p.name)
                log.info("removed %s, left by an install that was stopped", p.name)
        return removed

    def _switch(self, version: str) -> None:
        """Point `current` at an installed version by renaming a new symlink over it (the caller holds the lock)."""
        check_version(version)
        folder = self.root / version
        if folder.is_symlink() or not (folder / "bundle.json").is_file():
            raise ModelError(f"model version {version} is not installed")
        tmp = self.root / f".current.{os.getpid()}.tmp"
        tmp.unlink(missing_ok=True)
        os.symlink(version, tmp)
        os.replace(tmp, self.link)
        _fsync_dir(self.root)
        order = [v for v in self._history() if v != version] + [version]
        self._write_history(order)
        log.info("current model is now %s", version)

    def rollback(self, version: str | None = None) -> str:
        """Switch to the named version, or to the one in use before the current one."""
        with self.locked():
            return self._rollback(version)

    def _rollback(self, version: str | None) -> str:
        if version is None:
            order = [v for v in self._history() if (self.root / v).is_dir()]
            cur = self.current()
            earlier = [v for v in order if v != cur]
            if not earlier:
                raise ModelError("there is no earlier model to roll back to")
            version = earlier[-1]
        self._switch(version)
        return version

    def prune(self, keep: int) -> list[str]:
        """Remove the oldest versions beyond keep; the current one and the one before it always stay."""
        order = [v for v in self._history() if (self.root / v).is_dir()]
        protected = set(order[-2:]) | {self.current()}
        installed = [i.version for i in self.versions()]
        removable = [v for v in installed if v not in protected]
        excess = max(0, len(installed) - keep)
        removed = removable[:excess]
        for v in removed:
            shutil.rmtree(self.root / v)
            log.info("pruned model %s", v)
        if removed:
            self._write_history([v for v in order if v not in removed])
        return removed


def verified(path: Path, trust: Trust) -> str:
    """Who signed an installed bundle, after its files, signature and checksums are checked again; ModelError
    with the reason otherwise (a bundle changed or dropped into the store after its install)."""
    check_files(path)
    signer = trust.check(path)
    Bundle.load(path)
    return signer


def bundle_to_load(settings) -> tuple[Path | None, str | None]:
    """The bundle the closet loads, and a warning for the journal and `doctor` (None: all is well).

    A bundle named in the configuration is the caretaker's choice. Otherwise the store's current version is
    used only if its signature and checksums still hold; if not, the most recently used earlier version that
    holds (the last good signed model), else the shipped default. Whatever is refused is said in the warning."""
    from wardrobe.settings import default_bundle, shipped_bundle

    if settings.model.bundle:
        return settings.model.bundle, None
    store = ModelStore(settings.state_dir / "models")
    current = store.current()
    shipped = shipped_bundle()
    if current is None:
        if store.link.exists() or store.link.is_symlink():  # a folder or file put where the link belongs
            return shipped, f"{store.link} is not a link to an installed model: not used; using the shipped model"
        return default_bundle(settings), None
    trust = Trust(settings.model.trusted_keys, settings.model.allow_unsigned)
    try:
        verified(store.root / current, trust)
        return store.root / current, None
    except ModelError as e:
        refused = f"the installed model {current} is not used: {e}"
    for version in reversed(store._history()):
        if version != current and (store.root / version).is_dir():
            try:
                verified(store.root / version, trust)
            except ModelError:
                continue
            return store.root / version, f"{refused}; using {version}, the last good signed model"
    return shipped, f"{refused}; using the shipped model"
