"""`DataSpec`: what a model must remember of its dataset to act later, typed; saved in checkpoints as plain data.

The DataModule measures it (`DTDataModule.spec`), `dt.train` checks it against the env, the policy module keeps
it (`module.data_spec`; `hparams["data_spec"]` holds `to_dict()`), and evaluation reads the env id, reference
scores, timestep clamp and return statistics from it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from typing import Any


@dataclass(frozen=True)
class DataSpec:
    state_shape: tuple[int, ...]  # (S,) vector states, or (4, 84, 84) uint8 frame stacks
    act_dim: int  # action dims, or the number of discrete actions
    discrete: bool
    state_mean: tuple[float, ...]  # per state dim, over the whole dataset; empty for pixel stacks
    state_std: tuple[float, ...]
    env_id: str | None = None  # the env the data was collected in, when the dataset records it
    ref_min_score: float | None = None  # D4RL normalization: 0 = random, 100 = expert
    ref_max_score: float | None = None
    num_episodes: int | None = None
    num_steps: int | None = None
    max_timestep: int | None = None  # the longest episode's last timestep: evaluation clamps timesteps here
    return_mean: float | None = None  # episode returns over the whole dataset: targets such as `1.5max`
    return_max: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "state_shape", tuple(int(n) for n in self.state_shape))
        object.__setattr__(self, "state_mean", tuple(float(x) for x in self.state_mean))
        object.__setattr__(self, "state_std", tuple(float(x) for x in self.state_std))

    @property
    def state_dim(self) -> int:
        return math.prod(self.state_shape)

    @property
    def pixels(self) -> bool:
        return len(self.state_shape) > 1

    def with_act_dim(self, act_dim: int) -> DataSpec:
        return replace(self, act_dim=int(act_dim))

    def to_dict(self) -> dict[str, Any]:
        """Plain data (lists, numbers, strings) for checkpoints' hyperparameters."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | DataSpec) -> DataSpec:
        """From `to_dict()`, or from a checkpoint written before the DataSpec (its dict also held `state_dim`,
        and the oldest no `state_shape`)."""
        if isinstance(data, DataSpec):
            return data
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        if not values.get("state_shape"):
            values["state_shape"] = (int(data["state_dim"]),)
        return cls(**values)
