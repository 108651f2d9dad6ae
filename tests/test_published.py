"""The published-method presets of the training script, each for a few batches on real data.

Fashion-MNIST comes from Debian's dataset-fashion-mnist; the attribute and expert presets use the
real product photos (and their shop labels) copied into assets/product-photos.
"""

from __future__ import annotations

import gzip
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.conftest import ROOT
from wardrobe.errors import TrainingError

FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
PRODUCTS = ROOT / "assets" / "product-photos"

needs_fashion_mnist = pytest.mark.skipif(
    not (FASHION_MNIST / "t10k-labels-idx1-ubyte.gz").exists() and "CI" not in __import__("os").environ,
    reason="apt-get install dataset-fashion-mnist (CI installs it)",
)


# ---------------------------------------------------------------- Fashion-MNIST (Shin et al.)

@needs_fashion_mnist
def test_fashion_mnist_split_is_the_papers():
    from wardrobe.train.published.fashion_mnist import load_splits

    s = load_splits(FASHION_MNIST, seed=0)
    assert {k: len(v[1]) for k, v in s.items()} == {"train": 48_000, "val": 12_000, "test": 10_000}
    assert s["train"][0].shape[1:] == (28, 28) and s["train"][0].dtype == np.uint8
    # Stratified: every class has a tenth of the validation images.
    assert np.all(np.bincount(s["val"][1]) == 1200)


@needs_fashion_mnist
@pytest.mark.parametrize("model", ["cnn", "lenet", "lstm", "bilstm", "ours"])
def test_fashion_mnist_presets_run(model, tmp_path):
    from wardrobe.train.__main__ import main as train_main

    run = tmp_path / model
    assert train_main(["fashion-mnist", "--model", model, "--epochs", "1", "--limit-batches", "3",
                       "--output-dir", str(run)]) == 0
    m = json.loads((run / "metrics.json").read_text())
    assert len(m["per_class"]) == 10 and sum(r["support"] for r in m["per_class"]) == 10_000
    assert m["params"] > 0 and m["cpu_ms_per_image"] > 0 and 0 <= m["f1"] <= 1
    assert m["opt"] == ("dynamic" if model == "ours" else "adam")
    for f in ("table2.md", "loss.png", "test-confusion.png", "checkpoint.pt"):
        assert (run / f).is_file(), f


@needs_fashion_mnist
def test_fashion_mnist_table_compares_runs(tmp_path, capsys):
    from wardrobe.train.__main__ import main as train_main

    for model, opt in (("lenet", "adam"), ("lenet", "expdecay")):
        assert train_main(["fashion-mnist", "--model", model, "--opt", opt, "--epochs", "1", "--limit-batches", "2",
                           "--output-dir", str(tmp_path / f"{model}-{opt}")]) == 0
    assert train_main(["fashion-mnist", "--compare", str(tmp_path)]) == 0
    table = (tmp_path / "table2.md").read_text()
    assert "lenet-adam" in table and "lenet-expdecay" in table and "Ankle boot" in table
    assert "paper's average F1 | 0.88 | 0.88" in table and (tmp_path / "curves.png").is_file()


def test_dynamic_decay_is_adadelta_with_a_decaying_rate():
    from wardrobe.train.published.fashion_mnist import DynamicDecay

    torch.manual_seed(0)
    target = torch.randn(20)

    def run(make) -> tuple[list[float], list[float]]:
        x = torch.zeros(20, requires_grad=True)
        opt = make([x])
        losses, rates = [], []
        for _ in range(300):
            loss = ((x - target) ** 2).sum()
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
            rates.append(opt.param_groups[0]["lr"])
        return losses, rates

    # With no decay it is exactly Adadelta (torch's own implementation).
    ours, _ = run(lambda p: DynamicDecay(p, lr=1.0, rho=0.9, decay=0.0))
    ref, _ = run(lambda p: torch.optim.Adadelta(p, lr=1.0, rho=0.9, eps=1e-6))
    assert np.allclose(ours, ref, rtol=1e-5)
    # With decay the rate follows alpha_0 * exp(-d t (t + 1) / 2) and reaches the asked fraction at the end.
    d = DynamicDecay.decay_for(300, 0.01)
    losses, rates = run(lambda p: DynamicDecay(p, lr=1.0, rho=0.9, decay=d))
    assert rates[-1] == pytest.approx(0.01, rel=1e-6)
    assert rates[99] == pytest.approx(math.exp(-d * 100 * 101 / 2), rel=1e-6)
    assert losses[-1] < 0.5 * losses[0]


