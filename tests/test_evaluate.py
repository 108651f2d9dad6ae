"""`wardrobe train evaluate`: the figures the user feels, from what the sentence actually names."""

from __future__ import annotations

import json
import os

import pytest

from tests.conftest import PHOTOS, ROOT, SHIPPED
from wardrobe.train.evaluate import colour_figures, intervals, summarise, user_figures


def row(truth, *alternatives, said=True):
    return {"truth": truth, "said": alternatives[0][0] if alternatives and said else None,
            "alternatives": list(alternatives)}


def test_truth_said_and_confidently_wrong_follow_the_sentence():
    rows = [row("T-shirt", ("T-shirt", 0.9)),                    # named plainly, right
            row("T-shirt", ("shirt", 0.9), ("T-shirt", 0.05)),  # named plainly, wrong: confidently wrong
            row("T-shirt", ("shirt", 0.6), ("T-shirt", 0.3)),   # "probably a shirt, maybe a T-shirt": truth said
            row("T-shirt", ("shirt", 0.6), ("top", 0.1)),       # "probably a shirt.": wrong, but hedged
            row("T-shirt", ("T-shirt", 0.9), said=False)]       # "I can't see a garment."
    f = user_figures(rows)
    assert f["n"] == 5
    assert f["garment_top1"] == pytest.approx(1 / 5)  # the fifth names nothing
    assert f["truth_said"] == pytest.approx(2 / 5)
    assert f["confidently_wrong"] == pytest.approx(1 / 5)
    assert f["garment_hedged"] == pytest.approx(2 / 5)
    assert f["no_garment_named"] == pytest.approx(1 / 5)
    # a higher plain-answer threshold turns the confident mistake into a hedge
    assert user_figures(rows, sure=0.95)["confidently_wrong"] == 0


def test_intervals_resample_senders_not_photos():
    """Twenty photos from one home all right and twenty from another all wrong say little about a third home: the
    interval spans nearly everything. The same forty answers from forty homes pin the figure near a half."""
    def home(right, group):
        return {"truth": "T-shirt", "said": "T-shirt" if right else "shirt",
                "alternatives": [("T-shirt" if right else "shirt", 0.95)], "group": group,
                "accept": ("black",), "colour": "black" if right else None, "colour_or": None}

    two_homes = [home(i < 20, "sender-a" if i < 20 else "sender-b") for i in range(40)]
    forty_homes = [home(i < 20, f"sender-{i}") for i in range(40)]
    wide, narrow = intervals(two_homes)["garment_top1"], intervals(forty_homes)["garment_top1"]
    assert wide[0] == 0.0 and wide[1] == 1.0
    assert 0.3 < narrow[0] < 0.5 < narrow[1] < 0.7
    # a photo with no colour said is not counted for colour: every counted one is right
    assert intervals(forty_homes)["colour_main_family"] == [1.0, 1.0]
    # the summary carries them beside each figure
    assert summarise([{**r, "source": "clothing-photos", "by_eye": False} for r in forty_homes]
                     )["home"]["interval95"]["garment_top1"] == narrow


def test_a_hedged_colour_is_right_when_either_is():
    rows = [{"accept": ("black",), "colour": "blue", "colour_or": "black"},
            {"accept": ("black",), "colour": "blue", "colour_or": None},
            {"accept": ("white",), "colour": "white", "colour_or": None},
            {"accept": (), "colour": "red", "colour_or": None}]  # no label: not counted
    f = colour_figures(rows)
    assert f == {"n": 3, "main_family": pytest.approx(2 / 3), "colour_hedged": pytest.approx(1 / 3),
                 "colour_unsure": 0.0, "right_when_unsure": None, "right_when_not_unsure": pytest.approx(2 / 3)}


