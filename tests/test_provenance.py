"""Runs name what produced them: dt's version and commit, and the library versions that move results."""

from __future__ import annotations

import json
from pathlib import Path

import gymnasium
import torch
import yaml

from dt.provenance import PACKAGES, provenance, simulator_mismatch
from dt.train import train
from tests.helpers import compose_config, tiny_train_overrides


def test_provenance_names_versions_and_commit() -> None:
    info = provenance()
    assert info["torch"] == torch.__version__ and info["gymnasium"] == gymnasium.__version__
    assert set(PACKAGES) | {"dt", "python", "git_commit", "git_dirty", "torch_threads"} == set(info)
    assert info["torch_threads"] == torch.get_num_threads()
    # In a checkout: the commit and whether tracked files differ from it; outside one (a wheel): None.
    assert (info["git_commit"] is None and info["git_dirty"] is None) or len(info["git_commit"]) == 40


def test_simulator_mismatch_is_one_line() -> None:
    now = {"gymnasium": "1.4.0", "mujoco": "4.0.0", "torch": "2.13.0"}
    assert simulator_mismatch({**now, "torch": "2.3.0"}, now) is None  # only the simulator changes returns
    assert simulator_mismatch(None, now) is None  # an old checkpoint without provenance
    message = simulator_mismatch({**now, "mujoco": "3.2.0"}, now)
    assert message == (
        "dt: warning: checkpoint trained with mujoco 3.2.0 (now 4.0.0): returns may differ from the training run's"
    )
    assert "\n" not in message


def test_checkpoint_loggers_and_run_folder_record_provenance(tiny_minari: str, tmp_path: Path) -> None:
    train(compose_config(tiny_train_overrides(), output_dir=tmp_path))
    expected = provenance()
    assert json.loads((tmp_path / "provenance.json").read_text()) == expected
    checkpoint = torch.load(tmp_path / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert checkpoint["hyper_parameters"]["run_config"]["provenance"] == expected
    logged = yaml.safe_load((tmp_path / "csv" / "hparams.yaml").read_text())  # what every logger receives
    assert logged["run_config"]["provenance"] == expected