def test_corrupt_idx_file_is_refused(tmp_path):
    from wardrobe.train.published.fashion_mnist import read_idx

    bad = tmp_path / "t10k-labels-idx1-ubyte.gz"
    with gzip.open(bad, "wb") as f:
        f.write(bytes([0, 0, 8, 1]) + (10_000).to_bytes(4, "big") + bytes(100))
    with pytest.raises(TrainingError, match="truncated"):
        read_idx(bad)
    bad.write_bytes(b"not an idx file")
    with pytest.raises((TrainingError, OSError)):
        read_idx(bad)


# ---------------------------------------------------------------- attributes (Ren et al.)

def test_attribute_targets_are_multi_label():
    from wardrobe.train.published.attributes import LABELS, attribute_targets

    t = attribute_targets([
        {"usage": "Smart Casual", "season": "Summer", "gender": "Unisex"},
        {"usage": "Party", "season": "", "gender": "Girls"},
    ])
    on = [{LABELS[j] for j in np.flatnonzero(row)} for row in t]
    assert on[0] == {"usage:casual", "usage:formal", "season:summer", "gender:men", "gender:women"}
    assert on[1] == {"gender:women", "gender:kids"}  # no usage value we model, no season


def test_tta_views_are_flips_and_shifts():
    from wardrobe.train.published.attributes import views

    x = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).reshape(2, 3, 8, 8)
    v = views(x, 6, tta=True)
    assert len(v) == 6 and all(t.shape == (2, 3, 6, 6) for t in v)
    assert torch.equal(v[1], v[0].flip(-1))
    assert torch.equal(v[2], x[:, :, 0:6, 1:7]) and torch.equal(v[5], x[:, :, 1:7, 2:8])
    assert len(views(x, 6, tta=False)) == 1


@pytest.mark.parametrize("model", ["alexnet-slim", "inception_resnet_v2"])
def test_attributes_preset_runs(model, tmp_path):
    from wardrobe.nets import AlexNetSlim
    from wardrobe.train.__main__ import main as train_main

    args = ["attributes", "--data", f"product-photos={PRODUCTS}", "--model", model, "--epochs", "2",
            "--frozen-epochs", "1", "--batch-size", "16", "--epoch-size", "32", "--cache-dir", str(tmp_path / "cache"),
            "--output-dir", str(tmp_path / model)]
    if model == "alexnet-slim":
        # A garment classifier's checkpoint as the backbone: its head does not fit and starts fresh.
        torch.save({"model": AlexNetSlim(38).state_dict()}, tmp_path / "garments.pt")
        args += ["--weights", str(tmp_path / "garments.pt")]
    else:
        args += ["--input-size", "80", "--limit", "40"]
    assert train_main(args) == 0
    m = json.loads((tmp_path / model / "metrics.json").read_text())
    assert set(m["test"]["mAP_by_attribute"]) == {"usage", "season", "gender"}
    assert 0 < m["test"]["mAP"] <= 1 and 0 < m["test_tta"]["mAP"] <= 1
    for f in ("attributes.md", "ap.png", "loss.png", "best.pt"):
        assert (tmp_path / model / f).is_file(), f
    assert train_main(["attributes", "--compare", str(tmp_path)]) == 0
    assert "usage mAP" in (tmp_path / "attributes.md").read_text()


def test_attribute_weights_that_do_not_fit_are_refused(tmp_path):
    from wardrobe.train.published.attributes import build_attribute_model

    torch.save({"model": {"fc.weight": torch.zeros(3, 3)}}, tmp_path / "other.pt")
    with pytest.raises(TrainingError, match="does not fit"):
        build_attribute_model("alexnet-slim", tmp_path / "other.pt")
    with pytest.raises(TrainingError, match="no such file"):
        build_attribute_model("alexnet-slim", tmp_path / "missing.pt")


# ---------------------------------------------------------------- VAE oversampling (Park)

