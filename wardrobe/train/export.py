"""Export a training run to a model bundle: temperature scaling, int8 ONNX, torch weights, metrics, manifest.

    wardrobe train export --run runs/default --output models/default
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from wardrobe.bundle import FORMAT_VERSION, Bundle, write_manifest
from wardrobe.errors import ModelError, TrainingError
from wardrobe.files import check_folder_takes_files
from wardrobe.preprocess import Preprocess
from wardrobe.taxonomy import Taxonomy
from wardrobe.train import engine, report
from wardrobe.train.data import EYE_FILES, build_splits, eye_names, load_eye_labels, load_images
from wardrobe.train.engine import load_checkpoint, predict_logits
from wardrobe.train.models import build_model

log = logging.getLogger(__name__)


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    """Command-line flags."""
    p = argparse.ArgumentParser(prog="wardrobe train export", add_help=add_help,
                                description="Turn a training run into a model bundle.",
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--run", type=Path, required=True, help="training run folder (holds best.pt)")
    p.add_argument("--output", type=Path, required=True, help="bundle directory to write (replaced)")
    engine.add_flags(p, "data", "limit", "cache_dir", data={"help": "datasets (default: the run's own)"})
    p.add_argument("--latency-photos", type=int, default=50, help="photos timed per runtime")
    p.add_argument("--threads", type=int, default=1,
                   help="inference threads while measuring (1: as the appliance's one press at a time on a Pi core)")
    engine.add_flags(p, "calibration_batches", "check_photos", "precision", "version", "sign")
    engine.add_flags(p, "home_garments", "product_garments")
    return p


def by_eye(args: argparse.Namespace, data: list[str], test, logits: np.ndarray, classes: list[str]) -> dict:
    """Top-1 on the test photos named by eye (--home-garments, --product-garments), per source: right when the
    classifier's first garment is one a sighted person accepts, as `wardrobe train evaluate` judges it. A file
    that names no test photo of --data is refused in one line."""
    roots = dict(spec.split("=", 1) for spec in data if "=" in spec)
    out = {}
    for flag in ("home_garments", "product_garments"):
        kind, column = EYE_FILES[flag]
        path = getattr(args, flag, None)
        if path is None:
            continue
        labels = load_eye_labels(path, Path(roots[kind]), column) if kind in roots else {}
        rows = [i for i, r in enumerate(test.records) if r.path in labels]
        if not rows:
            raise ModelError(f"--{flag.replace('_', '-')} {path}: none of its photos is a test photo of --data {kind}")
        said = logits[rows].argmax(1)
        out[kind] = {"n": len(rows), "top1": float(np.mean([classes[c] in labels[test.records[i].path]
                                                            for i, c in zip(rows, said, strict=True)]))}
    return out


def fit_temperature(logits: np.ndarray, targets: np.ndarray) -> float:
    """The temperature minimising validation negative log-likelihood (calibrated confidence)."""
    from scipy.optimize import minimize_scalar

    z = torch.from_numpy(logits).double()
    y = torch.from_numpy(targets)

    def nll(log_t: float) -> float:
        return torch.nn.functional.cross_entropy(z / float(np.exp(log_t)), y).item()

    return float(np.exp(minimize_scalar(nll, bounds=(-3, 3), method="bounded").x))


def expected_calibration_error(probs: np.ndarray, targets: np.ndarray, bins: int = 10) -> float:
    """ECE: the gap between confidence and accuracy, averaged over confidence bins."""
    conf, pred = probs.max(1), probs.argmax(1)
    ece = 0.0
    for lo in np.linspace(0, 1, bins, endpoint=False):
        m = (conf > lo) & (conf <= lo + 1 / bins)
        if m.any():
            ece += m.mean() * abs(conf[m].mean() - (pred[m] == targets[m]).mean())
    return float(ece)


def confidence_bands(probs: np.ndarray, targets: np.ndarray, sources: np.ndarray) -> dict:
    """Per source, how often the top guess is right within each band the sentence speaks differently."""
    from wardrobe.phrase import PROBABLY, SURE

    conf, right = probs.max(1), probs.argmax(1) == targets
    bands = {"sure (named plainly)": (SURE, 1.01), "probably": (PROBABLY, SURE), "not sure": (0.0, PROBABLY)}
    out = {}
    for src in sorted(set(sources.tolist())):
        m = sources == src
        out[src] = {}
        for name, (lo, hi) in bands.items():
            b = m & (conf >= lo) & (conf < hi)
            out[src][name] = {"share": float(b.sum() / max(1, m.sum())),
                              "accuracy": float(right[b].mean()) if b.any() else None}
    return out


def export_onnx(model: torch.nn.Module, crop: int, path: Path, outputs: tuple[str, ...] = ("logits",)) -> None:
    """fp32 ONNX with a dynamic batch dimension."""
    dummy = torch.zeros(1, 3, crop, crop)
    torch.onnx.export(model, (dummy,), str(path), input_names=["image"], output_names=list(outputs),
                      dynamic_axes={"image": {0: "batch"}, **{o: {0: "batch"} for o in outputs}}, opset_version=17,
                      dynamo=False)


class WithEmbedding(torch.nn.Module):
    """An EfficientNet-Lite whose ONNX export gives the pooled features ("embedding") beside the logits."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.m = model

    def forward(self, x):
        pooled = self.m.pooled(self.m.prefix(x, 0), 0)
        return self.m.net._fc(pooled), pooled


