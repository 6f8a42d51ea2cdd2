"""Data: returns-to-go, delayed rewards, %BC filtering, windows with right padding and mask, several ids as one."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from dt.data.datamodule import (
    DTDataModule,
    UniformStepSampler,
    WindowDataset,
    delay_rewards,
    returns_to_go,
    top_trajectories,
)
from dt.data.sources import concat, from_episode_list, load_d4rl_hdf5
from dt.data.spec import DataSpec
from dt.errors import DTError
from tests.helpers import compose_config, hand_made, make_minari_dataset


def test_returns_to_go_per_episode() -> None:
    traj = hand_made()
    expected = [6, 5, 3, 10, 2, 1.5, 1, 0.5]
    np.testing.assert_allclose(returns_to_go(traj.rewards, traj.starts), expected)


def test_delayed_moves_return_to_last_step() -> None:
    delayed = delay_rewards(hand_made())
    np.testing.assert_allclose(delayed.rewards, [0, 0, 6, 10, 0, 0, 0, 2])
    # with delayed rewards every step's return-to-go is the episode's whole return
    np.testing.assert_allclose(returns_to_go(delayed.rewards, delayed.starts), [6, 6, 6, 10, 2, 2, 2, 2])


def test_pct_traj_keeps_best_episodes_within_budget() -> None:
    traj = hand_made()  # returns 6, 10, 2; lengths 3, 1, 4 (8 steps)
    assert top_trajectories(traj, 1.0) is traj
    kept = top_trajectories(traj, 0.5)  # budget 4 steps: episode 1 (1 step) then episode 0 (3 steps)
    np.testing.assert_allclose(kept.returns, [10, 6])
    np.testing.assert_array_equal(kept.starts, [0, 1, 4])
    np.testing.assert_allclose(kept.observations[1], traj.observations[0])
    assert top_trajectories(traj, 0.01).num_episodes == 1  # the best episode is always kept
    with pytest.raises(DTError, match="pct_traj"):
        top_trajectories(traj, 1.5)


def test_window_right_padding_and_mask() -> None:
    traj = hand_made()
    dataset = WindowDataset(traj, context_len=3, max_ep_len=1000)
    batch = dataset.__getitems__([1, 3, 4])
    # start 1: steps 1, 2 of episode 0, then one padded slot
    assert batch["mask"][0].tolist() == [True, True, False]
    np.testing.assert_allclose(batch["states"][0, :2], traj.observations[1:3])
    assert batch["states"][0, 2].abs().sum() == 0 and batch["actions"][0, 2].abs().sum() == 0
    np.testing.assert_allclose(batch["returns_to_go"][0], [5, 3, 0])
    assert batch["timesteps"][0].tolist() == [1, 2, 0]
    # start 3: the one-step episode, shorter than K
    assert batch["mask"][1].tolist() == [True, False, False]
    np.testing.assert_allclose(batch["returns_to_go"][1], [10, 0, 0])
    # start 4: a full window inside the last episode
    assert batch["mask"][2].all() and batch["timesteps"][2].tolist() == [0, 1, 2]
    np.testing.assert_allclose(batch["actions"][2], np.full((3, 1), 3.0))


def test_timesteps_clipped_to_max_ep_len() -> None:
    dataset = WindowDataset(hand_made(), context_len=4, max_ep_len=2)
    assert dataset.__getitems__([4])["timesteps"].max().item() == 1


def test_sampler_is_seeded_and_covers_all_steps() -> None:
    first = list(UniformStepSampler(8, 4000, seed=3))
    assert first == list(UniformStepSampler(8, 4000, seed=3))
    sampler = UniformStepSampler(8, 4000, seed=3)
    sampler.set_epoch(1)
    assert list(sampler) != first
    counts = np.bincount(first, minlength=8)
    # uniform over steps = episodes weighted by length, uniform start inside
    assert counts.min() > 400 and counts.max() < 600


def test_resumed_sampler_continues_the_epochs_stream() -> None:
    sampler = UniformStepSampler(50, 40, seed=3)
    sampler.set_epoch(1)
    epoch_one = list(sampler)
    resumed = UniformStepSampler(50, 40, seed=3, epoch=1, skip=16)
    assert list(resumed) == epoch_one[16:]
    assert list(resumed) == epoch_one  # the skip applies to the resumed epoch only


def write_d4rl(path, num_steps: int = 30) -> dict:
    rng = np.random.default_rng(0)
    data = {
        "observations": rng.normal(size=(num_steps, 4)),
        "actions": rng.uniform(-1, 1, size=(num_steps, 2)),
        "rewards": rng.normal(size=num_steps),
        "terminals": np.zeros(num_steps, dtype=bool),
        "timeouts": np.zeros(num_steps, dtype=bool),
    }
    data["terminals"][9] = True
    data["timeouts"][19] = True  # steps 20..29 form an unfinished last episode
    with h5py.File(path, "w") as f:
        for key, value in data.items():
            f[key] = value
    return data


def test_d4rl_hdf5_splits_on_terminals_and_timeouts(tmp_path) -> None:
    data = write_d4rl(tmp_path / "d.hdf5")
    traj = load_d4rl_hdf5(tmp_path / "d.hdf5")
    np.testing.assert_array_equal(traj.starts, [0, 10, 20, 30])
    np.testing.assert_allclose(traj.observations, data["observations"].astype(np.float32))
    assert traj.actions.shape == (30, 2) and traj.observations.dtype == np.float32


def test_datamodule_batches_from_hdf5(tmp_path) -> None:
    write_d4rl(tmp_path / "d.hdf5")
    dm = DTDataModule(None, dataset_path=str(tmp_path / "d.hdf5"), context_len=4, batch_size=5, batches_per_epoch=3)
    dm.setup("fit")
    spec = dm.spec
    assert spec.state_dim == 4 and spec.act_dim == 2 and not spec.discrete
    batches = list(dm.train_dataloader())
    assert len(batches) == 3
    assert batches[0]["states"].shape == (5, 4, 4) and batches[0]["mask"].dtype == torch.bool


def test_datamodule_on_minari(tiny_minari: str) -> None:
    dm = DTDataModule(tiny_minari, download=False, context_len=5, batch_size=4, batches_per_epoch=2, delayed=True)
    dm.setup("fit")
    assert dm.spec.env_id == "Hopper-v5" and dm.spec.state_dim == 11 and dm.spec.ref_max_score == 3234.3
    assert dm.trajectories.num_steps == sum(dm.trajectories.lengths)
    # Minari stores T + 1 observations per episode; we keep T, aligned with actions
    assert len(dm.trajectories.observations) == len(dm.trajectories.actions)


def test_one_million_steps_through_the_vectorized_path() -> None:
    """~1M steps, 2000 episodes: preprocessing and a gather work at scale (timing lives in `make bench`)."""
    rng = np.random.default_rng(0)
    lengths = rng.integers(10, 1000, size=2000)  # ~1M steps in all
    rewards = [rng.normal(size=n) for n in lengths]
    traj = from_episode_list([np.zeros((n, 11)) for n in lengths], [np.zeros((n, 3)) for n in lengths], rewards)
    dataset = WindowDataset(delay_rewards(traj), context_len=20, max_ep_len=1000)
    assert len(dataset) == lengths.sum() > 900_000
    batch = dataset.__getitems__(list(range(0, len(dataset), len(dataset) // 64))[:64])
    assert batch["states"].shape == (64, 20, 11)
    np.testing.assert_allclose(dataset.returns_to_go[traj.starts[1:] - 1].numpy(), traj.returns, rtol=1e-5)


def test_concat_offsets_episodes_and_checks_envs() -> None:
    a, b = hand_made(), hand_made()
    both = concat([a, b], ["a", "b"])
    assert both.num_episodes == 6 and both.num_steps == 16
    np.testing.assert_array_equal(both.starts, [0, 3, 4, 8, 11, 12, 16])
    np.testing.assert_allclose(both.returns, np.concatenate([a.returns, b.returns]))
    other = type(a)(**{**a.__dict__, "env_id": "Walker2d-v5"})
    with pytest.raises(DTError, match="different envs .*a in None, b in Walker2d-v5.*pick ids of one env"):
        concat([a, other], ["a", "b"])


def test_several_ids_train_as_one(tiny_minari_root: Path, tiny_minari: str, tmp_path: Path) -> None:
    second = "test/hopper/tiny2-v0"
    if not (tiny_minari_root / second).is_dir():
        make_minari_dataset(tiny_minari_root, second, num_episodes=5, seed=100)
    data = DTDataModule([tiny_minari, second], download=False, context_len=5, batches_per_epoch=1)
    data.setup()
    one = DTDataModule(tiny_minari, download=False, context_len=5, batches_per_epoch=1)
    one.setup()
    assert data.spec.num_episodes == one.spec.num_episodes + 5
    assert data.spec.return_max >= one.spec.return_max and data.spec.env_id == "Hopper-v5"
    cfg = compose_config([f"dataset.id=[{tiny_minari},{second}]"], output_dir=tmp_path)
    assert cfg.run_name == "hopper-tiny+tiny2-normal-dt-K20-s0"


def test_data_spec_is_plain_data_in_checkpoints_and_reads_old_dicts() -> None:
    spec = DataSpec((4, 84, 84), 6, True, [], [], env_id="ALE/Breakout-v5", max_timestep=99, return_max=3.0)
    assert spec.state_dim == 4 * 84 * 84 and spec.pixels
    plain = spec.to_dict()
    assert plain["state_shape"] == [4, 84, 84] and json.loads(json.dumps(plain)) == plain  # lists and numbers only
    assert DataSpec.from_dict(plain) == spec
    # written before DataSpec: `state_dim` beside `state_shape`, and the oldest without `state_shape`
    old = {"state_dim": 11, "act_dim": 3, "discrete": False, "state_mean": [0.0] * 11, "state_std": [1.0] * 11}
    assert DataSpec.from_dict(old).state_shape == (11,) and DataSpec.from_dict(old).max_timestep is None
    assert DataSpec.from_dict({**old, "state_shape": [11]}) == DataSpec.from_dict(old)
