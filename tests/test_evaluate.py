"""The rollout callback inside training and the `dt.evaluate` command on its checkpoints."""

from __future__ import annotations

import csv
import math
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch

from dt.errors import DTError
from dt.evaluate import evaluate
from dt.evaluation.callback import RolloutEval
from dt.evaluation.settings import EvalSettings
from dt.train import train
from tests.helpers import REPO_ROOT, TINY_ID, compose_config, compose_eval, tiny_train_overrides

EVAL_OVERRIDES = ["eval.episodes=3", "eval.max_ep_len=30"]  # seconds, not minutes, on CPU
METRICS = ("return_mean", "return_std", "normalized_mean", "length_mean")


def rollout_callback(trainer) -> RolloutEval:
    return next(cb for cb in trainer.callbacks if isinstance(cb, RolloutEval))


@pytest.fixture(scope="module")
def trained(tiny_minari_root: Path, tmp_path_factory: pytest.TempPathFactory):
    """A 2-epoch tiny run with the default callbacks and a CSV logger: (trainer, output folder)."""
    out = tmp_path_factory.mktemp("run")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MINARI_DATASETS_PATH", str(tiny_minari_root))
        cfg = compose_config([*tiny_train_overrides(TINY_ID), *EVAL_OVERRIDES, "trainer.max_epochs=2"], output_dir=out)
        return train(cfg), out


def test_callback_logs_every_target_in_fast_dev_run(tiny_minari: str, tmp_path: Path) -> None:
    cfg = compose_config([*tiny_train_overrides(), *EVAL_OVERRIDES, "+trainer.fast_dev_run=true"], output_dir=tmp_path)
    trainer = train(cfg)
    names = {f"eval/target_{r}/{m}" for r in (3600, 1800) for m in METRICS}
    assert names <= set(trainer.callback_metrics)
    results = rollout_callback(trainer).results
    assert [r.target_return for r in results] == [3600.0, 1800.0]
    assert all(len(r.returns) == 3 and r.lengths.max() <= 30 for r in results)
    assert rollout_callback(trainer).envs is None  # closed at teardown


def test_every_epoch_is_logged_to_the_loggers(trained) -> None:
    _, out = trained
    with open(out / "csv" / "metrics.csv") as f:
        rows = [row for row in csv.DictReader(f) if row.get("eval/target_3600/return_mean")]
    assert [int(row["epoch"]) for row in rows] == [0, 1]
    assert all(math.isfinite(float(row[f"eval/target_1800/{m}"])) for row in rows for m in METRICS)


def test_evaluate_reproduces_the_last_epoch(trained) -> None:
    trainer, out = trained
    logged = rollout_callback(trainer).results
    results = evaluate(compose_eval([f"ckpt={out / 'checkpoints' / 'last.ckpt'}", "device=cpu"]))
    assert [r.target_return for r in results] == [r.target_return for r in logged]
    for ours, theirs in zip(results, logged, strict=True):
        np.testing.assert_array_equal(ours.returns, theirs.returns)
        np.testing.assert_array_equal(ours.lengths, theirs.lengths)
    other = evaluate(compose_eval([f"ckpt={out / 'checkpoints' / 'last.ckpt'}", "eval.target_returns=[500]", "seed=1"]))
    assert len(other) == 1 and other[0].target_return == 500.0 and len(other[0].returns) == 3


@pytest.mark.parametrize(
    "overrides,match",
    [
        (["eval.target_returns=[]"], "non-empty"),
        (["eval.target_returns=[3600,nan]"], "finite"),
        (["ckpt=/nonexistent/last.ckpt"], "does not exist"),
        (["ckpt=NOT_DT"], "not a dt checkpoint"),
        (["ckpt=GARBAGE"], "not a readable"),
    ],
)
def test_evaluate_errors(trained, tmp_path: Path, overrides: list[str], match: str) -> None:
    torch.save({"state_dict": {}}, tmp_path / "not_dt.ckpt")
    (tmp_path / "garbage.ckpt").write_text("not a checkpoint")
    last = str(trained[1] / "checkpoints" / "last.ckpt")
    aliases = {"ckpt=NOT_DT": f"ckpt={tmp_path / 'not_dt.ckpt'}", "ckpt=GARBAGE": f"ckpt={tmp_path / 'garbage.ckpt'}"}
    overrides = [f"ckpt={last}", *(aliases.get(o, o) for o in overrides)]
    with pytest.raises(DTError, match=match):
        evaluate(compose_eval(overrides))


@pytest.mark.slow
def test_cli_multirun_and_one_line_errors(trained, tmp_path: Path) -> None:
    ckpt = trained[1] / "checkpoints" / "last.ckpt"
    command = [sys.executable, "-m", "dt.evaluate"]
    ok = subprocess.run(
        [
            *command,
            "-m",
            f"ckpt={ckpt}",
            "eval.target_returns=3600,1800",
            "eval.episodes=2",
            f"hydra.sweep.dir={tmp_path}",
        ],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
    )
    assert ok.returncode == 0, ok.stderr
    assert "return mean" in ok.stdout and " 3600 " in ok.stdout and " 1800 " in ok.stdout
    assert len(list(tmp_path.glob("*/results.json"))) == 2
    bad = subprocess.run([*command, "ckpt=/nonexistent.ckpt"], capture_output=True, text=True, cwd=tmp_path)
    assert bad.returncode == 1 and bad.stderr.strip().count("\n") == 0
    assert bad.stderr.startswith("dt: error: checkpoint /nonexistent.ckpt does not exist")


def test_evaluate_warns_when_the_simulator_version_differs(trained, tmp_path: Path, capsys) -> None:
    checkpoint = torch.load(trained[1] / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    checkpoint["hyper_parameters"]["run_config"]["provenance"]["gymnasium"] = "0.29.1"
    torch.save(checkpoint, tmp_path / "old_gym.ckpt")
    evaluate(compose_eval([f"ckpt={tmp_path / 'old_gym.ckpt'}", "eval.episodes=1", "eval.target_returns=[100]"]))
    warnings = [line for line in capsys.readouterr().err.splitlines() if "warning" in line]
    assert warnings == [  # beside the evaluation progress lines
        f"dt: warning: checkpoint trained with gymnasium 0.29.1 (now {gym.__version__}): "
        "returns may differ from the training run's"
    ]
    evaluate(compose_eval([f"ckpt={trained[1] / 'checkpoints' / 'last.ckpt'}", "eval.episodes=1"]))
    assert "warning" not in capsys.readouterr().err


def test_settings_come_from_the_command_line_else_the_run_else_conf() -> None:
    """No evaluation default in code: what the command line leaves unset comes from the checkpoint's run, and
    what an older run config lacks from conf/train.yaml (its `${env.*}` read from the run's env)."""
    run = {"env": {"target_returns": [10, 5], "max_ep_len": 50}, "eval": {"episodes": 7, "env_id": None}, "seed": 3}
    settings = EvalSettings.for_run(run, {"episodes": 2, "action_selection": None, "seed": None})
    assert (settings.episodes, settings.env_id, settings.seed) == (2, None, 3)  # given, then the run's
    conf = compose_config([]).eval
    assert (settings.vectorization, settings.precision, settings.action_selection) == (
        conf.vectorization,
        conf.precision,
        conf.action_selection,
    )
    assert settings.target_returns == [10, 5] and settings.max_ep_len == 50
    bare = EvalSettings.for_run({})  # a hand-made module: conf's seed; no env, so no targets
    assert bare.seed == compose_config([]).seed and bare.target_returns is None
