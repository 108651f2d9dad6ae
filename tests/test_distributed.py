"""Data-parallel training: real 2-process torchrun jobs over gloo on the CPU, for a few batches."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from tests.conftest import ROOT
from tests.test_published import FASHION_MNIST, PRODUCTS
from wardrobe.train.distributed import Dist


def test_shards_cover_the_order_and_match_in_length():
    order = torch.randperm(103, generator=torch.Generator().manual_seed(0))
    shards = [Dist(rank, 2).shard(order, 16) for rank in range(2)]
    assert len(shards[0]) == len(shards[1]) == 7  # 103 padded to 7 global batches of 16
    assert all(len(b) == 8 for s in shards for b in s)
    seen = torch.cat([b for s in shards for b in s])
    assert set(seen.tolist()) == set(order.tolist())
    assert not set(shards[0][0].tolist()) & set(shards[1][0].tolist())
    # One process: plain batches of the whole order.
    assert torch.equal(torch.cat(Dist().shard(order, 16)), order)


def torchrun(args: list[str], cwd) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
         "-m", "wardrobe.train", *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=600,
    )


def job(preset: str, tmp_path) -> list[str]:
    """A few batches of a preset on real data."""
    if preset == "fashion-mnist":
        if not FASHION_MNIST.exists() and "CI" not in os.environ:  # in CI a missing dataset fails the test
            pytest.skip("apt-get install dataset-fashion-mnist (CI installs it)")
        return ["fashion-mnist", "--data-dir", str(FASHION_MNIST), "--model", "lenet", "--epochs", "2",
                "--limit-batches", "3"]
    common = ["--data", f"product-photos={PRODUCTS}", "--epochs", "2", "--cache-dir", str(tmp_path / "cache")]
    if preset == "classifier":
        return ["classifier", *common, "--batch-size", "32"]
    from wardrobe.nets import AlexNetSlim

    torch.save({"model": AlexNetSlim(38).state_dict()}, tmp_path / "w.pt")
    return ["attributes", *common, "--frozen-epochs", "1", "--batch-size", "16", "--epoch-size", "48",
            "--weights", str(tmp_path / "w.pt")]


@pytest.mark.parametrize("preset", ["fashion-mnist", "classifier", "attributes"])
def test_two_process_gloo_job_is_reproducible(preset, tmp_path):
    args = job(preset, tmp_path)
    runs = []
    for i in range(2):
        out = tmp_path / f"run{i}"
        p = torchrun([*args, "--output-dir", str(out)], tmp_path)
        assert p.returncode == 0, p.stderr[-3000:]
        # Rank 0 alone logs: each epoch is reported once, not once per process.
        epoch_lines = [line for line in p.stderr.splitlines() if "INFO" in line and " epoch 1" in line]
        assert len(epoch_lines) == 1, p.stderr[-2000:]
        runs.append(torch.load(out / "checkpoint.pt", map_location="cpu", weights_only=False))
        assert (out / "metrics.json").is_file()
    a, b = (r["model"] for r in runs)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)  # same seed and world size


@pytest.mark.parametrize("preset", ["experts", "vae-oversample", "vae-home", "colours", "segmentation", "export"])
def test_presets_that_are_not_data_parallel_refuse_torchrun(preset, monkeypatch):
    """Every rank would redo the whole job and write the same files: a clear refusal instead."""
    from wardrobe.train.__main__ import main as train_main

    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(SystemExit, match=f"`{preset}` does not run under torchrun") as e:
        train_main([preset, "--help"])
    assert "classifier" in str(e.value) and ("--workers" in str(e.value)) == (preset == "experts")
