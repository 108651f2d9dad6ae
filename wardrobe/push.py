"""Caretaker commands over SSH: push a model to a closet, list its models, roll back.

Uses the system `ssh` and `scp` (key authentication, `~/.ssh/config` honoured, BatchMode so a
password prompt can never hang it). On the closet the work is done by its own `wardrobe
install-model` / `rollback`, so the same checks run whether a caretaker is local or remote.
"""

from __future__ import annotations

import re
import shlex
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from wardrobe.bundle import SIGNATURE, Bundle
from wardrobe.errors import RemoteError

SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
"""A file name that may be copied to a closet: it cannot be read as an option or a hidden file."""


@dataclass(frozen=True)
class Remote:
    """How to reach one closet and run wardrobe there."""

    target: str
    """user@host, or a Host alias from ~/.ssh/config."""
    ssh_options: list[str] = field(default_factory=list)
    """Extra ssh_config options for ssh and scp, as KEY=VALUE (IdentityFile=..., Port=2222)."""
    wardrobe: str = "sudo -u wardrobe /opt/wardrobe/venv/bin/wardrobe"
    """The wardrobe command on the closet."""
    reload: str = "sudo systemctl reload wardrobe"
    """Tells the running appliance to pick up the new model."""
    check: str = "systemctl is-active --quiet wardrobe"
    """Succeeds when the appliance is still running after the reload."""
    timeout_s: float = 600.0

    def __post_init__(self) -> None:
        # ssh would read "-oProxyCommand=..." as an option and run it: a closet's name never starts with "-".
        if not self.target or self.target.startswith("-") or any(c.isspace() for c in self.target):
            raise RemoteError(f"{self.target!r} is not a closet address (user@host or a Host alias)")
        for o in self.ssh_options:
            if "=" not in o or o.startswith("-"):
                raise RemoteError(f"--ssh-option {o!r}: expected KEY=VALUE")

    def options(self) -> list[str]:
        """-o KEY=VALUE for each extra option."""
        return [x for o in self.ssh_options for x in ("-o", o)]

    def run(self, command: str, what: str) -> str:
        """Run a shell command on the closet; RemoteError naming the step on failure."""
        cmd = ["ssh", "-o", "BatchMode=yes", *self.options(), "--", self.target, command]
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=self.timeout_s)
        except subprocess.TimeoutExpired as e:
            raise RemoteError(f"{what}: no answer from {self.target} in {self.timeout_s:.0f} s") from e
        if r.returncode != 0:
            reason = (r.stderr.strip().splitlines() or [f"exit code {r.returncode}"])[-1]
            raise RemoteError(f"{what} failed: {reason}")
        return r.stdout

    def copy(self, local_files: list[Path], remote_dir: str, limit_kbps: int = 0, what: str = "copying the bundle",
             names: list[str] | None = None) -> None:
        """scp files into a directory on the closet, under their own names or the given ones. Every operand
        follows "--": a local file called "-oProxyCommand=..." is a file, never an option."""
        limit = ["-l", str(limit_kbps)] if limit_kbps else []
        pairs = [(Path(f), n) for f, n in zip(local_files, names or [Path(f).name for f in local_files], strict=True)]
        for _, n in pairs:
            if not SAFE_NAME.fullmatch(n):
                raise RemoteError(f"{what}: {n!r} is not a plain file name (letters, digits, . _ -; not starting "
                                  "with - or .)")
        batches = ([([f for f, _ in pairs], "")] if names is None  # one scp for the bundle, one per renamed photo
                   else [([f], n) for f, n in pairs])
        for batch, new_name in batches:
            dest = f"{self.target}:{remote_dir}/{new_name}"
            cmd = ["scp", "-q", "-o", "BatchMode=yes", *limit, *self.options(), "--", *map(str, batch), dest]
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=self.timeout_s)
            if r.returncode != 0:
                reason = (r.stderr.strip().splitlines() or [f"exit code {r.returncode}"])[-1]
                raise RemoteError(f"{what} failed: {reason}")


