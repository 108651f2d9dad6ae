"""Label-mapped expert ResNets, after "Classification of Shoes Using Deep Residual Network with
distributed learning": split the label set into groups by a mapping function, train one ResNet
per group on that group's photos (in parallel processes), and at test time run every expert and
answer the class of highest probability across experts.

The mapping: each product articleType goes to the shop's subCategory it most often carries (the
shop files Sandals under both "Shoes" and "Sandal"), and the small subCategories are merged so that
the groups mean something to a wearer: topwear, footwear, bottomwear, inner- and nightwear,
one-piece and sets, accessories.

Compared at equal total compute with one ResNet over all article types: every expert runs the same
number of epochs over its own photos, so the experts together see exactly the photos the single
network sees. The improvement tried: each expert also learns an "other" class from a share of
photos outside its group (its epochs shortened to keep the compute equal), so that an expert can
say "not mine" instead of being confidently wrong about a garment it never saw. A second
improvement: a router network over the 6 groups, trained on a share of the budget, weighs each
expert's answer by the router's belief in its group (p(type) = p(group) x p(type | group)); its
experts train for the rest of the budget, so the compute stays equal.

    wardrobe train experts --data clothing-photos=DIR --data product-photos=DIR --output-dir runs/experts
"""

from __future__ import annotations

import argparse
import csv
import logging
import math
import os
import time
from collections import Counter, defaultdict
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from wardrobe.errors import TrainingError
from wardrobe.preprocess import Preprocess
from wardrobe.taxonomy import Taxonomy
from wardrobe.train import engine, report
from wardrobe.train.data import build_splits

log = logging.getLogger(__name__)

GROUP_OF_SUBCATEGORY = {
    "Topwear": "topwear",
    "Shoes": "footwear", "Sandal": "footwear", "Flip Flops": "footwear",
    "Bottomwear": "bottomwear",
    "Innerwear": "inner-and-nightwear", "Loungewear and Nightwear": "inner-and-nightwear",
    "Dress": "one-piece-and-sets", "Saree": "one-piece-and-sets", "Apparel Set": "one-piece-and-sets",
    "Belts": "accessories", "Socks": "accessories", "Headwear": "accessories", "Ties": "accessories",
    "Scarves": "accessories", "Stoles": "accessories", "Mufflers": "accessories", "Gloves": "accessories",
    "Free Gifts": "accessories",
}
OTHER = "(other)"
SIDE = 64
"""Input side: the product photos are 60x80, so 64 px loses nothing and keeps ResNets cheap on a CPU."""


def group_mapping(styles_csv: Path) -> dict[str, str]:
    """articleType -> expert group, via the subCategory it carries most often."""
    seen: dict[str, Counter] = defaultdict(Counter)
    with open(styles_csv, newline="") as f:
        for r in csv.DictReader(f):
            seen[r["articleType"]][r["subCategory"]] += 1
    return {t: GROUP_OF_SUBCATEGORY.get(c.most_common(1)[0][0], "accessories") for t, c in seen.items()}


def resnet(num_classes: int) -> nn.Module:
    """torchvision's plain ResNet-18 (at 64 px: 0.15 GFLOPs a photo, so experts train on a CPU)."""
    import torchvision

    return torchvision.models.resnet18(weights=None, num_classes=num_classes)


def small_images(images: np.ndarray, side: int = SIDE + 8, batch: int = 2048) -> np.ndarray:
    """The cached 128 px photos resized to side x side (uint8 NHWC)."""
    out = []
    for i in range(0, len(images), batch):
        x = torch.from_numpy(np.asarray(images[i : i + batch])).permute(0, 3, 1, 2).float()
        x = F.interpolate(x, size=(side, side), mode="bilinear", antialias=True, align_corners=False)
        out.append(x.round().clamp(0, 255).byte().permute(0, 2, 3, 1).numpy())
    return np.concatenate(out) if out else np.zeros((0, side, side, 3), np.uint8)


MEAN = torch.tensor(Preprocess().mean).view(1, 3, 1, 1)
STD = torch.tensor(Preprocess().std).view(1, 3, 1, 1)


def batch_tensor(x: np.ndarray, train: bool, gen: torch.Generator) -> torch.Tensor:
    """uint8 NHWC (SIDE+8 square) to a normalised NCHW SIDE crop: random crop and flip when training."""
    t = torch.from_numpy(np.asarray(x)).permute(0, 3, 1, 2).float().div_(255)
    if train:
        dy, dx = torch.randint(0, 9, (2,), generator=gen).tolist()
        t = t[:, :, dy : dy + SIDE, dx : dx + SIDE]
        if torch.rand(1, generator=gen).item() < 0.5:
            t = t.flip(-1)
    else:
        t = t[:, :, 4 : 4 + SIDE, 4 : 4 + SIDE]
    return ((t - MEAN) / STD).contiguous(memory_format=torch.channels_last)


