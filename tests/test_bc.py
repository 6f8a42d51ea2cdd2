"""The MLP BC baseline: history windows, left padding at acting time, discrete actions, train -> evaluate."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from dt.checkpointing import load_dt_checkpoint
from dt.data.datamodule import DTDataModule, HistoryWindowDataset
from dt.errors import DTError
from dt.evaluate import evaluate, load_module
from dt.evaluation.callback import RolloutEval
from dt.models.bc import BCModule
from dt.models.policy_module import POLICY_CLASS_KEY
from dt.train import train
from tests.helpers import compose_config, compose_eval, hand_made, tiny_train_overrides

NET = {"embed_dim": 16, "n_layer": 2, "dropout": 0.0}
OPTIM = {"lr": 1e-3, "weight_decay": 1e-4, "warmup_steps": 1, "betas": [0.9, 0.999]}


def spec(state_dim: int = 2, act_dim: int = 3, discrete: bool = False) -> dict:
    return {
        "state_dim": state_dim,
        "act_dim": act_dim,
        "discrete": discrete,
        "state_mean": [1.0] * state_dim,
        "state_std": [2.0] * state_dim,
    }


def test_history_windows_end_at_each_step_left_padded() -> None:
    traj = hand_made()  # episodes of lengths 3, 1, 4
    dataset = HistoryWindowDataset(traj, context_len=3, max_ep_len=1000)
    batch = dataset.__getitems__([0, 2, 3, 7])
    assert batch["mask"].tolist() == [[False, False, True], [True, True, True], [False, False, True], [True] * 3]
    np.testing.assert_allclose(batch["states"][1], traj.observations[0:3])
    np.testing.assert_allclose(batch["states"][3], traj.observations[5:8])
    assert batch["states"][0, :2].abs().sum() == 0 and batch["actions"][2, :2].abs().sum() == 0
    assert batch["timesteps"][3].tolist() == [1, 2, 3]


def test_unknown_window_is_an_error() -> None:
    with pytest.raises(DTError, match="data.window=backward must be one of forward, history"):
        DTDataModule("x", window="backward")


def test_short_context_is_left_padded_after_normalization() -> None:
    torch.manual_seed(0)
    module = BCModule(NET, OPTIM, spec(), context_len=4, max_ep_len=100, return_scale=1.0).eval()
    states = torch.randn(5, 2, 2)  # two steps of history, K=4
    padded = torch.cat([torch.zeros(5, 2, 2), states], dim=1)
    mask = torch.tensor([[False, False, True, True]]).expand(5, -1)
    short = module.predict_action(torch.zeros(5, 2), states, torch.zeros(5, 2, 3), torch.zeros(5, 2).long())
    torch.testing.assert_close(short, torch.tanh(module(padded, mask)))
    long = torch.randn(5, 6, 2)  # more than K steps: only the last K are read
    torch.testing.assert_close(module(long), module(long[:, -4:]))


def test_discrete_actions_use_cross_entropy_and_argmax() -> None:
    torch.manual_seed(0)
    module = BCModule(NET, OPTIM, spec(act_dim=4, discrete=True), context_len=2, max_ep_len=100, return_scale=1.0)
    batch = {
        "states": torch.randn(8, 2, 2),
        "actions": torch.randint(0, 4, (8, 2)),
        "mask": torch.ones(8, 2, dtype=torch.bool),
    }
    outputs, actions, mask = module.outputs_and_targets(batch)
    assert outputs.shape == (8, 1, 4) and actions.shape == (8, 1)
    assert torch.isfinite(module.head.loss(outputs, actions, mask.float()))
    action = module.eval().predict_action(None, batch["states"], None, None)
    assert action.dtype == torch.long and action.shape == (8,)


@pytest.mark.parametrize("K", [1, 5])
def test_bc_trains_evaluates_and_reloads(K: int, tiny_minari: str, tmp_path: Path) -> None:
    overrides = [*tiny_train_overrides(), "model=bc", f"K={K}", "eval.episodes=2", "eval.max_ep_len=15"]
    cfg = compose_config(overrides, output_dir=tmp_path)
    assert cfg.data.window == "history" and cfg.run_name == f"hopper-tiny-normal-bc-K{K}-s0"
    trainer = train(cfg)
    assert trainer.global_step == 4 and isinstance(trainer.lightning_module, BCModule)
    logged = next(cb for cb in trainer.callbacks if isinstance(cb, RolloutEval)).results
    assert [r.target_return for r in logged] == [3600.0, 1800.0] and all(len(r.returns) == 2 for r in logged)

    ckpt = tmp_path / "checkpoints" / "last.ckpt"
    assert load_dt_checkpoint(ckpt)[POLICY_CLASS_KEY] == "dt.models.bc.BCModule"
    module = load_module(str(ckpt))
    assert isinstance(module, BCModule) and module.hparams.name == "bc" and module.hparams.context_len == K
    results = evaluate(compose_eval([f"ckpt={ckpt}", "device=cpu"]))
    for ours, theirs in zip(results, logged, strict=True):
        np.testing.assert_array_equal(ours.returns, theirs.returns)
