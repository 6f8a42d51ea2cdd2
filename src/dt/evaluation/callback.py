"""Lightning callbacks: target-return rollouts at every epoch end and at the end of `fit`."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import lightning as L
from lightning.pytorch.loggers import WandbLogger
from lightning.pytorch.utilities import rank_zero_info

from dt.console import EvalProgress, update_scores
from dt.errors import DTError
from dt.evaluation.compiled import CompiledPolicy, compile_backend
from dt.evaluation.rollout import (
    RolloutSpec,
    TargetResult,
    check_env,
    format_table,
    make_env_fn,
    make_vector_env,
    module_policy,
    rollout_batched,
    target_name,
    uses_bf16,
)
from dt.evaluation.targets import Target, resolve_targets
from dt.results import RunResults


def evaluate_targets(
    module: Any,
    envs: gym.vector.VectorEnv,
    spec: RolloutSpec,
    target_returns: list[float],
    seed: int,
    precision: str = "auto",
    compile: bool | str = False,
) -> list[TargetResult]:
    """All targets in one batch (`envs` holds episodes x targets envs), each on the same start states; the
    module in eval mode meanwhile. `compile` (eval.compile): full-window calls compiled, see dt.evaluation.compiled."""
    was_training = module.training
    module.eval()  # dropout off: the policy is deterministic
    try:
        policy = module_policy(module, precision)
        backend = compile_backend(compile)
        if backend is not None:
            policy = CompiledPolicy(policy, spec.context_len, envs.num_envs, module.device, backend)
        with EvalProgress(envs.num_envs // len(target_returns), target_returns) as progress:
            return rollout_batched(policy, envs, spec, target_returns, seed, module.device, progress.hook)
    finally:
        module.train(was_training)


class RolloutEval(L.Callback):
    """Runs `episodes` episodes per target return, all targets in one vector env, and logs `eval/target_<R>/*`.

    Evaluates every `every_n_epochs` epochs and once more at the end of `fit` when the final weights were
    not evaluated yet; prints the target-vs-achieved table at the end of `fit`. Env i is seeded with
    seed + i for every target and every epoch, so the numbers move only with the weights.
    Env, reference scores, delayed mode and state noise come from the module (its checkpointed config).
    Targets may be multiples of the dataset's returns (`1.5max`, see dt.evaluation.targets).
    """

    def __init__(
        self,
        target_returns: list[float],
        episodes: int = 100,
        vectorization: str = "sync",
        max_ep_len: int | None = None,
        env_id: str | None = None,
        every_n_epochs: int = 1,
        seed: int = 0,
        precision: str = "auto",
        action_selection: str = "sample",
        compile: bool | str = False,
    ) -> None:
        self.target_returns = target_returns
        self.compile = compile
        self.action_selection = action_selection
        self.episodes, self.vectorization = episodes, vectorization
        self.max_ep_len, self.env_id = max_ep_len, env_id
        self.every_n_epochs, self.seed, self.precision = every_n_epochs, seed, str(precision)
        self.targets: list[Target] = []
        self.envs: gym.vector.VectorEnv | None = None
        self.spec: RolloutSpec | None = None
        self.results: list[TargetResult] = []
        self.run_results: RunResults | None = None  # <run folder>/results.json, rewritten per evaluation
        self.scores: dict[float, dict[str, dict]] = {}  # best and last per target, for the run's summary
        self._evaluated_step = -1

    def state_dict(self) -> dict[str, Any]:
        return {"scores": self.scores}  # a resumed run still knows its best scores

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.scores = state_dict.get("scores", {})

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        # Checked here, not in __init__: Hydra would wrap a DTError raised while instantiating.
        self.targets = resolve_targets(self.target_returns, pl_module.hparams.data_spec)
        if not isinstance(self.every_n_epochs, int) or self.every_n_epochs < 1:
            raise DTError(f"eval.every_n_epochs={self.every_n_epochs} must be a positive integer")
        uses_bf16(pl_module.device, self.precision)  # a DTError for an unknown precision, before training
        compile_backend(self.compile)  # and for an unknown eval.compile
        if not trainer.is_global_zero:
            return  # data-parallel runs evaluate on global rank 0 only (see _evaluate): no envs, no results file
        if self.envs is None:
            self.spec = RolloutSpec.from_module(pl_module, self.max_ep_len, self.env_id, self.action_selection)
            env_fn, targets = make_env_fn(self.spec), len(self.targets)  # every target's episodes step together
            self.envs = make_vector_env(env_fn, self.episodes, self.vectorization, targets)
            check_env(self.envs, self.spec)
        if getattr(trainer.datamodule, "trajectories", None) is not None:
            self.run_results = RunResults.from_trainer(trainer, pl_module, self.spec)

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.run_results is not None:
            self.run_results.keep_previous(up_to_step=trainer.global_step)  # resumed: the entries before

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if self.envs is not None:
            self.envs.close()
            self.envs = None

    def _evaluate(self, trainer: L.Trainer, pl_module: L.LightningModule, epoch: int) -> dict[str, float]:
        if not trainer.is_global_zero:  # data-parallel runs roll out on rank 0; the other ranks get its metrics
            self._evaluated_step = trainer.global_step
            return trainer.strategy.broadcast({}, src=0)
        assert self.envs is not None and self.spec is not None, "setup() runs first"
        values = [t.value for t in self.targets]
        self.results = evaluate_targets(
            pl_module, self.envs, self.spec, values, self.seed, self.precision, self.compile
        )
        self._evaluated_step = trainer.global_step
        if self.run_results is not None and trainer.is_global_zero:
            written = [t.written for t in self.targets]
            self.run_results.add(self.results, trainer.global_step, epoch, targets=written)
        update_scores(self.scores, self.results, trainer.global_step)
        metrics = {k: v for r in self.results for k, v in r.metrics().items()}
        return trainer.strategy.broadcast(metrics, src=0)  # to every rank (single process: as it is)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or (trainer.current_epoch + 1) % self.every_n_epochs:
            return
        for name, value in self._evaluate(trainer, pl_module, trainer.current_epoch).items():
            # every logger; monitorable by ModelCheckpoint. The value is rank 0's on every rank: "max" syncs it
            # exactly (and keeps Lightning from asking for sync_dist in data-parallel runs).
            pl_module.log(name, value, on_step=False, on_epoch=True, sync_dist=True, reduce_fx="max")
        rank_zero_info(f"epoch {trainer.current_epoch} eval: {summary(self.results)}")

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._evaluated_step != trainer.global_step:
            metrics = self._evaluate(trainer, pl_module, max(trainer.current_epoch - 1, 0))  # the last epoch run
            for logger in trainer.loggers:  # self.log is not allowed here
                logger.log_metrics(metrics, step=trainer.global_step)
        if not self.results:
            return
        precision = "bf16" if uses_bf16(pl_module.device, self.precision) else "fp32"
        header = f"Evaluation after {trainer.global_step} steps ({self.spec.env_id}, {precision})"
        rank_zero_info(f"{header}:\n{format_table(self.results)}")
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                logger.log_table("eval/targets", columns=TABLE_COLUMNS, data=table_rows(self.results))
                if self.run_results is not None:
                    logger.log_image("eval/achieved_vs_target", [achieved_vs_target_png(self.run_results)])


def achieved_vs_target_png(run_results: RunResults) -> str:
    """The run's achieved-vs-target plot, beside its results file (what `dt.report` draws for many runs)."""
    from dt.report.plots import achieved_vs_target

    document = run_results.document
    path = run_results.path.with_name("achieved_vs_target.png")
    return str(achieved_vs_target([document], lambda d: d["run"]["model"], lambda d: d["run"]["run_name"], path))


