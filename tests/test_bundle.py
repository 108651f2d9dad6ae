"""Model bundles are verified before use; a damaged or foreign bundle is refused with a plain reason."""

from __future__ import annotations

import json
import re
import shutil

import numpy as np
import pytest

from tests.conftest import SHIPPED, rgb_of
from wardrobe.bundle import Bundle, sha256_file, write_manifest
from wardrobe.classify import Classifier
from wardrobe.errors import ModelError


@pytest.fixture
def bundle(tmp_path):
    """A private copy of the shipped bundle to damage."""
    dst = tmp_path / "bundle"
    shutil.copytree(SHIPPED, dst)
    return dst


def test_shipped_bundle_is_small_and_complete():
    b = Bundle.load(SHIPPED)
    size = sum(p.stat().st_size for p in SHIPPED.iterdir())
    assert size < 25 * 1024 * 1024
    assert len(b.classes) >= 17 and set(b.runtimes) == {"onnx", "torch"}
    assert b.metrics["test"]["onnx"]["all"]["top1"] > 0.5
    # Its model learnt the eye's names, so its confidence is calibrated on them (phrase.SURE was chosen with that):
    # every validation photo the temperature was fitted on is named by eye.
    fitted = b.metrics["temperature_photos"]
    assert fitted["named_by_eye"] == fitted["val"] > 3000 and b.metrics["temperature"] == b.temperature


@pytest.mark.parametrize("runtime", ["onnx", "torch"])
def test_both_runtimes_agree(runtime):
    rgb = rgb_of("product-jeans-blue.jpg")
    onnx = Classifier.load(SHIPPED, "onnx").predict(rgb)
    other = Classifier.load(SHIPPED, runtime).predict(rgb)
    assert other.garment == onnx.garment
    assert abs(other.confidence - onnx.confidence) < 0.15


