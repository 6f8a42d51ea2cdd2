"""Checkpoints written before the package layout (class paths dt.module.DTModule, dt.bc.BCModule) keep working.

The fixtures were written by `python -m dt.train` at commit 3a65fa7 on the tiny dataset of tests/helpers.py
(`tiny_train_overrides()`, `trainer.max_epochs=2 trainer.limit_train_batches=2`): the DT's epoch-0 checkpoint and
the BC run's last one.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from dt.checkpointing import load_dt_checkpoint
from dt.evaluate import evaluate, load_module
from dt.models.bc import BCModule
from dt.models.dt_module import DTModule
from dt.models.policy_module import POLICY_CLASS_KEY
from dt.train import train
from tests.helpers import compose_config, tiny_train_overrides

FIXTURES = Path(__file__).parent / "fixtures"
OLD_DT, OLD_BC = FIXTURES / "pre_house_plan_dt.ckpt", FIXTURES / "pre_house_plan_bc.ckpt"


@pytest.mark.parametrize(
    ("path", "old_class", "cls"), [(OLD_DT, "dt.module.DTModule", DTModule), (OLD_BC, "dt.bc.BCModule", BCModule)]
)
def test_old_checkpoint_loads_as_the_moved_class(path: Path, old_class: str, cls: type) -> None:
    assert load_dt_checkpoint(path)[POLICY_CLASS_KEY] == old_class  # written before the move
    module = load_module(str(path))
    assert type(module) is cls
    states = torch.zeros(2, 3, 11)
    action = module.predict_action(torch.zeros(2, 3), states, torch.zeros(2, 3, 3), torch.zeros(2, 3, dtype=torch.long))
    assert action.shape == (2, 3) and torch.isfinite(action).all()


def test_old_checkpoint_evaluates(tiny_minari: str) -> None:
    cfg = compose_config([], output_dir=None)
    results = evaluate(cfg.__class__({"ckpt": str(OLD_DT), "eval": {"episodes": 2, "max_ep_len": 15}, "device": "cpu"}))
    assert [r.target_return for r in results] == [3600.0, 1800.0]
    assert all(len(r.returns) == 2 and (r.lengths <= 15).all() for r in results)


def test_old_checkpoint_resumes_and_new_checkpoints_name_the_new_class(tiny_minari: str, tmp_path: Path) -> None:
    overrides = [
        *tiny_train_overrides(),
        "trainer.max_epochs=2",
        "trainer.limit_train_batches=2",
        f"ckpt_path={OLD_DT}",
    ]
    trainer = train(compose_config(overrides, output_dir=tmp_path))
    assert trainer.global_step == 4  # resumed after epoch 0's 2 steps, trained epoch 1
    new = load_dt_checkpoint(tmp_path / "checkpoints" / "last.ckpt")
    assert new[POLICY_CLASS_KEY] == "dt.models.dt_module.DTModule"