# ---------------------------------------------------------------- one expert (runs in its own process)

def train_expert(job: dict) -> dict:
    """Train one network on one group's photos; returns where its weights are and how long it took.

    job: name, data (npz of the small images), classes (its labels), train_idx/targets (into the
    training arrays), epochs, batch_size, lr, threads, seed, out.
    """
    from tqdm import tqdm

    torch.set_num_threads(job["threads"])
    torch.manual_seed(job["seed"])
    gen = torch.Generator().manual_seed(job["seed"])
    images = np.load(job["data"], mmap_mode="r")
    idx, targets = np.asarray(job["train_idx"]), np.asarray(job["targets"])
    model = resnet(len(job["classes"])).to(memory_format=torch.channels_last)
    steps_per_epoch = math.ceil(len(idx) / job["batch_size"])
    total = max(1, round(job["epochs"] * steps_per_epoch))
    opt = torch.optim.SGD(model.parameters(), lr=job["lr"], momentum=0.9, nesterov=True, weight_decay=5e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=job["lr"], total_steps=total, pct_start=0.2)
    t0, step, seen = time.monotonic(), 0, 0
    bar = tqdm(total=total, desc=job["name"], unit="batch", position=job.get("position", 0), leave=False)
    model.train()
    while step < total:
        order = torch.randperm(len(idx), generator=gen).numpy()
        for b in range(0, len(order), job["batch_size"]):
            if step >= total:
                break
            sel = order[b : b + job["batch_size"]]
            rows = idx[sel]
            perm = np.argsort(rows)  # sorted reads from the memory map
            x = batch_tensor(images[rows[perm]], True, gen)
            loss = F.cross_entropy(model(x), torch.from_numpy(targets[sel][perm]), label_smoothing=0.1)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            opt.step()
            sched.step()
            step += 1
            seen += len(sel)
            bar.update()
            bar.set_postfix(loss=f"{loss.item():.3f}")
    bar.close()
    path = Path(job["out"]) / f"{job['name']}.pt"
    torch.save(model.state_dict(), path)
    return {"name": job["name"], "path": str(path), "seconds": time.monotonic() - t0, "samples": seen}


@torch.no_grad()
def probabilities(path: str, n_classes: int, images: np.ndarray, batch: int = 512) -> np.ndarray:
    """Softmax outputs of a saved network over images (centre crops)."""
    model = resnet(n_classes).to(memory_format=torch.channels_last)
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    model.eval()
    gen = torch.Generator()
    out = [F.softmax(model(batch_tensor(images[i : i + batch], False, gen)), 1).numpy()
           for i in range(0, len(images), batch)]
    return np.concatenate(out) if out else np.zeros((0, n_classes), np.float32)


# ---------------------------------------------------------------- the comparison

def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="wardrobe train experts", add_help=add_help, formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        description="Label-mapped expert ResNets versus one ResNet at equal compute (product article types).",
    )
    engine.add_flags(p, "data", "batch_size", "lr", "limit", "seed", "cache_dir", "output_dir", required=("data",),
                     data={"help": "datasets as for the classifier (the split is the classifier's); product-photos needed"},
                     batch_size=128, lr=0.1, output_dir=Path("runs/experts"))
    p.add_argument("--epochs", type=float, default=3, help="passes over its own photos, for every network")
    p.add_argument("--other-share", type=float, default=0.25,
                   help="the improvement: out-of-group photos added to each expert as 'other' (0: off)")
    p.add_argument("--router-share", type=float, default=0.25,
                   help="the second improvement: this share of the budget trains a router over the groups (0: off)")
    p.add_argument("--workers", type=int, default=2, help="networks trained at once, each in its own process")
    return p


MIN_STEPS = 40
"""Each network takes at least this many steps an epoch: a small group gets smaller batches (the
same photos, so the same compute) rather than a handful of steps that a one-cycle schedule cannot
warm up in (with 6 to 15 steps at batch 128, small experts diverged to saturated outputs)."""


