"""Key-to-Door: the env's rules, the random success rate, the dataset generator and its hook in the data module."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

import dt.envs  # noqa: F401  (registers dt/KeyToDoor-v0)
from dt.data.datamodule import DTDataModule
from dt.data.sources import load_minari
from dt.envs.key_to_door import (
    DISTRACTOR_STEPS,
    DOOR_STEPS,
    ENV_ID,
    KEY_STEPS,
    MAX_EPISODE_STEPS,
    MOVES,
    RANDOM_SUCCESS_RATE,
    KeyToDoorEnv,
    random_episodes,
    random_success_rate,
    write_dataset,
)
from dt.errors import DTError
from tests.helpers import compose_config

TOWARD = {(-1, 0): 0, (1, 0): 1, (0, -1): 2, (0, 1): 3}  # offset sign -> action


def toward(env: KeyToDoorEnv) -> int:
    """One move toward the visible object, rows first."""
    (row, col), (t_row, t_col) = env.agent, env.target
    step = (int(np.sign(t_row - row)), 0) if t_row != row else (0, int(np.sign(t_col - col)))
    return TOWARD[step]


def away(env: KeyToDoorEnv) -> int:
    """A move that never reaches the visible object: away from its row, or off its row."""
    (row, _), (t_row, _) = env.agent, env.target
    return 0 if t_row > row or (t_row == row and row > 0) else 1


def play(env: KeyToDoorEnv, seed: int, take_key: bool, seek_door: bool = True) -> tuple[float, int, list[np.ndarray]]:
    """An episode that does or does not take the key and seek the door: (return, length, observations)."""
    obs, _ = env.reset(seed=seed)
    observations, total, t = [obs], 0.0, 0
    while True:
        if env.target is None:
            action = t % 4
        else:
            action = toward(env) if (take_key if env.phase == 0 else seek_door) else away(env)
        obs, reward, terminated, truncated, _ = env.step(action)
        observations.append(obs)
        total, t = total + reward, t + 1
        if terminated or truncated:
            return total, t, observations


def test_reward_only_with_the_key() -> None:
    env = KeyToDoorEnv()
    for seed in range(20):
        with_key = play(env, seed, take_key=True)
        assert with_key[0] == 1.0 and with_key[1] <= MAX_EPISODE_STEPS  # the door is always within reach
        assert env.has_key
        without = play(env, seed, take_key=False)
        assert without[0] == 0.0 and not env.has_key


def test_phase_lengths_and_observations() -> None:
    env = KeyToDoorEnv()
    total, length, observations = play(env, seed=3, take_key=True, seek_door=False)
    assert (total, length) == (0.0, MAX_EPISODE_STEPS) == (0.0, KEY_STEPS + DISTRACTOR_STEPS + DOOR_STEPS)
    phases = np.stack(observations)[:, 5:].argmax(axis=1)  # phase one-hot at steps 0..26
    expected = [0] * KEY_STEPS + [1] * DISTRACTOR_STEPS + [2] * (DOOR_STEPS + 1)
    assert phases.tolist() == expected
    obs = np.stack(observations)
    assert env.observation_space.contains(obs[0]) and obs.shape == (MAX_EPISODE_STEPS + 1, 8)
    assert (obs[KEY_STEPS : KEY_STEPS + DISTRACTOR_STEPS, 2:5] == 0).all()  # distractor room: nothing visible
    assert (obs[KEY_STEPS + DISTRACTOR_STEPS :, 4] == 1).all()  # the door is visible in phase 3


def test_phase_three_does_not_reveal_the_key() -> None:
    """Same seed with and without the key: the door room looks the same (the credit-assignment problem)."""
    env = KeyToDoorEnv()
    _, _, with_key = play(env, seed=5, take_key=True, seek_door=False)
    _, _, without = play(env, seed=5, take_key=False, seek_door=False)
    door_room = KEY_STEPS + DISTRACTOR_STEPS
    np.testing.assert_array_equal(with_key[door_room], without[door_room])


def test_bad_action_is_a_user_error() -> None:
    env = KeyToDoorEnv()
    env.reset(seed=0)
    env.step(np.int64(2))  # NumPy integers are fine
    for bad in (4, -1, 1.5):
        with pytest.raises(DTError, match="actions 0..3"):
            env.step(bad)


def test_registered_and_moves() -> None:
    env = gym.make(ENV_ID)
    assert env.action_space.n == len(MOVES) == 4 and env.spec.max_episode_steps == MAX_EPISODE_STEPS
    env.close()


def test_random_policy_succeeds_at_the_documented_rate() -> None:
    rate = random_success_rate(4000, seed=123)  # ~1 s; standard error 0.27 points
    assert abs(rate - RANDOM_SUCCESS_RATE) < 0.012, rate


def test_generator_writes_a_loadable_minari_dataset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path))
    episodes = random_episodes(60, seed=4)
    write_dataset("dt/key_to_door/test-v0", episodes, tmp_path, seed=4)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".dt-generate")]  # temp folder gone
    traj = load_minari("dt/key_to_door/test-v0", download=False)
    assert traj.env_id == ENV_ID and traj.num_actions == 4 and traj.discrete
    assert traj.num_episodes == 60 and traj.observations.shape[1] == 8
    np.testing.assert_array_equal(traj.returns, [e["rewards"].sum() for e in episodes])
    np.testing.assert_array_equal(traj.actions[: len(episodes[0]["actions"])], episodes[0]["actions"])
    assert (traj.ref_min_score, traj.ref_max_score) == (0.0, 1.0)


@pytest.mark.slow
def test_generator_cli(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    ok = subprocess.run(
        [sys.executable, "-m", "dt.envs.key_to_door", "--episodes", "30", "--root", str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
    )
    assert ok.returncode == 0, ok.stderr
    assert "30 episodes" in ok.stdout and (tmp_path / "dt/key_to_door/random-30-v0/data").is_dir()
    bad = subprocess.run(
        [sys.executable, "-m", "dt.envs.key_to_door", "--episodes", "0"], capture_output=True, text=True, env=env
    )
    assert bad.returncode == 1 and bad.stderr.startswith("dt: error: --episodes=0"), bad.stderr


def test_read_only_folder_is_a_user_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "access", lambda path, mode: False)  # as a read-only mount (root writes anywhere)
    with pytest.raises(DTError, match="cannot write dataset .* set MINARI_DATASETS_PATH to a writable folder"):
        write_dataset("dt/key_to_door/test-v0", random_episodes(2, seed=0), tmp_path, seed=0)


def test_experiment_generates_the_missing_dataset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path))
    cfg = compose_config(["experiment=key_to_door"], output_dir=tmp_path)
    assert cfg.K == cfg.env.max_ep_len == MAX_EPISODE_STEPS and cfg.env.success_return == 1
    assert cfg.data.dataset_id == "dt/key_to_door/random-1k-v0" and cfg.data.generator
    monkeypatch.setattr("dt.envs.key_to_door.DATASETS", {"dt/key_to_door/random-1k-v0": (50, 0)})  # fast
    dm = DTDataModule(**{k: v for k, v in cfg.data.items() if k != "_target_"})
    dm.setup("fit")
    assert dm.spec.num_episodes == 50 and dm.spec.act_dim == 4 and dm.spec.discrete
    assert compose_config(["experiment=key_to_door", "dataset=random_10k"]).data.dataset_id.endswith("10k-v0")


def test_random_policy_reference_row(tmp_path: Path) -> None:
    from dt.results import load_results
    from experiments.random_policy import main as random_policy

    random_policy(["env=key_to_door", "eval.episodes=400", "seed=1", "--out", str(tmp_path), "--experiment", "kd"])
    document = load_results(tmp_path / "results.json")
    assert document["run"]["model"] == "random" and document["run"]["experiment"] == "kd"
    entry = document["evals"][0]
    assert entry["episodes"] == 400 and entry["success_rate"] == np.mean(np.array(entry["returns"]) >= 1)
    assert abs(entry["success_rate"] - RANDOM_SUCCESS_RATE) < 0.03  # the same rate as the env's own random walk