def test_a_colour_said_unsure_is_counted_apart():
    """The share of colours said with "I'm not sure of the colour." and how often they and the others are right."""
    rows = [{"accept": ("black",), "colour": "blue", "colour_or": None, "colour_unsure": True},
            {"accept": ("gray",), "colour": "gray", "colour_or": None, "colour_unsure": True},
            {"accept": ("white",), "colour": "white", "colour_or": None, "colour_unsure": False},
            {"accept": ("red",), "colour": "red", "colour_or": None}]  # recorded before it existed: not unsure
    f = colour_figures(rows)
    assert f["colour_unsure"] == 0.5 and f["right_when_unsure"] == 0.5 and f["right_when_not_unsure"] == 1.0
    assert f["main_family"] == 0.75


def test_product_photos_labelled_by_eye_are_scored_against_the_eye_and_the_shop_apart():
    """A navy shirt the shop calls "Blue" and a sighted person black or blue: said "black", it is wrong by the
    shop's label and right by eye; a photo with no by-eye label is only in the shop's figure."""
    def product(shop, eye, said):
        return {"source": "product-photos", "by_eye": False, "truth": "shirt", "said": "shirt",
                "alternatives": [("shirt", 0.95)], "accept": shop, "eye": eye, "colour": said, "colour_or": None}

    rows = [product(("blue",), ("black", "blue"), "black"), product(("white",), ("white",), "white"),
            product(("red",), (), "red")]
    out = summarise(rows)
    assert out["product"]["colour"]["n"] == 3 and out["product"]["colour"]["main_family"] == pytest.approx(2 / 3)
    assert out["product by eye"]["n"] == 2
    assert out["product by eye"]["colour"] == {"n": 2, "main_family": 1.0, "colour_hedged": 0.0, "colour_unsure": 0.0,
                                               "right_when_unsure": None, "right_when_not_unsure": 1.0}
    assert colour_figures(rows, truth="eye")["main_family"] == 1.0


def test_product_garments_named_by_eye_judge_the_answer_beside_the_shop():
    """A flat thong sandal the shop files under "Flats" (the closet's "shoes") and a sighted person calls flip-flops
    or sandals: said "sandals", it is wrong by the shop's label and right by eye. A photo with a by-eye colour but
    no by-eye garment is judged by the shop's label in both columns."""
    def product(truth, said, eye_garments=(), eye=("black",)):
        return {"source": "product-photos", "by_eye": False, "truth": truth, "said": said,
                "alternatives": [(said, 0.95)], "accept": ("black",), "eye": eye, "eye_garments": eye_garments,
                "colour": "black", "colour_or": None}

    rows = [product("shoes", "sandals", ("flip-flops", "sandals")), product("shirt", "shirt", ("shirt",)),
            product("T-shirt", "top"), product("dress", "dress", eye=())]  # the last: in no by-eye file
    out = summarise(rows)
    assert out["product"]["garment_top1"] == pytest.approx(2 / 4)
    assert out["product by eye"]["n"] == 3
    assert out["product by eye"]["garment_top1"] == pytest.approx(2 / 3)
    assert out["product by eye"]["confidently_wrong"] == pytest.approx(1 / 3)


def test_home_garments_named_by_eye_judge_the_answer_beside_the_label():
    """A zipped hooded jacket the dataset calls a long-sleeved top, and a sighted person a coat or a hoodie: said
    plainly as a coat, it is confidently wrong by the label and right by eye; a photo nobody named by eye keeps its
    label in the by-eye column too."""
    def home(truth, said, p, eye=(), colours=False):
        return {"source": "clothing-photos", "by_eye": colours, "truth": truth, "said": said,
                "alternatives": [(said, p)], "eye_garments": eye, "accept": (), "colour": None, "colour_or": None}

    rows = [home("long-sleeved top", "coat or jacket", 0.95, ("coat or jacket", "hoodie")),
            home("shoes", "shoes", 0.99, ("shoes",)), home("shirt", "T-shirt", 0.95, colours=True),
            home("hat", "shoes", 0.95)]  # labelled by eye in nothing: in "home" only
    out = summarise(rows)
    assert out["home"]["n"] == 4 and out["home"]["garment_top1"] == pytest.approx(1 / 4)
    assert out["home"]["confidently_wrong"] == pytest.approx(3 / 4)
    assert out["home by eye"]["n"] == 3
    assert out["home by eye"]["garment_top1"] == pytest.approx(2 / 3)
    assert out["home by eye"]["confidently_wrong"] == pytest.approx(1 / 3)
    assert user_figures(rows[:3], truth="eye_garments")["truth_said"] == pytest.approx(2 / 3)


