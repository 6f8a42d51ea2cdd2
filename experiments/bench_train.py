"""Training-side benchmark: dataset load + preprocess time and memory, and CPU/GPU train step time.

Regenerates the "Training" table of BENCHMARKS.md:

    MINARI_DATASETS_PATH=../shared/minari python experiments/bench_train.py [--dataset sb3/hopper/medium-v0]
"""

from __future__ import annotations

import argparse
import platform
import resource
import time
from dataclasses import replace

import numpy as np
import torch

from dt.data import DTDataModule, WindowDataset, delay_rewards, state_stats
from dt.module import DTModule

PAPER_NET = {"embed_dim": 128, "n_layer": 3, "n_head": 1, "activation": "relu", "dropout": 0.1}
PAPER_OPTIM = {"lr": 1e-4, "weight_decay": 1e-4, "warmup_steps": 10_000, "betas": [0.9, 0.999]}


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def bench_load(dataset_id: str, context_len: int) -> DTDataModule:
    rss_before = peak_rss_mib()
    start = time.perf_counter()
    dm = DTDataModule(dataset_id, download=False, context_len=context_len, batch_size=64, batches_per_epoch=1)
    dm.setup("fit")
    seconds = time.perf_counter() - start
    traj = dm.trajectories
    print(f"load + preprocess {dataset_id}: {traj.num_steps:,} steps, {traj.num_episodes} episodes")
    print(f"  time {seconds:.2f} s; peak RSS {peak_rss_mib():.0f} MiB (before loading {rss_before:.0f} MiB)")
    return dm


def bench_preprocess_1m(dm: DTDataModule, context_len: int) -> None:
    """Preprocessing alone (stats, delayed rewards, returns-to-go, window index) on the dataset tiled to >= 1M steps."""
    traj = dm.trajectories
    copies = -(-1_000_000 // traj.num_steps)
    big = replace(
        traj,
        observations=np.tile(traj.observations, (copies, 1)),
        actions=np.tile(traj.actions, (copies, 1)),
        rewards=np.tile(traj.rewards, copies),
        starts=np.concatenate([[0], np.cumsum(np.tile(traj.lengths, copies))]),
    )
    start = time.perf_counter()
    state_stats(big.observations)
    WindowDataset(delay_rewards(big), context_len, 1000)
    print(f"preprocess {big.num_steps:,} steps (dataset tiled x{copies}): {time.perf_counter() - start:.2f} s")


def bench_steps(dm: DTDataModule, context_len: int, device: str, steps: int, batch_size: int = 64) -> None:
    torch.manual_seed(0)
    module = DTModule(PAPER_NET, PAPER_OPTIM, dm.spec, context_len, 1000, 1000.0).to(device).train()
    optimizer = torch.optim.AdamW(module.model.optim_groups(1e-4), lr=1e-4)
    rng = np.random.default_rng(0)
    sample = lambda: dm.train_set.__getitems__(rng.integers(0, len(dm.train_set), batch_size).tolist())  # noqa: E731
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=device == "cuda")

    def step() -> None:
        batch = {k: v.to(device, non_blocking=True) for k, v in sample().items()}
        with autocast:
            outputs = module(batch["returns_to_go"], batch["states"], batch["actions"], batch["timesteps"])
            loss = module.head.loss(outputs.float(), batch["actions"], batch["mask"].float())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(module.parameters(), 0.25)
        optimizer.step()

    for _ in range(5):
        step()
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    sync()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    sync()
    per_step = (time.perf_counter() - start) / steps
    start = time.perf_counter()
    for _ in range(steps):
        sample()
    sampling = (time.perf_counter() - start) / steps
    print(
        f"train step on {device} (batch {batch_size}, K={context_len}, embed 128, 3 layers; {steps} steps): "
        f"{per_step * 1e3:.1f} ms/step = {1 / per_step:.1f} steps/s; batch sampling {sampling * 1e3:.2f} ms of it"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="sb3/hopper/medium-v0")
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--K", type=int, default=20)
    args = parser.parse_args()
    print(
        f"machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads, "
        f"torch {torch.__version__}, cuda: {torch.cuda.is_available()}"
    )
    dm = bench_load(args.dataset, args.K)
    bench_preprocess_1m(dm, args.K)
    bench_steps(dm, args.K, "cpu", args.steps)
    if torch.cuda.is_available():
        bench_steps(dm, args.K, "cuda", args.steps * 5)
        bench_steps(dm, args.K, "cuda", args.steps * 5, batch_size=512)


if __name__ == "__main__":
    main()
