"""Key-to-Door: the Decision Transformer paper's credit-assignment task (section 5.4, Table 6).

Three phases of fixed length in three 5x5 rooms, after DeepMind TVT's `key_to_door` and its use by
Mesnard et al. (Counterfactual Credit Assignment); the paper does not give sizes, these are ours:

1. **key room** (8 steps): the agent and a key start on distinct random cells; stepping onto the key picks
   it up (it disappears from view).
2. **distractor room** (10 steps): an empty room; nothing to do, nothing to see.
3. **door room** (up to 8 steps): the agent and a door start on distinct random cells; stepping onto the door
   ends the episode, with reward 1 if the key was picked up in phase 1 and 0 otherwise. The episode also
   ends when the phase runs out.

Every cell of a 5x5 room is at most 8 moves from any other, so a perfect policy always succeeds. A uniformly
random walk finds the key within 8 steps about 18% of the time and the door about as often: it succeeds
about 3% of the time (the paper's random row: 3.1%). Episodes last 19 to 26 steps, so a context of
K = 26 covers the whole episode.

Observation (8 floats): the agent's row and column in its room, the offset (rows, columns) from the agent
to the visible object (the key while it lies in the key room, the door in the door room; 0 otherwise), a
flag for whether an object is visible, and the phase one-hot. Nothing in phases 2 and 3 tells whether the
key was taken: the agent must carry that from phase 1, which is the credit-assignment problem.
Actions: Discrete(4): up, down, left, right; a move into a wall leaves the agent in place.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import gymnasium as gym
import numpy as np

from dt.data.sources import minari_root
from dt.envs.recording import Episode, record_episode, write_minari_dataset
from dt.errors import DTError, report_errors
from dt.files import make_writable_folder

ENV_ID = "dt/KeyToDoor-v0"
ROOM = 5  # rooms are ROOM x ROOM cells
KEY_STEPS, DISTRACTOR_STEPS, DOOR_STEPS = 8, 10, 8
MAX_EPISODE_STEPS = KEY_STEPS + DISTRACTOR_STEPS + DOOR_STEPS  # 26
MOVES = ((-1, 0), (1, 0), (0, -1), (0, 1))  # up, down, left, right as (row, column) steps
RANDOM_SUCCESS_RATE = 0.031  # `random_success_rate`: 3.15% over 60,000 seeded episodes (seeds 0-2 x 20,000)


class KeyToDoorEnv(gym.Env):
    """Pick up the key in phase 1, reach the door in phase 3; reward 1 only when both happened."""

    metadata = {"render_modes": []}
    observation_space = gym.spaces.Box(-1.0, 1.0, (8,), np.float32)
    action_space = gym.spaces.Discrete(4)

    def __init__(self) -> None:
        self.t = 0
        self.agent = (0, 0)  # (row, column); plain ints: a step costs microseconds, datasets take seconds
        self.target: tuple[int, int] | None = None  # the visible object's cell: the key, then the door
        self.has_key = False

    @property
    def phase(self) -> int:
        """0: key room, 1: distractor room, 2: door room."""
        return 0 if self.t < KEY_STEPS else 1 if self.t < KEY_STEPS + DISTRACTOR_STEPS else 2

    def _place(self, with_object: bool) -> None:
        """A new room: the agent (and the object) on distinct random cells."""
        agent, other = int(self.np_random.integers(ROOM * ROOM)), int(self.np_random.integers(ROOM * ROOM - 1))
        self.agent = divmod(agent, ROOM)
        self.target = divmod(other + (other >= agent), ROOM) if with_object else None

    def _observation(self) -> np.ndarray:
        (row, col), target, scale = self.agent, self.target, ROOM - 1
        offset = ((target[0] - row) / scale, (target[1] - col) / scale) if target is not None else (0.0, 0.0)
        phase = self.phase
        visible = float(target is not None)
        return np.array(
            [row / scale, col / scale, *offset, visible, phase == 0, phase == 1, phase == 2], dtype=np.float32
        )

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        self.t, self.has_key = 0, False
        self._place(with_object=True)
        return self._observation(), {}

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict]:
        index = int(action)  # a Python or NumPy integer (a 0-d array too)
        if index != action or not 0 <= index < len(MOVES):
            raise DTError(f"KeyToDoor takes actions 0..3, got {action!r}")
        d_row, d_col = MOVES[index]
        self.agent = (min(max(self.agent[0] + d_row, 0), ROOM - 1), min(max(self.agent[1] + d_col, 0), ROOM - 1))
        reached = self.agent == self.target
        phase, reward, terminated = self.phase, 0.0, False
        if reached and phase == 0:
            self.has_key, self.target = True, None
        elif reached and phase == 2:
            reward, terminated = float(self.has_key), True
        self.t += 1
        truncated = not terminated and self.t >= MAX_EPISODE_STEPS
        if not terminated and self.phase != phase:  # the phase ran out: into the next room
            self._place(with_object=self.phase == 2)
        return self._observation(), reward, terminated, truncated, {"has_key": self.has_key}


# ---------------------------------------------------------------------------------------------------------------
# Datasets of uniformly random trajectories, written as local Minari datasets.

# Named datasets `experiment=key_to_door` generates when missing: id -> (episodes, seed).
DATASETS = {
    "dt/key_to_door/random-1k-v0": (1_000, 0),
    "dt/key_to_door/random-10k-v0": (10_000, 1),
}


def random_episodes(num_episodes: int, seed: int) -> list[Episode]:
    """Uniformly random episodes; episode i resets with seed + i, actions from one stream seeded by `seed`."""
    env = KeyToDoorEnv()
    rng = np.random.default_rng(seed)
    episodes = []
    for i in range(num_episodes):
        draws = iter(rng.integers(4, size=MAX_EPISODE_STEPS).tolist())  # one episode's worth at once: faster
        episodes.append(record_episode(env, lambda obs, draws=draws: next(draws), seed + i))
    return episodes


def write_dataset(dataset_id: str, episodes: list[Episode], root: str | Path, seed: int) -> Path:
    """Write a Minari dataset under `root` (atomically, see `recording.write_minari_dataset`)."""
    root = Path(root)
    if not make_writable_folder(root):
        raise DTError(
            f"cannot write dataset {dataset_id} into {root} (read-only): set MINARI_DATASETS_PATH to a writable folder"
        )
    returns = np.array([e["rewards"].sum() for e in episodes])
    return write_minari_dataset(
        root,
        dataset_id,
        episodes,
        gym.spec(ENV_ID),
        eval_env=ENV_ID,
        algorithm_name="uniformly random policy",
        code_permalink="https://example.invalid/dt/src/dt/envs/key_to_door.py",
        description=(
            f"{len(episodes)} uniformly random Key-to-Door episodes (seed {seed}), "
            f"success rate {returns.mean():.3f}; made by `python -m dt.envs.key_to_door`"
        ),
        ref_min_score=0.0,  # normalized score = 100 x success rate
        ref_max_score=1.0,
    )


def generate_dataset(dataset_id: str) -> None:
    """The dataset generator hook (`dataset.generator`): writes a named dataset into MINARI_DATASETS_PATH."""
    if dataset_id not in DATASETS:
        raise DTError(
            f"no generator for '{dataset_id}': named Key-to-Door datasets are {', '.join(DATASETS)}; "
            "make others with `python -m dt.envs.key_to_door --episodes N --id ID`"
        )
    num_episodes, seed = DATASETS[dataset_id]
    print(f"dt: generating {dataset_id} ({num_episodes} random episodes) in {minari_root()}", flush=True)
    write_dataset(dataset_id, random_episodes(num_episodes, seed), minari_root(), seed)


def random_success_rate(num_episodes: int, seed: int = 0) -> float:
    return float(np.mean([e["rewards"].sum() for e in random_episodes(num_episodes, seed)]))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Write a Minari dataset of uniformly random Key-to-Door episodes.")
    parser.add_argument("--episodes", type=int, default=1000)
    parser.add_argument("--id", default=None, help="dataset id (default: dt/key_to_door/random-<N>-v0)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--root", default=None, help="datasets folder (default: MINARI_DATASETS_PATH)")
    args = parser.parse_args(argv)
    if args.episodes < 1:
        raise DTError(f"--episodes={args.episodes} must be at least 1")
    dataset_id = args.id or f"dt/key_to_door/random-{args.episodes}-v0"
    start = time.perf_counter()
    episodes = random_episodes(args.episodes, args.seed)
    path = write_dataset(dataset_id, episodes, args.root or minari_root(), args.seed)
    successes = int(sum(e["rewards"].sum() for e in episodes))
    print(
        f"{dataset_id}: {len(episodes)} episodes, {sum(len(e['actions']) for e in episodes)} steps, "
        f"{successes} successes ({successes / len(episodes):.1%}) in {time.perf_counter() - start:.1f}s -> {path}"
    )


if __name__ == "__main__":
    report_errors(main)()
