"""The quickstart's dataset: Pendulum-v1 episodes of mixed quality, written as a local Minari dataset.

    python -m dt.envs.pendulum --root outputs/quickstart/minari [--episodes 300] [--seed 0]

Actions are torques rescaled to [-1, 1] (Pendulum-v1's are [-2, 2]; the model's tanh head acts in
[-1, 1]): `make_pendulum`, the env config's factory, wraps the env with Gymnasium's `RescaleAction`.

Behaviour: a scripted controller (energy-shaping swing-up, then a PD balance at the top) whose every action
is replaced, with probability eps, by a uniformly random torque; eps is drawn per episode, uniformly in
[0, 1]. Returns therefore range from the controller's (about -150) to the random policy's (about -1200),
every quality level in between equally represented: a behaviour-cloning policy averages them all, a Decision
Transformer conditioned on a high return should pick out the good episodes. The dataset carries reference
scores (random policy = 0, scripted controller = 100) measured by `reference_scores`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import gymnasium as gym
import numpy as np

from dt.envs.recording import Episode, record_episode, write_minari_dataset

ENV_ID = "Pendulum-v1"
DATASET_ID = "quickstart/pendulum/mixed-v0"
MAX_TORQUE = 2.0  # Pendulum-v1's torque limit; the rescaled env's actions are torque / MAX_TORQUE
# Mean returns over 100 episodes (seeds 10_000..10_099) of `behaviour(eps=1)` and `behaviour(eps=0)`;
# rerun `reference_scores()` after changing the controller. Also in conf/env/pendulum.yaml.
REF_MIN_SCORE = -1188.3
REF_MAX_SCORE = -139.8


def make_pendulum(env_id: str = ENV_ID, max_episode_steps: int | None = None) -> gym.Env:
    """Pendulum-v1 with actions in [-1, 1] (the env config's `factory`)."""
    env = gym.make(env_id, max_episode_steps=max_episode_steps)
    unit = np.ones(1, dtype=np.float32)
    return gym.wrappers.RescaleAction(env, min_action=-unit, max_action=unit)


def controller(obs: np.ndarray) -> float:
    """Swing up by pumping energy towards the upright's, balance with PD once near the top.

    Pendulum-v1's dynamics (m = l = 1, g = 10): theta'' = 15 sin(theta) + 3 u, theta = 0 upright.
    """
    cos, sin, velocity = obs
    theta = np.arctan2(sin, cos)
    if cos > 0.9:  # within ~25 degrees of upright: closed loop theta'' = -15 theta - 6 theta'
        torque = -(10.0 * theta + 2.0 * velocity)
    else:  # energy E = theta'^2 / 6 + 5 cos(theta), 5 at rest upright; push along the velocity while short
        energy = velocity**2 / 6.0 + 5.0 * cos
        torque = 2.0 * (5.0 - energy) * velocity
        if abs(velocity) < 0.1:  # at rest at the bottom: kick it
            torque = MAX_TORQUE
    return float(np.clip(torque, -MAX_TORQUE, MAX_TORQUE))


def run_episode(env: gym.Env, eps: float, rng: np.random.Generator, seed: int) -> Episode:
    """One episode of the eps-random controller in the rescaled env: observations (T + 1, 3), actions (T, 1)
    in [-1, 1], rewards (T,)."""

    def act(obs: np.ndarray) -> np.ndarray:
        torque = rng.uniform(-MAX_TORQUE, MAX_TORQUE) if rng.random() < eps else controller(obs)
        return np.array([torque / MAX_TORQUE], dtype=np.float32)

    return record_episode(env, act, seed)


def collect(num_episodes: int, seed: int = 0) -> tuple[list[dict[str, np.ndarray]], np.ndarray]:
    """Episodes with eps drawn uniformly in [0, 1] per episode; returns the episodes and their eps."""
    env = make_pendulum()
    rng = np.random.default_rng(seed)
    eps = rng.uniform(0.0, 1.0, size=num_episodes)
    episodes = [run_episode(env, e, rng, seed * 100_000 + i) for i, e in enumerate(eps)]
    env.close()
    return episodes, eps


def reference_scores(num_episodes: int = 100) -> tuple[float, float]:
    """(random policy, scripted controller) mean returns, the 0 and 100 of the normalized score."""
    env = make_pendulum()
    rng = np.random.default_rng(0)
    means = [
        float(np.mean([run_episode(env, eps, rng, 10_000 + i)["rewards"].sum() for i in range(num_episodes)]))
        for eps in (1.0, 0.0)
    ]
    env.close()
    return means[0], means[1]


def write_dataset(root: str | Path, num_episodes: int = 300, seed: int = 0, dataset_id: str = DATASET_ID) -> Path:
    """Collect and write the dataset under `root` (a MINARI_DATASETS_PATH folder); an existing one is kept."""
    root = Path(root).resolve()
    path = root / dataset_id
    if (path / "data").is_dir():
        return path
    episodes, _ = collect(num_episodes, seed)
    return write_minari_dataset(
        root,
        dataset_id,
        episodes,
        ENV_ID,
        action_space=gym.spaces.Box(-1.0, 1.0, (1,), np.float32),
        algorithm_name="eps-random scripted swing-up controller, eps ~ U[0, 1] per episode",
        code_permalink="https://example.invalid/dt/src/dt/envs/pendulum.py",
        description=__doc__.split("\n\n")[2].replace("\n", " "),
        ref_min_score=REF_MIN_SCORE,
        ref_max_score=REF_MAX_SCORE,
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m dt.envs.pendulum", description=__doc__.splitlines()[0])
    parser.add_argument("--root", default="outputs/quickstart/minari", help="Minari datasets folder to write into")
    parser.add_argument("--episodes", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--reference-scores", action="store_true", help="measure the reference scores and exit")
    args = parser.parse_args(argv)
    if args.reference_scores:
        print("random policy {:.1f}, scripted controller {:.1f}".format(*reference_scores()))
        return
    path = write_dataset(args.root, args.episodes, args.seed)
    print(f"dataset {DATASET_ID}: {path} (MINARI_DATASETS_PATH={Path(args.root).resolve()})")


if __name__ == "__main__":
    main()
