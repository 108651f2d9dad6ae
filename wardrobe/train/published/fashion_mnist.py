"""Fashion-MNIST benchmark after Shin, Wang, Shin and Lee, "Fashion Clothing Image Classification Deep Learning".

Five models (a plain CNN, LeNet-5, an LSTM and a BiLSTM over image rows, and the paper's stacked
convolution + pooling modules), the paper's dynamic decay learning rate as a real optimizer, and
its Table 2: per-class precision, recall and F1 on the 10,000 test images.

    wardrobe train fashion-mnist --model ours --opt dynamic --output-dir runs/fmnist/ours-dynamic
    wardrobe train fashion-mnist --compare runs/fmnist      # Table 2 across every run in the folder
"""

from __future__ import annotations

import argparse
import gzip
import json
import logging
import math
import statistics
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from wardrobe.errors import TrainingError
from wardrobe.train import distributed, engine, report
from wardrobe.train.engine import start_run

log = logging.getLogger(__name__)

CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
MODELS = ("cnn", "lenet", "lstm", "bilstm", "ours")
PAPER_F1 = {"cnn": 0.89, "lenet": 0.88, "lstm": 0.87, "bilstm": 0.87, "ours": 0.93}
"""Average F1 over the ten classes in the paper's Table 2."""
DEFAULT_DATA = Path("/usr/share/datasets/fashion-mnist")
"""Where Debian's dataset-fashion-mnist package puts the four idx files."""


# ---------------------------------------------------------------- data

def read_idx(path: Path) -> np.ndarray:
    """An idx file (optionally gzipped) as a numpy array: big-endian dims after a 4-byte magic."""
    raw = (gzip.open if path.suffix == ".gz" else open)(path, "rb").read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise TrainingError(f"{path} is not an idx file of unsigned bytes")
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    data = np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim)
    if data.size != math.prod(dims):
        raise TrainingError(f"{path} is truncated: {data.size} bytes for dims {dims}")
    return data.reshape(dims)


def _find(root: Path, stem: str) -> Path:
    for name in (f"{stem}.gz", stem):
        if (root / name).exists():
            return root / name
    raise TrainingError(f"{root} has no {stem}(.gz); install Debian's dataset-fashion-mnist or pass --data-dir")


def load_splits(root: Path, seed: int, val_size: int = 12_000) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The paper's split: the 60,000 training images as 48,000 train / 12,000 validation (stratified), and test."""
    x = read_idx(_find(root, "train-images-idx3-ubyte"))
    y = read_idx(_find(root, "train-labels-idx1-ubyte")).astype(np.int64)
    xt = read_idx(_find(root, "t10k-images-idx3-ubyte"))
    yt = read_idx(_find(root, "t10k-labels-idx1-ubyte")).astype(np.int64)
    rng = np.random.default_rng(seed)
    val_idx = np.concatenate([
        rng.permutation(np.flatnonzero(y == c))[: round(val_size * (y == c).mean())] for c in range(len(CLASSES))
    ])
    is_val = np.zeros(len(y), bool)
    is_val[val_idx] = True
    return {"train": (x[~is_val], y[~is_val]), "val": (x[is_val], y[is_val]), "test": (xt, yt)}


def to_tensor(images: np.ndarray, mean: float, std: float) -> torch.Tensor:
    """uint8 (N, 28, 28) to normalised float (N, 1, 28, 28)."""
    return ((torch.tensor(np.asarray(images)).float().div_(255) - mean) / std).unsqueeze(1)


def shift_flip(x: torch.Tensor, gen: torch.Generator, pad: int = 2) -> torch.Tensor:
    """Random shifts of up to pad pixels and horizontal flips (the light augmentation of `ours`)."""
    n, _, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad), value=float(x.min()))
    off = torch.randint(0, 2 * pad + 1, (n, 2), generator=gen)
    out = torch.stack([padded[i, :, off[i, 0] : off[i, 0] + h, off[i, 1] : off[i, 1] + w] for i in range(n)])
    flip = torch.rand(n, generator=gen) < 0.5
    out[flip] = out[flip].flip(-1)
    return out


# ---------------------------------------------------------------- models

