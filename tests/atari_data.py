"""Tiny Atari datasets written from the real ALE env, in the two formats dt reads (tests only)."""

from __future__ import annotations

import gzip
import itertools
from pathlib import Path

import gymnasium as gym
import numpy as np

from dt.envs.atari import register_ale
from dt.envs.recording import record_episode, write_minari_dataset


def _save_gz(path: Path, array: np.ndarray) -> None:
    with gzip.open(path, "wb") as f:  # as Dopamine's OutOfGraphReplayBuffer.save
        np.save(f, array, allow_pickle=False)


def atari_steps(game: str, num_steps: int, max_episode_steps: int, seed: int) -> dict[str, np.ndarray]:
    """`num_steps` steps of random play in `ALE/<game>-v5` with the DQN preprocessing, as single 84x84 frames.

    Episodes are cut after `max_episode_steps` steps (marked terminal) so that a few steps hold several episodes.
    """
    register_ale()
    env = gym.make(f"ALE/{game}-v5", frameskip=1, repeat_action_probability=0.0)
    env = gym.wrappers.AtariPreprocessing(env, noop_max=0, frame_skip=4, screen_size=84)
    rng = np.random.default_rng(seed)
    frames, actions, rewards, terminals = [], [], [], []
    obs, _ = env.reset(seed=seed)
    for t in range(num_steps):
        action = t % env.action_space.n if t < env.action_space.n else int(rng.integers(env.action_space.n))
        next_obs, reward, terminated, _, _ = env.step(action)
        done = terminated or (t + 1) % max_episode_steps == 0
        frames.append(obs)
        actions.append(action)
        rewards.append(np.clip(reward, -1, 1))  # Dopamine's runner clips rewards before storing them
        terminals.append(done)
        obs = env.reset()[0] if done else next_obs
    env.close()
    return {
        "observation": np.stack(frames).astype(np.uint8),
        "action": np.array(actions, dtype=np.int32),
        "reward": np.array(rewards, dtype=np.float32),
        "terminal": np.array(terminals, dtype=np.uint8),
    }


def write_dqn_replay(
    root: Path, game: str = "Breakout", num_buffers: int = 2, steps: int = 40, max_episode_steps: int = 9
) -> Path:
    """A DQN-replay run folder `<root>/<game>/1` with `num_buffers` buffers of `steps` transitions each."""
    logs = root / game / "1" / "replay_logs"
    logs.mkdir(parents=True, exist_ok=True)
    for ckpt in range(num_buffers):
        data = atari_steps(game, steps, max_episode_steps, seed=ckpt)
        for name, array in data.items():
            _save_gz(logs / f"$store$_{name}_ckpt.{ckpt}.gz", array)
        _save_gz(logs / f"add_count_ckpt.{ckpt}.gz", np.array(steps, dtype=np.int64))
        _save_gz(logs / f"invalid_range_ckpt.{ckpt}.gz", np.arange(steps - 1, steps + 3) % steps)
    return root / game / "1"


def write_minari_atari(root: Path, game: str = "Breakout", num_episodes: int = 3, max_len: int = 8) -> str:
    """`atari/<game>/expert-v0` with RGB 210x160x3 screens, as Minari's Atari datasets store them."""
    register_ale()
    env = gym.make(f"ALE/{game}-v5", max_episode_steps=max_len)
    rng = np.random.default_rng(0)
    episodes = []
    for episode in range(num_episodes):
        steps = itertools.count()

        def act(obs: np.ndarray, episode: int = episode, steps: itertools.count = steps) -> int:
            first = next(steps) == 0  # episodes start with different actions
            return episode % env.action_space.n if first else int(rng.integers(env.action_space.n))

        episodes.append(record_episode(env, act, seed=episode))
    dataset_id = f"atari/{game.lower()}/expert-v0"
    write_minari_dataset(
        root,
        dataset_id,
        episodes,
        env.spec,
        algorithm_name="random",
        description="tiny random-policy Atari dataset made by the dt test suite",
    )
    env.close()
    return dataset_id