LABELS = ROOT / "assets" / "labels"


def shared_data(source: str = "product-photos"):
    """../shared/data beside the checkout: CI must have it; elsewhere the test is skipped without it."""
    data = ROOT.parent / "shared" / "data"
    if not (data / source).is_dir():
        if os.environ.get("CI"):
            pytest.fail("CI must have ../shared/data beside the checkout")
        pytest.skip("the shared photos are not beside the checkout")
    return data
FAMILIES_WORDS = {"black", "white", "gray", "red", "orange", "yellow", "green", "blue", "purple", "pink", "brown", "beige"}


@pytest.mark.parametrize("name, column, source, allowed", [
    ("home-colours.csv", "families", "clothing-photos", {"val", "test"}),
    ("home-garments.csv", "garments", "clothing-photos", {"val", "test"}),
    ("product-garments.csv", "garments", "product-photos", {"val", "test"}),
    ("product-colours.csv", "families", "product-photos", {"val", "test"}),
    ("train-garments.csv", "garments", "product-photos", {"train"}),
    ("train-home-garments.csv", "garments", "clothing-photos", {"train"})])
def test_each_by_eye_file_names_the_photos_of_its_splits(name, column, source, allowed):
    """Each by-eye file names only the closet's words, and each photo's split column is its split under seed 0:
    validation or test for the files that measure, never a training photo (a file drawn from another split by
    mistake would measure what the model learnt); training only for the file that teaches (a held-out photo in it
    would be learnt, then measured). product-garments.csv names every held-out product photo, and
    train-home-garments.csv every training home photo."""
    import csv

    from wardrobe.taxonomy import Taxonomy

    with open(LABELS / name, newline="") as f:
        rows = list(csv.DictReader(f))
    words = FAMILIES_WORDS if column == "families" else set(Taxonomy.load().classes)
    assert rows and all(r[column] and set(r[column].split(";")) <= words for r in rows), name
    assert {r["split"] for r in rows} <= allowed
    data = shared_data(source)
    from wardrobe.preprocess import Preprocess
    from wardrobe.train.data import build_splits

    _, splits = build_splits([f"clothing-photos={data / 'clothing-photos'}", f"product-photos={data / 'product-photos'}"],
                             Taxonomy.load(), Preprocess(), 0, None, decode=False)
    split_of = {r.path: s for s in ("train", "val", "test") for r in splits[s].records}
    wrong = [r["image"] for r in rows if split_of.get(str(data / source / r["image"])) != r["split"]]
    assert not wrong, f"{name}: {len(wrong)} photos not in the split they say, e.g. {wrong[:3]}"
    if name == "product-garments.csv":
        held_out = {r.path for s in ("val", "test") for r in splits[s].records if r.source == source}
        assert {str(data / source / r["image"]) for r in rows} == held_out
    if name == "train-home-garments.csv":
        trained = {r.path for r in splits["train"].records if r.source == source}
        assert {str(data / source / r["image"]) for r in rows} == trained