class RowLSTM(nn.Module):
    """An (optionally bidirectional) LSTM reading the 28 image rows as a sequence of 28-pixel vectors."""

    def __init__(self, bidirectional: bool, hidden: int = 128) -> None:
        super().__init__()
        self.lstm = nn.LSTM(28, hidden, num_layers=2, batch_first=True, bidirectional=bidirectional)
        self.fc = nn.Linear(hidden * (2 if bidirectional else 1), len(CLASSES))

    def forward(self, x):
        out, _ = self.lstm(x.squeeze(1))
        return self.fc(out[:, -1])


def conv_bn(cin: int, cout: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


def build_model(name: str, width: int = 32) -> nn.Module:
    """One of the paper's five models, sized for 28x28 grey images and ten classes."""
    if name == "cnn":  # the plain CNN: two convolutions with pooling and a hidden dense layer
        return nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(64 * 7 * 7, 128), nn.ReLU(), nn.Dropout(0.5), nn.Linear(128, 10),
        )
    if name == "lenet":  # LeNet-5 (LeCun et al. 1998), ReLU and max pooling
        return nn.Sequential(
            nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(16 * 5 * 5, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10),
        )
    if name in ("lstm", "bilstm"):
        return RowLSTM(bidirectional=name == "bilstm")
    if name == "ours":  # stacked convolution + pooling modules, batch norm, dropout growing with depth
        w = width
        return nn.Sequential(
            *conv_bn(1, w), *conv_bn(w, w), nn.MaxPool2d(2), nn.Dropout(0.1),
            *conv_bn(w, 2 * w), *conv_bn(2 * w, 2 * w), nn.MaxPool2d(2), nn.Dropout(0.2),
            *conv_bn(2 * w, 4 * w), nn.MaxPool2d(2), nn.Dropout(0.3),
            nn.Flatten(), nn.Linear(4 * w * 3 * 3, 10),
        )
    raise TrainingError(f"unknown --model {name!r}; choose from {', '.join(MODELS)}")


# ---------------------------------------------------------------- the paper's optimizer

class DynamicDecay(torch.optim.Optimizer):
    """The paper's Table 1: Adadelta's unit-corrected step with a rate that decays with the global step.

    Per parameter, with gradient g at global step t:

        E[g^2]   <- rho E[g^2] + (1 - rho) g^2
        delta    <- RMS[delta]_{t-1} / RMS[g]_t * g
        E[d^2]   <- rho E[d^2] + (1 - rho) delta^2
        alpha_t  <- alpha_{t-1} * exp(-decay * t)          (the dynamic decay of the rate)
        x        <- x - alpha_t * delta

    The rate compounds, so alpha_t = alpha_0 * exp(-decay * t (t + 1) / 2): it stays near alpha_0
    early and falls smoothly late. `decay_for(total_steps, final)` picks decay so the rate reaches
    `final * alpha_0` at the last step. `param_groups[0]["lr"]` always holds the current alpha.
    """

    def __init__(self, params, lr: float = 1.0, rho: float = 0.95, eps: float = 1e-6, decay: float = 0.0,
                 weight_decay: float = 0.0) -> None:
        if lr <= 0 or not 0 < rho < 1 or decay < 0:
            raise ValueError("DynamicDecay needs lr > 0, 0 < rho < 1 and decay >= 0")
        super().__init__(params, dict(lr=lr, rho=rho, eps=eps, decay=decay, weight_decay=weight_decay, step=0))

    @staticmethod
    def decay_for(total_steps: int, final: float) -> float:
        """The decay that brings the rate to `final` times its start after total_steps steps."""
        return 2 * math.log(1 / final) / (total_steps * (total_steps + 1))

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            group["step"] += 1
            group["lr"] *= math.exp(-group["decay"] * group["step"])
            rho, eps = group["rho"], group["eps"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = p.grad
                if group["weight_decay"]:
                    g = g.add(p, alpha=group["weight_decay"])
                state = self.state[p]
                if not state:
                    state["square_avg"] = torch.zeros_like(p)
                    state["acc_delta"] = torch.zeros_like(p)
                sq, acc = state["square_avg"], state["acc_delta"]
                sq.mul_(rho).addcmul_(g, g, value=1 - rho)
                delta = acc.add(eps).sqrt_().div_(sq.add(eps).sqrt_()).mul_(g)
                acc.mul_(rho).addcmul_(delta, delta, value=1 - rho)
                p.add_(delta, alpha=-group["lr"])
        return loss


OPTIMIZERS = {
    # name: (default rate, what it is)
    "dynamic": (1.0, "the paper's dynamic decay rate (Adadelta step, rate decaying with the global step)"),
    "expdecay": (0.05, "SGD with momentum 0.9 and a plain exponential decay per step"),
    "adam": (1e-3, "Adam with a constant rate"),
}


def make_optimizer(name: str, model: nn.Module, lr: float, total_steps: int, final: float, weight_decay: float):
    """(optimizer, scheduler or None) for one of OPTIMIZERS, decaying to `final` of the start at the end."""
    params = model.parameters()
    if name == "dynamic":
        return DynamicDecay(params, lr=lr, decay=DynamicDecay.decay_for(total_steps, final),
                            weight_decay=weight_decay), None
    if name == "expdecay":
        opt = torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=weight_decay)
        return opt, torch.optim.lr_scheduler.ExponentialLR(opt, gamma=final ** (1 / total_steps))
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay), None
    raise TrainingError(f"unknown --opt {name!r}; choose from {', '.join(OPTIMIZERS)}")


