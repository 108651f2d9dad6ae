"""Right as shipped: the model a closet runs says what the fp32 model says, on every processor.

The int8 model shipped before said "green" for black shoes on x86 processors without VNNI, whose fused u8 x s8
kernels saturate their 16-bit sums. These tests make such a model from the shipped fp32 weights (8-bit
weights, as the old export did) and run it where the problem shows: under `qemu-x86_64 -cpu Haswell`, a
processor without VNNI, whatever the machine running the tests has.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import PHOTOS, ROOT, SHIPPED
from wardrobe.bundle import Bundle, write_manifest
from wardrobe.classify import Classifier
from wardrobe.errors import ModelError
from wardrobe.train import precision

QEMU = shutil.which("qemu-x86_64-static") or shutil.which("qemu-x86_64")


def test_the_shipped_model_cannot_saturate():
    """Whatever processor runs it: the shipped ONNX model is float, or int8 with 7-bit weights."""
    b = Bundle.load(SHIPPED)
    onnx = SHIPPED / b.runtimes["onnx"]
    weights = precision.int8_weights(onnx)
    assert (b.meta["onnx_precision"] == "fp32") == (not weights)
    assert precision.saturation_safe(onnx) == []
    check = b.metrics["precision"]
    assert check["shipped"] == b.meta["onnx_precision"]
    shipped = check[check["shipped"]]
    assert shipped["photos"] >= 300 and not precision.failures(shipped), shipped


@pytest.fixture(scope="module")
def fp32_onnx(tmp_path_factory) -> Path:
    """The shipped bundle's fp32 weights exported to ONNX (as the export does before choosing a precision)."""
    from wardrobe.train.export import export_onnx
    from wardrobe.train.rebuild import fp32_network

    b = Bundle.load(SHIPPED)
    net, outputs = fp32_network(b)
    path = tmp_path_factory.mktemp("fp32") / "model.fp32.onnx"
    export_onnx(net, b.preprocess.crop, path, outputs)
    return path


def sample_batch(names: tuple[str, ...] = ()) -> np.ndarray:
    """The sample photos (or those named), preprocessed as the shipped bundle does."""
    from wardrobe.images import read_image

    pre = Bundle.load(SHIPPED).preprocess
    return np.concatenate([pre(read_image(p)) for p in sorted(PHOTOS.glob("*.jpg")) if not names or p.name in names])


SATURATED = ("home-outwear.jpg", "product-dresses-red.jpg", "product-casual-shoes-black.jpg", "product-jeans-blue.jpg")
"""Sample photos for the emulated export check, from what the 8-bit int8 model of today's weights (saturating_bundle)
decides as a Haswell against fp32 (2026-12-01, all 20 sample photos): the red coat and the red dress change colour
family, the black shoes change garment, the jeans nothing (as do 15 others; four colours turned in all). Emulated,
one model run over all 20 took about four minutes."""


def test_the_export_quantises_weights_to_seven_bits(fp32_onnx, tmp_path):
    """precision.quantize_int8 (what every bundle-writing command uses) keeps every weight saturation-safe; the old
    8-bit scheme does not, so this check can fail."""
    x = sample_batch()
    safe = tmp_path / "safe.onnx"
    precision.quantize_int8(fp32_onnx, safe, x)
    assert precision.int8_weights(safe) and precision.saturation_safe(safe) == []
    old = old_int8(fp32_onnx, tmp_path / "old.onnx", x)
    assert precision.saturation_safe(old), "the 8-bit scheme should use the full range"


