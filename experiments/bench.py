"""`make bench`: dt's speed beside its references, measured in one process and printed as one table.

    MINARI_DATASETS_PATH=../shared/minari python -m experiments.bench [--ckpt PATH] [--episodes 100]

One process, so that the ratios hold on a noisy machine: the variants compared in a row run in the same
process, interleaved in rounds (medians reported), on the same data. Rows:

  load        dataset load + preprocess (Minari read, state stats, returns-to-go, window index); preprocessing
              alone on the dataset tiled to >= 1M steps
  1a / 1b     training samples/s at the composed config (conf/model/dt.yaml and the trainer's clip: the paper's
              gym config, batch 64, K=20, embed 128, 3 layers, 1 head, ReLU, dropout 0.1, AdamW lr 1e-4 wd 1e-4,
              clip 0.25; `--env` names the dataset's env config): (a) DTModule (the loss training_step computes, its
              own AdamW groups) vs (b) Hugging Face `transformers.DecisionTransformerModel` as the official code
              trains it, on the same batches; on CUDA bf16 autocast rows too. (b) needs `pip install -e ".[bench]"`.
  1c          (a) with its last block computed for every token (`last_block_states_only=False`, the model before
              the state-token saving: the same outputs), in the same rounds: a/c is what the saving buys
  2a / 2b     sampler batches/s: WindowDataset.__getitems__ on UniformStepSampler draws vs the official
              per-sample get_batch loop (`official_get_batch` in bench_references.py)
  3a .. 3c    evaluation env-steps/s, episodes x targets: (a) one `rollout_batched` call, fp32 and bf16 autocast;
              (b) `rollout_sequential`, batch 1, fp32, each target; (c) the env alone, random actions
  3d          (a) fp32 with the acting call compiled (`eval.compile=true`: inductor at bucketed batch sizes; on
              CUDA with CUDA graphs), timed on a second rollout after one that compiles every bucket it meets
              (the compile time is in the notes); `--skip-compiled` drops it
  4           peak memory: RSS of the process after each phase; on CUDA the peak allocated in each phase
  5           where a training step and an evaluation step spend their time (timers, synchronized)

Evaluation speed depends on the policy (episode lengths): `--ckpt PATH`, else the newest
outputs/**/checkpoints/last.ckpt, else (or with `--fresh`) an untrained module; the line above the table says
which. Quick look: `--episodes 4 --steps 5 --rounds 2 --skip-sequential`.
"""

from __future__ import annotations

import argparse
import glob
import itertools
import os
import platform
import resource
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from dt.config import compose_conf
from dt.data.datamodule import DTDataModule, UniformStepSampler, WindowDataset, delay_rewards, state_stats
from dt.envs import make_env_fn, make_vector_env
from dt.evaluate import load_module
from dt.evaluation.compiled import CompiledPolicy
from dt.evaluation.precision import module_policy
from dt.evaluation.rollout import rollout_batched, rollout_sequential
from dt.evaluation.settings import EvalSettings
from dt.evaluation.setup import Evaluation
from dt.metrics import TargetResult
from dt.models.dt_module import DTModule
from experiments.bench_references import (
    HFTrainer,
    TrainStep,
    official_get_batch,
    transformers_version,
)

HF_HINT = 'transformers is not installed: row 1b (HF DecisionTransformerModel) skipped; pip install -e ".[bench]"'


@dataclass
class Row:
    key: str  # "1a", "3b", ...
    what: str
    value: float  # the figure
    unit: str
    ratio: str = ""  # to the row's reference
    notes: str = ""


def log(message: str) -> None:
    """Progress on stderr; the table goes to stdout."""
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kilobytes on Linux


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def header(device: torch.device) -> str:
    gpu = f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else ""
    bf16 = "yes" if native_bf16(torch.device("cpu")) else "no"
    return (
        f"{date.today()} | CPU {cpu_model()}, {os.cpu_count()} cores | torch {torch.__version__}, "
        f"{torch.get_num_threads()} torch thread(s) | device {device}{gpu} | CPU native bf16: {bf16}"
    )


def native_bf16(device: torch.device) -> bool:
    """bf16 matmuls in hardware: CUDA, or a CPU with AVX512-BF16 or AMX (elsewhere bf16 is emulated, slowly)."""
    if device.type == "cuda":
        return True
    return torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()


