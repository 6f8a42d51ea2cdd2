"""The Lightning callback: target-return rollouts at every epoch end and at the end of `fit`."""

from __future__ import annotations

from typing import Any

import lightning as L
from lightning.pytorch.loggers import WandbLogger
from lightning.pytorch.utilities import rank_zero_info

from dt import metrics
from dt.console import format_table, summary, update_scores
from dt.errors import Diverged, DTError, user_error
from dt.evaluation import wandb_run
from dt.evaluation.settings import EvalSettings
from dt.evaluation.setup import Evaluation
from dt.metrics import TargetResult
from dt.results import RunResults


class RolloutEval(L.Callback):
    """Runs `episodes` episodes per target return, all targets in one vector env, and logs `eval/target_<R>/*`.

    Evaluates every `every_n_epochs` epochs and once more at the end of `fit` when the final weights were
    not evaluated yet; prints the target-vs-achieved table at the end of `fit`. Env i is seeded with
    seed + i for every target and every epoch, so the numbers move only with the weights.
    Env, reference scores, delayed mode and state noise come from the module (its checkpointed config).
    Targets may be multiples of the dataset's returns (`1.5max`, see dt.evaluation.targets).
    Every setting comes from the config's `eval:` node (conf/callbacks/default.yaml): no defaults here.
    """

    def __init__(self, *, every_n_epochs: int, **settings: Any) -> None:
        self.settings = EvalSettings.from_config(settings)  # every field of EvalSettings, from the config
        self.every_n_epochs = every_n_epochs
        self.evaluation: Evaluation | None = None
        self.results: list[TargetResult] = []
        self.run_results: RunResults | None = None  # <run folder>/results.json, rewritten per evaluation
        self.scores: dict[float, dict[str, dict]] = {}  # best and last per target, for the run's summary
        self._evaluated_step = -1

    @property
    def envs(self) -> Any:
        return None if self.evaluation is None else self.evaluation.envs

    def state_dict(self) -> dict[str, Any]:
        return {"scores": self.scores}  # a resumed run still knows its best scores

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.scores = state_dict.get("scores", {})

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        # Checked here, not in __init__: Hydra would wrap a DTError raised while instantiating.
        if not isinstance(self.every_n_epochs, int) or self.every_n_epochs < 1:
            raise DTError(f"eval.every_n_epochs={self.every_n_epochs} must be a positive integer")
        if self.evaluation is None:
            self.evaluation = Evaluation(pl_module, self.settings)  # targets, spec, precision: checked on every rank
        if not trainer.is_global_zero:
            return  # data-parallel runs evaluate on global rank 0 only (see _evaluate): no envs, no results file
        self.evaluation.open()
        if getattr(trainer.datamodule, "trajectories", None) is not None:
            self.run_results = RunResults.from_trainer(trainer, pl_module, self.evaluation.spec)
        targets = self.evaluation.targets
        for run in wandb_runs(trainer):
            run_config = pl_module.hparams.get("run_config") or {}
            wandb_run.prepare_run(run, run_config, [t.written for t in targets], [t.value for t in targets])

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.run_results is not None:
            self.run_results.keep_previous(up_to_step=trainer.global_step)  # resumed: the entries before

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if self.evaluation is not None:
            self.evaluation.close()

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        diverged = user_error(exception)
        if isinstance(diverged, Diverged) and self.run_results is not None and trainer.is_global_zero:
            self.run_results.mark_diverged(diverged.step, str(diverged))

    def _evaluate(self, trainer: L.Trainer, pl_module: L.LightningModule, epoch: int) -> dict[str, float]:
        pl_module.check_finite_weights()  # NaN weights are not evaluated (every rank: they hold the same weights)
        if not trainer.is_global_zero:  # data-parallel runs roll out on rank 0; the other ranks get its metrics
            self._evaluated_step = trainer.global_step
            return trainer.strategy.broadcast({}, src=0)
        assert self.evaluation is not None, "setup() runs first"
        self.results = self.evaluation.run(pl_module)
        self._evaluated_step = trainer.global_step
        if self.run_results is not None:
            written = [t.written for t in self.evaluation.targets]
            self.run_results.add(self.results, trainer.global_step, epoch, targets=written)
        update_scores(self.scores, self.results, trainer.global_step)
        for run in wandb_runs(trainer):
            wandb_run.log_return_histograms(run, self.results, trainer.global_step)
        logged = {k: v for r in self.results for k, v in r.logged("eval").items()}
        return trainer.strategy.broadcast(logged, src=0)  # to every rank (single process: as it is)

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
            logged = self._evaluate(trainer, pl_module, max(trainer.current_epoch - 1, 0))  # the last epoch run
            for logger in trainer.loggers:  # self.log is not allowed here
                logger.log_metrics(logged, step=trainer.global_step)
        if not self.results:
            return
        assert self.evaluation is not None
        spec, precision = self.evaluation.spec, self.evaluation.precision_name(pl_module)
        header = f"Evaluation after {trainer.global_step} steps ({spec.env_id}, {precision})"
        rank_zero_info(f"{header}:\n{format_table(self.results)}")
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                columns, rows = wandb_table(self.results)
                logger.log_table("eval/targets", columns=columns, data=rows)
                if self.run_results is not None:
                    logger.log_image("eval/achieved_vs_target", [achieved_vs_target_png(self.run_results)])


def wandb_runs(trainer: L.Trainer) -> list[Any]:
    """The W&B runs of the trainer's WandbLoggers (started on first access)."""
    return [logger.experiment for logger in trainer.loggers if isinstance(logger, WandbLogger)]


def achieved_vs_target_png(run_results: RunResults) -> str:
    """The run's achieved-vs-target plot, beside its results file (what `dt.report` draws for many runs)."""
    from dt.report.plots import achieved_vs_target

    document = run_results.document
    path = run_results.path.with_name("achieved_vs_target.png")
    return str(achieved_vs_target([document], lambda d: d["run"]["model"], lambda d: d["run"]["run_name"], path))


def wandb_table(results: list[TargetResult]) -> tuple[list[str], list[list[Any]]]:
    """The W&B table's columns (target, every metric, episodes) and its rows."""
    columns = ["target", *(m.name for m in metrics.METRICS), "episodes"]
    return columns, [[r.name, *r.values().values(), r.episodes] for r in results]
