"""Evaluation speed: `make bench-eval [CKPT=path/to/last.ckpt]` (a benchmark, not a test).

One checkpoint, N episodes of one target:
  (a) ours: all N episodes in lockstep on a vector env, one model call per env step;
  (b) the official way: one episode at a time, batch 1, histories grown by torch.cat;
  (c) the floor: the env steps (a) made (N envs x its longest episode), random actions, no model.
Prints wall time, env-steps/s and the ratios a/b (below 1: ours is faster) and a/c (cost above the env).
"""

from __future__ import annotations

import argparse
import glob
import os
import platform
import time
from datetime import date

import numpy as np
import torch

from dt.evaluate import load_module
from dt.rollout import RolloutSpec, make_env_fn, make_vector_env, module_policy, rollout_batched, rollout_sequential


def newest_checkpoint() -> str:
    found = sorted(glob.glob("outputs/**/checkpoints/last.ckpt", recursive=True), key=os.path.getmtime)
    if not found:
        raise SystemExit("no outputs/**/checkpoints/last.ckpt: train one first (see BENCHMARKS.md) or pass --ckpt")
    return found[-1]


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def floor(envs, vector_steps: int, seed: int) -> int:
    """Step the vector env `vector_steps` times with random actions; returns the env steps made."""
    envs.reset(seed=seed)
    envs.action_space.seed(seed)
    for _ in range(vector_steps):
        envs.step(envs.action_space.sample())
    return vector_steps * envs.num_envs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ckpt", default=None, help="default: the newest outputs/**/checkpoints/last.ckpt")
    parser.add_argument("--episodes", type=int, default=100)
    parser.add_argument("--target", type=float, default=None, help="default: the env's first target return")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--vectorization", choices=["sync", "async"], default="sync")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--skip-sequential", action="store_true", help="(b) takes longest: skip it")
    args = parser.parse_args()

    ckpt = args.ckpt or newest_checkpoint()
    module = load_module(ckpt, args.device).eval()
    spec = RolloutSpec.from_module(module)
    target = args.target if args.target is not None else module.hparams.run_config["env"]["target_returns"][0]
    policy = module_policy(module)
    print(f"checkpoint {ckpt}\n{spec.env_id}, target {target:g}, {args.episodes} episodes, seed {args.seed}")
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, ", end="")
    print(f"{torch.get_num_threads()} threads, device {args.device}, {date.today()}")

    envs, make_s = timed(lambda: make_vector_env(make_env_fn(spec), args.episodes, args.vectorization))
    rollout_batched(policy, envs, spec, target, args.seed, module.device)  # warm-up: allocator, env caches
    a, a_s = timed(lambda: rollout_batched(policy, envs, spec, target, args.seed, module.device))
    c_steps, c_s = timed(lambda: floor(envs, int(a.lengths.max()), args.seed))
    envs.close()
    rows = [(f"(a) batched ({args.vectorization}, {args.device})", a_s, int(a.lengths.sum()))]
    if not args.skip_sequential:
        env = make_env_fn(spec)()
        b, b_s = timed(lambda: rollout_sequential(policy, env, spec, target, args.seed, args.episodes, module.device))
        rows.append(("(b) sequential, batch 1", b_s, int(b.lengths.sum())))
    rows.append(("(c) floor: env only, random actions", c_s, c_steps))

    print(f"\nreturn mean {a.returns.mean():.1f}, length mean {a.lengths.mean():.1f}, longest {a.lengths.max()}")
    print(f"vector env creation: {make_s:.2f} s (once per training run)\n")
    print(f"{'variant':<40} {'wall s':>8} {'env steps':>10} {'steps/s':>9}")
    for name, seconds, steps in rows:
        print(f"{name:<40} {seconds:8.2f} {steps:10d} {steps / seconds:9.0f}")
    if not args.skip_sequential:
        diff = np.abs(a.returns - b.returns).max()
        print(f"\na/b = {a_s / b_s:.3f}: ours is {b_s / a_s:.1f}x faster than sequential", end="")
        print(f" (max |return a - b| = {diff:.2g})")
    print(f"a/c = {a_s / c_s:.1f}: ours takes {a_s / c_s:.1f}x the env-only floor")


if __name__ == "__main__":
    main()