# ---------------------------------------------------------------- train / evaluate

def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="wardrobe train fashion-mnist", add_help=add_help, formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        description="Fashion-MNIST benchmark (Shin et al.): five models, three optimizers, the paper's Table 2.",
    )
    p.add_argument("--data-dir", type=Path, default=DEFAULT_DATA, help="folder with the four idx(.gz) files")
    p.add_argument("--model", choices=MODELS, default="ours")
    p.add_argument("--width", type=int, default=32, help="channels of the first module of `ours`")
    p.add_argument("--opt", choices=sorted(OPTIMIZERS), help="optimizer (default: dynamic for ours, adam otherwise)")
    p.add_argument("--lr", type=float, help="starting rate (default per optimizer)")
    p.add_argument("--final-lr", type=float, default=0.01, help="the decaying rates end at this fraction of the start")
    p.add_argument("--weight-decay", type=float, default=0.0)
    p.add_argument("--augment", choices=("none", "shift-flip"), help="default: shift-flip for ours, none otherwise")
    engine.add_flags(p, "epochs", "batch_size", "seed", "threads", "device", "output_dir", "resume", epochs=20,
                     batch_size=128, output_dir=Path("runs/fashion-mnist"))
    p.add_argument("--limit-batches", type=int, default=0, help="stop each epoch after this many batches (smoke tests)")
    p.add_argument("--compare", type=Path, metavar="DIR",
                   help="instead of training: write Table 2 for every run below DIR to DIR/table2.md")
    return p


def train_one_epoch(model, optimizer, scheduler, x, y, args, gen, epoch, dist=distributed.SINGLE) -> float:
    """One shuffled pass (this rank's shard of it); returns the mean training loss."""
    from tqdm import tqdm

    model.train()
    batches = dist.shard(torch.randperm(len(y), generator=gen), args.batch_size)
    if args.limit_batches:
        batches = batches[: args.limit_batches]
    total, count = 0.0, 0
    bar = tqdm(batches, desc=f"epoch {epoch}", unit="batch", leave=False, disable=not dist.main)
    for idx in bar:
        xb = x[idx]
        if args.augment == "shift-flip":
            xb = shift_flip(xb, gen)
        xb, yb = xb.to(args.device), y[idx].to(args.device)
        loss = F.cross_entropy(model(xb), yb)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        total += loss.item() * len(idx)
        count += len(idx)
        bar.set_postfix(loss=f"{total / count:.3f}", lr=f"{optimizer.param_groups[0]['lr']:.2e}")
    return dist.mean(total / max(count, 1))


@torch.no_grad()
def evaluate(model, x, y, device: str, batch: int = 1000) -> tuple[float, float, np.ndarray]:
    """(loss, accuracy, predictions) on a whole split."""
    model.eval()
    logits = torch.cat([model(x[i : i + batch].to(device)).cpu() for i in range(0, len(y), batch)])
    return F.cross_entropy(logits, y).item(), float((logits.argmax(1) == y).float().mean()), logits.argmax(1).numpy()


