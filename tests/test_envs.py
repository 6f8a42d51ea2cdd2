"""The env seam: `make_env` builds plain Gymnasium ids or calls the env config's factory."""

from __future__ import annotations

import pytest

from dt.envs import make_env, resolve_factory
from dt.errors import DTError


def test_plain_gymnasium_id_with_episode_limit() -> None:
    env = make_env("Hopper-v5", max_episode_steps=7)
    env.reset(seed=0)
    steps = 0
    while True:
        steps += 1
        _, _, terminated, truncated, _ = env.step(env.action_space.sample() * 0)
        if terminated or truncated:
            break
    env.close()
    assert steps <= 7 and (truncated or terminated)


def test_factory_by_dotted_path() -> None:
    env = make_env("Hopper-v5", factory="dt.envs.make_gym")
    assert env.observation_space.shape == (11,)
    env.close()


def test_unknown_factory_is_a_user_error(caplog: pytest.LogCaptureFixture) -> None:
    with pytest.raises(DTError, match="env.factory=dt.envs.nope"):
        resolve_factory("dt.envs.nope")
    assert not caplog.records  # Hydra's lookup logs its own error line: silenced, the DTError is the one line
