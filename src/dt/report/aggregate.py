"""Aggregate statistics across an experiment's tasks (datasets), as Agarwal et al. (NeurIPS 2021) recommend, computed
with their library `rliable`: IQM and mean with 95% stratified-bootstrap intervals per configuration, performance
profiles, and the probability that DT improves on each baseline.

A configuration's scores at one target form rliable's (runs x tasks) matrix: one row per seed, one column per dataset.
Each interval is bootstrapped from the NumPy seed SEED, so a number depends only on the runs it summarizes and a rerun
of the report reproduces it. rliable 1.2 draws its resampling indices from NumPy's global generator (its
`random_state` argument reaches arch's generator, which the stratified bootstrap never uses), so that generator is
seeded for each call and restored after it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from rliable import library as rly
from rliable import metrics, plot_utils

from dt.report.plots import _figure, _save

MIN_SEEDS = 3  # a bootstrap over fewer runs per task gives intervals that mean nothing
REPS = 2000  # bootstrap resamples (rliable's own performance-profile default)
SEED = 0
CONFIDENCE = 0.95
WHICH = ("last", "best")


@dataclass(frozen=True)
class RunScore:
    """One run's score at one target: its last evaluation and its best one (as in the main table)."""

    config: str  # the row label: model, mode, K, %BC, distinct settings
    model: str  # `dt` or a baseline
    task: str  # env and dataset
    seed: int
    target: str
    last: float
    best: float


@dataclass
class Config:
    """One configuration at one target: per task, the scores of its runs in seed order."""

    model: str
    scores: dict[str, dict[str, list[float]]] = field(default_factory=lambda: {w: defaultdict(list) for w in WHICH})

    @property
    def tasks(self) -> list[str]:
        return sorted(self.scores["last"])

    def runs(self, tasks: list[str] | None = None) -> int:
        """Runs per task: the fewest any of the tasks has (rliable's matrix needs as many in every column)."""
        return min(len(self.scores["last"][t]) for t in tasks or self.tasks)

    def matrix(self, which: str, tasks: list[str] | None = None) -> np.ndarray:
        """(runs x tasks), each task's runs cut to `runs(tasks)`."""
        tasks = tasks or self.tasks
        n = self.runs(tasks)
        return np.array([self.scores[which][t][:n] for t in tasks], dtype=np.float64).T


def collect(scores: list[RunScore]) -> dict[str, dict[str, Config]]:
    """target -> configuration -> its scores."""
    configs: dict[str, dict[str, Config]] = defaultdict(dict)
    for s in sorted(scores, key=lambda s: (s.config, s.task, s.seed)):
        config = configs[s.target].setdefault(s.config, Config(s.model))
        config.scores["last"][s.task].append(s.last)
        config.scores["best"][s.task].append(s.best)
    return configs


@contextmanager
def seeded_numpy(seed: int = SEED) -> Iterator[None]:
    """NumPy's global generator seeded for the block, its earlier state restored after it."""
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        yield
    finally:
        np.random.set_state(state)


def estimate(matrices: np.ndarray | list[np.ndarray], func, reps: int = REPS) -> tuple[np.ndarray, np.ndarray]:
    """rliable's point estimate of `func` and its stratified-bootstrap interval (2 x len) for one configuration (a
    matrix) or one pair (a list of two matrices), bootstrapped from NumPy's generator seeded with SEED."""
    with seeded_numpy():
        points, intervals = rly.get_interval_estimates(
            {"x": matrices}, func, reps=reps, confidence_interval_size=CONFIDENCE
        )
    return np.atleast_1d(points["x"]), np.asarray(intervals["x"]).reshape(2, -1)


def with_interval(matrices: np.ndarray | list[np.ndarray], func, runs: int, reps: int, digits: int = 1) -> str:
    """`45.9 [40.1, 50.2]`; the point estimate alone below MIN_SEEDS runs per task."""
    if runs < MIN_SEEDS:
        args = matrices if isinstance(matrices, list) else [matrices]
        return f"{float(np.squeeze(func(*args))):.{digits}f}"
    point, ((lo,), (hi,)) = estimate(matrices, func, reps)
    return f"{point[0]:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"


def iqm(matrix: np.ndarray) -> np.ndarray:
    return np.array([metrics.aggregate_iqm(matrix)])


def mean(matrix: np.ndarray) -> np.ndarray:
    return np.array([metrics.aggregate_mean(matrix)])


def too_few(name: str, runs: int) -> str:
    return (
        f"- no intervals for {name}: {runs} run(s) per task, a stratified bootstrap needs at least {MIN_SEEDS} seeds."
    )


