"""Runs a command inside what the kernel here can reproduce of a systemd unit's sandbox, without systemd as PID 1:
UMask=, MemoryDenyWriteExecute= (the kernel's own PR_SET_MDWE, which has the same rule), RestrictAddressFamilies=
(a seccomp filter on socket(2), as systemd installs), and ProtectProc=/ProcSubset= (a private /proc mounted with
those options, in new mount and PID namespaces). Needs root, util-linux's unshare and libseccomp.

Usage: python -m tests.sandboxed UNIT -- COMMAND...
"""

from __future__ import annotations

import ctypes
import errno
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path


def unit_settings(unit: Path) -> dict[str, str]:
    """The [Service] settings of a unit file (the last one wins, as systemd reads them)."""
    out = {}
    for line in unit.read_text().splitlines():
        if "=" in line and not line.lstrip().startswith(("#", ";", "[")):
            key, value = line.split("=", 1)
            out[key.strip()] = value.strip()
    return out


def deny_write_execute() -> None:
    """No memory may become both writable and executable, now or after exec (Linux 6.3+)."""
    libc = ctypes.CDLL(None, use_errno=True)
    pr_set_mdwe, refuse_exec_gain = 65, 1
    if libc.prctl(pr_set_mdwe, refuse_exec_gain, 0, 0, 0) != 0:
        raise SystemExit(f"PR_SET_MDWE: {os.strerror(ctypes.get_errno())}")


class ArgCmp(ctypes.Structure):
    _fields_ = [("arg", ctypes.c_uint), ("op", ctypes.c_int), ("datum_a", ctypes.c_uint64),
                ("datum_b", ctypes.c_uint64)]


def only_address_families(families: list[str]) -> None:
    """socket(2) of any other family fails with EAFNOSUPPORT, as under RestrictAddressFamilies=. Each seccomp rule
    compares the family once (below the lowest allowed, each value between two allowed, above the highest)."""
    lib = ctypes.CDLL("libseccomp.so.2")
    lib.seccomp_init.restype = ctypes.c_void_p
    allow, errno_action = 0x7FFF0000, 0x00050000 | errno.EAFNOSUPPORT
    cmp_lt, cmp_eq, cmp_gt = 2, 4, 6
    ctx = ctypes.c_void_p(lib.seccomp_init(allow))
    nr = lib.seccomp_syscall_resolve_name(b"socket")
    allowed = sorted(int(getattr(socket, f)) for f in families)
    rules = [ArgCmp(0, cmp_lt, allowed[0], 0), ArgCmp(0, cmp_gt, allowed[-1], 0)]
    rules += [ArgCmp(0, cmp_eq, v, 0) for v in range(allowed[0] + 1, allowed[-1]) if v not in allowed]
    if not ctx or any(lib.seccomp_rule_add_array(ctx, errno_action, nr, 1, ctypes.byref(r)) != 0 for r in rules) \
            or lib.seccomp_load(ctx) != 0:
        raise SystemExit("seccomp: could not restrict socket families")


def inside(unit: Path, command: list[str]) -> int:
    """In the new namespaces: mount /proc as the unit asks, then apply the rest and run the command."""
    s = unit_settings(unit)
    options = []
    if s.get("ProtectProc", "default") != "default":
        options.append(f"hidepid={s['ProtectProc']}")
    if s.get("ProcSubset") == "pid":
        options.append("subset=pid")
    subprocess.run(["mount", "-t", "proc", "-o", ",".join(options) or "defaults", "proc", "/proc"], check=True)
    if "UMask" in s:
        os.umask(int(s["UMask"], 8))
    families = s.get("RestrictAddressFamilies", "").split()
    if families:
        if any(f.startswith("~") for f in families):
            raise SystemExit(f"only a list of allowed address families is reproduced here, not {families}")
        only_address_families(families)
    if s.get("MemoryDenyWriteExecute") == "yes":
        deny_write_execute()
    # PID 1 of the namespace passes SIGTERM on: the command stops as it would under systemd.
    child = subprocess.Popen(command)
    signal.signal(signal.SIGTERM, lambda *_: child.send_signal(signal.SIGTERM))
    return child.wait()


def main() -> None:
    argv = sys.argv[1:]
    nested = argv[:1] == ["--inside"]
    argv = argv[1:] if nested else argv
    unit, command = Path(argv[0]), argv[argv.index("--") + 1:]
    if nested:
        raise SystemExit(inside(unit, command))
    # unshare passes no signal on: SIGTERM goes to the namespace's PID 1 (`inside`), which hands it to the command
    outer = subprocess.Popen(["unshare", "--mount", "--pid", "--fork", "--kill-child", sys.executable, "-m",
                              "tests.sandboxed", "--inside", str(unit), "--", *command])

    def forward(*_) -> None:
        children = Path(f"/proc/{outer.pid}/task/{outer.pid}/children").read_text().split()
        for pid in children:
            os.kill(int(pid), signal.SIGTERM)

    signal.signal(signal.SIGTERM, forward)
    raise SystemExit(outer.wait())

if __name__ == "__main__":
    main()
