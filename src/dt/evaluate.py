"""Evaluate a checkpoint: `python -m dt.evaluate ckpt=PATH [eval.target_returns=[3600,1800]] [eval.episodes=N]`.

Settings left null in `conf/evaluate.yaml` are taken from the checkpoint's own training config, so by default
this reproduces the numbers the training run logged for the same weights.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import hydra
import torch
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from dt.callbacks import evaluate_targets
from dt.checkpointing import load_dt_checkpoint
from dt.config import CONFIG_DIR
from dt.errors import DTError, report_errors
from dt.policy import PolicyModule, policy_class
from dt.rollout import RolloutSpec, TargetResult, check_env, check_targets, format_table, make_env_fn, make_vector_env


def load_module(ckpt: str | None, device: str = "cpu") -> PolicyModule:
    """The policy (DTModule, BCModule) a dt.train checkpoint holds; DTError for a missing or foreign file."""
    if not ckpt:
        raise DTError("no checkpoint given: ckpt=outputs/<run>/checkpoints/last.ckpt")
    cls = policy_class(load_dt_checkpoint(ckpt))
    return cls.load_from_checkpoint(ckpt, map_location=device, weights_only=True)


def resolve_settings(cfg: DictConfig, module: Any) -> dict[str, Any]:
    """Each eval setting: the command line's, else the training run's `eval` node, else a default."""
    run = module.hparams.get("run_config") or {}
    trained = run.get("eval") or {}
    given = OmegaConf.to_container(cfg.get("eval") or {}, resolve=True)
    defaults = {
        "target_returns": (run.get("env") or {}).get("target_returns"),
        "episodes": 100,
        "vectorization": "sync",
        "precision": "auto",
        "max_ep_len": None,
        "env_id": None,
        "action_selection": "sample",
    }
    settings = {k: given.get(k) if given.get(k) is not None else trained.get(k, v) for k, v in defaults.items()}
    settings["target_returns"] = check_targets(settings["target_returns"])
    seed = cfg.get("seed")
    settings["seed"] = int(seed if seed is not None else run.get("seed", 0))
    return settings


def evaluate(cfg: DictConfig) -> list[TargetResult]:
    device = cfg.get("device", "auto")
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    module = load_module(cfg.get("ckpt"), device)
    s = resolve_settings(cfg, module)
    spec = RolloutSpec.from_module(module, s["max_ep_len"], s["env_id"], s["action_selection"])
    envs = make_vector_env(make_env_fn(spec), int(s["episodes"]), s["vectorization"])
    try:
        check_env(envs, spec)
        return evaluate_targets(module, envs, spec, s["target_returns"], s["seed"], str(s["precision"]))
    finally:
        envs.close()


def _write_json(results: list[TargetResult], cfg: DictConfig) -> Path | None:
    if not HydraConfig.initialized():
        return None
    path = Path(HydraConfig.get().runtime.output_dir) / "results.json"
    rows = [{"target_return": r.target_return, **r.metrics(), "returns": r.returns.tolist()} for r in results]
    path.write_text(json.dumps({"ckpt": str(cfg.get("ckpt")), "results": rows}, indent=1))
    return path


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="evaluate")
@report_errors
def main(cfg: DictConfig) -> None:
    results = evaluate(cfg)
    print(format_table(results))
    path = _write_json(results, cfg)
    if path is not None:
        print(f"results: {path}")


if __name__ == "__main__":
    main()