def test_evaluate_runs_the_shipped_bundle_as_describe_does(tmp_path):
    data = shared_data("product-photos")
    from wardrobe.train import evaluate

    out = tmp_path / "evaluate.json"
    args = evaluate.get_args_parser().parse_args([
        "--bundle", str(SHIPPED), "--data", f"clothing-photos={data / 'clothing-photos'}",
        "--data", f"product-photos={data / 'product-photos'}", "--limit", "6", "--splits", "val",
        "--home-colours", str(ROOT / "assets" / "labels" / "home-colours.csv"),
        "--home-garments", str(ROOT / "assets" / "labels" / "home-garments.csv"),
        "--product-colours", str(ROOT / "assets" / "labels" / "product-colours.csv"),
        "--product-garments", str(ROOT / "assets" / "labels" / "product-garments.csv"), "--output", str(out)])
    evaluate.main(args)
    r = json.loads(out.read_text())
    # every held-out photo is named by eye, home and product; the product colours by eye are found where they are
    assert r["by_eye"] == {"home_colours": 754, "home_garments": 755, "product_colours": 663, "product_garments": 5932}
    assert r["runtime"] == "onnx" and r["self_check"] == "agrees with its fp32 references"
    for src in ("home", "product"):
        assert r["val"][src]["n"] == 6 and 0 <= r["val"][src]["confidently_wrong"] <= 1
    assert set(r["val_sweeps"]["sure"]) and set(r["val_sweeps"]["colour_hedge_min"])
    # The cut-out weight's sweep, at the shipped bundle's own weight, is what describe said.
    from wardrobe.bundle import Bundle

    own = r["val_sweeps"]["cutout_weight"][str(Bundle.load(SHIPPED).cutout_weight)]
    for sure, figures in r["val_sweeps"]["sure"].items():
        for src, f in figures.items():
            assert own[sure][src] == pytest.approx(f), (sure, src)
    assert "| confidently wrong |" in evaluate.table(r)


def test_a_by_eye_file_that_names_no_held_out_photo_is_refused(tmp_path):
    """Pointed at the wrong folder (here: product photos named as home garments), a by-eye file matches nothing;
    its column would vanish or quietly fall back to the dataset's labels, so evaluate refuses it in one line."""
    data = shared_data("product-photos")
    from wardrobe.errors import ModelError
    from wardrobe.train import evaluate

    wrong = tmp_path / "garments.csv"
    wrong.write_text("image,split,garments\nimages/15970.jpg,val,shirt\n")
    common = ["--bundle", str(SHIPPED), "--data", f"clothing-photos={data / 'clothing-photos'}",
              "--output", str(tmp_path / "e.json")]
    with pytest.raises(ModelError, match="none of its 1 photos"):
        evaluate.main(evaluate.get_args_parser().parse_args([*common, "--home-garments", str(wrong)]))
    with pytest.raises(ModelError, match="give --data product-photos=DIR"):
        evaluate.main(evaluate.get_args_parser().parse_args(
            [*common, "--product-colours", str(LABELS / "product-colours.csv")]))


def test_the_colour_decision_is_fitted_on_training_photos_only(tmp_path):
    """`wardrobe train colour-decision` on a few real training photos: a new bundle whose decision loads and speaks,
    the network's files byte for byte the shipped ones; a label file of validation and test photos only (the
    by-eye measure) is refused, so the measure never trains the closet."""
    data = shared_data("product-photos")
    from wardrobe.bundle import Bundle, sha256_file
    from wardrobe.errors import ModelError
    from wardrobe.train import colour_decision

    def flags(labels, out):
        return ["--bundle", str(SHIPPED), "--data", f"clothing-photos={data / 'clothing-photos'}",
                "--data", f"product-photos={data / 'product-photos'}", "--home-colours", str(labels),
                "--limit", "24", "--products", "24", "--output", str(out), "--version", "decision-test"]

    def args(labels, out, *more):
        return colour_decision.get_args_parser().parse_args([*flags(labels, out), *more])

    out = tmp_path / "bundle"
    with pytest.raises(ModelError, match="are not in the training split"):
        colour_decision.main(args(ROOT / "assets" / "labels" / "home-colours.csv", out))
    mixed = tmp_path / "mixed.csv"  # one validation photo among training ones is refused too
    lines = (ROOT / "assets" / "labels" / "home-colours-train.csv").read_text().splitlines()[:30]
    mixed.write_text("\n".join([*lines, (ROOT / "assets" / "labels" / "home-colours.csv").read_text().splitlines()[1]]))
    with pytest.raises(ModelError, match="1 of its 30 photos are not in the training split"):
        colour_decision.main(args(mixed, out))
    with pytest.raises(ModelError, match="trained with seed 0"):
        colour_decision.main(args(mixed, out, "--seed", "3"))
    assert not out.exists()
    result = colour_decision.main(args(ROOT / "assets" / "labels" / "home-colours-train.csv", out))
    assert result["home"] == 24 and result["photos"] == 48
    b = Bundle.load(out)
    assert b.version == "decision-test" and b.colour_decision is not None
    assert "24 home photos labelled by eye" in b.colour_decision.fitted_on
    for name in ("model.onnx", "model.safetensors"):
        assert sha256_file(out / name) == sha256_file(SHIPPED / name)
    from wardrobe.classify import Classifier
    from wardrobe.images import read_image
    from wardrobe.pipeline import Pipeline

    pipe = Pipeline(Classifier.load(out, "onnx"))
    d = pipe.describe(read_image(PHOTOS / "home-pants.jpg"))
    assert d.colours and d.sentence


