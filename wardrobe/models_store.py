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

import json
import logging
import os
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from wardrobe.bundle import Bundle, check_version
from wardrobe.errors import ModelError
from wardrobe.signing import Trust

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Installed:
    """One installed version."""

    version: str
    path: Path
    created: str
    current: bool
    top1: float | None


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
            return list(json.loads(self.history_file.read_text()))
        except (FileNotFoundError, ValueError):
            return []

    def _write_history(self, order: list[str]) -> None:
        tmp = self.root / ".history.json.tmp"
        with open(tmp, "w") as f:
            json.dump(order, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.history_file)

    def current(self) -> str | None:
        """The version `current` points at."""
        return os.readlink(self.link) if self.link.is_symlink() else None

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
                top1 = b.metrics.get("test", {}).get(b.default_runtime, {}).get("all", {}).get("top1")
                out.append(Installed(p.name, p, b.created, p.name == cur, top1))
        return sorted(out, key=lambda i: i.created)

    def _newest(self) -> tuple[str, datetime] | None:
        """The newest model ever installed here (from newest.json, else from the installed versions)."""
        try:
            doc = json.loads(self.newest_file.read_text())
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
        newest = self._newest()
        if newest is None or created > newest[1]:
            tmp = self.root / ".newest.json.tmp"
            with open(tmp, "w") as f:
                json.dump({"version": version, "created": created.isoformat()}, f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.newest_file)

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
        bundle = Bundle.load(bundle_dir)  # refuses tampered or incompatible bundles with the reason
        signer = trust.check(Path(bundle_dir))  # refuses unsigned, untrusted or re-manifested bundles
        version = bundle.version
        created = _created(bundle.created, Path(bundle_dir))
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise ModelError(f"cannot make the model store {self.root}: {e.strerror or e} (use --state-dir to choose "
                             "a writable folder)") from None
        self.remove_leftovers()
        self._refuse_downgrade(version, created)
        target = self.root / version
        previous = self.current()
        if not target.exists():
            tmp = self.root / f".incoming-{version}-{os.getpid()}"
            shutil.rmtree(tmp, ignore_errors=True)
            try:
                tmp.mkdir()
                for f in sorted(Path(bundle_dir).iterdir()):
                    if f.is_file():
                        shutil.copyfile(f, tmp / f.name)
                        with open(tmp / f.name, "rb+") as fh:
                            os.fsync(fh.fileno())
                Bundle.load(tmp)  # the copy itself must verify, signature included
                trust.check(tmp)
                self._health(tmp, version, health_photos, previous)
                os.rename(tmp, target)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
            _fsync_dir(self.root)
            log.info("installed model %s, %s", version, signer)
        else:
            self._health(target, version, health_photos, previous)
        self.switch(version)
        self._record_newest(version, created)
        self.prune(keep)
        return version

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

    def switch(self, version: str) -> None:
        """Point `current` at an installed version by renaming a new symlink over it."""
        check_version(version)
        if not (self.root / version / "bundle.json").is_file():
            raise ModelError(f"model version {version} is not installed")
        tmp = self.root / ".current.tmp"
        tmp.unlink(missing_ok=True)
        os.symlink(version, tmp)
        os.replace(tmp, self.link)
        _fsync_dir(self.root)
        order = [v for v in self._history() if v != version] + [version]
        self._write_history(order)
        log.info("current model is now %s", version)

    def rollback(self, version: str | None = None) -> str:
        """Switch to the named version, or to the one in use before the current one."""
        if version is None:
            order = [v for v in self._history() if (self.root / v).is_dir()]
            cur = self.current()
            earlier = [v for v in order if v != cur]
            if not earlier:
                raise ModelError("there is no earlier model to roll back to")
            version = earlier[-1]
        self.switch(version)
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
