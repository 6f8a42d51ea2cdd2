"""The paper's Atari data: DQN-replay logs as Dopamine writes them, sampled as the official `create_dataset.py`.

A run folder `<game>/<run>/replay_logs/` holds one buffer per checkpoint N: `$store$_<name>_ckpt.<N>.gz` for
name in observation (capacity, 84, 84) uint8 single frames, action int32, reward float32 (clipped to [-1, 1]
by Dopamine's runner) and terminal uint8 (1 on an episode's last step), each a gzipped `.npy`; plus
`add_count_ckpt.<N>.gz` (transitions ever added: the buffer is circular) and `invalid_range_ckpt.<N>.gz`.

Sampling, as the official code: visit buffers at random and take the next `trajectories_per_buffer` whole
trajectories of the visited buffer each time, until at least `num_steps` steps are taken. Differences, all on
purpose: the trajectories are planned from the small terminal arrays first, so each observation file is read
once (the official code re-reads a 7 GB buffer on every visit); a visit takes exactly `trajectories_per_buffer`
trajectories (the official loop takes one more); an episode cut by the end of a buffer is left out (the
official code then drops the whole visit); only buffers that still hold trajectories are drawn (the official
loop never ends once all are spent); a buffer reads all its valid transitions, oldest first (the official code
reads the first 100,000 storage slots).
"""

from __future__ import annotations

import gzip
import re
from pathlib import Path

import gymnasium as gym
import numpy as np

from dt.data.sources import Trajectories, make_trajectories
from dt.errors import DTError

STORE_PATTERN = re.compile(r"^\$store\$_terminal_ckpt\.(\d+)\.gz$")


def _read(folder: Path, name: str, ckpt: int) -> np.ndarray:
    path = folder / f"{name}_ckpt.{ckpt}.gz"
    try:
        with gzip.open(path, "rb") as f:
            return np.load(f, allow_pickle=False)
    except (OSError, ValueError, EOFError) as err:
        raise DTError(f"{path} is not a gzipped .npy file ({err}): re-download the DQN-replay logs") from err


def replay_logs_folder(path: str | Path) -> Path:
    """The `replay_logs` folder of `path` (a run folder `<game>/<run>`, or `replay_logs` itself)."""
    path = Path(path)
    if not path.is_dir():
        raise DTError(f"dataset.path={path} is not a folder: give a DQN-replay run folder <game>/<run>")
    for folder in (path / "replay_logs", path):
        if any(STORE_PATTERN.match(p.name) for p in folder.glob("$store$_terminal_ckpt.*.gz")):
            return folder
    runs = sorted(p.parent.name for p in path.glob("*/replay_logs"))
    hint = (
        f"pick one run: dataset.path={path}/{runs[0]} (runs: {', '.join(runs)})"
        if runs
        else ("expected <game>/<run>/replay_logs/$store$_observation_ckpt.<N>.gz as Dopamine writes them")
    )
    raise DTError(f"no DQN-replay logs ($store$_*_ckpt.<N>.gz) in {path}: {hint}")


def _valid_order(folder: Path, ckpt: int, capacity: int) -> tuple[np.ndarray, bool]:
    """Storage slots of the buffer's valid transitions, oldest first, and whether the circular buffer wrapped."""
    add_count_path = folder / f"add_count_ckpt.{ckpt}.gz"
    add_count = int(_read(folder, "add_count", ckpt)) if add_count_path.exists() else capacity
    if add_count <= capacity:
        return np.arange(add_count), False
    cursor = add_count % capacity  # the oldest transition sits at the cursor
    return np.roll(np.arange(capacity), -cursor), True


def _trajectory_bounds(terminal: np.ndarray, wrapped: bool) -> np.ndarray:
    """(T + 1,) bounds of the whole trajectories in a buffer's chronological terminal flags."""
    ends = np.flatnonzero(terminal) + 1
    if wrapped:  # the oldest episode began before the buffer's window: drop it
        return ends
    return np.concatenate([[0], ends])


