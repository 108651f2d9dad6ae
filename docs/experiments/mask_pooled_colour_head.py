"""A colour head on the shipped network's middle layers, pooled inside the garment's mask and trained on the home
photos labelled by eye: the lever issue 22 names ("a learned colour decision from early, unfrozen layers with mask
pooling"), tried on the validation split only and not adopted (results in docs/precision.md, "A colour head on the
middle layers, pooled in the mask").

Each photo goes through the bundle's own describe path once. What the colour step has is kept (the clusters before
any renaming, the colour head's families, the learned decision's answer, the lightness inside and around the
garment), and, from the same work-size view and mask, blocks 4, 7 and 10 of the network (40 + 80 + 112 channels,
block 4 averaged to 14 x 14), the photo's CIELAB and the mask at 14 x 14. A small head reads every one of the 196
places (two 1 x 1 convolutions, 32 wide), and pools its colour logits with weights it learns, inside the mask. It
is trained on the training homes labelled by eye (assets/labels/home-colours-train.csv) and shop photos of the
training split (weight 0.25 each), with -log of the probability of the families a label accepts. The colour step
is then replayed with its answer in place of the learned decision, or deciding alone (the replay gives the
recorded answer on every photo when nothing is changed: checked at the start).

    python docs/experiments/mask_pooled_colour_head.py --bundle models/default \\
        --data clothing-photos=DIR --data product-photos=DIR \\
        --home-colours-train assets/labels/home-colours-train.csv --home-colours assets/labels/home-colours.csv

About ten minutes here (two cores): most of it the describe path and the network's blocks.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np


def photos(args, split: str, products: int) -> list[tuple[str, str, tuple[str, ...]]]:
    """(path, source, the families a label accepts) of the split's labelled homes and a draw of its shop photos."""
    from wardrobe.colours import shop_colours
    from wardrobe.preprocess import Preprocess
    from wardrobe.taxonomy import Taxonomy
    from wardrobe.train.data import build_splits, load_eye_labels

    _, splits = build_splits(args.data, Taxonomy.load(), Preprocess(), args.seed, None, decode=False)
    home_root = Path(next(d.split("=", 1)[1] for d in args.data if d.startswith("clothing-photos=")))
    eye = {**load_eye_labels(args.home_colours, home_root), **load_eye_labels(args.home_colours_train, home_root)}
    shop = shop_colours()
    recs = splits[split].records
    out = [(r.path, r.source, tuple(eye[r.path])) for r in recs if r.source == "clothing-photos" and r.path in eye]
    shop_recs = [r for r in recs if r.source == "product-photos" and r.colour in shop]
    out += [(r.path, r.source, tuple(shop[r.colour][0])) for r in shop_recs[:products]]
    return out


def middle_layers(net, h):
    """Blocks 4 (averaged to 14 x 14), 7 and 10 of the network from its stem's output h, side by side."""
    import torch

    maps = []
    for i, block in enumerate(net._blocks[:11]):
        h = block(h)
        if i in (4, 7, 10):
            maps.append(torch.nn.functional.avg_pool2d(h, 2) if i == 4 else h)
    return torch.cat(maps, 1)


def record(args, items, layers=middle_layers) -> list[dict]:
    """Each photo through describe, keeping the colour step's inputs and, as "maps", what layers(net, stem output)
    gives for the same view (by default the middle layers at 14 x 14)."""
    import cv2
    import torch
    from safetensors.torch import load_file
    from tqdm import tqdm

    from wardrobe import settings as settings_module
    from wardrobe import wiring
    from wardrobe.images import read_image, rgb_to_lab
    from wardrobe.nets import build
    from wardrobe.pipeline import WORK_SIDE, shrink
    from wardrobe.segment import segment

    with tempfile.TemporaryDirectory() as state:
        settings = settings_module.load(None, {"model": {"bundle": str(args.bundle)}, "": {"state_dir": state}})
        pipe = wiring.build_pipeline(settings, closet=False)
    bundle = pipe.classifier.bundle
    net = build(bundle.arch, bundle.outputs)
    net.load_state_dict(load_file(str(Path(args.bundle) / bundle.runtimes["torch"])))
    net = net.eval().net
    seen: dict = {}
    namer = pipe.namer
    decide, expose = namer.decided_family, namer.with_exposure

    def decided(colours, families, pixel_weight, learned=None, learned_weight=0.0):
        seen["pre"], seen["families"], seen["learned"] = list(colours), list(families), learned and list(learned)
        return decide(colours, families, pixel_weight, learned, learned_weight)

    def exposed(colours, garment_l, around_l):
        seen["exposure"] = (garment_l, around_l)
        return expose(colours, garment_l, around_l)

    namer.decided_family, namer.with_exposure = decided, exposed
    rows = []
    with torch.inference_mode():
        for path, source, accept in tqdm(items, mininterval=30, unit="photo"):
            seen.clear()
            rgb = read_image(path)
            d = pipe.describe(rgb, path)
            if "pre" not in seen:
                continue
            small, _ = pipe.white.correct(shrink(rgb, WORK_SIDE))
            alpha = segment(small, pipe.method, pipe.plate)
            maps = layers(net, net._swish(net._bn0(net._conv_stem(torch.from_numpy(bundle.preprocess(small))))))
            square = cv2.resize(small, (224, 224), interpolation=cv2.INTER_AREA)
            lab = cv2.resize(rgb_to_lab(np.ascontiguousarray(square)).astype(np.float32), (14, 14),
                             interpolation=cv2.INTER_AREA).transpose(2, 0, 1) / 100
            mask = cv2.resize(cv2.resize(alpha, (224, 224), interpolation=cv2.INTER_AREA).astype(np.float32) / 255,
                              (14, 14), interpolation=cv2.INTER_AREA)[None]
            rows.append({**seen, "path": path, "source": source, "accept": accept,
                         "said": (d.colours[0].family, d.colours[0].or_family) if d.colours else (None, None),
                         "maps": maps[0].numpy().astype(np.float16), "lab": lab, "mask": mask})
    namer.decided_family, namer.with_exposure = decide, expose
    return rows, pipe


