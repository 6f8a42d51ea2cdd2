"""One evaluation setup, the same for the training callback and `dt.evaluate`: targets, spec, precision, envs.

`EvalSettings` is the `eval:` config node as typed fields, with no defaults of its own: conf/train.yaml holds
them (and conf/evaluate.yaml says which to take from the checkpoint's training run).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import gymnasium as gym
import torch
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from dt.config import CONFIG_DIR
from dt.console import EvalProgress
from dt.envs import check_env, make_env_fn, make_vector_env
from dt.evaluation.compiled import CompiledPolicy, compile_backend
from dt.evaluation.precision import check_precision, module_policy, precision_name
from dt.evaluation.rollout import rollout_batched
from dt.evaluation.spec import RolloutSpec
from dt.evaluation.targets import Target, resolve_targets
from dt.metrics import TargetResult


@dataclass(frozen=True)
class EvalSettings:
    target_returns: Any  # as written: numbers or multiples of the dataset's returns ("1.5max"), see targets
    episodes: int  # per target
    vectorization: str  # sync | async
    precision: str  # auto | 32 | bf16, see precision
    max_ep_len: int | None  # None: the checkpoint's
    env_id: str | None  # None: the dataset's env, else the run's env.id
    action_selection: str  # sample | argmax (discrete actions)
    compile: bool | str  # false | true (inductor) | a torch.compile backend: see dt.evaluation.compiled
    seed: int  # env i of each target is reset with seed + i

    @classmethod
    def for_run(cls, run_config: Mapping[str, Any], given: Mapping[str, Any] | None = None) -> EvalSettings:
        """A checkpoint's settings (`dt.evaluate`, `dt.Policy`): each `given`'s (None: unset; `seed` too), else the
        training run's (`run_config`: its resolved config), else conf/train.yaml's (a run config without that
        key: an older checkpoint)."""
        names = [f.name for f in fields(cls)]
        trained = {**(run_config.get("eval") or {}), "seed": run_config.get("seed")}
        defaults = train_config_defaults(run_config, names)
        given = given or {}
        chosen = {
            k: given[k] if given.get(k) is not None else trained[k] if k in trained else defaults[k] for k in names
        }
        if chosen["seed"] is None:
            chosen["seed"] = defaults["seed"]
        return cls(**{**chosen, "seed": int(chosen["seed"])})


def train_config_defaults(run_config: Mapping[str, Any], names: list[str]) -> dict[str, Any]:
    """conf/train.yaml's `eval.<name>` for each name (`seed`: its top-level seed), its interpolations such as
    `${env.target_returns}` read from `run_config`; None where they cannot be resolved."""
    train = OmegaConf.load(Path(CONFIG_DIR) / "train.yaml")
    context = OmegaConf.create({"env": dict(run_config.get("env") or {}), "eval": train.eval, "seed": train.seed})
    defaults: dict[str, Any] = {}
    for name in names:
        try:
            value = OmegaConf.select(context, name if name == "seed" else f"eval.{name}")
        except OmegaConfBaseException:
            value = None
        defaults[name] = OmegaConf.to_container(value) if OmegaConf.is_config(value) else value
    return defaults


class Evaluation:
    """A module's evaluation setup: targets resolved from its data, its `RolloutSpec`, the precision checked;
    `open` builds the vector env (every target's episodes in one) and checks it against the model; `run`
    rolls out every target. Use as a context manager, or `close` it."""

    def __init__(self, module: Any, settings: EvalSettings) -> None:
        self.settings = settings
        self.targets: list[Target] = resolve_targets(settings.target_returns, module.data_spec)
        self.precision = check_precision(settings.precision)
        self.compile_backend = compile_backend(settings.compile)
        self._compiled: CompiledPolicy | None = None  # kept: its graphs serve every later run of the same module
        self.spec = RolloutSpec.from_module(
            module, action_selection=settings.action_selection, max_ep_len=settings.max_ep_len, env_id=settings.env_id
        )
        self.envs: gym.vector.VectorEnv | None = None

    def open(self) -> Evaluation:
        if self.envs is None:
            envs = make_vector_env(
                make_env_fn(self.spec), self.settings.episodes, self.settings.vectorization, len(self.targets)
            )
            try:
                check_env(envs, self.spec)
            except BaseException:
                envs.close()
                raise
            self.envs = envs
        return self

    def run(self, module: Any) -> list[TargetResult]:
        """Every target in one batch, each on the same start states; the module in eval mode meanwhile."""
        assert self.envs is not None, "open() first"
        values = [t.value for t in self.targets]
        was_training = module.training
        module.eval()  # dropout off: the policy is deterministic
        try:
            policy = self.policy(module)
            with EvalProgress(self.settings.episodes, values) as progress:
                return rollout_batched(
                    policy,
                    self.envs,
                    self.spec,
                    target_returns=values,
                    seed=self.settings.seed,
                    device=module.device,
                    progress=progress.hook,
                )
        finally:
            module.train(was_training)

    def policy(self, module: Any) -> Callable[..., torch.Tensor]:
        """The module's policy under the settings' precision; with eval.compile, its compiled form."""
        if self.compile_backend is None:
            return module_policy(module, self.precision)
        if self._compiled is None or self._compiled.module is not module:
            assert self.envs is not None, "open() first"
            self._compiled = CompiledPolicy(
                module, self.precision, self.spec.context_len, self.envs.num_envs, self.compile_backend
            )
        return self._compiled

    def precision_name(self, module: Any) -> str:
        return precision_name(module.device, self.precision)

    def close(self) -> None:
        if self.envs is not None:
            self.envs.close()
            self.envs = None

    def __enter__(self) -> Evaluation:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()
