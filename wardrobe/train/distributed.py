"""Data-parallel training with torch.distributed, for every preset, when launched by torchrun.

    torchrun --standalone --nproc-per-node 2 -m wardrobe.train fashion-mnist --model ours ...

Each process takes an equal shard of every epoch's sample order (the same order on every rank,
from the same seed), DDP averages the gradients, and only rank 0 logs, draws progress bars and
writes checkpoints, plots and reports. NCCL is used on GPUs, gloo on CPUs. `--batch-size` stays
the global batch (each rank takes its share), so a run means the same at any world size, and the
same seed and world size give the same weights.

Every rank evaluates the (identical) model on the whole validation split, so decisions such as
"best epoch" or "stop early" agree without messages; it is duplicated work, small next to training.
Without torchrun (no WORLD_SIZE in the environment) everything runs as a single process.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class Dist:
    """Where this process stands in the job."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        """Rank 0: the one process that logs and writes files."""
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1

    def wrap(self, model: nn.Module, device: str) -> nn.Module:
        """The model in DistributedDataParallel when there are several processes, else as it is."""
        if not self.active:
            return model
        ids = [self.local_rank] if device.startswith("cuda") else None
        return nn.parallel.DistributedDataParallel(model, device_ids=ids)

    def shard(self, order: torch.Tensor | list, batch_size: int) -> list:
        """This rank's part of a global sample order, cut into its share of each global batch.

        The order is padded by repeating its start (as DistributedSampler does) so that every rank
        runs the same number of steps; global batch i is split rank by rank.
        """
        order = torch.as_tensor(order)
        if not self.active:
            return list(order.split(batch_size))
        per_rank = max(1, batch_size // self.world)
        step = per_rank * self.world
        steps = -(-len(order) // step)
        padded = torch.cat([order, order[: steps * step - len(order)]]) if steps * step > len(order) else order
        return [padded[s * step + self.rank * per_rank : s * step + (self.rank + 1) * per_rank] for s in range(steps)]

    def mean(self, value: float) -> float:
        """The mean of a number over all ranks (for logging a loss)."""
        if not self.active:
            return value
        t = torch.tensor([value], dtype=torch.float64)
        torch.distributed.all_reduce(t)
        return float(t.item() / self.world)

    def any(self, flag: bool) -> bool:
        """True when any rank says so (so that, say, a time limit stops every rank at the same epoch)."""
        if not self.active:
            return flag
        t = torch.tensor([int(flag)])
        torch.distributed.all_reduce(t, op=torch.distributed.ReduceOp.MAX)
        return bool(t.item())

    def sync_buffers(self, model: nn.Module) -> None:
        """Copy rank 0's buffers (batch-norm statistics) to every rank, so all evaluate the same model."""
        if self.active:
            for b in unwrap(model).buffers():
                torch.distributed.broadcast(b, 0)

    def barrier(self) -> None:
        if self.active:
            torch.distributed.barrier()


SINGLE = Dist()
"""A job of one process (the default without torchrun)."""


def unwrap(model: nn.Module) -> nn.Module:
    """The plain model inside DDP (for evaluation and saving)."""
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


def init(device: str = "cpu") -> Dist:
    """Join the torchrun job described by the environment, or run alone when there is none."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if not torch.distributed.is_initialized():
        backend = "nccl" if device.startswith("cuda") else "gloo"
        if device.startswith("cuda"):
            torch.cuda.set_device(local_rank)
        torch.distributed.init_process_group(backend=backend)
    if rank != 0:  # rank 0 alone speaks
        logging.getLogger().setLevel(logging.WARNING)
    return Dist(rank, world, local_rank)


def device_for(dist: Dist, device: str) -> str:
    """cuda -> this rank's own GPU; cpu stays cpu."""
    return f"cuda:{dist.local_rank}" if device == "cuda" and dist.active else device


def finish(dist: Dist) -> None:
    """Leave the job cleanly."""
    if dist.active and torch.distributed.is_initialized():
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()
