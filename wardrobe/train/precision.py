"""Which ONNX model a bundle ships: int8 only when it says what the fp32 model says, on photos it was not
calibrated on; otherwise the fp32 model (its weights stored as float16, computed in float32).

Two failures of int8 are guarded against:
- saturation: x86 processors without VNNI multiply u8 activations by s8 weights in 16-bit sums that overflow
  (ONNX Runtime's "reduce_range" note; OpenVINO's "saturation issue"). Weights are quantised to 7 bits
  (reduce_range), which cannot overflow there; `saturation_safe` checks a model file for it;
- plain quantisation error, measured by `agreement` (garment, main colour family, pattern decision,
  embedding cosine) against the fp32 export; below THRESHOLDS the int8 model is not shipped.

Every bundle also carries the fp32 model's own outputs for the packaged sample photos (`references`), which
the closet compares against on its own processor when it loads the model (classify.self_check).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

THRESHOLDS = {"garment": 0.99, "colour": 0.99, "pattern": 0.98, "embedding_cosine_median": 0.99}
"""The least agreement with fp32 an int8 model must reach to be shipped."""
SAFE_WEIGHT = (-64, 64)
"""int8 weights in this range (7 bits) cannot overflow the 16-bit sums of u8 x s8 kernels without VNNI:
255 * 64 * 2 = 32640 <= 32767 (ONNX Runtime's reduce_range gives [-64, 64])."""
PRECISIONS = ("auto", "int8", "fp32")


def quantize_int8(fp32: Path, int8: Path, calibration: np.ndarray) -> None:
    """Static int8 quantisation (QDQ, per-channel 7-bit weights, u8 activations) calibrated on training photos."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.batches = iter([{"image": calibration[i : i + 32]} for i in range(0, len(calibration), 32)])

        def get_next(self):
            return next(self.batches, None)

    prepped = fp32.with_name(fp32.stem + ".prep.onnx")
    quant_pre_process(str(fp32), str(prepped))
    quantize_static(str(prepped), str(int8), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, reduce_range=True)
    prepped.unlink()


def int8_weights(path: Path) -> list[tuple[str, int, int]]:
    """(name, min, max) of every int8 weight tensor in an ONNX file (empty for a float model)."""
    import onnx
    from onnx import numpy_helper

    out = []
    for init in onnx.load(str(path)).graph.initializer:
        if init.data_type == onnx.TensorProto.INT8 and int(np.prod(init.dims)) > 1:
            a = numpy_helper.to_array(init)
            out.append((init.name, int(a.min()), int(a.max())))
    return out


def saturation_safe(path: Path) -> list[str]:
    """The int8 weight tensors outside the 7-bit range (empty: the model cannot saturate)."""
    return [f"{name} [{lo}, {hi}]" for name, lo, hi in int8_weights(path) if lo < SAFE_WEIGHT[0] or hi > SAFE_WEIGHT[1]]


def compact_fp32(fp32: Path, out: Path) -> None:
    """The fp32 model with its weights stored as float16 and cast back to float32 when the session starts: half
    the size, float32 arithmetic (ONNX Runtime folds the casts once)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    model = onnx.load(str(fp32))
    graph = model.graph
    casts = []
    for init in list(graph.initializer):
        a = numpy_helper.to_array(init)
        if a.dtype == np.float32 and a.size >= 64:
            half = numpy_helper.from_array(a.astype(np.float16), init.name + ".fp16")
            graph.initializer.remove(init)
            graph.initializer.append(half)
            casts.append(helper.make_node("Cast", [half.name], [init.name], to=TensorProto.FLOAT,
                                          name=init.name + ".cast"))
    for node in reversed(casts):
        graph.node.insert(0, node)
    onnx.save(model, str(out))


def run(path: Path, x: np.ndarray, reference: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
    """Logits and embedding of an ONNX file over a batch, 64 photos at a time."""
    from wardrobe.classify import OnnxBackend

    backend = OnnxBackend(path, 0, reference=reference)
    outs = [backend.forward(x[i : i + 64]) for i in range(0, len(x), 64)]
    return (np.concatenate([z for z, _ in outs]),
            None if outs[0][1] is None else np.concatenate([e for _, e in outs]))


def decisions(meta: dict, z: np.ndarray) -> dict[str, np.ndarray]:
    """What the sentence would take from each photo's logits: garment, main colour family, pattern said (-1: none)."""
    n, f, o = len(meta["classes"]), len(meta.get("colour_families", [])), len(meta.get("occasions", {}))
    out = {"garment": z[:, :n].argmax(1)}
    if f:
        out["colour"] = z[:, n : n + f].argmax(1)
    patterns = meta.get("patterns", {})
    if patterns:
        p = z[:, n + f + o :]
        p = np.exp(p - p.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        k = p.argmax(1)
        limits = np.array(list(patterns.values()))
        out["pattern"] = np.where(p[np.arange(len(k)), k] >= limits[k], k, -1)
    return out


def agreement(meta: dict, fp32: Path, candidate: Path, x: np.ndarray,
              reference: tuple[np.ndarray, np.ndarray | None] | None = None) -> dict:
    """How often a candidate model decides as the fp32 model does, over preprocessed photos x (reference: the fp32
    model's outputs on x when already computed)."""
    za, ea = reference if reference is not None else run(fp32, x)
    zb, eb = run(candidate, x)
    da, db = decisions(meta, za), decisions(meta, zb)
    out: dict = {"photos": len(x), **{k: round(float(np.mean(da[k] == db[k])), 4) for k in da}}
    if ea is not None and eb is not None:
        cos = (ea * eb).sum(1) / np.maximum(np.linalg.norm(ea, axis=1) * np.linalg.norm(eb, axis=1), 1e-12)
        out["embedding_cosine_median"] = round(float(np.median(cos)), 4)
    return out


def failures(check: dict) -> list[str]:
    """The measures below their threshold, in words (empty: the model agrees)."""
    return [f"{k} {check[k]:.2%} < {v:.0%}" if k != "embedding_cosine_median" else f"{k} {check[k]:.3f} < {v}"
            for k, v in THRESHOLDS.items() if k in check and check[k] < v]


def check_photos(splits: dict, pre, count: int, seed: int = 1) -> np.ndarray:
    """Validation photos (home and product, half each where there are enough), never used for calibration,
    preprocessed as the closet does."""
    from wardrobe.images import read_image, shrink
    from wardrobe.pipeline import WORK_SIDE

    rng = np.random.default_rng(seed)
    recs = splits["val"].records
    picked = []
    sources = sorted({r.source for r in recs})
    for src in sources:
        mine = [r for r in recs if r.source == src]
        take = min(len(mine), -(-count // len(sources)))
        picked += [mine[i] for i in sorted(rng.choice(len(mine), take, replace=False))]
    return np.concatenate([pre(shrink(read_image(r.path), WORK_SIDE)) for r in picked])


def choose(meta: dict, fp32: Path, out: Path, calibration: np.ndarray, photos: np.ndarray, precision: str) -> dict:
    """Write the shipped ONNX model to `out`: int8 when asked for (or "auto") and it agrees with fp32 on `photos`,
    else fp32. Returns what was measured; ModelError when int8 was demanded and does not agree."""
    from wardrobe.errors import ModelError

    result: dict = {"thresholds": THRESHOLDS}
    reference = run(fp32, photos)  # once, for every candidate
    if precision in ("auto", "int8"):
        int8 = out.with_name(out.stem + ".int8.onnx")
        quantize_int8(fp32, int8, calibration)
        unsafe = saturation_safe(int8)
        result["int8"] = agreement(meta, fp32, int8, photos, reference)
        bad = failures(result["int8"]) + [f"weights outside 7 bits: {', '.join(unsafe[:3])}"] * bool(unsafe)
        log.info("int8 against fp32 on %d held-out photos: %s", len(photos), result["int8"])
        if not bad:
            int8.rename(out)
            result["shipped"] = "int8"
            return result
        int8.unlink()
        if precision == "int8":
            raise ModelError(f"the int8 model does not say what the fp32 model says ({'; '.join(bad)}): "
                             "no bundle written (use --precision fp32 or auto)")
        result["int8_refused"] = bad
        log.warning("int8 not shipped (%s): the bundle ships the fp32 model", "; ".join(bad))
    compact_fp32(fp32, out)
    result["fp32"] = agreement(meta, fp32, out, photos, reference)  # float16 storage, float32 arithmetic
    bad = failures(result["fp32"])
    if bad:
        raise ModelError(f"the compact fp32 model does not agree with the export ({'; '.join(bad)})")
    result["shipped"] = "fp32"
    return result


def references(meta: dict, fp32: Path, photos: list[Path]) -> dict:
    """The fp32 model's outputs for the packaged sample photos, which the closet compares with its own answers
    on its own processor (classify.self_check)."""
    from wardrobe.bundle import sha256_file
    from wardrobe.images import read_image
    from wardrobe.preprocess import Preprocess

    pre = Preprocess.from_dict(meta["preprocess"])
    z, _ = run(fp32, np.concatenate([pre(read_image(p)) for p in photos]))
    return {p.name: {"sha256": sha256_file(p), "logits": [round(float(v), 5) for v in z[i]]}
            for i, p in enumerate(photos)}