def number(x: float) -> str:
    """1,234 above 100, else 3 significant digits."""
    return f"{x:,.0f}" if abs(x) >= 100 else f"{x:.3g}"


def share(part: float, total: float) -> str:
    fraction = part / total if total > 0 else 0.0
    return f"{fraction:.0%}" if fraction >= 0.1 else f"{fraction:.1%}"


def times(ratio: float, than: str) -> str:
    """`2.3x faster than (b)`, or `1.4x slower than (b)` below 1."""
    return f"{ratio:.1f}x faster than {than}" if ratio >= 1 else f"{1 / ratio:.1f}x slower than {than}"


def format_table(rows: list[Row]) -> str:
    """A Markdown table, ready for BENCHMARKS.md."""
    lines = ["| row | what | figure | unit | vs reference | notes |", "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r.key} | {r.what} | {number(r.value)} | {r.unit} | {r.ratio} | {r.notes} |")
    return "\n".join(lines)


def median_rate(rates: list[float]) -> float:
    return statistics.median(rates)


def spread(rates: list[float]) -> str:
    return f"median of {len(rates)} rounds, range {number(min(rates))}-{number(max(rates))}"


def duration(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h" if seconds >= 3600 else f"{seconds / 60:.0f} min"


class MemoryPhases:
    """Row 4: peak RSS after each phase (the process's peak so far) and, on CUDA, each phase's peak allocation."""

    def __init__(self, device: torch.device) -> None:
        self.device, self.rows = device, []

    def start(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)

    def end(self, phase: str) -> None:
        self.rows.append(Row("4", f"peak RSS after {phase}", peak_rss_mib(), "MiB", notes="the process's peak so far"))
        if self.device.type == "cuda":
            peak = torch.cuda.max_memory_allocated(self.device) / 2**20
            self.rows.append(Row("4", f"CUDA peak allocated during {phase}", peak, "MiB"))


# --- the dataset ------------------------------------------------------------------------------------------------


def bench_config(args: argparse.Namespace) -> DictConfig:
    """conf/train.yaml as `dt.train` composes it for the bench's env and dataset: the model trained and evaluated
    (conf/model/dt.yaml, the paper's gym config), the trainer's gradient clip and the env's scales are the
    config's, so a config change changes what is measured."""
    overrides = [f"env={args.env}", f"dataset.id={args.dataset}", f"K={args.K}", f"seed={args.seed}"]
    return compose_conf([*overrides, f"data.batch_size={args.batch_size}"])


def load_rows(args: argparse.Namespace) -> tuple[DTDataModule, list[Row]]:
    start = time.perf_counter()
    dm = DTDataModule(args.dataset, download=False, context_len=args.K, batch_size=args.batch_size)
    dm.setup("fit")
    seconds = time.perf_counter() - start
    traj = dm.trajectories
    rows = [
        Row(
            "load",
            f"load + preprocess {args.dataset}",
            seconds,
            "s",
            notes=f"{traj.num_steps:,} steps, {traj.num_episodes} episodes: Minari read, state stats, "
            "returns-to-go, window index (imports excluded)",
        )
    ]
    copies = -(-args.preprocess_steps // traj.num_steps)
    big = replace(
        traj,
        observations=np.tile(traj.observations, (copies, 1)),
        actions=np.tile(traj.actions, (copies, 1)),
        rewards=np.tile(traj.rewards, copies),
        starts=np.concatenate([[0], np.cumsum(np.tile(traj.lengths, copies))]),
    )
    start = time.perf_counter()
    state_stats(big.observations)
    WindowDataset(delay_rewards(big), args.K, 1000)
    rows.append(
        Row(
            "load",
            f"preprocess alone, {big.num_steps:,} steps (dataset tiled x{copies})",
            time.perf_counter() - start,
            "s",
            notes="state stats, delayed rewards, returns-to-go, window index",
        )
    )
    return dm, rows


def paper_module(dm: DTDataModule, cfg: DictConfig) -> DTModule:
    """An untrained module as `dt.train` builds it from `cfg` (model=dt: the paper's config), with the env config
    in its run_config."""
    if dm.spec.env_id and dm.spec.env_id != cfg.env.id:
        raise SystemExit(f"the dataset was collected in {dm.spec.env_id} but --env {cfg.env.name} is {cfg.env.id}")
    torch.manual_seed(cfg.seed)
    run_config = {"env": OmegaConf.to_container(cfg.env, resolve=True), "seed": cfg.seed}
    return instantiate(
        cfg.model, data_spec=dm.spec.to_dict(), run_config=run_config, _recursive_=False, _convert_="all"
    )


def window_batches(dataset: WindowDataset, batch_size: int, seed: int) -> Iterator[dict[str, torch.Tensor]]:
    """Training batches as DTDataModule serves them: UniformStepSampler draws gathered by `__getitems__`."""
    for epoch in itertools.count():
        draws = iter(UniformStepSampler(len(dataset), batch_size * 1000, seed, epoch))
        for _ in range(1000):
            yield dataset.__getitems__(list(itertools.islice(draws, batch_size)))


# --- 1: training --------------------------------------------------------------------------------------------------


class OursTrainer(TrainStep):
    """What DTModule.training_step computes (outputs_and_targets + its head's loss), backward, the clip, and the
    optimizer and warmup schedule of its own configure_optimizers (AdamW; no decay on biases, LayerNorms,
    embeddings). Batches go in as they are: the module normalizes states and scales returns-to-go itself."""

    def __init__(self, module: DTModule, bf16: bool, clip: float) -> None:
        self.module, self.bf16, self.clip = module.train(), bf16, clip
        self.parameters = list(module.parameters())
        configured = module.configure_optimizers()
        self.optimizer, self.scheduler = configured["optimizer"], configured["lr_scheduler"]["scheduler"]

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        with torch.autocast(self.module.device.type, dtype=torch.bfloat16, enabled=self.bf16):
            outputs, actions, mask = self.module.outputs_and_targets(batch)
            return self.module.head.loss(outputs, actions, mask.to(outputs.dtype))


def training_rows(dm: DTDataModule, args: argparse.Namespace, device: torch.device) -> list[Row]:
    precisions = ["fp32", "bf16"] if device.type == "cuda" else ["fp32"]
    hf_version = transformers_version()
    variants: dict[tuple[str, str], Any] = {}
    clip = float(args.config.trainer.gradient_clip_val)
    for precision in precisions:
        module = paper_module(dm, args.config).to(device)
        variants["a", precision] = OursTrainer(module, precision == "bf16", clip)
        full = paper_module(dm, args.config).to(device)  # the same weights
        full.model.config.last_block_states_only = False
        variants["c", precision] = OursTrainer(full, precision == "bf16", clip)
        if hf_version:
            torch.manual_seed(args.seed)
            variants["b", precision] = HFTrainer(module, device, precision == "bf16", clip)
    dm.train_set.to(dm.gather_device() if device.type == "cpu" else device)  # as dt.train: gathered on the GPU
    batches = window_batches(dm.train_set, args.batch_size, args.seed)

    def next_batch() -> dict[str, torch.Tensor]:
        return {k: v.to(device, non_blocking=True) for k, v in next(batches).items()}

    log(f"training: {len(variants)} models, {args.warmup} warm-up steps, {args.rounds} rounds x {args.steps} steps")
    for trainer in variants.values():
        for _ in range(args.warmup):
            trainer.step(trainer.inputs(next_batch()))
    rates: dict[tuple[str, str], list[float]] = {key: [] for key in variants}
    for round_index in range(args.rounds):
        round_batches = [next_batch() for _ in range(args.steps)]  # the same batches for every variant
        order = list(variants.items())
        for key, trainer in order if round_index % 2 == 0 else reversed(order):
            inputs = [trainer.inputs(batch) for batch in round_batches]
            synchronize(device)
            start = time.perf_counter()
            for item in inputs:
                trainer.step(item)
            synchronize(device)
            rates[key].append(args.steps * args.batch_size / (time.perf_counter() - start))
        log(f"training round {round_index + 1}/{args.rounds} done")

    rows = []
    for precision in precisions:
        a = median_rate(rates["a", precision])
        steps_per_s = a / args.batch_size
        notes = f"{steps_per_s:.3g} steps/s, 100k steps: {duration(1e5 / steps_per_s)}; {spread(rates['a', precision])}"
        ratio = ""
        if ("b", precision) in rates:
            ratio = f"a/b = {a / median_rate(rates['b', precision]):.2f}"
        rows.append(Row("1a", f"train, ours (DTModule), {precision}", a, "samples/s", ratio, notes))
        if ("b", precision) in rates:
            b = median_rate(rates["b", precision])
            hf = variants["b", precision]
            rows.append(
                Row(
                    "1b",
                    f"train, HF DecisionTransformerModel (transformers {hf_version}, {hf.attention}), {precision}",
                    b,
                    "samples/s",
                    "reference",
                    f"{b / args.batch_size:.3g} steps/s; {spread(rates['b', precision])}",
                )
            )
        c = median_rate(rates["c", precision])
        rows.append(
            Row(
                "1c",
                f"train, ours with the last block for every token (before the state-token saving), {precision}",
                c,
                "samples/s",
                f"a/c = {a / c:.2f}",
                f"{c / args.batch_size:.3g} steps/s; {spread(rates['c', precision])}",
            )
        )
    rows.append(train_profile_row(variants["a", "fp32"], next_batch, args, device))
    return rows


def train_profile_row(
    trainer: OursTrainer, next_batch: Callable[[], dict], args: argparse.Namespace, device: torch.device
) -> Row:
    """Row 5: a training step's time split by phase, timers synchronized (on CUDA) at each boundary."""
    parts = dict.fromkeys(("batch gather", "forward + loss", "backward", "clip + optimizer"), 0.0)
    steps = max(args.steps, 1)
    for _ in range(steps):
        synchronize(device)
        t0 = time.perf_counter()
        batch = next_batch()
        synchronize(device)
        t1 = time.perf_counter()
        loss = trainer.forward(batch)
        synchronize(device)
        t2 = time.perf_counter()
        trainer.backward(loss)
        synchronize(device)
        t3 = time.perf_counter()
        trainer.update()
        loss.item()
        t4 = time.perf_counter()
        for name, seconds in zip(parts, (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True):
            parts[name] += seconds
    total = sum(parts.values())
    shares = " / ".join(f"{name} {share(seconds, total)}" for name, seconds in parts.items())
    return Row("5", "train step profile: ours, fp32", 1e3 * total / steps, "ms/step", notes=f"{shares} ({steps} steps)")


# --- 2: sampler ---------------------------------------------------------------------------------------------------


def sampler_rows(dm: DTDataModule, args: argparse.Namespace) -> list[Row]:
    """Row 2, on the CPU (where both samplers run in training; the copy to the device is left out of both)."""
    env = args.config.env
    get_batch = official_get_batch(
        dm.trajectories,
        dm.state_mean,
        dm.state_std,
        int(env.max_ep_len),
        float(env.return_scale),
        args.seed,
    )
    dataset, B, n = dm.train_set.to("cpu"), args.batch_size, args.sampler_batches

    def ours(round_index: int) -> None:
        draws = iter(UniformStepSampler(len(dataset), B * n, args.seed, round_index))
        for _ in range(n):
            dataset.__getitems__(list(itertools.islice(draws, B)))

    def official(round_index: int) -> None:
        for _ in range(n):
            get_batch(B, args.K)

    log(f"sampler: {args.rounds} rounds x {n} batches of each")
    ours(0)  # warm-up
    official(0)
    rates: dict[str, list[float]] = {"ours": [], "official": []}
    for round_index in range(args.rounds):
        pair = [("ours", ours), ("official", official)]
        for name, fn in pair if round_index % 2 == 0 else reversed(pair):
            start = time.perf_counter()
            fn(round_index)
            rates[name].append(n / (time.perf_counter() - start))
    a, b = median_rate(rates["ours"]), median_rate(rates["official"])
    met = "met" if a / b >= 20 else "not met"
    return [
        Row(
            "2a",
            f"sampler, ours: WindowDataset.__getitems__ + UniformStepSampler (batch {B}, K={args.K})",
            a,
            "batches/s",
            f"{times(a / b, '(b)')} (goal >= 20x faster: {met})",
            spread(rates["ours"]),
        ),
        Row(
            "2b",
            "sampler, official get_batch (per-sample Python loop)",
            b,
            "batches/s",
            "reference",
            spread(rates["official"]),
        ),
    ]


# --- 3: evaluation ------------------------------------------------------------------------------------------------


def newest_checkpoint() -> str | None:
    found = sorted(glob.glob("outputs/**/checkpoints/last.ckpt", recursive=True), key=os.path.getmtime)
    return found[-1] if found else None


def eval_model(dm: DTDataModule, args: argparse.Namespace, device: torch.device) -> tuple[Any, str]:
    ckpt = args.ckpt or (None if args.fresh else newest_checkpoint())
    if ckpt:
        return load_module(ckpt, str(device)).eval(), f"checkpoint {ckpt}"
    module = paper_module(dm, args.config).to(device).eval()
    return module, "a freshly initialized module (no checkpoint: short episodes; pass --ckpt for a trained policy)"


class TimedEnv(gym.Wrapper):
    """Adds the time spent in `step` to `clock["env"]` (row 5's evaluation profile)."""

    def __init__(self, env: gym.Env, clock: dict[str, float]) -> None:
        super().__init__(env)
        self.clock = clock

    def step(self, action: Any) -> Any:
        start = time.perf_counter()
        try:
            return self.env.step(action)
        finally:
            self.clock["env"] += time.perf_counter() - start


def floor(env: gym.Env, num_steps: int, seed: int) -> None:
    """`num_steps` env steps with random actions, resetting when an episode ends."""
    env.reset(seed=seed)
    env.action_space.seed(seed)
    for _ in range(num_steps):
        _, _, terminated, truncated, _ = env.step(env.action_space.sample())
        if terminated or truncated:
            env.reset()


def summary(results: list[TargetResult]) -> str:
    steps = sum(int(r.lengths.sum()) for r in results)
    values = [r.metrics() for r in results]
    returns = ", ".join(f"{v['return_mean']:.0f}" for v in values)
    lengths = ", ".join(f"{v['length_mean']:.0f}" for v in values)
    return f"{steps:,} env steps; return mean {returns}; length mean {lengths}"


def eval_rows(dm: DTDataModule, args: argparse.Namespace, device: torch.device) -> tuple[list[Row], str]:
    module, source = eval_model(dm, args, device)
    run = module.hparams.get("run_config") or {}
    given = {
        "target_returns": args.targets,
        "episodes": args.episodes,
        "max_ep_len": args.max_ep_len,
        "seed": args.seed,
    }
    settings = EvalSettings.for_run(run, given)  # the rest as the run (or conf/) says
    if not settings.target_returns:
        raise SystemExit(f"no target returns known for {module.data_spec.env_id}: pass --targets R1 R2")
    evaluation = Evaluation(module, settings)  # resolves the targets and builds the spec; no envs yet
    spec, targets = evaluation.spec, [t.value for t in evaluation.targets]
    n, T = args.episodes, len(targets)
    log(f"evaluation: {n} episodes x {len(targets)} targets {targets} with {source}")
    start = time.perf_counter()
    envs = make_vector_env(make_env_fn(spec), n, "sync", targets=T)
    make_s = time.perf_counter() - start
    warmup_spec = replace(spec, max_ep_len=min(spec.max_ep_len, spec.context_len + 2))  # every window length once

    native = native_bf16(device)
    timed: dict[str, tuple[float, list[TargetResult]]] = {}
    clock = {"model": 0.0, "env": 0.0, "calls": 0}
    for precision in ("32", "bf16"):
        policy = module_policy(module, precision)
        rollout_batched(
            policy, envs, warmup_spec, target_returns=targets, seed=args.seed, device=device
        )  # warm-up: allocator, kernels
        if precision == "32":  # instrumented for row 5: a timer around each model call and each sub-env step
            policy = timed_policy(policy, clock, device)
            plain_envs, envs.envs = envs.envs, [TimedEnv(e, clock) for e in envs.envs]
        start = time.perf_counter()
        results = rollout_batched(policy, envs, spec, target_returns=targets, seed=args.seed, device=device)
        timed[precision] = (time.perf_counter() - start, results)
        if precision == "32":
            envs.envs = plain_envs
        log(f"evaluation (a) {precision}: {timed[precision][0]:.1f} s")
    compiled = None if args.skip_compiled else compiled_rollouts(module, envs, spec, targets, args, device)
    envs.close()

    rows: list[Row] = []
    a_steps = sum(int(r.lengths.sum()) for r in timed["32"][1])
    if not args.skip_sequential:
        env, policy = make_env_fn(spec)(), module_policy(module, "32")
        start = time.perf_counter()
        seq = [
            rollout_sequential(policy, env, spec, target_return=r, seed=args.seed, num_episodes=n, device=device)
            for r in targets
        ]
        b_s = time.perf_counter() - start
        env.close()
        log(f"evaluation (b): {b_s:.1f} s")
    env = make_env_fn(spec)()
    start = time.perf_counter()
    floor(env, a_steps, args.seed)
    c_s = time.perf_counter() - start
    env.close()
    c_rate = a_steps / c_s

    b_rate = None if args.skip_sequential else sum(int(r.lengths.sum()) for r in seq) / b_s
    for precision, label in (("32", "fp32"), ("bf16", "bf16 autocast")):
        seconds, results = timed[precision]
        rate = sum(int(r.lengths.sum()) for r in results) / seconds
        ratio = [times(rate / b_rate, "(b)")] if b_rate else []
        ratio.append(f"{c_rate / rate:.1f}x (c)'s time per step")
        what = f"eval, ours: rollout_batched, {n * T} sub-envs (sync), {device.type}, {label}"
        if precision == "bf16" and device.type == "cpu" and not native:
            what += " (this CPU has no native bf16: emulated, slow)"
        rows.append(Row("3a", what, rate, "env-steps/s", "; ".join(ratio), f"{number(seconds)} s, {summary(results)}"))
    if b_rate:
        rows.append(
            Row(
                "3b",
                f"eval, sequential: rollout_sequential, batch 1, {device.type}, fp32, each target",
                b_rate,
                "env-steps/s",
                "reference",
                f"{number(b_s)} s, {summary(seq)}",
            )
        )
    if compiled is not None:
        seconds, results, compile_s, policy, calls = compiled
        rate = sum(int(r.lengths.sum()) for r in results) / seconds
        eager_s, eager = timed["32"]
        eager_rate = a_steps / eager_s
        same = all(np.array_equal(r.lengths, e.lengths) for r, e in zip(results, eager, strict=True))
        drift = max(float(np.abs(r.returns - e.returns).max()) for r, e in zip(results, eager, strict=True))
        backend = args.compile_backend + (", CUDA graphs" if device.type == "cuda" else "")
        rows.append(
            Row(
                "3d",
                f"eval, ours: 3a fp32 with the acting call compiled (eval.compile, {backend})",
                rate,
                "env-steps/s",
                times(rate / eager_rate, "3a fp32 (eager)"),
                f"{number(seconds)} s, {summary(results)}; {policy.compiled_calls} of {calls} calls compiled, "
                f"buckets {policy.buckets}; first rollout (compiling) {number(compile_s)} s; episode lengths "
                f"{'equal' if same else 'differ from'} 3a fp32's, returns within {drift:.2g}",
            )
        )
    rows.append(
        Row(
            "3c",
            "eval floor: the env alone, random actions, one env, no model",
            c_rate,
            "env-steps/s",
            "floor",
            f"{number(c_s)} s, {a_steps:,} env steps (as many as 3a fp32)",
        )
    )
    rows.append(Row("3", f"vector env creation ({n * T} sub-envs)", make_s, "s", notes="once per training run"))
    rest = timed["32"][0] - clock["model"] - clock["env"]
    shares = " / ".join(
        f"{name} {share(seconds, timed['32'][0])}"
        for name, seconds in (("model call", clock["model"]), ("env stepping", clock["env"]), ("the rest", rest))
    )
    rows.append(
        Row(
            "5",
            "eval step profile: 3a fp32, per batched step (one model call)",
            1e3 * timed["32"][0] / max(clock["calls"], 1),
            "ms/step",
            notes=f"{shares} ({clock['calls']} model calls)",
        )
    )
    return rows, source


def compiled_rollouts(
    module: Any, envs: gym.vector.VectorEnv, spec: Any, targets: list[float], args: argparse.Namespace, device: Any
) -> tuple[float, list[TargetResult], float, CompiledPolicy, int]:
    """Row 3d: one rollout that compiles every bucket it meets (the same episodes as the timed one), then the
    timed rollout; (timed seconds, its results, the compiling rollout's seconds, the policy, its calls)."""
    policy = CompiledPolicy(module, "32", spec.context_len, envs.num_envs, args.compile_backend)
    counted = CallCounter(policy)
    start = time.perf_counter()
    rollout_batched(counted, envs, spec, target_returns=targets, seed=args.seed, device=device)
    compile_s = time.perf_counter() - start
    log(f"evaluation (d) compiled: first rollout (compiling) {compile_s:.1f} s")
    counted.calls, policy.compiled_calls = 0, 0
    start = time.perf_counter()
    results = rollout_batched(counted, envs, spec, target_returns=targets, seed=args.seed, device=device)
    seconds = time.perf_counter() - start
    log(f"evaluation (d) compiled: {seconds:.1f} s")
    return seconds, results, compile_s, policy, counted.calls


class CallCounter:
    """Counts a policy's calls (row 3d: how many of them ran compiled)."""

    def __init__(self, policy: Callable) -> None:
        self.policy, self.calls = policy, 0

    def __call__(self, *inputs: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        self.calls += 1
        return self.policy(*inputs, **kwargs)


def timed_policy(policy: Callable, clock: dict[str, float], device: torch.device) -> Callable:
    def act(*inputs: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        start = time.perf_counter()
        action = policy(*inputs, **kwargs)
        synchronize(device)  # the rollout reads the action on the CPU next anyway
        clock["model"] += time.perf_counter() - start
        clock["calls"] += 1
        return action

    return act


# --- the table ----------------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="sb3/hopper/medium-v0", help="a local Minari id (never downloaded)")
    parser.add_argument("--env", default="hopper", help="the dataset's env config (conf/env/NAME.yaml)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--K", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=None, help="training steps per round (default 50; CUDA 200)")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds for rows 1 and 2 (medians)")
    parser.add_argument("--warmup", type=int, default=5, help="training steps per variant before timing")
    parser.add_argument("--sampler-batches", type=int, default=100, help="batches per round for row 2")
    parser.add_argument("--preprocess-steps", type=int, default=1_000_000, help="the dataset is tiled to this")
    parser.add_argument("--ckpt", default=None, help="evaluation model; default: newest outputs/**/last.ckpt")
    parser.add_argument("--fresh", action="store_true", help="no --ckpt: an untrained module, not the newest")
    parser.add_argument("--episodes", type=int, default=100, help="evaluation episodes per target")
    parser.add_argument("--targets", type=float, nargs="+", default=None, help="default: the env's target returns")
    parser.add_argument("--max-ep-len", type=int, default=None, help="evaluation episode limit (default: model's)")
    parser.add_argument("--skip-sequential", action="store_true", help="skip row 3b (the slowest)")
    parser.add_argument("--skip-compiled", action="store_true", help="skip row 3d (compiles for minutes on a CPU)")
    parser.add_argument("--compile-backend", default="inductor", help="row 3d's torch.compile backend")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's, one per core)")
    args = parser.parse_args(argv)
    if args.steps is None:
        args.steps = 200 if str(args.device).startswith("cuda") else 50
    return args


def main(argv: list[str] | None = None) -> list[Row]:
    args = parse_args(argv)
    args.config = bench_config(args)
    if args.threads:
        torch.set_num_threads(args.threads)  # on a shared machine, 1 avoids waiting on a busy core
    device = torch.device(args.device)
    started = time.perf_counter()
    hf_version = transformers_version()
    if hf_version is None:
        print(HF_HINT, flush=True)
    memory = MemoryPhases(device)
    memory.start()
    dm, rows = load_rows(args)
    memory.end("load")
    memory.start()
    rows += training_rows(dm, args, device)
    memory.end("training")
    memory.start()
    rows += sampler_rows(dm, args)
    memory.end("sampler")
    memory.start()
    evaluation, source = eval_rows(dm, args, device)
    rows += evaluation
    memory.end("evaluation")
    rows += memory.rows
    order = ["load", "1a", "1b", "1c", "2a", "2b", "3a", "3b", "3c", "3d", "3", "4", "5"]
    rows.sort(key=lambda r: order.index(r.key))  # stable: a key's rows keep their order
    print(header(device))
    print(f"evaluation model: {source}; wall time of the whole bench: {time.perf_counter() - started:.0f} s")
    if hf_version is None:
        print(f"({HF_HINT})")
    print(format_table(rows))
    return rows


if __name__ == "__main__":
    main()