def summary(results: list[TargetResult]) -> str:
    """One line for the console: `target 3600: return 1523 ± 310, normalized 47.4, length 520; ...`."""
    parts = []
    for r in results:
        normalized = f", normalized {r.normalized.mean():.1f}" if r.normalized is not None else ""
        success = f", success {r.success_rate:.0%}" if r.success_rate is not None else ""
        parts.append(
            f"target {target_name(r.target_return)}: return {_number(r.returns.mean())} ± {_number(r.returns.std())}"
            f"{normalized}{success}, length {r.lengths.mean():.0f}"
        )
    return "; ".join(parts)


def _number(x: float) -> str:
    """Whole numbers for MuJoCo-sized returns, two decimals for small ones (Key-to-Door's 0/1)."""
    return f"{x:.0f}" if abs(x) >= 100 else f"{x:.2f}"


TABLE_COLUMNS = ["target", "return_mean", "return_std", "normalized_mean", "length_mean", "success_rate", "episodes"]


def table_rows(results: list[TargetResult]) -> list[list[Any]]:
    return [
        [
            target_name(r.target_return),
            float(r.returns.mean()),
            float(r.returns.std()),
            float(r.normalized.mean()) if r.normalized is not None else None,
            float(r.lengths.mean()),
            r.success_rate,
            len(r.returns),
        ]
        for r in results
    ]