def old_int8(fp32: Path, out: Path, calibration: np.ndarray) -> Path:
    """int8 as the export made it before this fix: 8-bit weights (u8 x s8 sums that saturate without VNNI)."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.batches = iter([{"image": calibration}])

        def get_next(self):
            return next(self.batches, None)

    quantize_static(str(fp32), str(out), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    return out


def test_int8_is_refused_when_it_does_not_agree(fp32_onnx, tmp_path):
    """--precision int8 writes no model when int8 disagrees with fp32; auto ships fp32 instead and says why."""
    meta = json.loads((SHIPPED / "bundle.json").read_text())
    x = sample_batch()
    check = precision.agreement(meta, fp32_onnx, old_int8(fp32_onnx, tmp_path / "old.onnx", x[:4]), x)
    assert check["photos"] == len(x) and set(check) >= {"garment", "colour", "pattern", "embedding_cosine_median"}
    strict = dict(precision.THRESHOLDS, garment=1.01)  # no int8 model agrees on more than every photo
    original = precision.THRESHOLDS.copy()
    precision.THRESHOLDS.update(strict)
    try:
        with pytest.raises(ModelError, match="int8 model does not say what the fp32 model says"):
            precision.choose(meta, fp32_onnx, tmp_path / "strict.onnx", x[:4], x[:6], "int8")
        assert not (tmp_path / "strict.onnx").exists()
        precision.THRESHOLDS.update(original)
        auto = precision.choose(meta, fp32_onnx, tmp_path / "auto.onnx", x[:4], x[:6], "fp32")
    finally:
        precision.THRESHOLDS.update(original)
    assert auto["shipped"] == "fp32" and auto["fp32"]["garment"] == 1.0
    assert precision.int8_weights(tmp_path / "auto.onnx") == []


@pytest.fixture(scope="module")
def saturating_bundle(fp32_onnx, tmp_path_factory) -> Path:
    """The shipped bundle with the old export's 8-bit int8 model.onnx (and its fp32 references)."""
    d = tmp_path_factory.mktemp("old") / "bundle"
    shutil.copytree(SHIPPED, d)
    old_int8(fp32_onnx, d / "model.onnx", sample_batch())
    meta = json.loads((d / "bundle.json").read_text())
    meta["onnx_precision"], meta["version"] = "int8", "old-int8"
    (d / "bundle.json").write_text(json.dumps(meta))
    write_manifest(d)
    return d


def test_disagreeing_int8_falls_back_to_its_reference_arithmetic(saturating_bundle, tmp_path):
    """On any processor: an int8 model whose answers differ from the bundle's fp32 references is run as its
    reference arithmetic, and that is said; with no fallback that agrees, install and doctor refuse it."""
    d = tmp_path / "bundle"
    shutil.copytree(saturating_bundle, d)
    meta = json.loads((d / "bundle.json").read_text())
    for ref in meta["self_check"].values():  # references this model cannot meet: every answer looks wrong here
        ref["logits"] = list(np.roll(ref["logits"], 3))
    (d / "bundle.json").write_text(json.dumps(meta))
    write_manifest(d)
    clf = Classifier.load(d)
    assert "using the int8 reference arithmetic instead" in clf.self_check and not clf.agrees_here
    from wardrobe.models_store import health_check

    with pytest.raises(ModelError, match="on this processor the model int8 kernels disagree"):
        health_check(d, [PHOTOS / "home-shirt.jpg"])
    good = Classifier.load(saturating_bundle)
    assert good.agrees_here or "reference arithmetic" in good.self_check


HASWELL_PROBE = """
import json, sys
from pathlib import Path
from wardrobe.classify import Classifier, OnnxBackend
from wardrobe.images import read_image
from wardrobe.pipeline import Pipeline
clf = Classifier.load(sys.argv[1])
photos = sys.argv[2:]
if photos[:1] == ["reference"]:  # the int8 model computed as its reference arithmetic, whatever this processor
    clf.backend, photos = OnnxBackend(Path(sys.argv[1]) / "model.onnx", reference=True), photos[1:]
pipe = Pipeline(clf)
print(json.dumps({"self_check": clf.self_check, "agrees": clf.agrees_here,
                  "said": {Path(p).name: pipe.describe(read_image(p)).sentence for p in photos}}))
"""


EMULATED_TIMEOUT_S = 2400
"""A test that runs Python as a Haswell under qemu: 10 to 15 minutes on a slow two-core machine (2026-12-01), past
the suite's 600 s for one test. Its emulated runs each have the subprocess's own limit below."""


