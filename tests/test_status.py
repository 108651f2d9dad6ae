"""What the running closet writes down for the caretaker's page: its parts as found, and its last errors."""

from __future__ import annotations

import json
import logging
import time

from wardrobe.status import KEEP, StatusLog, read_status, status_path


def wait_for_file(path, test, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and test(json.loads(path.read_text())):
            return
        time.sleep(0.05)
    raise AssertionError(f"{path} never held what was expected: {path.read_text() if path.exists() else 'missing'}")


def test_the_parts_and_the_last_errors_are_written_off_the_callers_thread(tmp_path):
    log = logging.getLogger("wardrobe.test-status")
    status = StatusLog(tmp_path)
    log.addHandler(status)
    try:
        status.part("camera", False, "camera: no camera at /dev/video0")
        log.info("pressed")  # below a warning: not kept
        for _ in range(3):
            log.error("audio output unavailable: %s (will try again)", "no device")
        for i in range(KEEP + 5):
            log.warning("warning %d\nwith a second line", i)
        wait_for_file(status_path(tmp_path), lambda d: len(d["errors"]) == KEEP)
    finally:
        log.removeHandler(status)
        status.close()
    seen = read_status(tmp_path)
    assert seen["parts"]["camera"]["ok"] is False and seen["parts"]["camera"]["found"].startswith("camera: no camera")
    messages = [e["message"] for e in seen["errors"]]
    assert len(messages) == KEEP and messages[-1] == f"warning {KEEP + 4}"  # newest last, first lines only
    assert "pressed" not in messages


def test_a_failure_said_again_is_counted_not_repeated(tmp_path):
    log = logging.getLogger("wardrobe.test-status-repeat")
    status = StatusLog(tmp_path)
    log.addHandler(status)
    for _ in range(4):
        log.error("audio output unavailable: no device (will try again)")
    log.removeHandler(status)
    status.close()
    (e,) = read_status(tmp_path)["errors"]
    assert e["times"] == 4 and e["level"] == "error"


def test_a_status_file_the_daemon_did_not_write_is_no_status(tmp_path):
    path = status_path(tmp_path)
    for text in ("not json", "[]", '{"started": 1, "parts": [], "errors": []}', '{"started": NaN, "parts": {}, '
                 '"errors": []}', '{"started": 1, "parts": {"camera": {"ok": true}}, "errors": []}',
                 '{"started": 1, "parts": {}, "errors": [{"at": "soon", "level": "error", "message": "x"}]}'):
        path.write_text(text)
        assert read_status(tmp_path) is None, text
    path.write_text(json.dumps({"started": 1.0, "parts": {"camera": {"ok": True, "found": "x", "at": 2.0},
                                                          "kettle": {"ok": True, "found": "y", "at": 2.0}},
                                "errors": [{"at": 3.0, "level": "error", "message": "m" * 5000}]}))
    seen = read_status(tmp_path)
    assert list(seen["parts"]) == ["camera"] and len(seen["errors"][0]["message"]) == 300  # parts known, bounded
    for hostile in ('{"started": 1e300, "parts": {}, "errors": []}',  # found by a review: each was a 500 on the page
                    '{"started": 1, "parts": {"camera": {"ok": true, "found": "x", "at": 1e18}}, "errors": []}',
                    '{"started": 1, "parts": {}, "errors": [{"at": 1, "level": "e", "message": "m", "times": 1e999}]}',
                    '{"started": 1, "parts": {}, "errors": [{"at": 1' + "0" * 400 + ', "level": "e", "message": "m"}]}'):
        path.write_text(hostile)
        assert read_status(tmp_path) is None, hostile
    path.write_text("x" * (1 << 20))
    assert read_status(tmp_path) is None
    path.unlink()
    path.mkdir()
    assert read_status(tmp_path) is None


def test_a_state_folder_that_cannot_be_written_costs_the_status_only(tmp_path):
    folder = tmp_path / "file"
    folder.write_text("")  # a file where the folder should be: every write fails
    status = StatusLog(folder)
    status.part("camera", True, "folder camera open")
    status.close()  # no exception, nothing written
    assert read_status(folder) is None


def test_a_closet_that_cannot_start_says_why_in_its_status(tmp_path):
    """Found by a review: a start that failed (a missing voice, no fallback) left an empty status, and the page said
    "No warnings or errors"; under systemd's restarts every failed start did so again."""
    import subprocess
    import sys

    from tests.conftest import PHOTOS, ROOT

    config = tmp_path / "config.toml"
    config.write_text(f'[speech]\nmodel = "{tmp_path}/no-voice.onnx"\nfallback = false\noutput = "none"\n'
                      f'[camera]\nkind = "folder"\nsource = "{PHOTOS}"\n')
    r = subprocess.run([sys.executable, "-m", "wardrobe", "run", "--config", str(config), "--state-dir",
                        str(tmp_path / "state")], capture_output=True, text=True, cwd=ROOT, timeout=120,
                       env={**__import__("os").environ, "GPIOZERO_PIN_FACTORY": "mock"})
    assert r.returncode == 2 and "no-voice.onnx" in r.stderr, r.stderr
    (last,) = read_status(tmp_path / "state")["errors"][-1:]
    assert last["level"] == "error" and last["message"].startswith("the closet stopped: ") and "no-voice.onnx" in \
        last["message"]
