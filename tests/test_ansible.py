"""The fleet playbooks: syntax, and a real rollout to closets reached with ansible_connection=local."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import ROOT
from tests.test_models_store import make_version

PLAYBOOKS = ROOT / "deploy" / "ansible"


def playbook(*args: str, env_extra: dict | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "ANSIBLE_HOST_KEY_CHECKING": "False", "ANSIBLE_NOCOLOR": "1", **(env_extra or {})}
    return subprocess.run(["ansible-playbook", *args], capture_output=True, text=True, env=env, timeout=600)


def test_syntax():
    r = playbook("--syntax-check", "-i", str(PLAYBOOKS / "inventory.example.ini"), str(PLAYBOOKS / "install.yml"),
                 str(PLAYBOOKS / "rollout.yml"))
    assert r.returncode == 0, r.stdout + r.stderr


def inventory(tmp_path, closets: list[str]) -> str:
    """Local 'closets', each its own state directory."""
    lines = ["[closets]"]
    for c in closets:
        state = tmp_path / c
        cmd = f"env PYTHONPATH={ROOT} WARDROBE_STATE_DIR={state} {sys.executable} -m wardrobe"
        lines.append(f"{c} ansible_connection=local ansible_python_interpreter={sys.executable} "
                     f"wardrobe_cmd='{cmd}' wardrobe_incoming={tmp_path / (c + '-incoming')}")
    path = tmp_path / "inventory.ini"
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def current(tmp_path, closet: str) -> str | None:
    link = tmp_path / closet / "models" / "current"
    return os.readlink(link) if link.is_symlink() else None


def test_rollout_reaches_every_closet(tmp_path):
    inv = inventory(tmp_path, ["c1", "c2", "c3"])
    r = playbook("-i", inv, str(PLAYBOOKS / "rollout.yml"), "-e", f"bundle={make_version(tmp_path, 'fleet-1')}",
                 "-e", "wardrobe_reload=true", "-e", "wardrobe_check=true")
    assert r.returncode == 0, r.stdout[-3000:]
    assert [current(tmp_path, c) for c in ("c1", "c2", "c3")] == ["fleet-1"] * 3
    assert not (tmp_path / "c1-incoming").exists()


def test_rollout_stops_at_the_first_failing_closet_and_rolls_it_back(tmp_path):
    inv = inventory(tmp_path, ["c1", "c2", "c3", "c4"])
    base = ["-i", inv, str(PLAYBOOKS / "rollout.yml"), "-e", "wardrobe_reload=true", "-e", "wardrobe_batch=2"]
    assert playbook(*base, "-e", f"bundle={make_version(tmp_path, 'v-old')}", "-e", "wardrobe_check=true").returncode == 0
    # The appliance check fails everywhere after the switch: the first batch rolls back, the rest is untouched.
    r = playbook(*base, "-e", f"bundle={make_version(tmp_path, 'v-new')}", "-e", "wardrobe_check=false")
    assert r.returncode != 0
    assert "rollout stopped" in r.stdout
    assert [current(tmp_path, c) for c in ("c1", "c2", "c3", "c4")] == ["v-old"] * 4
    assert not (tmp_path / "c3" / "models" / "v-new").exists()  # the second batch never started