def colour_step(pipe, row: dict, learned=None):
    """The pipeline's colour step after the clusters (Pipeline.decided_colours) replayed from what was recorded;
    learned: an answer in place of the learned decision's."""
    colours = pipe.decided_colours(row["pre"], row["families"], row["learned"] if learned is None else learned,
                                   row.get("exposure", (None, None)))
    return (colours[0].family, colours[0].or_family) if colours else (None, None)


def head_class():
    import torch
    from torch import nn

    class Head(nn.Module):
        """Two 1 x 1 convolutions at each place; colour logits pooled with learned weights inside the mask."""

        def __init__(self, channels: int, width: int = 32) -> None:
            super().__init__()
            self.drop = nn.Dropout2d(0.3)
            self.body = nn.Sequential(nn.Conv2d(channels, width, 1), nn.ReLU(), nn.Conv2d(width, width, 1), nn.ReLU())
            self.colour, self.where = nn.Conv2d(width, 12, 1), nn.Conv2d(width, 1, 1)

        def forward(self, x, mask):
            h = self.body(self.drop(x))
            w = torch.softmax((self.where(h) + torch.log(mask + 1e-3)).flatten(1), 1)
            return (self.colour(h).flatten(2) * w[:, None]).sum(-1)

    return Head


def train_head(x, mask, accept, weight, epochs: int, seed: int):
    import torch

    torch.manual_seed(seed)
    model = head_class()(x.shape[1])
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=1e-4)
    x, mask, accept, weight = (torch.from_numpy(v) for v in (x, mask, accept, weight))
    steps = epochs * ((len(x) + 63) // 64)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, 2e-3, total_steps=steps)
    g = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        perm = torch.randperm(len(x), generator=g)
        for i in range(0, len(x), 64):
            b = perm[i : i + 64]
            lp = torch.log_softmax(model(x[b], mask[b]), 1)
            loss = -(torch.logsumexp(lp + torch.log(accept[b] + 1e-12), 1) * weight[b]).sum() / weight[b].sum()
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    return model.eval()


def figures(val: list[dict], answers) -> dict:
    """Main-colour family right and hedged (%) per source: answers are (family, the "or" family) per val row."""
    out = {}
    for source, name in (("clothing-photos", "home by eye"), ("product-photos", "product (shop)")):
        mine = [(a, r["accept"]) for a, r in zip(answers, val, strict=True) if r["source"] == source and a[0]]
        out[name] = {"n": len(mine), "right": round(100 * float(np.mean([bool(set(a) & set(t)) for a, t in mine])), 1),
                     "hedged": round(100 * float(np.mean([a[1] is not None for a, _ in mine])), 1)}
    return out


def parser(doc: str) -> argparse.ArgumentParser:
    """The arguments these experiments share: the bundle, the data folders and the labels by eye."""
    p = argparse.ArgumentParser(description=doc.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bundle", type=Path, required=True)
    p.add_argument("--data", action="append", required=True)
    p.add_argument("--home-colours-train", type=Path, required=True)
    p.add_argument("--home-colours", type=Path, required=True)
    p.add_argument("--seed", type=int, default=0, help="the bundle's split seed")
    return p


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--products", type=int, default=3000, help="training shop photos (validation: 1,200)")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--output", type=Path, default=Path("runs/mask-pooled-colour-head.json"))
    args = p.parse_args()
    import torch

    from wardrobe.colours import FAMILIES

    train, pipe = record(args, photos(args, "train", args.products))
    val, _ = record(args, photos(args, "val", 1200))
    assert all(colour_step(pipe, r) == r["said"] for r in val), "the replay must give what describe said"

    def inputs(rows, mean=None, scale=None):
        maps = np.stack([r["maps"] for r in rows]).astype(np.float32)
        if mean is None:
            mean, scale = maps.mean((0, 2, 3), keepdims=True), maps.std((0, 2, 3), keepdims=True) + 1e-3
        masks = np.stack([r["mask"] for r in rows]).astype(np.float32)
        x = np.concatenate([(maps - mean) / scale, 3 * np.stack([r["lab"] for r in rows]), masks], 1)
        return x.astype(np.float32), masks, mean, scale

    xt, mt, mean, scale = inputs(train)
    xv, mv, _, _ = inputs(val, mean, scale)
    accept = np.array([[f in r["accept"] for f in FAMILIES] for r in train], np.float32)
    weight = np.array([1.0 if r["source"] == "clothing-photos" else 0.25 for r in train], np.float32)
    model = train_head(xt, mt, accept, weight, args.epochs, 0)
    with torch.no_grad():
        probs = torch.softmax(model(torch.from_numpy(xv), torch.from_numpy(mv)), 1).numpy()
    heads = [sorted(zip(FAMILIES, p.tolist(), strict=True), key=lambda fp: -fp[1]) for p in probs]

    results = {
        "the shipped colour step": figures(val, [r["said"] for r in val]),
        "the shipped colour head alone": figures(val, [(r["families"][0][0], None) for r in val]),
        "the new head alone": figures(val, [(h[0][0], None) for h in heads]),
        "the new head in place of the learned decision": figures(val, [colour_step(pipe, r, h) for r, h in zip(val, heads, strict=True)]),
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=1))
    for k, v in results.items():
        print(f"{k}: " + "; ".join(f"{n} {f['right']} % ({f['hedged']} % hedged, {f['n']})" for n, f in v.items()))


if __name__ == "__main__":
    main()
