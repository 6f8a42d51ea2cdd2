"""results.json, the contract with dt.report: what training and dt.evaluate write, and keep when resumed."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hydra.core.hydra_config import HydraConfig

from dt.evaluate import evaluate
from dt.metrics import TargetResult
from dt.results import RunResults
from dt.train import train
from tests.helpers import compose_config, compose_eval, tiny_train_overrides

RUN_KEYS = {"run_name", "experiment", "env", "env_id", "dataset", "mode", "model", "K", "seed", "pct_traj", "ckpt"}
RUN_KEYS |= {"overrides"}
DATASET_KEYS = {"num_episodes", "num_steps", "return_mean", "return_max", "normalized_mean", "normalized_max"}
EVAL_KEYS = {
    "step",
    "epoch",
    "target",
    "target_return",
    "return_mean",
    "return_std",
    "normalized_mean",
    "length_mean",
    "success_rate",
    "episodes",
    "returns",
}


@pytest.fixture(scope="module")
def trained_run(tiny_minari_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("results_run")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MINARI_DATASETS_PATH", str(tiny_minari_root))
        overrides = [*tiny_train_overrides(), "trainer.max_epochs=2", "eval.episodes=2", "eval.max_ep_len=15"]
        train(compose_config([*overrides, "eval.target_returns=[1.5max,3600]", "model=bc", "K=1"], output_dir=out))
    return out


def test_training_writes_results_json_after_every_evaluation(trained_run: Path) -> None:
    results = json.loads((trained_run / "results.json").read_text())
    assert results["schema"] == 1 and results["kind"] == "train"
    assert set(results["run"]) == RUN_KEYS and set(results["dataset"]) == DATASET_KEYS
    run = results["run"]
    assert run["run_name"] == "hopper-tiny-normal-bc-K1-s0" and run["experiment"] is None and run["ckpt"] is None
    assert (run["env"], run["env_id"], run["dataset"], run["mode"], run["model"], run["K"], run["seed"]) == (
        "hopper",
        "Hopper-v5",
        "test/hopper/tiny-v0",
        "normal",
        "bc",
        1,
        0,
    )
    dataset = results["dataset"]
    assert dataset["num_episodes"] == 12 and dataset["return_max"] >= dataset["return_mean"] > 0
    assert dataset["normalized_max"] == pytest.approx(100 * (dataset["return_max"] + 20.272305) / 3254.572305)
    evals = results["evals"]
    assert [(e["step"], e["epoch"], e["target"]) for e in evals] == [
        (4, 0, "1.5max"),
        (4, 0, "3600"),
        (8, 1, "1.5max"),
        (8, 1, "3600"),
    ]
    assert all(set(e) == EVAL_KEYS and e["episodes"] == 2 and len(e["returns"]) == 2 for e in evals)
    assert evals[0]["target_return"] == float(f"{1.5 * dataset['return_max']:.4g}")
    assert evals[0]["return_mean"] == pytest.approx(np.mean(evals[0]["returns"]))
    assert evals[0]["success_rate"] is None  # hopper defines no success_return


def test_evaluate_writes_the_same_schema(trained_run: Path, tmp_path: Path) -> None:
    ckpt = trained_run / "checkpoints" / "last.ckpt"
    cfg = compose_eval([f"ckpt={ckpt}", "device=cpu", "eval.target_returns=[max,0.5max]"])
    HydraConfig.instance().set_config(_with_output_dir(tmp_path))
    results = evaluate(cfg)
    written = json.loads((tmp_path / "results.json").read_text())
    assert written["kind"] == "evaluate" and set(written["run"]) == RUN_KEYS and written["run"]["ckpt"] == str(ckpt)
    assert written["run"]["model"] == "bc" and written["dataset"]["num_episodes"] == 12
    assert [(e["step"], e["epoch"], e["target"]) for e in written["evals"]] == [(8, 1, "max"), (8, 1, "0.5max")]
    assert [e["target_return"] for e in written["evals"]] == [r.target_return for r in results]


def _with_output_dir(output_dir: Path):
    """An evaluate config with the `hydra` node a Hydra job would have."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from omegaconf import open_dict

    from dt.config import CONFIG_DIR

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        full = compose(config_name="evaluate", return_hydra_config=True)
    with open_dict(full):
        full.hydra.runtime.output_dir = str(output_dir)
    return full


def test_results_file_keeps_earlier_entries_when_resumed(tmp_path: Path) -> None:
    path = tmp_path / "results.json"

    def result(mean: float) -> TargetResult:
        return TargetResult(3600.0, np.array([mean]), np.array([10]), None)

    first = RunResults(path, {"run_name": "r"}, {})
    first.add([result(1.0)], step=10, epoch=0, targets=["1.1max"])
    first.add([result(2.0)], step=20, epoch=1, targets=["1.1max"])
    assert [e["target"] for e in json.loads(path.read_text())["evals"]] == ["1.1max", "1.1max"]
    resumed = RunResults(path, {"run_name": "r"}, {})
    resumed.keep_previous(up_to_step=10)  # resumed from the step-10 checkpoint: step 20 is redone
    resumed.add([result(3.0)], step=20, epoch=1)
    evals = json.loads(path.read_text())["evals"]
    assert [(e["step"], e["return_mean"], e["target"]) for e in evals] == [(10, 1.0, "1.1max"), (20, 3.0, "3600")]
    other = RunResults(path, {"run_name": "another"}, {})
    other.keep_previous(up_to_step=10)
    assert other.document["evals"] == []
    assert not list(tmp_path.glob(".*.tmp")), "temporary files are renamed, never left behind"
