"""Caretaker updates over SSH against a real OpenSSH server on 127.0.0.1 (throwaway keys, high port)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT, TRUSTED
from tests.test_models_store import make_version


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def sshd(tmp_path_factory):
    d = tmp_path_factory.mktemp("sshd")
    for key in ("host_key", "client_key"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / key)], check=True)
    shutil.copy(d / "client_key.pub", d / "authorized_keys")
    port = free_port()
    (d / "sshd_config").write_text(f"""Port {port}
ListenAddress 127.0.0.1
HostKey {d / 'host_key'}
AuthorizedKeysFile {d / 'authorized_keys'}
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
StrictModes no
UsePAM no
PidFile {d / 'sshd.pid'}
Subsystem sftp /usr/lib/openssh/sftp-server
""")
    Path("/run/sshd").mkdir(exist_ok=True)
    proc = subprocess.Popen(["/usr/sbin/sshd", "-D", "-e", "-f", str(d / "sshd_config")], stderr=subprocess.PIPE)
    for _ in range(50):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.1)
    yield {"port": port, "key": d / "client_key", "user": os.environ.get("USER") or "root"}
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture
def closet(sshd, tmp_path):
    """Flags that point the caretaker commands at a scratch closet reached through the real sshd."""
    state = tmp_path / "closet-state"
    remote = (f"env PYTHONPATH={ROOT} WARDROBE_STATE_DIR={state} WARDROBE_TRUSTED_KEYS={TRUSTED} "
              f"{sys.executable} -m wardrobe")
    flags = ["--ssh-option", f"Port={sshd['port']}", "--ssh-option", f"IdentityFile={sshd['key']}",
             "--ssh-option", "StrictHostKeyChecking=no", "--ssh-option", "UserKnownHostsFile=/dev/null",
             "--ssh-option", "LogLevel=ERROR", "--remote-wardrobe", remote, "--reload-command", "true",
             "--check-command", "true"]
    return {"target": f"{sshd['user']}@127.0.0.1", "flags": flags, "state": state}


def caretaker(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "wardrobe", *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=timeout)


def current(closet) -> str | None:
    link = closet["state"] / "models" / "current"
    return os.readlink(link) if link.is_symlink() else None


def push(closet, bundle, *extra):
    return caretaker("push-model", str(bundle), closet["target"], *closet["flags"], *extra)


def test_good_push_then_models_and_rollback(closet, tmp_path):
    r = push(closet, make_version(tmp_path, "v1"))
    assert r.returncode == 0, r.stdout + r.stderr
    for step in ("1/5", "2/5", "3/5", "4/5", "5/5", "done: v1 is the current model"):
        assert step in r.stdout
    assert current(closet) == "v1"
    assert push(closet, make_version(tmp_path, "v22")).returncode == 0
    r = caretaker("models", closet["target"], *closet["flags"])
    assert "* v22" in r.stdout and "  v1" in r.stdout
    r = caretaker("rollback", closet["target"], "v1", *closet["flags"])
    assert r.returncode == 0 and current(closet) == "v1"


def test_an_unsigned_bundle_is_named_so_before_it_is_copied(closet, tmp_path):
    r = push(closet, make_version(tmp_path, "plain", sign=False))
    step_one = r.stdout.split("2/5")[0]
    assert "not signed: the closet refuses it unless it allows unsigned models" in step_one, r.stdout
    assert r.returncode != 0 and current(closet) is None  # and the closet refuses it, as it always did
    assert "not signed" not in push(closet, make_version(tmp_path, "v1")).stdout


def test_push_cut_off_halfway_leaves_the_old_model(closet, tmp_path):
    assert push(closet, make_version(tmp_path, "old")).returncode == 0
    slow = subprocess.Popen([sys.executable, "-m", "wardrobe", "push-model", str(make_version(tmp_path, "new")),
                             closet["target"], *closet["flags"], "--limit-kbps", "400"], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    time.sleep(4)  # copying 12 MB at 400 kbit/s takes minutes: cut it off now
    os.killpg(slow.pid, signal.SIGKILL)
    slow.wait()
    assert current(closet) == "old"
    assert not (closet["state"] / "models" / "new").exists()
    r = caretaker("models", closet["target"], *closet["flags"])
    assert "* old" in r.stdout and "new" not in r.stdout


def test_tampered_bundle_is_refused(closet, tmp_path):
    assert push(closet, make_version(tmp_path, "good")).returncode == 0
    bad = make_version(tmp_path, "tampered")
    (bad / "taxonomy.csv").write_text("source,label,garment\n")
    r = push(closet, bad)
    assert r.returncode == 2 and "does not match its checksum" in r.stderr
    assert current(closet) == "good"


def test_incompatible_bundle_is_refused(closet, tmp_path):
    from wardrobe.bundle import write_manifest

    assert push(closet, make_version(tmp_path, "good")).returncode == 0
    other = make_version(tmp_path, "future")
    meta = json.loads((other / "bundle.json").read_text())
    meta["format_version"] = 2
    (other / "bundle.json").write_text(json.dumps(meta))
    write_manifest(other)
    r = push(closet, other)
    assert r.returncode == 2 and "format 2 is not supported" in r.stderr
    assert current(closet) == "good"


def test_bundle_failing_the_health_check_is_not_switched_to(closet, tmp_path):
    assert push(closet, make_version(tmp_path, "good")).returncode == 0
    r = push(closet, make_version(tmp_path, "rigged", broken_bias=True))
    assert r.returncode == 2 and "failed its health check" in r.stderr
    assert current(closet) == "good"


def test_appliance_failing_after_reload_is_rolled_back(closet, tmp_path):
    assert push(closet, make_version(tmp_path, "good")).returncode == 0
    flags = [f if f != "true" else f for f in closet["flags"]]
    flags[flags.index("--check-command") + 1] = "false"
    r = caretaker("push-model", str(make_version(tmp_path, "crashy")), closet["target"], *flags)
    assert r.returncode == 2 and "the previous model is current again" in r.stderr
    assert "rolling back" in r.stdout
    assert current(closet) == "good"


def test_pruning_keeps_n(closet, tmp_path):
    for v in ("p1", "p22", "p333"):
        assert push(closet, make_version(tmp_path, v), "--keep", "2").returncode == 0
    versions = sorted(p.name for p in (closet["state"] / "models").iterdir() if p.is_dir() and not p.is_symlink())
    assert versions == ["p22", "p333"] and current(closet) == "p333"


def test_unreachable_closet_is_a_plain_error(tmp_path):
    r = caretaker("push-model", str(make_version(tmp_path, "x")), "nobody@127.0.0.1", "--ssh-option",
                  f"Port={free_port()}", "--ssh-option", "ConnectTimeout=3")
    assert r.returncode == 2 and "making a folder on the closet failed" in r.stderr


@pytest.mark.parametrize("args", [
    ["models", "--host=-oProxyCommand=touch {marker}"],
    ["rollback", "--", "-oProxyCommand=touch {marker}@closet"],
    ["push-model", "models/default", "--", "-oProxyCommand=touch {marker}"],
])
def test_a_host_that_looks_like_an_ssh_option_is_refused(tmp_path, args):
    """ssh reads "-oProxyCommand=..." as an option and runs the command on the caretaker's machine."""
    marker = tmp_path / "owned"
    argv = [a.format(marker=marker) for a in args]
    r = subprocess.run([sys.executable, "-m", "wardrobe", *argv], capture_output=True, text=True, cwd=ROOT,
                       timeout=60)
    assert r.returncode == 2 and "is not a closet address" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr
    assert not marker.exists()


