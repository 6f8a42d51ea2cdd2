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
        # The dashboard reads only what such a run logs.
        pytest.importorskip("wandb_workspaces")
        from dt.dashboard import build_workspace

        workspace = build_workspace("someone", "dt", list(rollout.scores))
        assert [s.name for s in workspace.sections] == [
            "normalized score vs step, by target", "achieved vs target", "best score by K and target"
        ]  # fmt: skip
        history, summary_keys, config_keys = dashboard_keys(workspace)
        assert history - {"trainer/global_step"} <= set(summary)  # every plotted series was logged
        for key in summary_keys:
            metric, _, aggregate = key.rpartition(".") if key.endswith((".max", ".last")) else (key, "", "")
            assert metric in summary and (not aggregate or aggregate in dict(summary[metric])), key
        assert config_keys <= set(config)
    finally:
        wandb.finish()


def dashboard_keys(workspace) -> tuple[set[str], set[str], set[str]]:
    """The history metrics, summary keys and config keys the workspace's panels and grouping read."""
    import wandb_workspaces.reports.v2 as wr

    history, summary, config = set(), set(), set()

    def add(metric) -> None:
        if isinstance(metric, wr.SummaryMetric):
            summary.add(metric.name)
        elif isinstance(metric, wr.Config):
            config.add(metric.name)
        else:
            history.add(metric if isinstance(metric, str) else metric.name)

    for section in workspace.sections:
        for panel in section.panels:
            if isinstance(panel, wr.LinePlot):
                for metric in [panel.x, *panel.y]:
                    add(metric)
            elif isinstance(panel, wr.BarPlot):
                for metric in [*panel.metrics, *([panel.groupby] if panel.groupby else [])]:
                    add(metric)
            elif isinstance(panel, wr.ParallelCoordinatesPlot):
                for column in panel.columns:
                    add(column.metric)
            elif isinstance(panel, wr.MediaBrowser):
                summary.update(panel.media_keys)
    config.update(key.name for key in workspace.runset_settings.groupby)
    return history, summary, config


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["project=dt"], "missing entity=..."),
        (["entity=me", "project=dt", "targets=high"], "targets=high: give target returns as numbers"),
        (["entity=me", "project=dt", "colour=red"], "'colour=red' is not one of entity=..."),
    ],
)
def test_dashboard_bad_arguments_are_one_line_errors(argv: list[str], message: str, capsys) -> None:
    from dt.dashboard import main

    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    err = capsys.readouterr().err
    assert exit_info.value.code == 1 and message in err and len(err.strip().splitlines()) == 1


def test_dashboard_workspace_is_built_per_target() -> None:
    pytest.importorskip("wandb_workspaces")
    from dt.dashboard import build_workspace

    workspace = build_workspace("someone", "dt", [3600.0, 0.5])
    curves = workspace.sections[0].panels
    assert [p.title for p in curves] == [
        "target 3600: normalized score vs step",
        "target 0.5: normalized score vs step",
    ]
    assert [p.y for p in curves] == [["eval/target_3600/normalized_mean"], ["eval/target_0.5/normalized_mean"]]
    assert all(p.x == "trainer/global_step" for p in curves)
    assert [c.name for c in workspace.runset_settings.groupby] == ["dataset", "model", "K"]