def ship_onnx(tmp: Path, net: torch.nn.Module, meta: dict, splits: dict, args, outputs: tuple[str, ...] = ("logits",)
              ) -> Path:
    """Export the network to fp32 ONNX, write the shipped model.onnx into the bundle folder tmp (int8 only when it
    agrees with fp32 on held-out validation photos, precision.choose) and record in meta which it is, what was
    measured and the fp32 references the closet checks itself against. Returns the fp32 file (beside tmp; the
    caller removes it)."""
    from wardrobe.images import packaged_photos
    from wardrobe.train import precision

    pre = Preprocess.from_dict(meta["preprocess"])
    fp32 = tmp.with_name(tmp.name + ".fp32.onnx")
    export_onnx(net, pre.crop, fp32, outputs)
    calib = calibration_images(splits["train"].records, pre, args.calibration_batches)
    photos = precision.check_photos(splits, pre, args.check_photos)
    check = precision.choose(meta, fp32, tmp / "model.onnx", calib, photos, args.precision)
    meta["onnx_precision"] = check["shipped"]
    meta.setdefault("metrics", {})["precision"] = check
    meta["self_check"] = precision.references(meta, fp32, packaged_photos())
    log.info("model.onnx is %s: %s", check["shipped"], json.dumps(check))
    return fp32


def calibration_images(records: list, pre: Preprocess, batches: int) -> np.ndarray:
    """What static int8 quantization is calibrated on: 32 x batches training photos (drawn with seed 0),
    preprocessed as the model sees them."""
    pick = np.random.default_rng(0).choice(len(records), min(len(records), 32 * batches), replace=False)
    picked = load_images([records[i].path for i in np.sort(pick)], pre, None)
    return np.concatenate([pre.normalise(pre.center_crop(np.asarray(img)))[None] for img in picked])


def work_folder(out: Path, kind: str) -> Path:
    """A new, empty folder of this command's own beside out (.OUT.<random>.kind): never a fixed name, so no folder
    of someone else's (OUT.tmp, OUT.old) is ever deleted in its place."""
    out.parent.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=f".{kind}"))
    folder.chmod(0o755)  # a bundle is read by the closet's own user too
    return folder


def start_bundle(out: Path, model: torch.nn.Module) -> Path:
    """A fresh folder beside out for a new bundle, holding the model's fp32 weights (model.safetensors)."""
    from safetensors.torch import save_file

    tmp = work_folder(out, "tmp")
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(tmp / "model.safetensors"))
    (tmp / "model.safetensors").chmod(0o644)
    return tmp


def next_version(meta: dict, previous: str, version: str | None = None) -> None:
    """A bundle written from another (rebuild, patterns, colour-decision): a new version (the one given, or the
    creation time), its creation time, and the version it came from in its metrics."""
    meta["metrics"] = dict(meta.get("metrics", {}))
    meta["metrics"]["previous_version"] = previous
    meta["version"] = version or dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S")
    meta["created"] = dt.datetime.now(dt.UTC).isoformat()


def check_bundle_output(out: Path) -> None:
    """Before a command's work: out must be new, or a bundle folder that the new bundle replaces. Anything else (a
    run folder, a folder of other files, a plain file) would be deleted in its place: TrainingError instead."""
    if out.exists() and not (out.is_dir() and (out / "bundle.json").is_file()):
        raise TrainingError(f"{out} exists and is not a model bundle: choose a new --output (nothing was changed)")
    try:
        check_folder_takes_files(out.parent, f"the bundle {out}")
    except ValueError as e:
        raise TrainingError(str(e)) from None


def finish_bundle(tmp: Path, out: Path, key: Path | None = None) -> None:
    """Checksum and verify the bundle made in tmp, sign it with key (if given), and put it in out's place."""
    check_bundle_output(out)
    write_manifest(tmp)
    Bundle.load(tmp)
    if key:
        from wardrobe.signing import sign_bundle

        log.info("signed with key %s", sign_bundle(tmp, key))
    old = work_folder(out, "old")
    if out.exists():
        out.rename(old)  # onto the empty folder of our own
    tmp.rename(out)
    shutil.rmtree(old, ignore_errors=True)