def push_model(remote: Remote, bundle_dir: Path, keep: int = 3, limit_kbps: int = 0, say=print) -> str:
    """Verify here, copy, install (verify + health check) there, reload, check; roll back if the check fails."""
    say(f"1/5 checking the bundle here: {bundle_dir}")
    bundle = Bundle.load(bundle_dir)
    say(f"    version {bundle.version}, {len(bundle.classes)} garment classes")
    if not (Path(bundle_dir) / SIGNATURE).is_file():  # said here, before minutes of copying
        say(f"    not signed: the closet refuses it unless it allows unsigned models (`wardrobe sign {bundle_dir} "
            f"--key KEY` first)")
    files = sorted(p for p in Path(bundle_dir).iterdir() if p.is_file())
    incoming = remote.run("mktemp -d /tmp/wardrobe-push.XXXXXX", "making a folder on the closet").strip()
    try:
        say(f"2/5 copying {sum(f.stat().st_size for f in files) / 1e6:.1f} MB to {remote.target}")
        remote.copy(files, incoming, limit_kbps)
        say("3/5 verifying and installing on the closet (checksums, format, health photos)")
        say("    " + remote.run(f"{remote.wardrobe} install-model {shlex.quote(incoming)} --keep {keep}",
                                "installing on the closet").strip().splitlines()[0])
    finally:
        try:
            remote.run(f"rm -rf {shlex.quote(incoming)}", "cleaning up")
        except RemoteError:
            pass  # a leftover temp folder is harmless
    say("4/5 reloading the appliance")
    try:
        remote.run(remote.reload, "reloading the appliance")
        say("5/5 checking the appliance is running")
        remote.run(remote.check, "checking the appliance")
    except RemoteError as e:
        say(f"    {e}; rolling back")
        remote.run(f"{remote.wardrobe} rollback", "rolling back")
        try:
            remote.run(remote.reload, "reloading after the rollback")
        except RemoteError:
            pass
        raise RemoteError(f"{e}; the previous model is current again") from e
    say(f"done: {bundle.version} is the current model on {remote.target}")
    return bundle.version


def remote_models(remote: Remote) -> str:
    """The closet's `wardrobe models` listing."""
    return remote.run(f"{remote.wardrobe} models", "listing models")


def remote_rollback(remote: Remote, version: str | None) -> str:
    """Roll the closet back and reload it."""
    out = remote.run(f"{remote.wardrobe} rollback {shlex.quote(version) if version else ''}".rstrip(), "rolling back")
    remote.run(remote.reload, "reloading the appliance")
    return out



def remote_enrol(remote: Remote, photos: list[Path], name: str, add_view: bool = False) -> str:
    """Enrol a garment on the closet from photos taken on the caretaker's computer."""
    missing = [str(p) for p in photos if not Path(p).is_file()]
    if missing:
        raise RemoteError(f"{missing[0]}: no such file")
    # Copied under names made here: a photo's own name never reaches scp's or the closet's command line.
    names = [f"photo-{i + 1}" + (s if re.fullmatch(r"\.[A-Za-z0-9]{1,5}", s := Path(p).suffix) else ".jpg")
             for i, p in enumerate(photos)]
    incoming = remote.run("mktemp -d /tmp/wardrobe-enrol.XXXXXX", "making a folder on the closet").strip()
    try:
        remote.copy([Path(p) for p in photos], incoming, what="copying the photos", names=names)
        files = " ".join(shlex.quote(f"{incoming}/{n}") for n in names)
        more = " --add-view" if add_view else ""
        return remote.run(f"{remote.wardrobe} enrol {files} --name {shlex.quote(name)}{more}", "enrolling on the closet")
    finally:
        try:
            remote.run(f"rm -rf {shlex.quote(incoming)}", "cleaning up")
        except RemoteError:
            pass