def haswell(*args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    """Python run as a Haswell processor (AVX2, no AVX-512, no VNNI) under qemu user-mode emulation."""
    if QEMU is None:
        if os.environ.get("CI"):
            pytest.fail("qemu-x86_64-static is missing: .ci/run installs qemu-user-static")
        pytest.skip("qemu-user-static is not installed")
    return subprocess.run([QEMU, "-cpu", "Haswell", sys.executable, *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT)


@pytest.mark.slow
@pytest.mark.timeout(EMULATED_TIMEOUT_S)
def test_on_a_processor_without_vnni_the_user_never_hears_a_saturated_answer(saturating_bundle):
    """As a Haswell: the old int8 model saturates, the self-check sees it and switches to the reference arithmetic,
    and the user hears what that model computes without saturating: here, on this processor, the same model run as
    its reference arithmetic says the same sentences (the packaged photos the self-check found turned over among
    them). The shipped fp32 model agrees as it is and says what it says here. (With the model shipped before, the
    exact int8 answer was also fp32's; the int8 rounding of today's weights changes three of the eight sample
    answers even computed exactly, one reason the fp32 model ships.)"""
    photos = [str(p) for p in sorted((ROOT / "wardrobe" / "data" / "health").glob("*.jpg"))]
    r = haswell("-c", HASWELL_PROBE, str(saturating_bundle), *photos)
    assert r.returncode == 0, r.stderr[-2000:]
    old = json.loads(r.stdout.strip().splitlines()[-1])
    assert "int8 kernels disagree" in old["self_check"] and "using the int8 reference arithmetic" in old["self_check"]
    # Whether the reference arithmetic then agrees with fp32 is the int8 rounding of these weights, not saturation
    # (with today's weights it does not: 3 of the 8 photos; install and doctor refuse such a model, tested above).
    assert old["agrees"] == ("disagrees too" not in old["self_check"]), old
    turned = [p for p in photos if Path(p).name in old["self_check"]]  # what saturation turned over, as a Haswell
    assert turned, old["self_check"]
    here = subprocess.run([sys.executable, "-c", HASWELL_PROBE, str(saturating_bundle), "reference", *photos],
                          capture_output=True, text=True, timeout=900, cwd=ROOT)
    assert here.returncode == 0, here.stderr[-2000:]
    assert old["said"] == json.loads(here.stdout.strip().splitlines()[-1])["said"]
    r = haswell("-c", HASWELL_PROBE, str(SHIPPED), *photos)
    shipped = json.loads(r.stdout.strip().splitlines()[-1])
    assert shipped["self_check"] == "agrees with its fp32 references", shipped
    here = subprocess.run([sys.executable, "-c", HASWELL_PROBE, str(SHIPPED), *photos],
                          capture_output=True, text=True, timeout=900, cwd=ROOT)
    assert shipped["said"] == json.loads(here.stdout.strip().splitlines()[-1])["said"]


AGREEMENT_PROBE = """
import json, sys
import numpy as np
from pathlib import Path
from wardrobe.train import precision
meta = json.loads(Path(sys.argv[1]).read_text())
x = np.load(sys.argv[2])
fp32 = Path(sys.argv[3])
reference = precision.run(fp32, x)  # once for both candidates: each emulated run takes minutes
print(json.dumps({c: precision.failures(precision.agreement(meta, fp32, Path(c), x, reference)) for c in sys.argv[4:]}))
"""


@pytest.mark.slow
@pytest.mark.timeout(EMULATED_TIMEOUT_S)
def test_the_export_check_fails_on_the_old_int8_as_a_haswell(saturating_bundle, fp32_onnx, tmp_path):
    """The export's agreement check (precision.agreement against the fp32 export), run as a processor without VNNI,
    refuses the old int8 model and passes the shipped one."""
    x = tmp_path / "photos.npy"
    np.save(x, sample_batch(SATURATED))
    r = haswell("-c", AGREEMENT_PROBE, str(SHIPPED / "bundle.json"), str(x), str(fp32_onnx),
                str(saturating_bundle / "model.onnx"), str(SHIPPED / "model.onnx"))
    assert r.returncode == 0, r.stderr[-2000:]
    failed = json.loads(r.stdout.strip().splitlines()[-1])
    assert any(f.startswith("colour") for f in failed[str(saturating_bundle / "model.onnx")]), failed
    assert failed[str(SHIPPED / "model.onnx")] == [], failed


def test_rebuild_check_only_judges_a_bundle_on_this_processor(saturating_bundle):
    """`wardrobe train rebuild --check-only`: the old int8 model is below the thresholds on any processor (its
    rounding alone), the shipped model passes; one line, no traceback."""
    data = ROOT.parent / "shared" / "data"
    if not (data / "product-photos").is_dir():
        if os.environ.get("CI"):
            pytest.fail("CI must have ../shared/data beside the checkout")
        pytest.skip("the shared photos are not beside the checkout")
    flags = ["--check-only", "--check-photos", "100", "--data", f"clothing-photos={data / 'clothing-photos'}",
             "--data", f"product-photos={data / 'product-photos'}"]
    run = [sys.executable, "-m", "wardrobe", "train", "rebuild", *flags, "--bundle"]
    r = subprocess.run([*run, str(saturating_bundle)], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode != 0 and "does not say what its fp32 weights say on this processor" in r.stderr
    assert "Traceback" not in r.stderr
    r = subprocess.run([*run, str(SHIPPED)], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr[-800:]
    assert json.loads(r.stdout.strip().splitlines()[-1])["agrees"]