def test_enrol_on_the_closet_over_ssh(closet, tmp_path):
    """The caretaker's photos are copied to the closet and enrolled there, in its own database."""
    import sqlite3

    r = caretaker("enrol", str(ROOT / "assets" / "photos" / "home-outwear.jpg"), "--name", "red winter coat",
                  "--on", closet["target"], *closet["flags"])
    assert r.returncode == 0 and "enrolled as 'red winter coat'" in r.stdout, r.stderr
    rows = sqlite3.connect(closet["state"] / "closet.db").execute("SELECT name FROM garments").fetchall()
    assert rows == [("red winter coat",)]
    r = caretaker("enrol", str(tmp_path / "missing.jpg"), "--name", "x", "--on", closet["target"], *closet["flags"])
    assert r.returncode == 2 and "no such file" in r.stderr and r.stderr.count("\n") == 1


def test_a_photo_named_like_an_ssh_option_is_only_a_photo(closet, tmp_path):
    """scp read a local file called "-oProxyCommand=..." as an option and ran it on the caretaker's machine. Now
    every operand follows "--" and photos travel under names made here."""
    marker = tmp_path / "pwned"  # the command runs in the caretaker's working folder
    evil = "-oProxyCommand=touch pwned;false"
    (tmp_path / evil).write_bytes((ROOT / "assets" / "photos" / "home-outwear.jpg").read_bytes())
    r = subprocess.run([sys.executable, "-m", "wardrobe", "enrol", "--name", "red winter coat", "--on",
                        closet["target"], *closet["flags"], "--", evil], capture_output=True, text=True,
                       cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=300)
    assert not marker.exists(), "the file name ran as a command"
    assert r.returncode == 0 and "enrolled as 'red winter coat'" in r.stdout, r.stderr


