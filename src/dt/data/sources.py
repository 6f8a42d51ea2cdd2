"""Load offline RL datasets (Minari ids or D4RL-format HDF5 files) into flat `Trajectories`."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, replace
from pathlib import Path

import gymnasium as gym
import numpy as np

from dt.data.frames import preprocess_frames
from dt.errors import DTError


@dataclass(frozen=True)
class Trajectories:
    """All episodes concatenated once: step arrays of length N plus episode offsets.

    Episode e spans steps [starts[e], starts[e + 1]). Every episode has at least one step.
    """

    observations: np.ndarray  # (N, S) float32, or (N, 84, 84) uint8 frames for pixel states (dt.data.frames)
    actions: np.ndarray  # (N, A) float32, or (N,) int64 for discrete actions
    rewards: np.ndarray  # (N,) float32
    starts: np.ndarray  # (E + 1,) int64
    env_id: str | None = None
    ref_min_score: float | None = None
    ref_max_score: float | None = None
    num_actions: int | None = None  # size of a discrete action space, when the source records it

    @property
    def num_steps(self) -> int:
        return int(self.starts[-1])

    @property
    def num_episodes(self) -> int:
        return len(self.starts) - 1

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.starts)

    @property
    def returns(self) -> np.ndarray:
        return np.add.reduceat(self.rewards.astype(np.float64), self.starts[:-1])

    @property
    def discrete(self) -> bool:
        return self.actions.ndim == 1

    @property
    def pixels(self) -> bool:
        """Single grayscale frames, one per step; the model sees stacks gathered by `dt.data.frames.FrameStacks`."""
        return self.observations.ndim == 3

    @property
    def episode_ids(self) -> np.ndarray:
        """(N,) index of the episode each step belongs to."""
        return np.repeat(np.arange(self.num_episodes), self.lengths)

    def select(self, episodes: np.ndarray) -> Trajectories:
        """The sub-dataset made of the given episodes, in that order."""
        lengths = self.lengths[episodes]
        starts = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        # step index of every kept step: episode start + offset within the episode
        offsets = np.arange(starts[-1]) - np.repeat(starts[:-1], lengths)
        steps = np.repeat(self.starts[:-1][episodes], lengths) + offsets
        return replace(
            self,
            observations=self.observations[steps],
            actions=self.actions[steps],
            rewards=self.rewards[steps],
            starts=starts,
        )


def make_trajectories(
    observations: np.ndarray, actions: np.ndarray, rewards: np.ndarray, starts: np.ndarray, **metadata
) -> Trajectories:
    """Cast flat step arrays to the canonical dtypes (integer actions mean a discrete action space).

    uint8 (N, H, W) observations are pixel frames and stay uint8: 4x less memory than float32.
    """
    if len(starts) < 2 or np.any(np.diff(starts) < 1):
        raise DTError("the dataset holds no episodes or an empty one: check the dataset file")
    pixels = observations.dtype == np.uint8 and observations.ndim == 3
    for name, array in (("observations", observations), ("actions", actions), ("rewards", rewards)):
        if not np.issubdtype(array.dtype, np.floating):
            continue  # integers are always finite
        bad = np.flatnonzero(~np.isfinite(array.reshape(len(array), -1)).all(axis=1))
        if len(bad):
            raise DTError(f"dataset {name} hold NaN or inf at {len(bad)} steps (first: step {bad[0]}): clean the data")
    discrete = np.issubdtype(actions.dtype, np.integer)
    num_steps = int(starts[-1])
    return Trajectories(
        observations=observations if pixels else observations.reshape(num_steps, -1).astype(np.float32),
        actions=actions.reshape(-1).astype(np.int64) if discrete else actions.reshape(num_steps, -1).astype(np.float32),
        rewards=rewards.reshape(-1).astype(np.float32),
        starts=np.asarray(starts, dtype=np.int64),
        **metadata,
    )


def from_episode_list(
    observations: list[np.ndarray], actions: list[np.ndarray], rewards: list[np.ndarray], **metadata
) -> Trajectories:
    lengths = [len(r) for r in rewards]
    starts = np.concatenate([[0], np.cumsum(lengths)])
    return make_trajectories(
        np.concatenate(observations), np.concatenate(actions), np.concatenate(rewards), starts, **metadata
    )


def concat(parts: list[Trajectories], names: list[str]) -> Trajectories:
    """Several datasets' episodes as one (D4RL's medium-expert is medium + expert); all must share one env."""
    env_ids = {part.env_id for part in parts}
    if len(env_ids) > 1:
        collected = ", ".join(f"{name} in {part.env_id}" for name, part in zip(names, parts, strict=True))
        raise DTError(f"datasets from different envs cannot be trained as one ({collected}): pick ids of one env")
    shapes = {(part.observations.shape[1:], part.actions.shape[1:], part.discrete, part.num_actions) for part in parts}
    if len(shapes) > 1:
        raise DTError(f"datasets {' + '.join(names)} differ in observation or action shapes: pick compatible ids")
    offsets = np.cumsum([0] + [part.num_steps for part in parts])
    refs = {(part.ref_min_score, part.ref_max_score) for part in parts}
    ref_min, ref_max = refs.pop() if len(refs) == 1 else (None, None)  # differing: the env config's scores
    return replace(
        parts[0],
        observations=np.concatenate([part.observations for part in parts]),
        actions=np.concatenate([part.actions for part in parts]),
        rewards=np.concatenate([part.rewards for part in parts]),
        starts=np.concatenate(
            [part.starts[:-1] + offset for part, offset in zip(parts, offsets, strict=False)] + [offsets[-1:]]
        ),
        ref_min_score=ref_min,
        ref_max_score=ref_max,
    )


def minari_root() -> str:
    return os.environ.get("MINARI_DATASETS_PATH") or os.path.join(os.path.expanduser("~"), ".minari", "datasets")


def check_minari_remote(timeout: float = 5.0) -> None:
    """Raise at once when Minari's default remote, the Hugging Face Hub, cannot be reached.

    Without this, huggingface_hub retries every request with exponential backoff (`http_backoff`: 5 retries,
    a warning each) and an offline download takes ~30 s to fail. One HEAD request through the hub's own client
    (its endpoint, proxies, HF_HUB_OFFLINE) answers in milliseconds offline, at most `timeout` seconds.
    """
    if not os.environ.get("MINARI_REMOTE", "hf://").startswith("hf://"):
        return  # another remote (gcp://): its client reports its own errors
    from huggingface_hub import constants
    from huggingface_hub.utils import get_session

    # Imported above first: importing huggingface_hub sets its logger's level, which would undo ours.
    logging.getLogger("huggingface_hub").setLevel(logging.ERROR)  # our one-line error says it all
    get_session().head(constants.ENDPOINT, timeout=timeout)


def minari_local(dataset_id: str) -> bool:
    """Whether the dataset lies in MINARI_DATASETS_PATH."""
    return os.path.isdir(os.path.join(minari_root(), dataset_id, "data"))


def load_minari(dataset_id: str, download: bool = True) -> Trajectories:
    """Load a Minari dataset by id, downloading it first when it is not local and `download` is set."""
    import minari

    local = minari_local(dataset_id)
    where = f"not found in {minari_root()} (MINARI_DATASETS_PATH)"
    if not local and not download:
        raise DTError(
            f"Minari dataset '{dataset_id}' {where} and dataset.download=false: "
            f"set MINARI_DATASETS_PATH to a folder that holds it, or run `minari download {dataset_id}`"
        )
    try:
        if not local:
            check_minari_remote()
        dataset = minari.load_dataset(dataset_id, download=download)
    except Exception as err:  # the Minari client raises network, HTTP and file errors alike
        if local:
            raise DTError(f"Minari dataset '{dataset_id}' could not be read ({err}): re-download it") from err
        raise DTError(
            f"Minari dataset '{dataset_id}' {where} and could not be downloaded ({type(err).__name__}): "
            f"set MINARI_DATASETS_PATH to a folder that holds it, or run `minari download {dataset_id}` "
            "with network access"
        ) from err

    observations, actions, rewards = [], [], []
    for episode in dataset.iterate_episodes():
        if not isinstance(episode.observations, np.ndarray):
            raise DTError(f"Minari dataset '{dataset_id}' has dict/tuple observations: only Box is supported")
        episode_observations = episode.observations[:-1]  # Minari stores the final observation too
        if episode_observations.ndim == 4:  # RGB screens (atari/*): the Atari env's 84x84 grayscale frames
            episode_observations = preprocess_frames(episode_observations)
        observations.append(episode_observations)
        actions.append(episode.actions)
        rewards.append(episode.rewards)
    metadata = dataset.storage.metadata
    env_spec = dataset.spec.env_spec
    action_space = dataset.spec.action_space
    return from_episode_list(
        observations,
        actions,
        rewards,
        env_id=env_spec.id if env_spec is not None else None,
        ref_min_score=metadata.get("ref_min_score"),
        ref_max_score=metadata.get("ref_max_score"),
        num_actions=int(action_space.n) if isinstance(action_space, gym.spaces.Discrete) else None,
    )


D4RL_KEYS = ("observations", "actions", "rewards", "terminals", "timeouts")


def load_d4rl_hdf5(path: str | Path) -> Trajectories:
    """Load a D4RL-format HDF5 file; episodes end at `terminals | timeouts` (and at the file's end)."""
    import h5py

    path = Path(path)
    if not path.is_file():
        raise DTError(f"dataset file {path} does not exist: check dataset.path")
    try:
        with h5py.File(path, "r") as f:
            missing = [key for key in D4RL_KEYS if key not in f]
            if missing:
                raise DTError(f"{path} lacks {missing}: a D4RL-format HDF5 file holds {list(D4RL_KEYS)}")
            data = {key: f[key][()] for key in D4RL_KEYS}
    except OSError as err:
        raise DTError(f"{path} is not a readable HDF5 file ({err}): re-download or regenerate it") from err

    num_steps = len(data["rewards"])
    if any(len(data[key]) != num_steps for key in D4RL_KEYS):
        raise DTError(f"{path}: arrays {list(D4RL_KEYS)} differ in length: the file is corrupt")
    ends = np.flatnonzero(np.logical_or(data["terminals"], data["timeouts"])) + 1
    if len(ends) == 0 or ends[-1] != num_steps:
        ends = np.append(ends, num_steps)  # a last, unfinished episode
    starts = np.concatenate([[0], ends])
    return make_trajectories(data["observations"], data["actions"], data["rewards"], starts)
