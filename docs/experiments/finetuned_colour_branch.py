"""A colour branch fine-tuned from the middle layers: the mask-pooled colour head of mask_pooled_colour_head.py, with a
trainable copy of the shipped network's blocks 5 to 10 under it instead of frozen ones ("a learned colour decision
from early, unfrozen layers with mask pooling", issue 22). Validation only; development figures.

Each photo goes through the bundle's own describe path once (the colour step's inputs are recorded, as in
mask_pooled_colour_head.py) and block 4's output of the same view is kept (40 channels at 28 x 28). Training runs
blocks 5-10 (a copy, starting from the shipped weights) and the head on it: blocks 4 (pooled to 14 x 14), 7 and 10,
the photo's CIELAB and the mask, colour logits pooled with learned weights inside the mask. A mirrored block-4 map
stands in for a mirrored photo as augmentation. The head alone and the colour step replayed with its answer are
reported on the validation homes labelled by eye and the validation shop photos.

    python docs/experiments/finetuned_colour_branch.py --bundle models/default \\
        --data clothing-photos=DIR --data product-photos=DIR \\
        --home-colours-train assets/labels/home-colours-train.csv --home-colours assets/labels/home-colours.csv

Recording takes about ten minutes here (two cores) and is cached (--cache); each training run a few minutes.
"""

from __future__ import annotations

import copy
import json
import pickle
from pathlib import Path

import numpy as np
from mask_pooled_colour_head import colour_step, figures, head_class, parser, photos, record


def block4(net, h):
    """Block 4's output (40 channels at 28 x 28) from the stem's output h: where the trainable copy starts."""
    for block in net._blocks[:5]:
        h = block(h)
    return h


def branch_class(net):
    """Blocks 5-10 (a trainable copy) and the mask-pooled head on blocks 4, 7 and 10, CIELAB and the mask."""
    import torch
    from torch import nn

    Head = head_class()

    class Branch(nn.Module):
        def __init__(self, blocks, channels: int, width: int) -> None:
            super().__init__()
            self.blocks = nn.ModuleList(copy.deepcopy(list(blocks)))
            self.norm = nn.BatchNorm2d(channels, affine=False)
            self.head = Head(channels + 4, width)

        def forward(self, h4, lab, mask):
            h, maps = h4, [nn.functional.avg_pool2d(h4, 2)]
            for i, block in enumerate(self.blocks, 5):
                h = block(h)
                if i in (7, 10):
                    maps.append(h)
            x = torch.cat([self.norm(torch.cat(maps, 1)), 3 * lab, mask], 1)
            return self.head(x, mask)

    return Branch(net._blocks[5:11], 40 + 80 + 112, 32)


def train_branch(net, rows, epochs: int, seed: int, lr_blocks: float, frozen: bool):
    import torch

    from wardrobe.colours import FAMILIES

    torch.manual_seed(seed)
    model = branch_class(net)
    if frozen:
        for p in model.blocks.parameters():
            p.requires_grad_(False)
    h4 = torch.from_numpy(np.stack([r["maps"] for r in rows]))
    lab = torch.from_numpy(np.stack([r["lab"] for r in rows]).astype(np.float32))
    mask = torch.from_numpy(np.stack([r["mask"] for r in rows]).astype(np.float32))
    accept = torch.tensor([[f in r["accept"] for f in FAMILIES] for r in rows], dtype=torch.float32)
    weight = torch.tensor([1.0 if r["source"] == "clothing-photos" else 0.25 for r in rows])
    groups = [{"params": model.head.parameters(), "lr": 2e-3}]
    if not frozen:
        groups.append({"params": model.blocks.parameters(), "lr": lr_blocks})
    opt = torch.optim.AdamW(groups, weight_decay=1e-4)
    batch = 64
    steps = epochs * ((len(rows) + batch - 1) // batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, [g["lr"] for g in groups], total_steps=steps)
    g = torch.Generator().manual_seed(seed)
    for epoch in range(epochs):
        model.train()
        if frozen:
            model.blocks.eval()
        perm = torch.randperm(len(rows), generator=g)
        total = 0.0
        for i in range(0, len(rows), batch):
            b = perm[i : i + batch]
            x, lb, mk = h4[b].float(), lab[b], mask[b]
            if torch.rand(1, generator=g).item() < 0.5:  # a mirrored view
                x, lb, mk = x.flip(-1), lb.flip(-1), mk.flip(-1)
            lp = torch.log_softmax(model(x, lb, mk), 1)
            loss = -(torch.logsumexp(lp + torch.log(accept[b] + 1e-12), 1) * weight[b]).sum() / weight[b].sum()
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss) * len(b)
        print(f"epoch {epoch + 1}/{epochs}: loss {total / len(rows):.4f}", flush=True)
    return model.eval()


def predict(model, rows) -> np.ndarray:
    import torch

    out = []
    with torch.no_grad():
        for i in range(0, len(rows), 128):
            part = rows[i : i + 128]
            x = torch.from_numpy(np.stack([r["maps"] for r in part])).float()
            lab = torch.from_numpy(np.stack([r["lab"] for r in part]).astype(np.float32))
            mask = torch.from_numpy(np.stack([r["mask"] for r in part]).astype(np.float32))
            out.append(torch.softmax(model(x, lab, mask), 1).numpy())
    return np.concatenate(out)


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--products", type=int, default=3000, help="training shop photos (validation: 1,200)")
    p.add_argument("--epochs", type=int, default=12)
    p.add_argument("--lr-blocks", type=float, default=2e-4)
    p.add_argument("--runs", default="frozen,tuned", help="comma-separated: frozen (blocks as shipped), tuned")
    p.add_argument("--cache", type=Path, default=Path("cache/finetuned-colour-branch.pkl"))
    p.add_argument("--output", type=Path, default=Path("runs/finetuned-colour-branch.json"))
    args = p.parse_args()
    import torch
    from safetensors.torch import load_file

    from wardrobe.colours import FAMILIES
    from wardrobe.nets import build

    torch.set_num_threads(2)
    if args.cache.exists():
        train, val = pickle.loads(args.cache.read_bytes())
        _, pipe = record(args, [], block4)
    else:
        train, pipe = record(args, photos(args, "train", args.products), block4)
        val, _ = record(args, photos(args, "val", 1200), block4)
        args.cache.parent.mkdir(parents=True, exist_ok=True)
        args.cache.write_bytes(pickle.dumps((train, val)))
    assert all(colour_step(pipe, r) == r["said"] for r in val), "the replay must give what describe said"
    bundle = pipe.classifier.bundle
    net = build(bundle.arch, bundle.outputs)
    net.load_state_dict(load_file(str(Path(args.bundle) / bundle.runtimes["torch"])))
    net = net.eval().net

    results = {"the shipped colour step": figures(val, [r["said"] for r in val]),
               "the shipped colour head alone": figures(val, [(r["families"][0][0], None) for r in val])}
    for run in args.runs.split(","):
        model = train_branch(net, train, args.epochs, 0, args.lr_blocks, frozen=run == "frozen")
        probs = predict(model, val)
        heads = [sorted(zip(FAMILIES, p.tolist(), strict=True), key=lambda fp: -fp[1]) for p in probs]
        results[f"{run}: the branch alone"] = figures(val, [(h[0][0], None) for h in heads])
        results[f"{run}: in place of the learned decision"] = figures(
            val, [colour_step(pipe, r, h) for r, h in zip(val, heads, strict=True)])
        np.save(args.output.with_suffix(f".{run}.npy"), probs)
        print(json.dumps(results, indent=1), flush=True)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, **results}, indent=1))


if __name__ == "__main__":
    main()