def cpu_latency_ms(model: nn.Module, repeats: int = 200) -> float:
    """Median milliseconds for one image on one CPU thread (the Pi-like case: one photo at a time)."""
    model = model.cpu().eval()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    x = torch.zeros(1, 1, 28, 28)
    times = []
    with torch.no_grad():
        for i in range(repeats + 20):
            t0 = time.perf_counter()
            model(x)
            if i >= 20:
                times.append((time.perf_counter() - t0) * 1000)
    torch.set_num_threads(threads)
    return statistics.median(times)


def main(args: argparse.Namespace) -> dict:
    """Train one model with one optimizer, keep the best epoch by validation accuracy, write Table 2 for it."""
    if args.compare:
        return compare(args.compare)
    args.opt = args.opt or ("dynamic" if args.model == "ours" else "adam")
    args.lr = args.lr or OPTIMIZERS[args.opt][0]
    args.augment = args.augment or ("shift-flip" if args.model == "ours" else "none")
    dist = start_run(args)
    out: Path = args.output_dir
    splits = load_splits(args.data_dir, args.seed)
    mean, std = float(splits["train"][0].mean() / 255), float(splits["train"][0].std() / 255)
    tensors = {k: (to_tensor(x, mean, std), torch.from_numpy(y)) for k, (x, y) in splits.items()}
    log.info("Fashion-MNIST: %s", ", ".join(f"{k} {len(y)}" for k, (_, y) in tensors.items()))
    model = build_model(args.model, args.width).to(args.device)
    ddp = dist.wrap(model, args.device)
    steps = math.ceil(len(tensors["train"][1]) / args.batch_size)
    if args.limit_batches:
        steps = min(steps, args.limit_batches)
    optimizer, scheduler = make_optimizer(args.opt, model, args.lr, steps * args.epochs, args.final_lr,
                                          args.weight_decay)
    gen = torch.Generator().manual_seed(args.seed)
    checkpoint = engine.Checkpoint(out / "checkpoint.pt")
    progress = checkpoint.resume(model, optimizer, scheduler) if args.resume else engine.Progress()
    if "gen" in checkpoint.loaded:
        gen.set_state(checkpoint.loaded["gen"])

    def one_epoch(epoch: int) -> tuple[float, dict]:
        t0 = time.monotonic()
        train_loss = train_one_epoch(ddp, optimizer, scheduler, *tensors["train"], args, gen, epoch, dist)
        dist.sync_buffers(model)
        val_loss, val_acc, _ = evaluate(model, *tensors["val"], args.device)
        log.info("epoch %d: train loss %.4f, val loss %.4f, val accuracy %.4f, rate %.2e (%.0f s)", epoch,
                 train_loss, val_loss, val_acc, optimizer.param_groups[0]["lr"], time.monotonic() - t0)
        return val_acc, {"train_loss": train_loss, "val_loss": val_loss, "lr": optimizer.param_groups[0]["lr"]}

    def on_epoch(progress: engine.Progress, improved: bool) -> None:
        if not dist.main:
            return
        if improved:
            torch.save({"model": model.state_dict(), "epoch": progress.epoch}, out / "best.pt")
        checkpoint.save(progress, model, optimizer, scheduler, gen=gen.get_state())
        report.plot_history(progress.history, out / "loss.png")

    progress = engine.fit(progress, one_epoch, args.epochs, patience=args.epochs + 1, max_minutes=0,
                          on_epoch=on_epoch, stop_all=dist.any)
    history, best = progress.history, progress.best
    distributed.finish(dist)
    if not dist.main:
        return {}
    best_ckpt = torch.load(out / "best.pt", map_location="cpu", weights_only=True)
    model.load_state_dict(best_ckpt["model"])
    _, test_acc, pred = evaluate(model, *tensors["test"], args.device)
    targets = tensors["test"][1].numpy()
    rows = report.per_class(pred, targets, CLASSES)
    (out / "table2.md").write_text(report.markdown_table(rows))
    report.plot_confusion(pred, targets, CLASSES, out / "test-confusion.png", f"Fashion-MNIST test: {args.model}")
    results = {
        "model": args.model, "width": args.width, "opt": args.opt, "lr": args.lr, "augment": args.augment,
        "epochs": len(history),
        "best_epoch": best_ckpt["epoch"], "val_accuracy": best, "test_accuracy": test_acc,
        "precision": float(np.mean([r["precision"] for r in rows])),
        "recall": float(np.mean([r["recall"] for r in rows])),
        "f1": float(np.mean([r["f1"] for r in rows])),
        "per_class": rows, "params": sum(p.numel() for p in model.parameters()),
        "cpu_ms_per_image": cpu_latency_ms(model), "train_seconds": sum(h["seconds"] for h in history),
        "paper_f1": PAPER_F1[args.model],
    }
    report.save_json(results, out / "metrics.json")
    log.info("test accuracy %.4f, average F1 %.4f (paper %.2f), %d parameters, %.2f ms per image on one CPU thread",
             test_acc, results["f1"], PAPER_F1[args.model], results["params"], results["cpu_ms_per_image"])
    return results


