"""What a W&B run gets beyond the values Lightning logs, so that a sweep's runs table and panels read at a glance.

- The config flattened to the run's settings (`dt.results.run_info`: env, dataset, mode, model, K, seed, pct_traj,
  experiment, overrides) plus its `targets`, beside Lightning's nested hyperparameters: a sweep groups and filters
  by `K`, `model`, `dataset`, `seed`, `targets` directly.
- Each target's normalized score and return defined against Lightning's step metric (`trainer/global_step`) with
  summaries `max` and `last`: the run summary holds the best and the last evaluation, not whatever came last.
- A histogram of the episode returns per target at every evaluation (`eval/target_<R>/returns`).
`python -m dt.dashboard` builds the workspace that reads these (see dt.dashboard).
"""

from __future__ import annotations

from typing import Any

from dt.metrics import TargetResult, logged_name
from dt.results import run_info

STEP = "trainer/global_step"  # Lightning's WandbLogger logs every value against it
SUMMARIZED = ("normalized_mean", "return_mean")  # best and last of these per target in the run summary
SUMMARY = "max,last"
RETURNS = "returns"  # the per-target histogram of episode returns


def flat_config(run_config: dict[str, Any], targets: list[str]) -> dict[str, Any]:
    """The run's settings as top-level config keys, and its targets as written (`3600`, `1.5max`)."""
    info = run_info(run_config, experiment=run_config.get("experiment_name"))
    return {**{k: v for k, v in info.items() if k != "ckpt"}, "targets": list(targets)}


def prepare_run(run: Any, run_config: dict[str, Any], targets: list[str], target_values: list[float]) -> None:
    """Flatten the config into `run` and define each target's summarized metrics against the training step."""
    run.config.update(flat_config(run_config, targets), allow_val_change=True)
    run.define_metric(STEP)
    for value in target_values:
        for metric in SUMMARIZED:
            run.define_metric(logged_name(value, metric), step_metric=STEP, summary=SUMMARY)


def log_return_histograms(run: Any, results: list[TargetResult], step: int) -> None:
    """One histogram of episode returns per target, at the training step the evaluation ran."""
    import wandb

    histograms = {logged_name(r.target_return, RETURNS): wandb.Histogram(r.returns.tolist()) for r in results}
    run.log({**histograms, STEP: step})
