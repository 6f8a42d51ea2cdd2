"""Atari data benchmark: memory per step and sampler speed, frames stored once vs four stored copies per step.

Regenerates the "Atari data" table of BENCHMARKS.md:

    python experiments/bench_atari_data.py [--steps 100000] [--batch-size 128] [--context 30]

"stored once" is dt's layout (one uint8 84x84 frame per step, stacks gathered by index, `dt.data.frames`);
"4 copies" is the official code's (every step keeps its own (4, 84, 84) uint8 stack). Both serve the same
batches through the same `WindowDataset.__getitems__`; the benchmark checks that they are equal.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np
import torch

from dt.data.datamodule import WindowDataset
from dt.data.sources import make_trajectories


def synthetic_atari(num_steps: int, seed: int = 0):
    """Random frames in episodes of 200-3000 steps, 4 actions, rewards in {0, 1} (clipped, as DQN-replay)."""
    rng = np.random.default_rng(seed)
    lengths = []
    while sum(lengths) < num_steps:
        lengths.append(int(rng.integers(200, 3000)))
    lengths[-1] -= sum(lengths) - num_steps
    starts = np.concatenate([[0], np.cumsum(lengths)])
    frames = rng.integers(0, 256, size=(num_steps, 84, 84), dtype=np.uint8)
    actions = rng.integers(0, 4, size=num_steps)
    rewards = (rng.random(num_steps) < 0.05).astype(np.float32)
    return make_trajectories(frames, actions, rewards, starts)


class StoredStacks:
    """The official layout: every step's own (4, 84, 84) stack; gathered with the same index_select as dt's."""

    def __init__(self, stacks: torch.Tensor) -> None:
        self.frames = stacks  # (N, 4, 84, 84)

    def __len__(self) -> int:
        return len(self.frames)

    def __getitem__(self, index: torch.Tensor) -> torch.Tensor:
        return self.frames.index_select(0, index.reshape(-1)).view(*index.shape, *self.frames.shape[1:])


def dataset_bytes(data: WindowDataset) -> int:
    """Bytes of every per-step array the sampler reads (states, actions, returns-to-go, timesteps, episode bounds)."""
    tensors = [data.states.frames, data.actions, data.returns_to_go, data.timesteps, data.episode_end]
    if hasattr(data.states, "episode_start"):
        tensors.append(data.states.episode_start)
    return sum(t.numel() * t.element_size() for t in tensors)


def batches_per_second(data: WindowDataset, batch_size: int, num_batches: int, seed: int = 0) -> float:
    rng = np.random.default_rng(seed)
    starts = [rng.integers(0, len(data), batch_size).tolist() for _ in range(num_batches)]
    data.__getitems__(starts[0])  # warm up
    start = time.perf_counter()
    for batch in starts:
        data.__getitems__(batch)
    return num_batches / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=100_000)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--context", type=int, default=30)
    parser.add_argument("--batches", type=int, default=50)
    args = parser.parse_args()
    torch.set_num_threads(max(torch.get_num_threads(), 1))
    print(f"{platform.processor() or platform.machine()}, torch {torch.__version__}, {torch.get_num_threads()} threads")

    traj = synthetic_atari(args.steps)
    once = WindowDataset(traj, args.context, max_ep_len=27_000)
    copies = WindowDataset(traj, args.context, max_ep_len=27_000)
    # the official layout: each step's own (4, 84, 84) stack, built chunk by chunk from the same frames
    stacked = torch.empty((args.steps, 4, 84, 84), dtype=torch.uint8)
    for lo in range(0, args.steps, 10_000):
        stacked[lo : lo + 10_000] = once.states[torch.arange(lo, min(lo + 10_000, args.steps))]
    copies.states = StoredStacks(stacked)

    probe = np.random.default_rng(1).integers(0, args.steps, args.batch_size).tolist()
    assert torch.equal(once.__getitems__(probe)["states"], copies.__getitems__(probe)["states"])

    rows = []
    for name, data in (("frames stored once (dt)", once), ("4 copies per step (official)", copies)):
        per_step = dataset_bytes(data) / args.steps
        speed = batches_per_second(data, args.batch_size, args.batches)
        rows.append((name, per_step, per_step * 500_000 / 1e9, speed))
    print(f"\n{args.steps:,} steps, batch {args.batch_size} x K {args.context}\n")
    print("| layout | bytes per step | 500k steps | sampler batches/s |")
    print("|---|---|---|---|")
    for name, per_step, gb_500k, speed in rows:
        print(f"| {name} | {per_step:,.0f} | {gb_500k:.2f} GB | {speed:.1f} |")
    print(f"\nmemory ratio (4 copies / once): {rows[1][1] / rows[0][1]:.2f}x")
    print("load average (1, 5, 15 min) at the end: " + ", ".join(f"{x:.1f}" for x in os.getloadavg()))


if __name__ == "__main__":
    main()
