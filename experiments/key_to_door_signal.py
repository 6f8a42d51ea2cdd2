"""How much return-conditioned signal a Key-to-Door dataset carries, and a lookup-table policy built from it.

    python experiments/key_to_door_signal.py [--ids dt/key_to_door/random-1k-v0 dt/key_to_door/random-10k-v0]
        [--episodes 1000] [--seed 10000] [--upsample N]

For each dataset (generated into MINARI_DATASETS_PATH when missing): the steps where the return-to-go is 1 (the
episode will succeed) and an object is in view, per phase, and how often the data's action there moves toward the
object, against what a uniformly random action would (the signal a learner has to find); then the reference any
recipe should beat: a lookup table that, for each (offset to the visible object, visible flag, phase), takes the
action seen most often there in the dataset's successful episodes (ties at random, unseen cases uniform), rolled
out greedily for `--episodes` episodes seeded from `--seed`.

`--upsample N` also writes `<id>-successes-xN-v0`: the same episodes with every successful one repeated N times. A
diagnostic of how diluted the signal is (train DT on it and compare), not a recipe: the paper's data is random.
"""

from __future__ import annotations

import argparse
from collections import Counter, defaultdict

import numpy as np

from dt.data.datamodule import returns_to_go
from dt.data.sources import load_minari, minari_local, minari_root
from dt.envs.key_to_door import DATASETS, MOVES, ROOM, KeyToDoorEnv, generate_dataset, random_episodes, write_dataset

Key = tuple[int, int, int, int]  # (row offset, column offset, visible, phase)


def features(observations: np.ndarray) -> list[Key]:
    """The lookup table's key per observation: integer offsets to the visible object, the flag, the phase."""
    offsets = np.rint(observations[:, 2:4] * (ROOM - 1)).astype(int)
    phases = observations[:, 5:8].argmax(axis=1)
    return [(int(r), int(c), int(v), int(p)) for (r, c), v, p in zip(offsets, observations[:, 4], phases, strict=True)]


def toward(key: Key, action: int) -> bool:
    """Does `action` shorten the Manhattan distance to the visible object?"""
    d_row, d_col = MOVES[action]
    return bool(key[2]) and (d_row * key[0] > 0 or d_col * key[1] > 0)


def signal(keys: list[Key], actions: np.ndarray, rtg: np.ndarray) -> list[str]:
    """Per phase with an object in view: steps with return-to-go 1 and 0, share of actions toward the object."""
    lines = []
    for phase, name in ((0, "key room"), (2, "door room")):
        for target in (1, 0):
            rows = [i for i, k in enumerate(keys) if k[2] and k[3] == phase and rtg[i] == target]
            if not rows:
                continue
            actual = np.mean([toward(keys[i], int(actions[i])) for i in rows])
            uniform = np.mean([np.mean([toward(keys[i], a) for a in range(4)]) for i in rows])
            lines.append(
                f"  {name}, object in view, return-to-go {target}: {len(rows):6d} steps, "
                f"actions toward it {actual:5.1%} (uniform {uniform:5.1%})"
            )
    return lines


def lookup_table(keys: list[Key], actions: np.ndarray, episode_ids: np.ndarray, successes: set[int], rng) -> dict:
    """Most frequent action per key over the successful episodes' steps; ties broken at random."""
    counts: dict[Key, Counter] = defaultdict(Counter)
    for key, action, episode in zip(keys, actions, episode_ids, strict=True):
        if int(episode) in successes:
            counts[key][int(action)] += 1
    table = {}
    for key, counter in counts.items():
        best = max(counter.values())
        table[key] = int(rng.choice(sorted(a for a, n in counter.items() if n == best)))
    return table


def rollout(table: dict, episodes: int, seed: int, rng) -> float:
    env, successes = KeyToDoorEnv(), 0
    for e in range(episodes):
        obs, _ = env.reset(seed=seed + e)
        done, reward = False, 0.0
        while not done:
            key = features(obs[None])[0]
            action = table.get(key, int(rng.integers(4)))
            obs, reward, terminated, truncated, _ = env.step(action)
            done = terminated or truncated
        successes += reward >= 1
    return successes / episodes


def write_upsampled(dataset_id: str, factor: int) -> str:
    """The named dataset's episodes with every successful one repeated `factor` times, as a new local dataset."""
    num_episodes, seed = DATASETS[dataset_id]
    episodes = random_episodes(num_episodes, seed)
    successes = [e for e in episodes if e["rewards"].sum() >= 1]
    new_id = dataset_id.removesuffix("-v0") + f"-successes-x{factor}-v0"
    write_dataset(new_id, episodes + successes * (factor - 1), minari_root(), seed)
    total = len(episodes) + len(successes) * (factor - 1)
    print(f"  wrote {new_id}: {total} episodes, {len(successes) * factor} successful")
    return new_id


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ids", nargs="+", default=list(DATASETS))
    parser.add_argument("--episodes", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=10_000, help="first evaluation seed (apart from the data's)")
    parser.add_argument("--upsample", type=int, default=0, help="also write it with successes repeated N times")
    args = parser.parse_args()
    for dataset_id in args.ids:
        if not minari_local(dataset_id):
            generate_dataset(dataset_id)
        traj = load_minari(dataset_id, download=False)
        returns = traj.returns
        rtg = returns_to_go(traj.rewards, traj.starts)
        keys = features(traj.observations)
        successes = {int(e) for e in np.flatnonzero(returns >= 1)}
        print(f"{dataset_id}: {traj.num_episodes} episodes, {traj.num_steps} steps, {len(successes)} successful")
        print("\n".join(signal(keys, traj.actions, rtg)))
        rng = np.random.default_rng(0)
        table = lookup_table(keys, traj.actions, traj.episode_ids, successes, rng)
        rate = rollout(table, args.episodes, args.seed, rng)
        print(f"  lookup table ({len(table)} keys seen): success {rate:.1%} over {args.episodes} episodes")
        if args.upsample > 1:
            write_upsampled(dataset_id, args.upsample)


if __name__ == "__main__":
    main()