def test_tampered_weights_are_refused(bundle):
    data = bytearray((bundle / "model.onnx").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (bundle / "model.onnx").write_bytes(bytes(data))
    with pytest.raises(ModelError, match="does not match its checksum"):
        Bundle.load(bundle)


def test_edited_labels_are_refused(bundle):
    meta = json.loads((bundle / "bundle.json").read_text())
    meta["classes"][0] = "ball gown"
    (bundle / "bundle.json").write_text(json.dumps(meta))
    with pytest.raises(ModelError, match="bundle.json does not match"):
        Bundle.load(bundle)


def test_missing_manifest_is_refused(bundle):
    (bundle / "manifest.json").unlink()
    with pytest.raises(ModelError, match="no manifest.json"):
        Bundle.load(bundle)


def test_unlisted_file_is_refused(bundle):
    (bundle / "evil.py").write_text("print('hi')")
    with pytest.raises(ModelError, match="does not list: evil.py"):
        Bundle.load(bundle)


def test_incompatible_format_is_refused_with_the_reason(bundle):
    meta = json.loads((bundle / "bundle.json").read_text())
    meta["format_version"] = 99
    (bundle / "bundle.json").write_text(json.dumps(meta))
    write_manifest(bundle)
    with pytest.raises(ModelError, match="format 99 is not supported"):
        Bundle.load(bundle)


def test_wrong_class_count_is_refused_at_load(bundle):
    meta = json.loads((bundle / "bundle.json").read_text())
    meta["classes"] = meta["classes"][1:]  # one name fewer than the outputs
    (bundle / "bundle.json").write_text(json.dumps(meta))
    write_manifest(bundle)
    clf = Classifier.load(bundle, "onnx")
    with pytest.raises(ModelError, match="outputs but the bundle names"):
        clf.predict(rgb_of("home-pants.jpg"))
    with pytest.raises(ModelError, match="does not fit"):
        Classifier.load(bundle, "torch")


def test_not_a_bundle(tmp_path):
    with pytest.raises(ModelError, match="no model bundle"):
        Bundle.load(tmp_path / "nothing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelError, match="not a model bundle"):
        Bundle.load(tmp_path / "empty")


def test_temperature_scaling_softens_confidence():
    clf = Classifier.load(SHIPPED, "onnx")
    p = clf.probabilities(rgb_of("home-shirt.jpg"))[0]
    assert abs(p.sum() - 1) < 1e-6 and np.all(p >= 0)


@pytest.mark.parametrize("runtime", ["onnx", "torch"])
def test_photos_run_together_give_what_each_gives_alone(runtime):
    """The pipeline sends the photo and its cut-out garment through the network in one run: the answers are
    those of one run each."""
    from wardrobe.pipeline import on_white
    from wardrobe.segment import segment

    clf = Classifier.load(SHIPPED, runtime)
    rgb = rgb_of("home-shirt.jpg")
    cut = on_white(rgb, segment(rgb, "auto", None))
    assert cut.shape != rgb.shape
    together = clf.predict_many([rgb, cut, rgb_of("product-jeans-blue.jpg")])
    for alone, both in zip([clf.predict(rgb), clf.predict(cut), clf.predict(rgb_of("product-jeans-blue.jpg"))],
                           together, strict=True):
        assert [g for g, _ in alone.ranked] == [g for g, _ in both.ranked]
        assert [p for _, p in alone.ranked] == pytest.approx([p for _, p in both.ranked], abs=1e-5)
        assert alone.pattern == both.pattern and np.allclose(alone.embedding, both.embedding, atol=1e-5)


def test_shipped_model_says_when_no_garment_is_there():
    """The background class: garment-free corners of the real sample photos (test split) are not named as
    garments, and no sample garment photo is lost to it."""
    from tests.conftest import PHOTOS
    from wardrobe.images import read_image
    from wardrobe.train.frozen import background_crop

    clf = Classifier.load(SHIPPED, "onnx")
    assert clf.bundle.background_class == "no garment"
    crops = [c for p in sorted(PHOTOS.glob("*.jpg")) if (c := background_crop(read_image(p), 224)) is not None]
    assert len(crops) >= 3
    assert all(clf.predict(c).background >= 0.5 for c in crops)
    assert all(clf.predict(read_image(p)).background < 0.5 for p in PHOTOS.glob("*.jpg"))


def _rewrite(bundle, **changes):
    meta = json.loads((bundle / "bundle.json").read_text())
    meta.update(changes)
    (bundle / "bundle.json").write_text(json.dumps(meta))
    write_manifest(bundle)


def test_weights_outside_the_bundle_are_refused(bundle, tmp_path):
    """bundle.json naming ../elsewhere.onnx or an absolute path: the file would never be checksummed."""
    outside = tmp_path / "outside.onnx"
    outside.write_bytes((bundle / "model.onnx").read_bytes())
    for name in ("../outside.onnx", str(outside)):
        _rewrite(bundle, runtimes={"onnx": name, "torch": "model.safetensors"})
        with pytest.raises(ModelError, match="not a plain file name"):
            Bundle.load(bundle)


def test_manifest_entries_outside_the_bundle_are_refused(bundle, tmp_path):
    (tmp_path / "elsewhere").write_text("x")
    manifest = json.loads((bundle / "manifest.json").read_text())
    for name in ("../elsewhere", str(tmp_path / "elsewhere")):
        manifest["files"][name] = sha256_file(tmp_path / "elsewhere")
        (bundle / "manifest.json").write_text(json.dumps(manifest))
        with pytest.raises(ModelError, match="not a plain file name"):
            Bundle.load(bundle)
        del manifest["files"][name]


def test_hidden_files_in_a_bundle_are_refused(bundle):
    (bundle / ".evil").write_text("import os")
    with pytest.raises(ModelError, match="does not list: .evil|'.evil' is not a plain file name"):
        Bundle.load(bundle)


@pytest.mark.parametrize("version", ["../../somewhere", "a/b", "/tmp", ".."])
def test_versions_that_are_paths_are_refused(bundle, tmp_path, version):
    from wardrobe.models_store import ModelStore

    _rewrite(bundle, version=version)
    with pytest.raises(ModelError, match="not a plain name"):
        Bundle.load(bundle)
    store = ModelStore(tmp_path / "models")
    (tmp_path / "somewhere").mkdir()
    (tmp_path / "somewhere" / "bundle.json").write_text("{}")
    with pytest.raises(ModelError, match="not a plain name"):
        store.rollback(version)
    assert not (store.root / "current").exists()


@pytest.mark.parametrize("field, value", [("runtimes", "model.onnx"), ("classes", 5), ("temperature", "hot"),
                                          ("colour_families", 3), ("default_runtime", "tpu"), ("occasions", [1])])
def test_a_bundle_with_fields_of_the_wrong_type_is_one_line(bundle, field, value):
    """Each of these gave a traceback in describe; now the bundle is refused with the reason and describing goes on."""
    import json

    from tests.conftest import PHOTOS
    from tests.test_cli import wardrobe

    meta = json.loads((bundle / "bundle.json").read_text())
    meta[field] = value
    (bundle / "bundle.json").write_text(json.dumps(meta))
    write_manifest(bundle)
    with pytest.raises(ModelError):
        Bundle.load(bundle)
    r = wardrobe("describe", "--quiet", "--model", str(bundle), str(PHOTOS / "home-shirt.jpg"))
    reason = {"classes": "class list", "default_runtime": "default_runtime"}.get(field, field.split("_")[0])
    assert "Traceback" not in r.stderr and reason in r.stderr, r.stderr
    assert r.returncode == 0 and "I can't tell what garment it is" in r.stdout, r.stdout


def test_a_manifest_whose_files_are_a_list_is_refused(bundle):
    import json

    m = json.loads((bundle / "manifest.json").read_text())
    m["files"] = list(m["files"])
    (bundle / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(ModelError, match="manifest.json is unreadable"):
        Bundle.load(bundle)


@pytest.mark.parametrize("manifest", [[], "files", 7, None])
def test_a_manifest_that_is_no_json_object_is_refused_in_one_line(bundle, manifest):
    """A manifest.json holding a JSON array raised TypeError out of Bundle.load: describe printed a traceback and
    the daemon would have died at start, again and again under systemd."""
    from tests.conftest import PHOTOS
    from tests.test_cli import wardrobe

    (bundle / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelError, match="manifest.json is unreadable"):
        Bundle.load(bundle)
    r = wardrobe("describe", "--quiet", "--model", str(bundle), str(PHOTOS / "home-shirt.jpg"))
    assert "Traceback" not in r.stderr and "manifest.json is unreadable" in r.stderr, r.stderr
    assert r.returncode == 0 and "I can't tell what garment it is" in r.stdout, r.stdout


def test_every_command_names_the_same_accuracy_figure():
    """doctor, `wardrobe models` and the README said "90%", "89.8%" and "81.9 % / 90.9 %" (issue 24)."""
    from tests.conftest import ROOT

    figure = Bundle.load(SHIPPED).test_figure()
    assert re.fullmatch(r"test top-1 \d+\.\d % home( by eye)? / \d+\.\d % product( by eye)?", figure), figure
    assert figure in (ROOT / "README.md").read_text().replace("**", "")


def test_the_accuracy_figure_is_judged_by_eye_where_the_export_had_the_names():
    """The shop misfiles about one product photo in seven (polos as T-shirts, flip-flops as heels): where the export
    measured the test photos against a sighted person's names, that is the figure every command shows."""
    import dataclasses

    shipped = Bundle.load(SHIPPED)
    label = {"clothing-photos": {"top1": 0.833}, "product-photos": {"top1": 0.871}}
    figure = dataclasses.replace(shipped, metrics={"test": {"onnx": label}}).test_figure("onnx")
    assert figure == "test top-1 83.3 % home / 87.1 % product"
    eye = {**label, "by_eye": {"product-photos": {"n": 2953, "top1": 0.949}}}
    figure = dataclasses.replace(shipped, metrics={"test": {"onnx": eye}}).test_figure("onnx")
    assert figure == "test top-1 83.3 % home / 94.9 % product by eye"
    eye["by_eye"]["clothing-photos"] = {"n": 371, "top1": 0.849}
    figure = dataclasses.replace(shipped, metrics={"test": {"onnx": eye}}).test_figure("onnx")
    assert figure == "test top-1 84.9 % home by eye / 94.9 % product by eye"
    eye["by_eye"] = "not a table"  # a hand-edited bundle.json: the folder's figure, never a traceback
    figure = dataclasses.replace(shipped, metrics={"test": {"onnx": eye}}).test_figure("onnx")
    assert figure == "test top-1 83.3 % home / 87.1 % product"
    # found by a review: a per-set entry or the metrics themselves of another type made the model page a 500
    for metrics in ({"test": {"onnx": {"clothing-photos": [0.9], "product-photos": {"top1": 0.87}}}}, [1, 2],
                    {"test": {"onnx": {"all": "x"}}}, {"test": "x"}):
        assert dataclasses.replace(shipped, metrics=metrics).test_figure("onnx") is None, metrics
