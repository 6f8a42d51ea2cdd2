"""One evaluation setup, the same for the training callback and `dt.evaluate`: targets, spec, precision, envs
(its settings: `dt.evaluation.settings.EvalSettings`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gymnasium as gym
import torch

from dt.console import EvalProgress
from dt.envs import check_env, make_env_fn, make_vector_env
from dt.evaluation.compiled import CompiledPolicy, compile_backend
from dt.evaluation.precision import check_precision, module_policy, precision_name
from dt.evaluation.rollout import rollout_batched
from dt.evaluation.settings import EvalSettings
from dt.evaluation.spec import RolloutSpec
from dt.evaluation.targets import Target, resolve_targets
from dt.metrics import TargetResult


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