def test_a_bundle_file_named_like_an_ssh_option_never_leaves(closet, tmp_path):
    """A file inside a bundle named "-oProxyCommand=..." is refused by the bundle check (and by sign) before
    anything is copied."""
    from tests.conftest import SIGNING_KEY
    from wardrobe.bundle import write_manifest

    marker = tmp_path / "pwned"
    bundle = make_version(tmp_path, "evil", sign=False)
    (bundle / "-oProxyCommand=touch pwned;false").write_text("x")
    write_manifest(bundle)
    here = {"cwd": tmp_path, "env": {**os.environ, "PYTHONPATH": str(ROOT)}, "capture_output": True, "text": True}
    r = subprocess.run([sys.executable, "-m", "wardrobe", "sign", str(bundle), "--key", str(SIGNING_KEY)], **here)
    assert r.returncode != 0 and "is not a plain file name" in r.stderr, r.stderr
    r = subprocess.run([sys.executable, "-m", "wardrobe", "push-model", str(bundle), closet["target"],
                        *closet["flags"]], **here, timeout=300)
    assert r.returncode == 2 and "is not a plain file name" in r.stderr and "2/5" not in r.stdout, r.stderr
    assert not marker.exists()


def test_an_empty_closet_address_is_refused_not_local(tmp_path):
    r = caretaker("enrol", str(ROOT / "assets" / "photos" / "home-outwear.jpg"), "--name", "coat", "--on", "",
                  "--state-dir", str(tmp_path / "state"))
    assert r.returncode == 2 and "is not a closet address" in r.stderr and r.stderr.count("\n") == 1, r.stderr
    assert not (tmp_path / "state" / "closet.db").exists()


def test_the_same_photo_twice_is_copied_twice(closet, tmp_path):
    """Photos travel as photo-1, photo-2, ... by position: one path given twice is two views, not a lost file."""
    photo = ROOT / "assets" / "photos" / "home-outwear.jpg"
    r = caretaker("enrol", str(photo), str(photo.parent / "." / photo.name), "--name", "red winter coat", "--on",
                  closet["target"], *closet["flags"])
    assert r.returncode == 0 and "enrolled as 'red winter coat'" in r.stdout, r.stderr
