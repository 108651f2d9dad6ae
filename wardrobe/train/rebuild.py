"""Rebuild a bundle's ONNX model from its own fp32 weights under today's export rules: the shipped precision
chosen by agreement with fp32 on held-out photos (precision.choose), and the fp32 references the closet
checks itself against. The weights, classes, heads, thresholds and figures are kept; the version is new.

    wardrobe train rebuild --bundle models/default --output models/default --data clothing-photos=DIR \\
        --data product-photos=DIR

With --check-only nothing is written: the bundle's own model.onnx is compared with its fp32 weights on this
processor, and the command fails (exit 1) below the thresholds. This is the check that shows an int8 model
saturating on a processor without VNNI (run it there, or under `qemu-x86_64 -cpu Haswell`).
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
from pathlib import Path

from wardrobe.bundle import Bundle
from wardrobe.errors import ModelError
from wardrobe.preprocess import Preprocess
from wardrobe.taxonomy import Taxonomy
from wardrobe.train import engine, precision
from wardrobe.train.data import build_splits

log = logging.getLogger(__name__)


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    """Command-line flags."""
    p = argparse.ArgumentParser(prog="wardrobe train rebuild", add_help=add_help,
                                description="Rebuild a bundle's ONNX model from its fp32 weights, checked against them.",
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--output", type=Path, help="the rebuilt bundle's directory (replaced; may be --bundle itself)")
    p.add_argument("--check-only", action="store_true",
                   help="write nothing: compare the bundle's model.onnx with its fp32 weights on this processor")
    p.add_argument("--cutout-weight", type=float, metavar="W",
                   help="share of the cut-out garment in the garment probabilities, 0 to 1, as chosen on validation "
                        "by `wardrobe train evaluate` (default: the bundle's own)")
    engine.add_flags(p, "bundle", "data", "calibration_batches", "check_photos", "precision", "version", "sign",
                     required=("bundle",), data={"help": "datasets (default: the bundle's run's)"})
    return p


def fp32_network(bundle: Bundle):
    """The bundle's network in fp32 from its safetensors weights, wrapped to give its embedding when it has one."""
    from safetensors.torch import load_file

    from wardrobe.train.export import WithEmbedding
    from wardrobe.train.models import build_model

    if "torch" not in bundle.runtimes:
        raise ModelError(f"{bundle.path} carries no fp32 weights (model.safetensors) to rebuild from")
    model = build_model(bundle.arch, bundle.outputs)
    model.load_state_dict(load_file(str(bundle.path / bundle.runtimes["torch"])))
    model.eval()
    return (WithEmbedding(model).eval(), ("logits", "embedding")) if bundle.embedding else (model, ("logits",))


def carry_test_figures(meta: dict) -> None:
    """The export's test figures per runtime stay true of the rebuilt model: the old ONNX model's are kept under
    another name, and an fp32 model.onnx takes those the export measured for its fp32 ONNX."""
    test = meta.get("metrics", {}).get("test")
    if isinstance(test, dict) and "onnx" in test and "onnx-before-rebuild" not in test:
        test["onnx-before-rebuild"] = test.pop("onnx")
        if meta.get("onnx_precision") == "fp32" and "onnx-fp32" in test:
            test["onnx"] = test["onnx-fp32"]


def main(args: argparse.Namespace) -> dict:
    """Check, or rebuild and write."""
    from wardrobe.train.export import export_onnx, finish_bundle, next_version, ship_onnx

    if args.sign:
        from wardrobe.signing import load_private

        load_private(args.sign)
    if not args.check_only and args.output is None:
        raise ModelError("give --output (the rebuilt bundle's folder) or --check-only")
    if args.output is not None:
        from wardrobe.train.export import check_bundle_output

        check_bundle_output(args.output)  # before the work: a folder of other files is never replaced
    if args.cutout_weight is not None and not 0 <= args.cutout_weight <= 1:
        raise ModelError(f"--cutout-weight must be from 0 to 1, not {args.cutout_weight}")
    bundle = Bundle.load(args.bundle)
    run = bundle.meta.get("trained", {}).get("args", {})
    data = args.data or run.get("data")
    if not data:
        raise ModelError("give --data: the bundle does not say which photos it was trained on")
    _, splits = build_splits(data, Taxonomy.load(), Preprocess(), int(run.get("seed", 0)), None, decode=False)
    net, outputs = fp32_network(bundle)
    if args.check_only:
        fp32 = Path(args.bundle).resolve().with_name(Path(args.bundle).name + ".check-fp32.onnx")
        export_onnx(net, bundle.preprocess.crop, fp32, outputs)
        try:
            photos = precision.check_photos(splits, bundle.preprocess, args.check_photos)
            result = precision.agreement(bundle.meta, fp32, bundle.path / bundle.runtimes["onnx"], photos)
        finally:
            fp32.unlink()
        bad = precision.failures(result)
        print(json.dumps({"bundle": str(args.bundle), "onnx_precision": bundle.meta.get("onnx_precision", "int8"),
                          **result, "agrees": not bad}))
        if bad:
            raise ModelError(f"{bundle.path}/model.onnx does not say what its fp32 weights say on this processor: "
                             + "; ".join(bad))
        return result
    from wardrobe.train.export import start_bundle, work_folder

    out = args.output
    staged = work_folder(out, "rebuild")  # the source may be the output: read it before replacing
    shutil.copytree(bundle.path, staged, dirs_exist_ok=True)
    tmp = start_bundle(out, net.m if bundle.embedding else net)
    for name in ("taxonomy.csv",):
        if (staged / name).is_file():
            shutil.copy(staged / name, tmp / name)
    meta = json.loads((staged / "bundle.json").read_text())
    next_version(meta, bundle.version, args.version)
    meta["runtimes"] = {"onnx": "model.onnx", "torch": "model.safetensors"}
    if args.cutout_weight is not None:
        meta["cutout_weight"] = args.cutout_weight
    ship_onnx(tmp, net, meta, splits, args, outputs).unlink()
    carry_test_figures(meta)
    (tmp / "bundle.json").write_text(json.dumps(meta, indent=2))
    shutil.rmtree(staged)
    finish_bundle(tmp, out, args.sign)
    log.info("bundle %s written to %s: model.onnx is %s", meta["version"], out, meta["onnx_precision"])
    return meta["metrics"]["precision"]
