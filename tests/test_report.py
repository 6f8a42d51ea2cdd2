"""dt.report on hand-written results files, and the results file a tiny training run writes."""

from __future__ import annotations

from pathlib import Path

import pytest

from dt.report.paper import d4rl_name, paper_score
from dt.report.tables import fill_dataset_returns, main, write_report
from dt.results import load_results
from tests.helpers import compose_config, tiny_train_overrides
from tests.results_docs import PNG_MAGIC, evals_at, results_doc, table_row, write_doc


@pytest.fixture
def runs(tmp_path: Path) -> Path:
    """Two DT seeds (best at step 100, last at step 200) and one BC seed, in a multirun-like layout."""
    write_doc(
        tmp_path / "0-dt-s0",
        results_doc("dt", 0, evals_at(100, {"3600": 70, "1800": 40}) + evals_at(200, {"3600": 60, "1800": 44})),
    )
    write_doc(
        tmp_path / "1-dt-s1",
        results_doc("dt", 1, evals_at(100, {"3600": 50, "1800": 30}) + evals_at(200, {"3600": 64, "1800": 40})),
    )
    write_doc(tmp_path / "2-bc-s0", results_doc("bc", 0, evals_at(200, {"3600": 55, "1800": 55})))
    return tmp_path


def test_report_table_last_best_and_seeds(runs: Path) -> None:
    path, tables, plots = write_report([runs])
    assert path == runs / "report.md" and len(tables) == 1
    table = tables[0]
    header = next(line for line in table.splitlines() if line.startswith("| env"))
    assert header.index("target 3600: last") < header.index("target 1800: last")  # highest target first
    assert "- dataset `sb3/hopper/medium-v0`: 10 episodes, 1000 steps, return mean 400.0 / best 900.0" in table
    dt = table_row(table, "dt")
    # env, dataset, mode, model, K, kept | 3600 last, best | 1800 last, best | seeds | paper
    assert dt[6] == "62.0 ± 2.0"  # last: mean(60, 64), population std
    assert dt[7] == "67.0 ± 3.0"  # best: max over steps per seed (70, 64)
    assert dt[8] == "42.0 ± 2.0" and dt[9] == "42.0 ± 2.0"  # per seed max(40, 44) and max(30, 40)
    assert dt[10] == "2"
    assert dt[11].startswith("67.6")  # the paper's DT hopper-medium, D4RL
    bc = table_row(table, "bc")
    assert bc[6] == "55.0" and bc[10] == "1" and bc[11].startswith("63.9")
    assert "success" not in table
    assert "![learning_curves](table_learning_curves.png)" in path.read_text()
    for plot in plots:
        assert plot.read_bytes()[:4] == PNG_MAGIC


def test_report_groups_by_experiment_and_shows_success(tmp_path: Path) -> None:
    write_doc(tmp_path / "a", results_doc("dt", 0, evals_at(100, {"1": 10}, success=0.5), experiment="keys"))
    write_doc(tmp_path / "b", results_doc("dt", 1, evals_at(100, {"1": 20}, success=1.0), experiment="keys"))
    write_doc(tmp_path / "c", results_doc("dt", 0, evals_at(100, {"3600": 10}), experiment=None, K=5))
    other = results_doc("dt", 0, evals_at(100, {"3600": 10}) + evals_at(200, {"3600": 20}), experiment=None)
    other["run"]["dataset"] = "sb3/hopper/replay-v0"  # a second plot panel
    write_doc(tmp_path / "d", other)
    out = tmp_path / "report"
    _, tables, plots = write_report([tmp_path], out)
    assert [t.splitlines()[0] for t in tables] == ["## keys", "## runs"]
    assert "success (last)" in tables[0] and table_row(tables[0], "dt")[8] == "0.75"
    assert "success" not in tables[1]
    assert table_row(tables[1], "dt")[-1] == ""  # K=5: the paper trained K=20
    assert "82.7 (Table 2)" in tables[1]  # replay-v0 stands in for D4RL medium-replay
    assert len(plots) == 4 and all(p.parent == out for p in plots)


def test_report_cli_prints_tables_and_plots(runs: Path, capsys: pytest.CaptureFixture) -> None:
    main([str(runs)])
    printed = capsys.readouterr().out
    assert "| dt |" in printed and f"report: {runs / 'report.md'}" in printed
    assert printed.count("plot: ") == 2


def test_report_empty_folder_is_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([str(tmp_path)])
    assert exit_info.value.code == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("dt: error: no results.json under") and "\n" not in err