def compare(root: Path) -> dict:
    """Table 2 for every run below root: per-class F1 side by side, then averages, size and speed."""
    runs = {}
    for path in sorted(root.glob("*/metrics.json")):
        m = json.loads(path.read_text())
        if "per_class" in m and "paper_f1" in m:
            runs[path.parent.name] = m
    if not runs:
        raise TrainingError(f"no Fashion-MNIST runs (*/metrics.json) below {root}")
    for n, m in runs.items():  # latency measured again here, all runs under the same conditions
        model = build_model(m["model"], m.get("width", 32))
        model.load_state_dict(engine.load_checkpoint(root / n / "best.pt")["model"])
        m["cpu_ms_per_image"] = cpu_latency_ms(model)
    names = sorted(runs, key=lambda n: (MODELS.index(runs[n]["model"]), list(OPTIMIZERS).index(runs[n]["opt"]), n))
    lines = ["| class | " + " | ".join(f"{n} P / R / F1" for n in names) + " |", "|---|" + "---|" * len(names)]
    for i, c in enumerate(CLASSES):
        cells = [f"{r['precision']:.2f} / {r['recall']:.2f} / {r['f1']:.2f}"
                 for r in (runs[n]["per_class"][i] for n in names)]
        lines.append(f"| {c} | " + " | ".join(cells) + " |")
    lines.append("| **average** | " + " | ".join(
        f"**{runs[n]['precision']:.3f} / {runs[n]['recall']:.3f} / {runs[n]['f1']:.3f}**" for n in names) + " |")
    lines.append("| paper's average F1 | " + " | ".join(f"{runs[n]['paper_f1']:.2f}" for n in names) + " |")
    for key, label, fmt in (("test_accuracy", "test accuracy", "{:.4f}"), ("opt", "optimizer", "{}"),
                            ("epochs", "epochs (best)", "{}"), ("params", "parameters", "{:,}"),
                            ("cpu_ms_per_image", "CPU ms per image (1 thread)", "{:.2f}"),
                            ("train_seconds", "training seconds", "{:.0f}")):
        cells = [fmt.format(runs[n][key]) + (f" ({runs[n]['best_epoch'] + 1})" if key == "epochs" else "")
                 for n in names]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    text = "\n".join(lines) + "\n"
    (root / "table2.md").write_text(text)
    plot_curves(root, names, root / "curves.png")
    print(text)
    return runs


def plot_curves(root: Path, names: list[str], path: Path) -> None:
    """Validation accuracy and learning rate per epoch of every run (from its checkpoint's history)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, 2, figsize=(11, 4))
    for n in names:
        ckpt = root / n / "checkpoint.pt"
        if not ckpt.exists():
            continue
        history = engine.load_checkpoint(ckpt)["history"]
        ep = [h["epoch"] + 1 for h in history]
        ax[0].plot(ep, [h["val_score"] for h in history], marker="o", markersize=3, label=n)
        if "lr" in history[0]:
            ax[1].plot(ep, [h["lr"] / history[0]["lr"] for h in history], marker="o", markersize=3, label=n)
    ax[0].set_xlabel("epoch"), ax[0].set_ylabel("validation accuracy"), ax[0].legend(fontsize=8)
    ax[1].set_xlabel("epoch"), ax[1].set_ylabel("rate / rate after epoch 1"), ax[1].set_yscale("log")
    ax[1].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
