"""W&B, offline: the run's flattened config, its best/last summaries per target, the return histograms, and the
dashboard's workspace (built, not saved: saving needs an account)."""

from __future__ import annotations

from pathlib import Path

import pytest

from dt.train import train
from tests.helpers import TINY_ID, compose_config, tiny_train_overrides


@pytest.mark.slow
def test_offline_run_has_flat_config_and_best_last_summaries(
    tiny_minari: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wandb = pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")
    overrides = [o for o in tiny_train_overrides() if not o.startswith("logger=")]
    cfg = compose_config([*overrides, "logger=wandb", "trainer.max_epochs=2", "seed=3"], output_dir=tmp_path)
    trainer = train(cfg)
    run = wandb.run
    try:
        assert run is not None and run.settings.mode == "offline"
        config, summary = dict(run.config), dict(run.summary)
        # the sweep's grouping keys at the top level, beside Lightning's nested hyperparameters
        assert {k: config[k] for k in ("env", "dataset", "mode", "model", "K", "seed", "targets")} == {
            "env": "hopper", "dataset": TINY_ID, "mode": "normal", "model": "dt", "K": 5, "seed": 3,
            "targets": ["3600", "1800"],
        }  # fmt: skip
        rollout = next(c for c in trainer.callbacks if type(c).__name__ == "RolloutEval")
        for target, scores in rollout.scores.items():
            name = f"eval/target_{target:g}"
            for metric, key in (("normalized_mean", "normalized"), ("return_mean", "return")):
                kept = dict(summary[f"{name}/{metric}"])
                assert set(kept) == {"max", "last"}
                assert kept["last"] == pytest.approx(scores["last"][key])
                assert kept["max"] >= kept["last"]
            histogram = dict(summary[f"{name}/returns"])
            assert histogram["_type"] == "histogram"  # the last evaluation's episode returns
    finally:
        wandb.finish()
