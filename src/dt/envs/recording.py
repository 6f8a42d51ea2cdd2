"""Record episodes in a Gymnasium env and write them as a Minari dataset: dt's generators and the tests' data."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from dt.files import replace_folder

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
    """`minari.create_dataset_from_buffers` into the MINARI_DATASETS_PATH folder `root`, atomically: written into
    a temporary folder under `root`, then renamed into place (replacing an existing dataset of that id), so a
    crash or a full disk never leaves half a dataset. `metadata` goes to Minari (author, email and permalink
    default to dt's)."""
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
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    previous = os.environ.get("MINARI_DATASETS_PATH")
    with tempfile.TemporaryDirectory(prefix=".dt-write-", dir=root) as staging:
        os.environ["MINARI_DATASETS_PATH"] = staging  # where Minari writes
        try:
            minari.create_dataset_from_buffers(dataset_id, buffers, env=env, **metadata)
        finally:
            if previous is None:
                del os.environ["MINARI_DATASETS_PATH"]
            else:
                os.environ["MINARI_DATASETS_PATH"] = previous
        target = replace_folder(Path(staging) / dataset_id, root / dataset_id)
        for parent in Path(dataset_id).parents:  # Minari's namespace metadata, where missing
            meta = Path(staging) / parent / "namespace_metadata.json"
            if str(parent) != "." and meta.is_file() and not (root / parent / meta.name).exists():
                os.replace(meta, root / parent / meta.name)
    return target