def plan_visits(bounds: list[np.ndarray], num_steps: int, trajectories_per_buffer: int, seed: int) -> list[tuple]:
    """(buffer, start, end) of every trajectory taken, in visit order: random buffers until `num_steps` steps."""
    if trajectories_per_buffer < 1:
        raise DTError(f"dataset.trajectories_per_buffer={trajectories_per_buffer} must be at least 1")
    rng = np.random.default_rng(seed)
    next_traj = [0] * len(bounds)
    taken, total = [], 0
    while total < num_steps:
        live = [b for b, edges in enumerate(bounds) if next_traj[b] < len(edges) - 1]
        if not live:
            raise DTError(
                f"the DQN-replay logs hold only {total} steps in whole trajectories, fewer than "
                f"dataset.num_steps={num_steps}: lower dataset.num_steps or add buffers"
            )
        b = live[rng.integers(len(live))]
        first = next_traj[b]
        last = min(first + trajectories_per_buffer, len(bounds[b]) - 1)
        for j in range(first, last):
            taken.append((b, int(bounds[b][j]), int(bounds[b][j + 1])))
            total += int(bounds[b][j + 1] - bounds[b][j])
        next_traj[b] = last
    return taken


def _game_env_id(folder: Path) -> str | None:
    """`ALE/<Game>-v5` from the `<game>/<run>/replay_logs` folder names, when it is a known game."""
    try:
        import ale_py  # registers nothing by itself: gym.register_envs makes the ALE/* ids known
    except ImportError:
        return None  # no ale-py: the env id stays unknown, and evaluation will ask for the atari extra
    gym.register_envs(ale_py)
    for name in (folder.parent.parent.name, folder.parent.name):
        env_id = f"ALE/{name}-v5"
        if env_id in gym.registry:
            return env_id
    return None


def load_dqn_replay(
    path: str | Path, num_steps: int = 500_000, trajectories_per_buffer: int = 10, seed: int = 0
) -> Trajectories:
    """Sample whole trajectories from a Dopamine DQN-replay run into flat single-frame `Trajectories`."""
    folder = replay_logs_folder(path)
    ckpts = sorted(int(STORE_PATTERN.match(p.name).group(1)) for p in folder.glob("$store$_terminal_ckpt.*.gz"))
    orders, bounds = [], []
    for ckpt in ckpts:
        terminal = _read(folder, "$store$_terminal", ckpt)
        order, wrapped = _valid_order(folder, ckpt, len(terminal))
        orders.append(order)
        bounds.append(_trajectory_bounds(terminal[order], wrapped))
    taken = plan_visits(bounds, num_steps, trajectories_per_buffer, seed)

    lengths = np.array([end - start for _, start, end in taken], dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(lengths)])
    observations = actions = rewards = None
    for b in sorted({b for b, _, _ in taken}):  # each buffer's files read once
        obs = _read(folder, "$store$_observation", ckpts[b])
        act = _read(folder, "$store$_action", ckpts[b])
        rew = _read(folder, "$store$_reward", ckpts[b])
        if observations is None:
            observations = np.empty((int(starts[-1]), *obs.shape[1:]), dtype=np.uint8)
            actions, rewards = np.empty(len(observations), np.int64), np.empty(len(observations), np.float32)
        for i, (tb, start, end) in enumerate(taken):
            if tb == b:
                slots = orders[b][start:end]  # storage slots of this trajectory, in time order
                observations[starts[i] : starts[i + 1]] = obs[slots]
                actions[starts[i] : starts[i + 1]] = act[slots]
                rewards[starts[i] : starts[i + 1]] = rew[slots]
        del obs
    if observations.ndim != 3:
        raise DTError(f"{folder}: observations of shape {observations.shape[1:]} are not single 84x84 frames")
    return make_trajectories(observations, actions, rewards, starts, env_id=_game_env_id(folder))