def batch_and_rate(n_photos: int, args) -> tuple[int, float]:
    """Batch size for a network's training set and its peak rate, scaled linearly with the batch."""
    bs = int(min(args.batch_size, max(16, n_photos // MIN_STEPS)))
    return bs, args.lr * bs / args.batch_size


def product_split(args) -> tuple[dict, dict[str, str], list[str]]:
    """Small product images, article types and groups per split, from the classifier's split."""
    root = next((Path(s.partition("=")[2]) for s in args.data if s.startswith("product-photos=")), None)
    if root is None:
        raise TrainingError("experts need --data product-photos=DIR (its styles.csv has subCategory)")
    mapping = group_mapping(root / "styles.csv")
    _, splits = build_splits(args.data, Taxonomy.load(), Preprocess(), args.seed, args.cache_dir, args.limit)
    out = {}
    for name, s in splits.items():
        keep = np.array([i for i, r in enumerate(s.records) if r.source == "product-photos"], dtype=np.int64)
        labels = [s.records[i].label for i in keep]
        out[name] = {"images": small_images(s.images[keep] if len(keep) else s.images[:0]), "labels": labels}
    classes = sorted(set(out["train"]["labels"]))
    return out, mapping, classes


def main(args: argparse.Namespace) -> dict:
    """Train the single network and the experts (plain and with 'other') in parallel; compare on test."""
    out: Path = args.output_dir
    (out / "nets").mkdir(parents=True, exist_ok=True)
    data, mapping, classes = product_split(args)
    groups = sorted({mapping[c] for c in classes})
    np.save(out / "train-images.npy", data["train"]["images"])  # the workers memory-map it
    train_labels = np.array(data["train"]["labels"])
    train_groups = np.array([mapping[c] for c in train_labels])
    threads = max(1, (os.cpu_count() or 1) // args.workers)
    common = dict(data=str(out / "train-images.npy"), threads=threads, out=str(out / "nets"))
    jobs = [dict(common, name="single", classes=classes, train_idx=np.arange(len(train_labels)).tolist(),
                 targets=[classes.index(c) for c in train_labels], epochs=args.epochs, seed=args.seed)]
    rng = np.random.default_rng(args.seed)
    for k, g in enumerate(groups):
        own = np.flatnonzero(train_groups == g)
        g_classes = sorted({c for c in train_labels[own]})
        jobs.append(dict(common, name=f"expert-{g}", classes=g_classes, train_idx=own.tolist(),
                         targets=[g_classes.index(c) for c in train_labels[own]], epochs=args.epochs,
                         seed=args.seed + 1 + k))
        if args.other_share > 0:
            others = np.flatnonzero(train_groups != g)
            n_other = min(len(others), round(args.other_share * len(own)))
            pick = np.sort(rng.choice(others, n_other, replace=False))
            g_other = [*g_classes, OTHER]
            jobs.append(dict(common, name=f"expert+other-{g}", classes=g_other,
                             train_idx=[*own.tolist(), *pick.tolist()],
                             targets=[*(g_classes.index(c) for c in train_labels[own]), *[len(g_classes)] * n_other],
                             epochs=args.epochs * len(own) / (len(own) + n_other),  # equal compute
                             seed=args.seed + 101 + k))
    if args.router_share > 0:
        jobs.append(dict(common, name="router", classes=groups, train_idx=np.arange(len(train_labels)).tolist(),
                         targets=[groups.index(g) for g in train_groups], epochs=args.epochs * args.router_share,
                         seed=args.seed + 300))
        for k, g in enumerate(groups):
            own = np.flatnonzero(train_groups == g)
            g_classes = sorted({c for c in train_labels[own]})
            jobs.append(dict(common, name=f"routed-{g}", classes=g_classes, train_idx=own.tolist(),
                             targets=[g_classes.index(c) for c in train_labels[own]],
                             epochs=args.epochs * (1 - args.router_share), seed=args.seed + 201 + k))
    log.info("%d networks over %d article types in %d groups (%s), %d at a time, %d threads each", len(jobs),
             len(classes), len(groups), ", ".join(f"{g} {int((train_groups == g).sum())}" for g in groups),
             args.workers, threads)
    for j in jobs:
        j["batch_size"], j["lr"] = batch_and_rate(len(j["train_idx"]), args)
    jobs.sort(key=lambda j: -len(j["train_idx"]) * j["epochs"])  # longest first balances the workers
    for pos, j in enumerate(jobs):
        j["position"] = pos % args.workers
    t0 = time.monotonic()
    with ProcessPoolExecutor(args.workers, mp_context=get_context("spawn")) as pool:
        done = {r["name"]: r for r in pool.map(train_expert, jobs)}
    log.info("all networks trained in %.0f s", time.monotonic() - t0)
    by_name = {j["name"]: j for j in jobs}
    results = evaluate_all(data["test"], by_name, done, classes, mapping, groups, args)
    results["compute"] = {
        "single": done["single"]["samples"],
        "experts": sum(r["samples"] for n, r in done.items() if n.startswith("expert-")),
        "experts+other": sum(r["samples"] for n, r in done.items() if n.startswith("expert+other-")),
        "router+experts": sum(r["samples"] for n, r in done.items() if n == "router" or n.startswith("routed-")),
        "seconds": {n: r["seconds"] for n, r in done.items()},
    }
    report.save_json(results, out / "metrics.json")
    table = summarise(results, groups)
    (out / "experts.md").write_text(table)
    report.plot_bars({n: {g: a for g, a in acc.items() if g != "n"} for n, acc in results["accuracy"].items()},
                     out / "experts.png", "test accuracy")
    print(table)
    return results


def evaluate_all(test, jobs, done, classes, mapping, groups, args) -> dict:
    """Accuracy overall and per group for the single net, the experts' max rule and the experts with 'other'."""
    images, labels = test["images"], np.array(test["labels"])
    known = np.isin(labels, classes)
    images, labels = images[known], labels[known]
    y = np.array([classes.index(c) for c in labels])
    true_group = np.array([mapping[c] for c in labels])
    preds = {"single": probabilities(done["single"]["path"], len(classes), images).argmax(1)}
    confidence = {}
    for variant, prefix in (("experts", "expert-"), ("experts+other", "expert+other-")):
        names = [f"{prefix}{g}" for g in groups if f"{prefix}{g}" in done]
        if not names:
            continue
        best_p = np.full(len(y), -1.0)
        best_c = np.zeros(len(y), int)
        for name in names:
            ecls = jobs[name]["classes"]
            p = probabilities(done[name]["path"], len(ecls), images)
            own = [i for i, c in enumerate(ecls) if c != OTHER]
            top = p[:, own].max(1)
            arg = np.array([classes.index(ecls[own[i]]) for i in p[:, own].argmax(1)])
            better = top > best_p
            best_p[better], best_c[better] = top[better], arg[better]
        preds[variant], confidence[variant] = best_c, best_p
    if "router" in done:
        router = probabilities(done["router"]["path"], len(groups), images)
        score = np.zeros((len(y), len(classes)))
        for k, g in enumerate(groups):
            ecls = jobs[f"routed-{g}"]["classes"]
            score[:, [classes.index(c) for c in ecls]] = router[:, k : k + 1] * probabilities(
                done[f"routed-{g}"]["path"], len(ecls), images)
        preds["router+experts"], confidence["router+experts"] = score.argmax(1), score.max(1)
        confidence["router"] = router.max(1)
    failures = {}
    for variant, conf in confidence.items():
        if variant == "router":
            continue
        wrong = preds[variant] != y
        # Experts own disjoint types, so the group of the answer is the group of the expert that won.
        outside = wrong & (np.array([mapping[classes[c]] for c in preds[variant]]) != true_group)
        failures[variant] = {
            "errors": int(wrong.sum()),
            "errors_by_an_expert_outside_the_true_group": int(outside.sum()),
            "their_mean_confidence": float(conf[outside].mean()) if outside.any() else float("nan"),
        }
    res = {"classes": len(classes), "test_photos": int(len(y)), "failures": failures, "accuracy": {}}
    for name, pred in preds.items():
        res["accuracy"][name] = {"all": float((pred == y).mean()),
                                 **{g: float((pred[true_group == g] == y[true_group == g]).mean())
                                    for g in groups if (true_group == g).any()}}
        res["accuracy"][name]["n"] = {g: int((true_group == g).sum()) for g in groups}
    if "router" in done:
        res["router_group_accuracy"] = float((np.array(groups)[router.argmax(1)] == true_group).mean())
    return res


def summarise(res: dict, groups: list[str]) -> str:
    names = list(res["accuracy"])
    lines = ["| test accuracy | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    lines.append("| **all** | " + " | ".join(f"**{res['accuracy'][n]['all']:.3f}**" for n in names) + " |")
    for g in groups:
        n_g = res["accuracy"][names[0]]["n"].get(g, 0)
        lines.append(f"| {g} ({n_g}) | " + " | ".join(f"{res['accuracy'][n].get(g, float('nan')):.3f}"
                                                      for n in names) + " |")
    comp = res["compute"]
    lines.append("| training photos seen | " + " | ".join(f"{comp.get(n, 0):,}" for n in names) + " |")
    if "router_group_accuracy" in res:
        lines.append(f"\nrouter: the right group for {100 * res['router_group_accuracy']:.1f} % of test photos")
    for v, f in res["failures"].items():
        lines.append(f"\n{v}: {f['errors']} errors, {f['errors_by_an_expert_outside_the_true_group']} of them won by "
                     f"an expert outside the photo's group (mean confidence {f['their_mean_confidence']:.2f})")
    return "\n".join(lines) + "\n"