def test_vae_oversample_preset_runs(tmp_path):
    from wardrobe.train.__main__ import main as train_main

    out = tmp_path / "vae"
    assert train_main(["vae-oversample", "--data", f"product-photos={PRODUCTS}", "--backbone-epochs", "1",
                       "--backbone-epoch-size", "64", "--vae-epochs", "3", "--clf-epochs", "3", "--n-f", "2", "5",
                       "--seeds", "0", "1", "--cache-dir", str(tmp_path / "cache"), "--output-dir", str(out)]) == 0
    res = json.loads((out / "results.json").read_text())
    assert len(res["rows"]) == 2 * 2 * 5  # n_f x seeds x methods
    assert all(0 <= r["acc"] <= 1 and 0 <= r["acc_h"] <= 1 for r in res["rows"])
    table = (out / "table.md").read_text()
    assert "vae-x50" in table and "n_f=5 acc_h" in table and "37.24" in table
    assert (out / "acc_h.png").is_file() and (out / "backbone.pt").is_file() and (out / "features.npz").is_file()


def test_imbalanced_split_and_scores():
    from wardrobe.train.published.vae_oversample import imbalanced, scores

    y = np.repeat(np.arange(4), 20)
    sel = imbalanced(y, {2, 3}, 5, np.random.default_rng(0))
    assert np.bincount(y[sel]).tolist() == [20, 20, 5, 5]
    pred = y.copy()
    pred[y == 3] = 0  # one minority class entirely wrong
    s = scores(pred, y, {2, 3}, 4)
    assert s["acc_majority"] == 1.0 and s["acc_minority"] == 0.5
    assert s["acc_h"] == pytest.approx(2 * 1.0 * 0.5 / 1.5)


def test_vae_beta_rises_to_epoch_90_and_the_vae_learns():
    from wardrobe.train.published.vae_oversample import FeatureVAE, beta_at

    assert beta_at(0, 1.0) == pytest.approx(1 / 90) and beta_at(89, 1.0) == 1.0 and beta_at(99, 1.0) == 1.0
    torch.manual_seed(0)
    x = torch.randn(256, 16) @ torch.randn(16, 16)
    vae = FeatureVAE(16, z=4, hidden=32)
    opt = torch.optim.Adam(vae.parameters(), lr=1e-2)
    gen = torch.Generator().manual_seed(0)
    first = vae.loss(x, 0.1, gen).item()
    for _ in range(200):
        loss = vae.loss(x, 0.1, gen)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.5 * first
    z1, z2 = vae.sample(x[:4], gen), vae.sample(x[:4], gen)
    assert z1.shape == (4, 4) and not torch.equal(z1, z2)  # samples, not the mean


# ---------------------------------------------------------------- label-mapped experts

def test_every_article_type_maps_to_one_group():
    from wardrobe.train.published.experts import GROUP_OF_SUBCATEGORY, group_mapping

    mapping = group_mapping(PRODUCTS / "styles.csv")
    assert set(mapping.values()) <= set(GROUP_OF_SUBCATEGORY.values())
    assert mapping["Sandals"] == "footwear" and mapping["Jeans"] == "bottomwear" and mapping["Ties"] == "accessories"


def test_experts_preset_runs_in_parallel_processes(tmp_path):
    from wardrobe.train.__main__ import main as train_main

    out = tmp_path / "experts"
    assert train_main(["experts", "--data", f"product-photos={PRODUCTS}", "--epochs", "1", "--batch-size", "32",
                       "--workers", "2", "--cache-dir", str(tmp_path / "cache"), "--output-dir", str(out)]) == 0
    m = json.loads((out / "metrics.json").read_text())
    assert set(m["accuracy"]) == {"single", "experts", "experts+other", "router+experts"}
    # Equal compute: the experts together see as many photos as the single network (rounding aside),
    # and so do the router and its experts.
    for variant in ("experts", "router+experts"):
        assert m["compute"][variant] == pytest.approx(m["compute"]["single"], rel=0.35)
    nets = {p.stem for p in (out / "nets").glob("*.pt")}
    assert {"single", "router"} <= nets and {"expert-footwear", "expert+other-footwear", "routed-footwear"} <= nets
    assert all("errors_by_an_expert_outside_the_true_group" in f for f in m["failures"].values())
    assert set(m["failures"]) == {"experts", "experts+other", "router+experts"}
    assert 0 <= m["router_group_accuracy"] <= 1
    assert (out / "experts.md").is_file() and (out / "experts.png").is_file()


