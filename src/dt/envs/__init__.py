"""Environments: one `make_env` for training checks, rollouts and `dt.evaluate`.

An env config names its Gymnasium id and, when plain `gym.make` is not enough (Atari preprocessing, say),
a `factory`: the dotted path of a function `(env_id, max_episode_steps) -> gym.Env` in this package.
dt's own environments are registered with Gymnasium when this package is imported.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np

from dt.config import locate
from dt.errors import DTError

# dt's own environments, registered once per process (`gym.make("dt/KeyToDoor-v0")` after `import dt.envs`).
if "dt/KeyToDoor-v0" not in gym.registry:
    gym.register(id="dt/KeyToDoor-v0", entry_point="dt.envs.key_to_door:KeyToDoorEnv", max_episode_steps=26)


def make_gym(env_id: str, max_episode_steps: int | None = None) -> gym.Env:
    """Plain `gym.make`, with the episode-length limit the rollout uses."""
    return gym.make(env_id, max_episode_steps=max_episode_steps)


def import_function(path: str, setting: str) -> Callable[..., Any]:
    """The function a dotted path names, or a DTError naming the config `setting` that holds the path."""
    try:
        return locate(path)
    except LookupError as err:
        raise DTError(f"{setting}={path} is not an importable function: check the config") from err


def resolve_factory(factory: str | None) -> Callable[..., gym.Env]:
    """The function a dotted path names (None: `make_gym`), or a DTError that says how to fix the config."""
    return import_function(factory, "env.factory") if factory else make_gym


def action_size(space: gym.Space) -> tuple[bool, int]:
    """(discrete, size) of an action space: (True, n) for `Discrete`, (False, dims) for `Box`."""
    if isinstance(space, gym.spaces.Discrete):
        return True, int(space.n)
    if isinstance(space, gym.spaces.Box):
        return False, int(np.prod(space.shape))
    raise DTError(f"action space {space} is not supported: dt handles Discrete and Box actions")


def check_action_space(space: gym.Space, discrete: bool, act_dim: int, where: str) -> None:
    """The env's actions must be the data's (or the model's) kind and size; one line saying which differs."""
    env_discrete, env_size = action_size(space)
    kind = {True: "discrete", False: "continuous"}
    if env_discrete != discrete:
        raise DTError(
            f"{where} has {kind[discrete]} actions but the env's are {kind[env_discrete]} ({space}): "
            "pick an env and dataset with the same kind of actions"
        )
    if env_size != act_dim:
        unit = "actions" if discrete else "action dims"
        raise DTError(f"{where} has {act_dim} {unit} but the env has {env_size} ({space}): pick the matching env")


def make_env(env_id: str, max_episode_steps: int | None = None, factory: str | None = None) -> gym.Env:
    """One environment, built by the env config's factory (default: `gym.make`)."""
    return resolve_factory(factory)(env_id, max_episode_steps=max_episode_steps)
