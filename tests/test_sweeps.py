"""Experiment sweeps: each config expands to distinct, resolvable runs; joblib and submitit launchers run them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override

from dt.cli import check_group_choices
from dt.config import CONFIG_DIR
from dt.data.spec import DataSpec
from dt.errors import DTError
from dt.evaluation.targets import resolve_targets
from tests.helpers import compose_config, tiny_train_overrides

EXPERIMENTS = {"gym_table": 24, "delayed": 12, "context": 12, "pct_bc": 24}


def sweep_jobs(config_name: str, overrides: list[str]) -> list[list[str]]:
    """The override lists Hydra's basic sweeper makes from the config's `hydra.sweeper.params`."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose(config_name=config_name, overrides=overrides, return_hydra_config=True)
    params = [f"{key}={value}" for key, value in cfg.hydra.sweeper.params.items()]
    parsed: list[Override] = OverridesParser.create().parse_overrides(params)
    lists = [[f"{o.get_key_element()}={v}" for v in o.sweep_string_iterator()] for o in parsed]
    jobs: list[list[str]] = [[]]
    for choices in lists:  # the cartesian product, as BasicSweeper builds it
        jobs = [job + [choice] for job in jobs for choice in choices]
    return jobs


@pytest.mark.parametrize("name,num_runs", EXPERIMENTS.items())
def test_experiment_sweeps_expand_to_distinct_runs(name: str, num_runs: int, tmp_path: Path) -> None:
    jobs = sweep_jobs("train", [f"experiment={name}"])
    assert len(jobs) == num_runs and all(any(o.startswith("seed=") for o in job) for job in jobs)
    names = set()
    for job in (job for job in jobs if "seed=0" in job):  # the seed is in every run name: compose one seed's runs
        cfg = compose_config([f"experiment={name}", *job], output_dir=tmp_path)
        assert cfg.experiment_name == name
        assert cfg.logger.wandb.group == name  # single run here; in a multirun name + sweep folder
        names.add(cfg.run_name)
    assert len(names) == num_runs // 3, "two runs of one sweep would share a folder name"
    if name == "gym_table":
        assert {"hopper-medium+expert-normal-dt-K20-s0", "hopper-replay-normal-bc-K20-s0"} <= names
    if name == "pct_bc":
        assert "hopper-medium-normal-bc-pct0.25-K20-s0" in names


def test_target_sweep_spans_zero_to_one_and_a_half_max() -> None:
    jobs = sweep_jobs("evaluate", ["evaluate_experiment=target_sweep"])
    data = DataSpec((11,), 3, False, [], [], return_max=1000.0)
    targets = [resolve_targets(job[0].split("=", 1)[1], data)[0] for job in jobs]
    assert [t.value for t in targets] == [100.0 * i for i in range(16)]
    assert targets[15].written == "1.5max"


def test_group_checks_pass_hydra_launchers_and_reject_unknown_experiments() -> None:
    check_group_choices(["hydra/launcher=joblib", "hydra/launcher=submitit_slurm", "experiment=gym_table"])
    with pytest.raises(DTError, match="unknown experiment 'gym_tabel': choose one of .*gym_table"):
        check_group_choices(["experiment=gym_tabel"])
    with pytest.raises(DTError, match="unknown evaluate_experiment 'target_swep': choose one of target_sweep"):
        check_group_choices(["-m", "evaluate_experiment=target_swep"])  # dt.evaluate runs the same check


SWEEP_OVERRIDES = [
    *(o for o in tiny_train_overrides() if not o.startswith(("trainer.limit_train_batches", "eval."))),
    "trainer.limit_train_batches=2",
    "eval.episodes=1",
    "eval.max_ep_len=5",
    "seed=0,1",
]


@pytest.mark.slow  # three processes start (the sweep and its two runs): about 30 s on 2 idle cores
@pytest.mark.parametrize(
    "launcher,extra",
    [("joblib", ["hydra.launcher.n_jobs=2"]), ("submitit_local", ["hydra.launcher.timeout_min=2"])],
)
def test_launcher_runs_a_two_run_sweep(launcher: str, extra: list[str], tiny_minari_root: Path, tmp_path: Path) -> None:
    pytest.importorskip(f"hydra_plugins.hydra_{launcher.split('_')[0]}_launcher")
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}  # joblib then sets cores // n_jobs
    result = subprocess.run(
        [sys.executable, "-m", "dt.train", "-m", *SWEEP_OVERRIDES, f"hydra/launcher={launcher}", *extra]
        + [f"hydra.sweep.dir={tmp_path}"],
        capture_output=True,
        text=True,
        timeout=300,
        env={**env, "MINARI_DATASETS_PATH": str(tiny_minari_root)},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    files = sorted(tmp_path.glob("*/results.json"))
    assert [f.parent.name for f in files] == ["0-hopper-tiny-normal-dt-K5-s0", "1-hopper-tiny-normal-dt-K5-s1"]
    for seed, path in enumerate(files):
        results = json.loads(path.read_text())
        assert results["run"]["seed"] == seed and results["evals"][0]["step"] == 2
        if launcher == "joblib":  # one thread-limited process per run: no oversubscription
            from joblib import cpu_count

            threads = max(cpu_count() // 2, 1)
            assert json.loads((path.parent / "provenance.json").read_text())["torch_threads"] == threads


def test_wandb_groups_a_multirun_by_experiment_and_sweep_folder(tmp_path: Path) -> None:
    sweep = ["hydra.mode=MULTIRUN", f"hydra.sweep.dir={tmp_path / 'sweep-a'}"]
    cfg = compose_config(["experiment=context", "K=1", *sweep], output_dir=tmp_path)
    assert cfg.logger.wandb.group == "context-sweep-a"
    assert list(cfg.logger.wandb.tags) == ["hopper", "medium", "normal", "dt", "K1", "seed0"]
    assert compose_config(sweep, output_dir=tmp_path).logger.wandb.group == "sweep-a"
    assert compose_config([], output_dir=tmp_path).logger.wandb.group == "hopper-medium"  # a single run
