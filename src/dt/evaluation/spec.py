"""What a rollout needs besides the policy, read from a checkpoint's module: `RolloutSpec.from_module`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from dt.data.spec import DataSpec
from dt.errors import DTError

ACTION_SELECTIONS = ("sample", "argmax")


@dataclass(frozen=True)
class RolloutSpec:
    """The env, the model's sizes and the evaluation mode. `action_selection` has no default: it is the config's
    `eval.action_selection` (conf/train.yaml), which `from_module`'s callers pass on."""

    env_id: str
    state_dim: int
    act_dim: int
    discrete: bool
    context_len: int
    max_ep_len: int  # episode length limit at evaluation
    timestep_limit: int  # the model's timestep embedding size: timesteps are clipped below it
    action_selection: str  # discrete actions: "sample" from the softmax or take the "argmax"
    delayed: bool = False  # the target stays fixed instead of being decremented by the rewards
    init_state_noise: float = 0.0  # std of Gaussian noise on the initial state the model sees
    ref_min_score: float | None = None
    ref_max_score: float | None = None
    env_factory: str | None = None  # dotted path of the env config's factory; None: gym.make
    success_return: float | None = None  # an episode whose return reaches this counts as a success
    state_shape: tuple[int, ...] | None = None  # (4, 84, 84) for pixel stacks; None: (state_dim,)

    def __post_init__(self) -> None:
        if self.action_selection not in ACTION_SELECTIONS:
            choices = ", ".join(ACTION_SELECTIONS)
            raise DTError(f"eval.action_selection={self.action_selection} must be one of {choices}")

    @property
    def samples(self) -> bool:
        return self.discrete and self.action_selection == "sample"

    @property
    def obs_shape(self) -> tuple[int, ...]:
        return tuple(self.state_shape or (self.state_dim,))

    @property
    def obs_dtype(self) -> torch.dtype:
        """Pixel stacks stay uint8 (the model scales them); vectors become float32."""
        return torch.uint8 if len(self.obs_shape) > 1 else torch.float32

    @classmethod
    def from_module(
        cls, module: Any, *, action_selection: str, max_ep_len: int | None = None, env_id: str | None = None
    ) -> RolloutSpec:
        """Settings of a DTModule: env and reference scores from its dataset first, else its run config's env;
        `max_ep_len`/`env_id` None: the checkpoint's own."""
        hp = module.hparams
        data_spec = DataSpec.from_dict(hp["data_spec"])
        last = data_spec.max_timestep  # None in checkpoints older than the clamp
        run = hp.get("run_config") or {}
        env_cfg, mode_cfg = run.get("env") or {}, run.get("mode") or {}
        env_id = env_id or data_spec.env_id or env_cfg.get("id")
        if not env_id:
            raise DTError("the checkpoint names no environment: set eval.env_id=<gymnasium id>")
        # Prefer the dataset's reference scores: they belong to the data the policy learned from.
        ref_min, ref_max = data_spec.ref_min_score, data_spec.ref_max_score
        if ref_min is None or ref_max is None:
            ref_min, ref_max = env_cfg.get("ref_min_score"), env_cfg.get("ref_max_score")
        return cls(
            env_id=env_id,
            state_dim=data_spec.state_dim,
            act_dim=data_spec.act_dim,
            discrete=data_spec.discrete,
            context_len=int(hp["context_len"]),
            max_ep_len=int(max_ep_len or hp["max_ep_len"]),
            # Clamp at the dataset's longest episode: later timestep embeddings were never trained.
            timestep_limit=min(int(hp["max_ep_len"]), int(hp["max_ep_len"] if last is None else last) + 1),
            action_selection=str(action_selection),
            delayed=bool(mode_cfg.get("delayed", False)),
            init_state_noise=float(mode_cfg.get("init_state_noise", 0.0) or 0.0),
            ref_min_score=ref_min,
            ref_max_score=ref_max,
            env_factory=env_cfg.get("factory"),
            success_return=env_cfg.get("success_return"),
            state_shape=data_spec.state_shape,
        )

    def normalize(self, returns: np.ndarray) -> np.ndarray | None:
        """D4RL normalized score, 0 = random and 100 = expert; None without reference scores."""
        if self.ref_min_score is None or self.ref_max_score is None:
            return None
        return 100.0 * (returns - self.ref_min_score) / (self.ref_max_score - self.ref_min_score)
