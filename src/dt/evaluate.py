"""Evaluate a checkpoint: `python -m dt.evaluate ckpt=PATH [eval.target_returns=[3600,1800]] [eval.episodes=N]`.

Settings left null in `conf/evaluate.yaml` are taken from the checkpoint's own training config, so by default
this reproduces the numbers the training run logged for the same weights.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import hydra
import torch
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from dt.checkpointing import load_dt_checkpoint
from dt.cli import check_group_choices
from dt.config import CONFIG_DIR
from dt.console import format_table, quiet_third_party
from dt.errors import report_errors
from dt.evaluation.policy import load_module
from dt.evaluation.settings import EvalSettings
from dt.evaluation.setup import Evaluation
from dt.evaluation.spec import RolloutSpec
from dt.evaluation.targets import Target
from dt.metrics import TargetResult
from dt.provenance import simulator_mismatch
from dt.results import FILENAME, dataset_info_from_spec, eval_entry, run_info, write_evaluation


def resolve_settings(cfg: DictConfig, module: Any) -> EvalSettings:
    """Each eval setting: the command line's, else the training run's `eval` node, else conf/train.yaml's."""
    given = {**OmegaConf.to_container(cfg.get("eval") or {}, resolve=True), "seed": cfg.get("seed")}
    return EvalSettings.for_run(module.hparams.get("run_config") or {}, given)


def evaluate(cfg: DictConfig) -> list[TargetResult]:
    """Roll out every target; inside a Hydra job also write `<output dir>/results.json` (kind "evaluate")."""
    device = cfg.get("device", "auto")
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    module = load_module(cfg.get("ckpt"), device)
    mismatch = simulator_mismatch((module.hparams.get("run_config") or {}).get("provenance"))
    if mismatch:
        print(mismatch, file=sys.stderr)
    with Evaluation(module, resolve_settings(cfg, module)) as evaluation:
        results = evaluation.run(module)
    if HydraConfig.initialized():
        _write_results(cfg, module, evaluation.spec, evaluation.targets, results)
    return results


def _write_results(
    cfg: DictConfig, module: Any, spec: RolloutSpec, targets: list[Target], results: list[TargetResult]
) -> None:
    """`<output dir>/results.json`: the evaluation at the checkpoint's step, in the training runs' schema."""
    ckpt = str(cfg.get("ckpt"))
    checkpoint = load_dt_checkpoint(ckpt)
    run_config = module.hparams.get("run_config") or {}
    experiment = cfg.get("experiment_name") or run_config.get("experiment_name")
    step, epoch = int(checkpoint.get("global_step", 0)), int(checkpoint.get("epoch", 0))
    entries = [eval_entry(r, step, epoch, t.written) for r, t in zip(results, targets, strict=True)]
    write_evaluation(
        Path(HydraConfig.get().runtime.output_dir) / FILENAME,
        run_info(run_config, ckpt=ckpt, experiment=experiment),
        dataset_info_from_spec(module.data_spec, spec.normalize),
        entries,
    )


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="evaluate")
@report_errors
def _hydra_main(cfg: DictConfig) -> None:
    results = evaluate(cfg)
    print(format_table(results))
    print(f"results: {Path(HydraConfig.get().runtime.output_dir) / FILENAME}")


def main() -> None:
    quiet_third_party()
    report_errors(check_group_choices)(sys.argv[1:])  # `evaluate_experiment=typo`: one line, before Hydra
    _hydra_main()


if __name__ == "__main__":
    main()