def test_report_skips_foreign_json(runs: Path, capsys: pytest.CaptureFixture) -> None:
    (runs / "old").mkdir()
    (runs / "old" / "results.json").write_text('{"ckpt": "x", "results": []}')
    main([str(runs)])
    captured = capsys.readouterr()
    assert "dt: warning: skipped" in captured.err and "not a dt results file" in captured.err
    assert "| dt |" in captured.out
    with pytest.raises(SystemExit):  # nothing readable left: an error
        main([str(runs / "old")])
    assert "no results.json of schema 1" in capsys.readouterr().err


def test_report_without_dataset_returns(tmp_path: Path) -> None:
    """dt.evaluate on a checkpoint that stored no dataset returns: the plots and tables leave them out."""
    document = results_doc("dt", 0, evals_at(100, {"3600": 10, "1800": 5}))
    document["kind"] = "evaluate"
    document["dataset"] = {k: None for k in document["dataset"]}
    write_doc(tmp_path / "eval", document)
    _, tables, plots = write_report([tmp_path])
    assert "| dt (evaluate) |" in tables[0] and "return mean" not in tables[0]
    assert [p.name for p in plots] == ["table_achieved_vs_target.png"]  # no learning curve without training runs
    assert plots[0].read_bytes()[:4] == PNG_MAGIC
    trained = results_doc("bc", 0, evals_at(100, {"3600": 10}))
    fill_dataset_returns([document, trained])  # a run on the same dataset lends its returns
    assert document["dataset"]["return_max"] == 900.0


def test_paper_names() -> None:
    assert d4rl_name("sb3/hopper/replay-v0") == "medium-replay"
    assert d4rl_name("sb3/hopper/medium-v0+sb3/hopper/expert-v0") == "medium-expert"
    assert d4rl_name("sb3/hopper/mixed-v0") is None
    run = {"env": "hopper", "dataset": "sb3/hopper/replay-v0", "mode": "normal", "model": "bc", "K": 20}
    assert paper_score(run)[0] == 27.6
    assert paper_score({**run, "pct_traj": 0.1}) is None


def test_runs_that_differ_in_an_override_get_rows_of_their_own(tmp_path: Path) -> None:
    """A learning-rate sweep: same model, same seeds, different `model.optim.lr`: never averaged together."""
    for lr, score in (("1e-4", 40), ("3e-4", 60)):
        for seed in (0, 1):
            document = results_doc("dt", seed, evals_at(100, {"3600": score + seed}))
            shared = ["trainer.max_epochs=2", f"seed={seed}", "hydra/launcher=joblib", "logger=csv"]
            document["run"]["overrides"] = [f"model.optim.lr={lr}", *shared]
            write_doc(tmp_path / f"lr{lr}-s{seed}", document)
    _, tables, _ = write_report([tmp_path])
    header = next(line for line in tables[0].splitlines() if line.startswith("| env"))
    assert "| settings |" in header
    rows = [line for line in tables[0].splitlines() if line.startswith("| hopper")]
    assert len(rows) == 2
    assert "`model.optim.lr=1e-4`" in rows[0] and "40.5 ± 0.5" in rows[0] and rows[0].endswith("| 2 | 67.6 (Table 2) |")
    assert "`model.optim.lr=3e-4`" in rows[1] and "60.5 ± 0.5" in rows[1]
    assert "max_epochs" not in tables[0]  # what every run shares is not a difference


def test_training_writes_results_file_the_report_reads(tiny_minari: str, tmp_path: Path) -> None:
    from dt.train import train

    run_dir = tmp_path / "run"
    overrides = tiny_train_overrides(tiny_minari) + ["trainer.max_epochs=2", "eval.target_returns=[50,20]"]
    train(compose_config(overrides, run_dir))
    document = load_results(run_dir / "results.json")
    assert document["kind"] == "train" and document["run"]["dataset"] == tiny_minari
    assert document["run"]["model"] == "dt" and document["run"]["K"] == 5
    assert "trainer.max_epochs=2" in document["run"]["overrides"]  # the command's overrides, for dt.report
    assert document["dataset"]["num_episodes"] == 12 and document["dataset"]["normalized_mean"] is not None
    assert [(e["step"], e["target"]) for e in document["evals"]] == [(4, "50"), (4, "20"), (8, "50"), (8, "20")]
    assert all(len(e["returns"]) == e["episodes"] == 2 and e["success_rate"] is None for e in document["evals"])
    _, tables, _ = write_report([tmp_path])
    assert "target 50: last" in tables[0]