def aggregate_table(configs: dict[str, dict[str, Config]], targets: list[str], score: str, reps: int) -> list[str]:
    """IQM and mean across runs and tasks, per configuration and target, for the last and best evaluations."""
    lines = [
        f"Aggregate over tasks (datasets): IQM and mean of the {score} across runs and tasks, "
        f"{CONFIDENCE:.0%} stratified-bootstrap intervals (rliable, {reps} resamples, seed {SEED}).",
        "",
        "| configuration | target | tasks | runs per task | IQM (last) | mean (last) | IQM (best) | mean (best) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    short = {}
    for target in targets:
        for name, config in sorted(configs[target].items()):
            runs = config.runs()
            cells = [with_interval(config.matrix(w), f, runs, reps) for w in WHICH for f in (iqm, mean)]
            lines.append(f"| {name} | {target} | {len(config.tasks)} | {runs} | " + " | ".join(cells) + " |")
            if runs < MIN_SEEDS:
                short[name] = runs
    notes = [too_few(name, runs) for name, runs in sorted(short.items())]
    return lines + ([""] + notes if notes else [])


def improvement_table(configs: dict[str, dict[str, Config]], targets: list[str], reps: int) -> list[str]:
    """P(DT > baseline) on the tasks both ran (Mann-Whitney per task, averaged), per DT configuration, baseline and
    target; nothing when the experiment has no DT or no baseline."""
    rows, short = [], {}
    for target in targets:
        dts = {n: c for n, c in configs[target].items() if c.model == "dt"}
        baselines = {n: c for n, c in configs[target].items() if c.model != "dt"}
        for (dt_name, dt), (base_name, base) in (
            (d, b) for d in sorted(dts.items()) for b in sorted(baselines.items())
        ):
            tasks = sorted(set(dt.tasks) & set(base.tasks))
            if not tasks:
                continue
            runs = min(dt.runs(tasks), base.runs(tasks))
            pairs = [[dt.matrix(w, tasks), base.matrix(w, tasks)] for w in WHICH]
            cells = [with_interval(pair, metrics.probability_of_improvement, runs, reps, digits=2) for pair in pairs]
            if runs < MIN_SEEDS:
                short[f"{dt_name} vs {base_name}"] = runs
            rows.append(f"| {dt_name} | {base_name} | {target} | {len(tasks)} | " + " | ".join(cells) + " |")
    if not rows:
        return []
    header = [
        f"Probability of improvement P(DT > baseline) over the tasks both ran, {CONFIDENCE:.0%} stratified-bootstrap "
        "intervals (0.5: no difference).",
        "",
        "| DT | baseline | target | tasks | P(DT > baseline) (last) | (best) |",
        "|---|---|---|---|---|---|",
    ]
    notes = [too_few(name, runs) for name, runs in sorted(short.items())]
    return header + rows + ([""] + notes if notes else [])


def profile(matrix: np.ndarray, taus: np.ndarray) -> np.ndarray:
    """The fraction of runs (all tasks) scoring above each tau: rliable's score distribution, vectorized."""
    return (matrix.reshape(-1, 1) > taus.reshape(1, -1)).mean(axis=0)


def performance_profiles(
    configs: dict[str, dict[str, Config]], targets: list[str], score: str, path: Path, reps: int
) -> Path | None:
    """One panel per target: each configuration's performance profile of its last evaluation with its
    stratified-bootstrap band; None when no configuration has MIN_SEEDS runs per task."""
    panels = {t: {n: c.matrix("last") for n, c in sorted(configs[t].items()) if c.runs() >= MIN_SEEDS} for t in targets}
    panels = {t: m for t, m in panels.items() if m}
    if not panels:
        return None
    every = np.concatenate([m.reshape(-1) for by_config in panels.values() for m in by_config.values()])
    taus = np.linspace(min(every.min(), 0.0), every.max(), 51)
    fig, axes = _figure(len(panels), 6, 4)
    for ax, (target, by_config) in zip(axes, panels.items(), strict=False):
        estimates = {n: estimate(m, lambda x: profile(x, taus), reps) for n, m in by_config.items()}
        plot_utils.plot_performance_profiles(
            {n: p for n, (p, _) in estimates.items()},
            taus,
            performance_profile_cis={n: ci for n, (_, ci) in estimates.items()},
            ax=ax,
            xlabel=f"{score} (τ)",
            ylabel="fraction of runs with score > τ",
            labelsize="small",
            ticklabelsize="small",
            legend=True,
            legendsize="x-small",
        )
        ax.set_title(f"target {target}: last evaluation, {CONFIDENCE:.0%} intervals", fontsize=9)
    return _save(fig, path)


def aggregate_section(
    scores: list[RunScore], targets: list[str], score: str, plot: Path, reps: int = REPS
) -> tuple[list[str], Path | None]:
    """The markdown under an experiment's table (IQM and mean, probability of improvement) and its
    performance-profile plot (None when no configuration has MIN_SEEDS runs per task)."""
    configs = collect(scores)
    targets = [t for t in targets if t in configs]
    lines = aggregate_table(configs, targets, score, reps)
    improvement = improvement_table(configs, targets, reps)
    figure = performance_profiles(configs, targets, score, plot, reps)
    if figure is None:
        lines += ["", f"No performance profile: no configuration has {MIN_SEEDS} runs per task."]
    return lines + ([""] + improvement if improvement else []), figure
