"""The quickstart's Pendulum dataset generator and its env config."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dt.envs.pendulum import DATASET_ID, REF_MAX_SCORE, REF_MIN_SCORE, collect, make_pendulum, write_dataset
from tests.helpers import compose_config


def test_collect_mixes_controller_and_random_episodes() -> None:
    episodes, eps = collect(8, seed=1)
    returns = np.array([e["rewards"].sum() for e in episodes])
    assert all(len(e["rewards"]) == 200 and len(e["observations"]) == 201 for e in episodes)
    assert all(np.abs(e["actions"]).max() <= 1.0 for e in episodes)  # the rescaled env's actions
    # mixed quality: the least random episodes are far better than the most random ones
    order = np.argsort(eps)
    assert returns[order[:2]].mean() > returns[order[-2:]].mean() + 300
    assert returns.max() - returns.min() > 500


def test_write_dataset_loads_with_reference_scores(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from dt.data.sources import load_minari

    write_dataset(tmp_path, num_episodes=4, seed=0)
    write_dataset(tmp_path, num_episodes=4, seed=0)  # an existing dataset is kept, not an error
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path))
    traj = load_minari(DATASET_ID, download=False)
    assert traj.num_episodes == 4 and traj.num_steps == 800
    assert traj.env_id == "Pendulum-v1" and traj.actions.shape == (800, 1)
    assert (traj.ref_min_score, traj.ref_max_score) == (REF_MIN_SCORE, REF_MAX_SCORE)


def test_env_config_matches_the_generator() -> None:
    cfg = compose_config(["experiment=quickstart"])
    assert cfg.env.id == "Pendulum-v1" and cfg.dataset.id == DATASET_ID and cfg.dataset.download is False
    assert (cfg.env.ref_min_score, cfg.env.ref_max_score) == (REF_MIN_SCORE, REF_MAX_SCORE)
    env = make_pendulum(cfg.env.id, max_episode_steps=cfg.env.max_ep_len)
    assert env.action_space.low[0] == -1.0 and env.action_space.high[0] == 1.0
    env.close()
