"""Record episodes in a Gymnasium env and write them as a Minari dataset: dt's generators and the tests' data."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

# observations (T + 1, ...) with the final one, as Minari stores them; actions (T, ...); rewards,
# terminations and truncations (T,)
Episode = dict[str, np.ndarray]


def record_episode(env: gym.Env, act: Callable[[np.ndarray], Any], seed: int) -> Episode:
    """One episode from `env.reset(seed=seed)`, acting with `act(observation)` until it ends."""
    obs, _ = env.reset(seed=seed)
    observations, actions, rewards, terminations, truncations = [obs], [], [], [], []
    while True:
        action = act(obs)
        obs, reward, terminated, truncated, _ = env.step(action)
        observations.append(obs)
        actions.append(action)
        rewards.append(float(reward))
        terminations.append(terminated)
        truncations.append(truncated)
        if terminated or truncated:
            break
    return {
        "observations": np.stack(observations),
        "actions": np.array(actions),
        "rewards": np.array(rewards),
        "terminations": np.array(terminations),
        "truncations": np.array(truncations),
    }


def write_minari_dataset(root: str | Path, dataset_id: str, episodes: list[Episode], env: Any, **metadata: Any) -> Path:
    """`minari.create_dataset_from_buffers` into the MINARI_DATASETS_PATH folder `root`; `metadata` goes to Minari
    (eval_env defaults to `env`; author, email and permalink to dt's)."""
    import minari
    from minari.data_collector import EpisodeBuffer

    buffers = [EpisodeBuffer(id=i, **episode) for i, episode in enumerate(episodes)]
    metadata = {
        "eval_env": env,
        "author": "dt",
        "author_email": "dt@example.invalid",
        "code_permalink": "https://example.invalid/dt",
        **metadata,
    }
    previous = os.environ.get("MINARI_DATASETS_PATH")
    os.environ["MINARI_DATASETS_PATH"] = str(root)  # where Minari writes
    try:
        minari.create_dataset_from_buffers(dataset_id, buffers, env=env, **metadata)
    finally:
        if previous is None:
            del os.environ["MINARI_DATASETS_PATH"]
        else:
            os.environ["MINARI_DATASETS_PATH"] = previous
    return Path(root) / dataset_id
