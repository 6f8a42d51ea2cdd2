"""dt.report's aggregate statistics on hand-made results files (2 datasets x 2 models x 3 seeds), checked against
rliable called directly."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from rliable import library as rly
from rliable import metrics

from dt.report.aggregate import SEED, estimate, profile
from dt.report.tables import main, write_report
from tests.results_docs import PNG_MAGIC, evals_at, results_doc, table_row, write_doc

REPS = 200  # fewer than the report's 2000: scipy's per-call cost makes each resample ~2 ms here
DATASETS = ("sb3/hopper/medium-v0", "sb3/hopper/replay-v0")
# model -> dataset -> per seed (last at 3600, best at 3600): hand-picked so IQM, mean and P differ
SCORES = {
    "dt": {
        DATASETS[0]: [(45.0, 50.0), (52.0, 55.0), (38.0, 48.0)],
        DATASETS[1]: [(40.0, 42.0), (61.0, 61.0), (47.0, 53.0)],
    },
    "bc": {
        DATASETS[0]: [(13.0, 14.0), (47.0, 47.0), (20.0, 25.0)],
        DATASETS[1]: [(9.0, 10.0), (11.0, 12.0), (8.0, 9.0)],
    },
}


def write_runs(folder: Path, seeds: int = 3) -> None:
    """Every (model, dataset, seed): a best evaluation at step 100 and the last at step 200, both at target 3600."""
    for model, by_dataset in SCORES.items():
        for dataset, per_seed in by_dataset.items():
            for seed, (last, best) in enumerate(per_seed[:seeds]):
                document = results_doc(model, seed, evals_at(100, {"3600": best}) + evals_at(200, {"3600": last}))
                document["run"]["dataset"] = dataset
                write_doc(folder / f"{model}-{dataset.replace('/', '-')}-s{seed}", document)


def matrix(model: str, which: int) -> np.ndarray:
    """rliable's (runs x tasks) matrix: which 0 last, 1 best."""
    return np.array([[s[which] for s in SCORES[model][d]] for d in DATASETS]).T


def rliable_direct(scores, func) -> tuple[float, float, float]:
    np.random.seed(SEED)  # rliable's stratified bootstrap draws from NumPy's global generator
    points, cis = rly.get_interval_estimates({"x": scores}, func, reps=REPS)
    return float(np.squeeze(points["x"])), float(cis["x"][0].squeeze()), float(cis["x"][1].squeeze())


def cell(point: float, lo: float, hi: float, digits: int = 1) -> str:
    return f"{point:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"


def aggregate_row(table: str, first: str, second: str) -> list[str]:
    line = next(line for line in table.splitlines() if line.startswith(f"| {first} | {second} |"))
    return [c.strip() for c in line.strip("|").split("|")]


@pytest.mark.slow
def test_iqm_mean_and_improvement_match_rliable(tmp_path: Path) -> None:
    write_runs(tmp_path)
    path, tables, plots = write_report([tmp_path], reps=REPS)
    table = tables[0]
    iqm = lambda x: np.array([metrics.aggregate_iqm(x)])  # noqa: E731
    mean = lambda x: np.array([metrics.aggregate_mean(x)])  # noqa: E731
    for model in ("dt", "bc"):
        row = aggregate_row(table, f"{model} normal K=20", "3600")
        assert row[2:4] == ["2", "3"]  # tasks, runs per task
        expected = [cell(*rliable_direct(matrix(model, w), f)) for w in (0, 1) for f in (iqm, mean)]
        assert row[4:] == expected
    poi = aggregate_row(table, "dt normal K=20", "bc normal K=20")
    expected = [
        cell(*rliable_direct([matrix("dt", w), matrix("bc", w)], metrics.probability_of_improvement), digits=2)
        for w in (0, 1)
    ]
    assert poi[2:] == ["3600", "2", *expected]
    assert 0.5 < float(poi[4].split()[0]) <= 1.0  # DT beats BC in the hand-made numbers
    # The main table is still there beside it, and the profile plot is written and linked.
    assert table_row(table, "dt")[6] == "45.0 ± 5.7"
    profile_png = tmp_path / "table_performance_profile.png"
    assert profile_png in plots and profile_png.read_bytes()[:4] == PNG_MAGIC
    assert "performance_profile.png" in path.read_text()
    # Reproducible: a second report gives the same intervals.
    assert write_report([tmp_path], reps=REPS)[1][0] == table


def test_seeded_bootstrap_leaves_numpys_generator_as_it_was() -> None:
    np.random.seed(7)
    expected = np.random.rand()
    np.random.seed(7)
    first = estimate(matrix("dt", 0), lambda x: np.array([metrics.aggregate_iqm(x)]), reps=50)
    assert np.random.rand() == expected
    assert np.array_equal(
        first[1], estimate(matrix("dt", 0), lambda x: np.array([metrics.aggregate_iqm(x)]), reps=50)[1]
    )


def test_profile_is_rliables_score_distribution() -> None:
    scores = matrix("dt", 0)
    taus = np.linspace(0, 70, 15)
    np.testing.assert_allclose(profile(scores, taus), rly.score_distributions(scores, taus))


def test_fewer_than_three_seeds_gives_points_and_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    write_runs(tmp_path, seeds=2)
    main([str(tmp_path), "--reps", str(REPS)])
    out = capsys.readouterr().out
    assert "Traceback" not in out
    row = aggregate_row(out, "dt normal K=20", "3600")
    assert row[3] == "2" and "[" not in "".join(row)
    assert row[4] == f"{metrics.aggregate_iqm(matrix('dt', 0)[:2]):.1f}"
    assert re.search(r"no intervals for dt normal K=20: 2 run\(s\) per task, .* at least 3 seeds", out)
    assert "No performance profile" in out
    assert not (tmp_path / "table_performance_profile.png").exists()
