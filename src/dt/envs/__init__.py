"""Environments: every env factory and check, for training checks, rollouts and `dt.evaluate`.

An env config names its Gymnasium id and, when plain `gym.make` is not enough (Atari preprocessing, say),
a `factory`: the dotted path of a function `(env_id, max_episode_steps) -> gym.Env` in this package.
dt's own environments are registered with Gymnasium when this package is imported.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any, Protocol

import gymnasium as gym
import numpy as np

from dt.errors import DTError
from dt.lookup import import_function

if TYPE_CHECKING:
    from dt.data.spec import DataSpec

VECTORIZATIONS = ("sync", "async")

# dt's own environments, registered once per process (`gym.make("dt/KeyToDoor-v0")` after `import dt.envs`).
if "dt/KeyToDoor-v0" not in gym.registry:
    gym.register(id="dt/KeyToDoor-v0", entry_point="dt.envs.key_to_door:KeyToDoorEnv", max_episode_steps=26)


def make_gym(env_id: str, max_episode_steps: int | None = None) -> gym.Env:
    """Plain `gym.make`, with the episode-length limit the rollout uses."""
    return gym.make(env_id, max_episode_steps=max_episode_steps)


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


class EnvSpec(Protocol):
    """What the env factories and checks read from a rollout's spec (`dt.evaluation.spec.RolloutSpec`)."""

    @property
    def env_id(self) -> str: ...
    @property
    def max_ep_len(self) -> int: ...
    @property
    def env_factory(self) -> str | None: ...
    @property
    def obs_shape(self) -> tuple[int, ...]: ...
    @property
    def discrete(self) -> bool: ...
    @property
    def act_dim(self) -> int: ...


def make_env_fn(spec: EnvSpec) -> Callable[[], gym.Env]:
    """A picklable `() -> env` (async vector envs build theirs in subprocesses) with the spec's episode limit."""
    return partial(make_env, spec.env_id, max_episode_steps=spec.max_ep_len, factory=spec.env_factory)


def make_vector_env(
    env_fn: Callable[[], gym.Env], episodes: int, vectorization: str = "sync", targets: int = 1
) -> gym.vector.VectorEnv:
    """`episodes` x `targets` copies, one per episode of each target (the rollout steps them all together);
    async runs each in its own process (uses the cores, costs pipe round trips)."""
    if vectorization not in VECTORIZATIONS:
        raise DTError(f"eval.vectorization={vectorization} must be sync or async")
    if not isinstance(episodes, int) or episodes < 1:
        raise DTError(f"eval.episodes={episodes} must be a positive integer")
    num_envs = episodes * targets
    # NEXT_STEP: the step after an episode ends resets that env; the rollout never reads it.
    mode = gym.vector.AutoresetMode.NEXT_STEP
    if vectorization == "async":
        return gym.vector.AsyncVectorEnv([env_fn] * num_envs, autoreset_mode=mode)
    return gym.vector.SyncVectorEnv([env_fn] * num_envs, autoreset_mode=mode)


def check_env(env: gym.Env | gym.vector.VectorEnv, spec: EnvSpec) -> None:
    """Fail early, with the fix, when the env does not match the model's state and action sizes."""
    is_vector = isinstance(env, gym.vector.VectorEnv)
    obs_space = env.single_observation_space if is_vector else env.observation_space
    act_space = env.single_action_space if is_vector else env.action_space
    if obs_space.shape != spec.obs_shape:
        raise DTError(
            f"env {spec.env_id} has observations {obs_space.shape} but the model expects {spec.obs_shape}: "
            "set eval.env_id to the dataset's environment"
        )
    check_action_space(act_space, spec.discrete, spec.act_dim, "the model")


def check_dataset_env(spec: DataSpec, env_cfg: Any) -> DataSpec:
    """The dataset must come from the configured env, with its observation and action sizes.

    Returns the data spec to build the model from: a discrete dataset's action count is the env's `n`
    (a dataset may never take the highest actions; `max + 1` would then undercount them).
    """
    if spec.env_id and spec.env_id != env_cfg.id:
        raise DTError(
            f"the dataset was collected in {spec.env_id} but env={env_cfg.name} is {env_cfg.id}: pick its env"
        )
    env = make_env(env_cfg.id, factory=env_cfg.get("factory"))
    obs_shape, act_space = env.observation_space.shape, env.action_space
    env.close()
    state_shape = spec.state_shape
    if spec.pixels != (len(obs_shape) > 1):
        data_kind, env_kind = ("pixel frames", "vector states") if spec.pixels else ("vector states", "pixels")
        raise DTError(
            f"the dataset holds {data_kind} {state_shape} but env={env_cfg.name} ({env_cfg.id}) has {env_kind} "
            f"{obs_shape}: pick the dataset's env (Atari data: env=breakout|qbert|pong|seaquest)"
        )
    if obs_shape != state_shape:
        what = f"{state_shape[0]}-dim" if len(state_shape) == 1 else str(state_shape)
        raise DTError(f"dataset has {what} observations, env {env_cfg.id} has {obs_shape}: pick the dataset's env")
    env_discrete, env_size = action_size(act_space)
    if spec.discrete and env_discrete and spec.act_dim <= env_size:
        spec = spec.with_act_dim(env_size)
    check_action_space(act_space, spec.discrete, spec.act_dim, "the dataset")
    return spec