def test_compare_counts_a_gain_from_one_home_as_one_home(tmp_path):
    """`wardrobe train compare`: the candidate fixes 8 photos. From one home of five it is no evidence (the interval
    holds 0); the same 8 fixes spread over 8 of 40 homes are."""
    import subprocess
    import sys

    from wardrobe.errors import TrainingError
    from wardrobe.train.compare import differences

    def home(right, group):
        return {"source": "clothing-photos", "by_eye": False, "truth": "T-shirt", "group": group,
                "said": "T-shirt" if right else "shirt", "alternatives": [("T-shirt" if right else "shirt", 0.95)],
                "accept": (), "colour": None, "colour_or": None, "split": "val"}

    one_home = [f"sender-{i // 8}" for i in range(40)]
    before = [home(g != "sender-0", g) for g in one_home]
    after = [home(True, g) for g in one_home]
    d = differences(before, after)["home"]["garment_top1"]
    assert d["before"] == pytest.approx(0.8) and d["difference"] == pytest.approx(0.2)
    assert d["interval95"][0] == 0.0 < d["interval95"][1]
    spread = [f"sender-{i}" for i in range(40)]
    before = [home(i >= 8, g) for i, g in enumerate(spread)]
    after = [home(True, g) for g in spread]
    d = differences(before, after)["home"]["garment_top1"]
    assert d["difference"] == pytest.approx(0.2) and d["interval95"][0] > 0.05
    with pytest.raises(TrainingError, match="not the same photos"):
        differences(before, after[:-1])
    # the command itself, through `wardrobe train`
    for name, rows in (("before", before), ("after", after)):
        (tmp_path / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = subprocess.run([sys.executable, "-m", "wardrobe.train", "compare", str(tmp_path / "before.jsonl"),
                          str(tmp_path / "after.jsonl")], capture_output=True, text=True, check=True).stdout
    assert "| home | garment top-1 | 40 | 80.0 % | 100.0 % | +20.0 (" in out
    # rows judged against other truths (another taxonomy, other by-eye names) are refused, not compared
    relabelled = [{**r, "truth": "polo shirt"} if i == 0 else r for i, r in enumerate(after)]
    with pytest.raises(TrainingError, match="'truth' differs"):
        differences(before, relabelled)
    with pytest.raises(TrainingError, match="'eye_garments' differs"):
        differences(before, [{**r, "eye_garments": ["shirt"]} for r in after])
    # a colour is compared on the photos where both said one: 1 of 2 right before, the same photo right after
    coloured = [{**home(True, "sender-a"), "accept": ("black",), "colour": "blue"},
                {**home(True, "sender-b"), "accept": ("black",), "colour": "black"}]
    later = [{**coloured[0], "colour": None}, coloured[1]]
    d = differences(coloured, later)["home"]["colour_main_family"]
    assert (d["n"], d["before"], d["after"], d["difference"]) == (1, 1.0, 1.0, 0.0)
    (tmp_path / "corrupt.jsonl").write_text('{"source": "clothing-photos"}\n[1, 2]\n')
    for broken in ("nothing.jsonl", "corrupt.jsonl"):
        bad = subprocess.run([sys.executable, "-m", "wardrobe.train", "compare", str(tmp_path / "before.jsonl"),
                              str(tmp_path / broken)], capture_output=True, text=True)
        assert bad.returncode != 0 and "Traceback" not in bad.stderr and broken in bad.stderr + bad.stdout