def main(args: argparse.Namespace) -> dict:
    """Export, evaluate every runtime on the test split, choose the default, write the manifest."""
    from wardrobe.classify import Classifier

    check_bundle_output(args.output)  # before the hour of work, as is a bad key
    if args.sign:
        from wardrobe.signing import load_private

        load_private(args.sign)
    ckpt = load_checkpoint(args.run / "best.pt")
    run_args = ckpt["args"]
    classes: list[str] = ckpt["classes"]
    families: list[str] = ckpt.get("colour_families", [])
    occasions: dict[str, float] = ckpt.get("occasions", {})  # an attached attribute head (train attributes --attach)
    pre = Preprocess.from_dict(ckpt["preprocess"])
    model = build_model(ckpt["arch"], len(classes) + len(families) + len(occasions))
    model.load_state_dict(ckpt["model"])
    model.eval()

    out = args.output
    tmp = start_bundle(out, model)
    data = args.data or run_args["data"]
    # Only what is used is decoded: validation and test, and the training photos picked for calibration.
    # The validation photos the run learnt by eye (--eye-garments) are judged by the same names here, so that the
    # temperature calibrates against what the model was taught to say, not the folder it departs from.
    named = eye_names(run_args.get("eye_garments") or [], data)
    _, splits = build_splits(data, Taxonomy.load(), pre, int(run_args["seed"]), None, args.limit, decode=False,
                             named=named)
    for name in ("val", "test"):
        splits[name].images = load_images([r.path for r in splits[name].records], pre, args.cache_dir)
    val_logits = predict_logits(model, splits["val"].images, pre, "cpu")
    temperature = fit_temperature(val_logits[:, : len(classes)], splits["val"].targets)
    by_eye_val = sum(r.path in named for r in splits["val"].records)
    log.info("temperature %.3f fitted on %d validation photos (%d named by eye)", temperature, len(val_logits),
             by_eye_val)
    shutil.copy(Path(__file__).resolve().parent.parent / "data" / "taxonomy.csv", tmp / "taxonomy.csv")
    version = args.version or dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S")
    meta = {"format_version": FORMAT_VERSION, "version": version, "created": dt.datetime.now(dt.UTC).isoformat(),
            "arch": ckpt["arch"], "classes": classes, "colour_families": families, "occasions": occasions,
            **({"background_class": ckpt["background_class"]} if ckpt.get("background_class") else {}),
            "preprocess": pre.to_dict(),
            "runtimes": {"onnx": "model.onnx", "torch": "model.safetensors"}, "default_runtime": "onnx",
            "temperature": temperature, "trained": {"best_epoch": ckpt["epoch"], "args": run_args}, "metrics": {}}
    fp32 = ship_onnx(tmp, model, meta, splits, args)  # measured below beside the shipped one, not shipped
    (tmp / "bundle.json").write_text(json.dumps(meta, indent=2))
    write_manifest(tmp)

    test = splits["test"]
    metrics: dict = {}
    from wardrobe.classify import OnnxBackend

    for runtime in ("onnx", "torch", "onnx-fp32"):
        if runtime == "onnx-fp32":  # the unquantized export, for the side-by-side
            clf = Classifier(Bundle.load(tmp), OnnxBackend(fp32, args.threads), runtime)
        else:
            clf = Classifier.load(tmp, runtime, args.threads)
        x = [pre.normalise(pre.center_crop(np.asarray(img)))[None] for img in test.images]
        logits = np.concatenate([clf.backend.logits(np.concatenate(x[i : i + 64])) for i in range(0, len(x), 64)])
        g = logits[:, : len(classes)]
        probs = np.exp(g / temperature - (g / temperature).max(1, keepdims=True))
        probs /= probs.sum(1, keepdims=True)
        times = []
        for b in x[: args.latency_photos]:
            t = time.perf_counter()
            clf.backend.logits(b)
            times.append((time.perf_counter() - t) * 1000)
        m = report.accuracy_by_source(g, test.targets, test.sources)
        m["latency_ms_median"] = statistics.median(times)
        m["size_bytes"] = (tmp / meta["runtimes"][runtime] if runtime in meta["runtimes"] else fp32).stat().st_size
        m["ece"] = expected_calibration_error(probs, test.targets)
        m["confidence_bands"] = confidence_bands(probs, test.targets, test.sources)
        if args.home_garments or args.product_garments:
            m["by_eye"] = by_eye(args, data, test, g, classes)
        if families:
            m["colour_family_acc"] = report.set_accuracy(logits[:, len(classes) : len(classes) + len(families)],
                                                         test.colour_sets)
        metrics[runtime] = m
        log.info("%s: %s", runtime, json.dumps({k: v for k, v in m.items()}))
    fp32.unlink()
    # The faster shipped runtime is the default unless it loses more than a point of accuracy.
    fast = min(("onnx", "torch"), key=lambda r: metrics[r]["latency_ms_median"])
    slow = "torch" if fast == "onnx" else "onnx"
    drop = metrics[slow]["all"]["top1"] - metrics[fast]["all"]["top1"]
    meta["default_runtime"] = fast if drop <= 0.01 else slow
    meta["metrics"] = {"test": metrics, "split_seed": run_args["seed"], "temperature": temperature,
                       "temperature_photos": {"val": len(val_logits), "named_by_eye": by_eye_val},
                       "precision": meta["metrics"]["precision"]}
    if occasions:
        meta["metrics"]["occasions"] = ckpt.get("occasion_metrics", {})
    (tmp / "bundle.json").write_text(json.dumps(meta, indent=2))
    finish_bundle(tmp, out, args.sign)
    log.info("bundle written to %s (default runtime %s)", out, meta["default_runtime"])
    return meta
