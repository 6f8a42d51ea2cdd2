"""One metric vocabulary (`dt.metrics`): a metric added there reaches the loggers, results.json, the console
table, the one-line summary and the W&B table, with no other edit."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import numpy as np
import pytest

from dt import metrics
from dt.console import format_table, summary
from dt.evaluation.callback import wandb_table
from dt.metrics import Metric, TargetResult
from dt.train import train
from tests.helpers import compose_config, read_metrics, tiny_train_overrides

BEST = Metric("return_best", lambda r: float(r.returns.max()), "best", ".3f", lambda v: f", best {v:.3f}")


@pytest.fixture
def with_best(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(metrics, "METRICS", (*metrics.METRICS, BEST))


def test_a_result_names_its_metrics() -> None:
    result = TargetResult(3600.0, np.array([1.0, 3.0]), np.array([10, 20]), None)
    assert result.values() == {
        "return_mean": 2.0,
        "return_std": 1.0,
        "normalized_mean": None,  # no reference scores
        "length_mean": 15.0,
        "success_rate": None,  # the env defines no success
    }
    assert result.metrics() == {"return_mean": 2.0, "return_std": 1.0, "length_mean": 15.0}
    assert result.logged("eval") == {f"eval/target_3600/{k}": v for k, v in result.metrics().items()}
    assert list(TargetResult(0.5, result.returns, result.lengths, None).logged("x")) == [
        "x/target_0.5/return_mean",
        "x/target_0.5/return_std",
        "x/target_0.5/length_mean",
    ]


def test_the_table_and_summary_show_what_is_defined() -> None:
    with_success = TargetResult(1.0, np.array([0.0, 1.0]), np.array([5, 7]), None, success_return=1.0)
    table = format_table([with_success, TargetResult(2.0, np.array([0.0]), np.array([3]), None)])
    assert "normalized" not in table and "success" in table and "50.0%" in table and "n/a" in table
    assert summary([with_success]) == "target 1: return 0.50 ± 0.50, length 6, success 50%"


def test_a_new_metric_reaches_every_reader(
    with_best: None, tiny_minari: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    result = TargetResult(3600.0, np.array([1.0, 3.0]), np.array([10, 20]), None)
    assert result.logged("eval")["eval/target_3600/return_best"] == 3.0
    assert "best" in format_table([result]).splitlines()[0] and "3.000" in format_table([result])
    assert summary([result]).endswith(", best 3.000")
    columns, rows = wandb_table([result])
    assert rows[0][columns.index("return_best")] == 3.0

    caplog.set_level(logging.INFO)
    train(compose_config(tiny_train_overrides(), output_dir=tmp_path))  # one epoch, two targets
    logged = [row for row in read_metrics(tmp_path) if row.get("eval/target_3600/return_best")]
    assert len(logged) == 1 and math.isfinite(float(logged[0]["eval/target_1800/return_best"]))
    evals = json.loads((tmp_path / "results.json").read_text())["evals"]
    assert all(e["return_best"] == max(e["returns"]) for e in evals) and len(evals) == 2
    printed = caplog.text
    assert "epoch 0 eval: target 3600: return" in printed and ", best " in printed  # the one-line summary
    header = next(line for line in printed.splitlines() if line.strip().startswith("target"))
    assert header.split()[-2:] == ["best", "episodes"]  # the table at the end of fit
