"""Environments: one `make_env` for training checks, rollouts and `dt.evaluate`.

An env config names its Gymnasium id and, when plain `gym.make` is not enough (Atari preprocessing, say),
a `factory`: the dotted path of a function `(env_id, max_episode_steps) -> gym.Env` in this package.
dt's own environments are registered with Gymnasium when this package is imported.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

import gymnasium as gym

from dt.errors import DTError


def make_gym(env_id: str, max_episode_steps: int | None = None) -> gym.Env:
    """Plain `gym.make`, with the episode-length limit the rollout uses."""
    return gym.make(env_id, max_episode_steps=max_episode_steps)


def resolve_factory(factory: str | None) -> Callable[..., gym.Env]:
    """The function a dotted path names (None: `make_gym`), or a DTError that says how to fix the config."""
    if not factory:
        return make_gym
    module_name, _, name = factory.rpartition(".")
    try:
        return getattr(importlib.import_module(module_name), name)
    except (ImportError, AttributeError, ValueError) as err:
        raise DTError(f"env.factory={factory} is not an importable function: check the env config") from err


def make_env(env_id: str, max_episode_steps: int | None = None, factory: str | None = None) -> gym.Env:
    """One environment, built by the env config's factory (default: `gym.make`)."""
    return resolve_factory(factory)(env_id, max_episode_steps=max_episode_steps)