# ---------------------------------------------------------------- the occasion head on the appliance

def test_occasion_head_is_attached_exported_and_said_on_a_long_press(tmp_path):
    from wardrobe.classify import Classifier
    from wardrobe.pipeline import Pipeline
    from wardrobe.train.__main__ import main as train_main

    data = ["--data", f"product-photos={PRODUCTS}"]
    cache = ["--cache-dir", str(tmp_path / "cache")]
    clf_run, head_run, joined = tmp_path / "clf", tmp_path / "head", tmp_path / "joined"
    assert train_main(["classifier", *data, *cache, "--epochs", "1", "--batch-size", "32",
                       "--output-dir", str(clf_run)]) == 0
    assert train_main(["attributes", *data, *cache, "--head-only", "--weights", str(clf_run / "best.pt"),
                       "--epochs", "3", "--output-dir", str(head_run)]) == 0
    # A head on another backbone is refused: the garment outputs must stay the classifier's own.
    other = tmp_path / "other"
    assert train_main(["attributes", *data, *cache, "--epochs", "1", "--epoch-size", "16", "--batch-size", "16",
                       "--output-dir", str(other)]) == 0
    with pytest.raises(SystemExit, match="frozen backbone"):
        train_main(["attributes", "--attach", str(other), str(clf_run), "--output-dir", str(joined)])
    # 228 photos cannot show 90 % precision on 20 validation photos, so the thresholds are set here:
    # formal is always confident enough, sports never.
    m = json.loads((head_run / "metrics.json").read_text())
    m["speakable"] = {"usage:formal": {"threshold": 0.0}, "usage:sports": {"threshold": 1.01},
                      "usage:ethnic": {"threshold": None}, "usage:casual": {"threshold": None}}
    (head_run / "metrics.json").write_text(json.dumps(m))
    assert train_main(["attributes", "--attach", str(head_run), str(clf_run), "--output-dir", str(joined)]) == 0
    before = torch.load(clf_run / "best.pt", weights_only=True)["model"]["classifier.2.weight"]
    after = torch.load(joined / "best.pt", weights_only=True)["model"]["classifier.2.weight"]
    assert after.shape[0] == before.shape[0] + 2 and torch.equal(after[: before.shape[0]], before)

    bundle = tmp_path / "bundle"
    assert train_main(["export", "--run", str(joined), "--output", str(bundle), *data, *cache,
                       "--latency-photos", "2", "--calibration-batches", "1"]) == 0
    for runtime in ("onnx", "torch"):
        clf = Classifier.load(bundle, runtime)
        assert set(clf.bundle.occasions) == {"usage:formal", "usage:sports"}
        d = Pipeline(clf).describe_file(ROOT / "assets" / "photos" / "home-shirt.jpg")
        assert d.occasion == "usage:formal"
        assert "formal wear" in d.detailed() and "formal" not in d.sentence
        assert "sportswear" not in d.detailed()


class _Payload:
    """Pickled, it runs a command when unpickled: what a hostile checkpoint.pt carries."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        import os

        return (os.system, (f"touch {self.marker}",))


def test_compare_never_unpickles_code_from_a_run_folder(tmp_path):
    """`fashion-mnist --compare DIR` reads checkpoints found in DIR: a crafted one must not run anything."""
    from wardrobe.train.__main__ import main as train_main

    marker = tmp_path / "owned"
    run = tmp_path / "runs" / "evil"
    run.mkdir(parents=True)
    per_class = [{"class": c, "precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 1} for c in range(10)]
    (run / "metrics.json").write_text(json.dumps({
        "model": "cnn", "opt": "adam", "per_class": per_class, "paper_f1": 0.9, "precision": 0.5, "recall": 0.5,
        "f1": 0.5, "test_accuracy": 0.5, "epochs": 1, "best_epoch": 0, "params": 1, "train_seconds": 1}))
    for name in ("best.pt", "checkpoint.pt"):
        torch.save({"model": {}, "history": [], "x": _Payload(marker)}, run / name)
    with pytest.raises(SystemExit, match="not a plain checkpoint"):
        train_main(["fashion-mnist", "--compare", str(tmp_path / "runs")])
    assert not marker.exists()
