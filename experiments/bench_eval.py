"""Evaluation speed: `make bench-eval [CKPT=path/to/last.ckpt]` (a benchmark, not a test).

One checkpoint, N episodes of one target:
  (a) ours: all N episodes in lockstep on a vector env, one model call per env step; in fp32 and, where the
      device has native bf16 (what eval.precision=auto picks there), under bf16 autocast;
  (b) the official way: one episode at a time, batch 1, histories grown by torch.cat, fp32;
  (c) the floor: as many env steps as (a) made, random actions, one env, no model.
Prints wall time, env-steps/s, return means and the ratios a/b (below 1: ours is faster) and a/c.
"""

from __future__ import annotations

import argparse
import glob
import os
import platform
import time
from datetime import date

import torch

from dt.evaluate import load_module
from dt.rollout import (
    RolloutSpec,
    make_env_fn,
    make_vector_env,
    module_policy,
    rollout_batched,
    rollout_sequential,
    uses_bf16,
)


def newest_checkpoint() -> str:
    found = sorted(glob.glob("outputs/**/checkpoints/last.ckpt", recursive=True), key=os.path.getmtime)
    if not found:
        raise SystemExit("no outputs/**/checkpoints/last.ckpt: train one first (see BENCHMARKS.md) or pass --ckpt")
    return found[-1]


def timed(fn, *args):
    start = time.perf_counter()
    result = fn(*args)
    return result, time.perf_counter() - start


def floor(env, num_steps: int, seed: int) -> None:
    """`num_steps` env steps with random actions, resetting when an episode ends."""
    env.reset(seed=seed)
    env.action_space.seed(seed)
    for _ in range(num_steps):
        _, _, terminated, truncated, _ = env.step(env.action_space.sample())
        if terminated or truncated:
            env.reset()


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
    print(f"checkpoint {ckpt}\n{spec.env_id}, target {target:g}, {args.episodes} episodes, seed {args.seed}")
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, ", end="")
    print(f"{torch.get_num_threads()} threads, device {args.device}, {date.today()}")

    envs, make_s = timed(lambda: make_vector_env(make_env_fn(spec), args.episodes, args.vectorization))
    precisions = ["32", "bf16"] if uses_bf16(module.device, "auto") else ["32"]
    rows, batched = [], {}
    for precision in precisions:
        policy = module_policy(module, precision)
        rollout_batched(policy, envs, spec, [target], args.seed, module.device)  # warm-up: allocator, env caches
        (result,), seconds = timed(rollout_batched, policy, envs, spec, [target], args.seed, module.device)
        batched[precision] = seconds
        name = f"(a) batched, {args.vectorization}, {args.device}, {'fp32' if precision == '32' else 'bf16'}"
        rows.append((name, seconds, result))
    envs.close()
    a = rows[0][2]
    if not args.skip_sequential:
        env = make_env_fn(spec)()
        policy = module_policy(module, "32")
        b, b_s = timed(lambda: rollout_sequential(policy, env, spec, target, args.seed, args.episodes, module.device))
        rows.append(("(b) sequential, batch 1, fp32", b_s, b))
    c_steps = int(a.lengths.sum())
    _, c_s = timed(floor, make_env_fn(spec)(), c_steps, args.seed)  # env made before the clock starts

    print(f"vector env creation: {make_s:.2f} s (once per training run)\n")
    print(f"{'variant':<36} {'wall s':>8} {'env steps':>10} {'steps/s':>9} {'return mean':>12} {'length':>7}")
    for name, seconds, r in rows:
        steps = int(r.lengths.sum())
        print(f"{name:<36} {seconds:8.2f} {steps:10d} {steps / seconds:9.0f}", end="")
        print(f" {r.returns.mean():12.1f} {r.lengths.mean():7.1f}")
    print(f"{'(c) floor: env only, random actions':<36} {c_s:8.2f} {c_steps:10d} {c_steps / c_s:9.0f}\n")
    for precision, a_s in batched.items():
        label = "fp32" if precision == "32" else "bf16"
        line = f"a ({label}): a/c = {a_s / c_s:.1f}"
        if not args.skip_sequential:
            line += f", a/b = {a_s / b_s:.3f} (ours {b_s / a_s:.1f}x faster than sequential)"
        print(line)


if __name__ == "__main__":
    main()
