"""Train a Decision Transformer: `python -m dt.train env=hopper dataset=medium mode=delayed`."""

from __future__ import annotations

import errno
import sys

import hydra
import lightning as L
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from lightning.pytorch.loggers import Logger
from lightning.pytorch.strategies.launchers import _SubprocessScriptLauncher
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig, OmegaConf, open_dict

from dt.checkpointing import WANDB_ID_KEY, load_dt_checkpoint, resolve_ckpt_path
from dt.cli import check_group_choices, check_output_dir
from dt.config import CONFIG_DIR, instantiate
from dt.console import quiet_loggers, quiet_third_party, run_summary
from dt.envs import check_dataset_env
from dt.errors import DTError, report_errors
from dt.evaluation.callback import RolloutEval
from dt.files import WriteFailed
from dt.loggers import resume_logs_at
from dt.provenance import provenance, write_provenance
from dt.runlock import run_folder_lock


def build_loggers(cfg: DictConfig) -> list[Logger]:
    return quiet_loggers([instantiate(c) for c in (cfg.get("logger") or {}).values()])


def build_callbacks(cfg: DictConfig) -> list[L.Callback]:
    return [instantiate(c) for c in (cfg.get("callbacks") or {}).values()]


def continue_wandb_run(cfg: DictConfig, checkpoint: dict) -> None:
    """A resumed run logs into the W&B run its checkpoint came from."""
    run_id = checkpoint.get(WANDB_ID_KEY)
    if run_id and "wandb" in (cfg.get("logger") or {}):
        with open_dict(cfg):
            cfg.logger.wandb.id = run_id


def check_ddp_launch(trainer: L.Trainer) -> None:
    """DDP (trainer=ddp) starts ranks 1..N-1 by re-running the command line, which a `-m` sweep cannot do.

    Lightning's subprocess launcher re-runs `sys.argv` with `hydra.run.dir=<this run's folder>`: in a multirun the
    copies would start a sweep of their own in a new sweep folder. Under SLURM (one task per device, as the
    submitit launcher starts them) Lightning launches no process, and nothing is refused.
    """
    launcher, environment = trainer.strategy.launcher, getattr(trainer.strategy, "cluster_environment", None)
    if not isinstance(launcher, _SubprocessScriptLauncher) or launcher.num_processes < 2:
        return
    if environment is None or environment.creates_processes_externally:
        return
    if HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN:
        raise DTError(
            "trainer=ddp starts its other processes by re-running the command, which a -m sweep cannot do: "
            "run each configuration as its own command, or sweep with hydra/launcher=submitit_slurm and "
            "hydra.launcher.tasks_per_node=<devices>"
        )


def overrides() -> list[str]:
    """The command's Hydra overrides (`model.optim.lr=3e-4`, ...); empty outside a Hydra job."""
    return list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []


def train(cfg: DictConfig) -> L.Trainer:
    """Build data, module, loggers and trainer from a composed config, then fit (or resume); one run per folder."""
    with run_folder_lock(cfg.paths.output_dir):  # held already when started by the command (hydra.callbacks)
        try:
            return _train(cfg)
        except WriteFailed as err:  # a checkpoint or results.json: the run can go on from its last checkpoint
            raise WriteFailed(err.path, err.__cause__, "free disk space, then resume with ckpt_path=last") from err


def _train(cfg: DictConfig) -> L.Trainer:
    ckpt_path = resolve_ckpt_path(cfg.get("ckpt_path"), cfg.paths.output_dir, cfg.run_name)
    resumed = load_dt_checkpoint(ckpt_path) if ckpt_path else None
    if resumed is not None:
        continue_wandb_run(cfg, resumed)
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    datamodule = instantiate(cfg.data)
    datamodule.setup("fit")
    data_spec = check_dataset_env(datamodule.spec, cfg.env)
    # Versions and commit ride along in the run config: into every checkpoint and logger, and beside the logs.
    run_config = {**OmegaConf.to_container(cfg, resolve=True), "provenance": provenance(), "overrides": overrides()}
    if rank_zero_only.rank == 0:  # DDP (trainer=ddp): ranks > 0 run this too, in the same run folder
        write_provenance(cfg.paths.output_dir, run_config["provenance"])
    module = instantiate(
        cfg.model,
        data_spec=data_spec.to_dict(),  # plain data through Hydra; the module keeps it typed (module.data_spec)
        run_config=run_config,
        _recursive_=False,  # run_config holds `_target_` nodes to store, not to build
        _convert_="all",
    )
    loggers = build_loggers(cfg)
    resume_logs_at(loggers, resumed["global_step"] if resumed is not None else None)
    trainer: L.Trainer = instantiate(cfg.trainer, logger=loggers or False, callbacks=build_callbacks(cfg))
    check_ddp_launch(trainer)
    trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path)
    rollout = next((c for c in trainer.callbacks if isinstance(c, RolloutEval)), None)
    if trainer.is_global_zero:
        print(run_summary(trainer, cfg.paths.output_dir, rollout.scores if rollout else {}), flush=True)
    return trainer


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="train")
@report_errors
def _hydra_main(cfg: DictConfig) -> None:
    try:
        train(cfg)
    except OSError as err:  # unwritable output folder; a full disk while a logger appends (dt's files: WriteFailed)
        if err.errno == errno.ENOSPC:
            raise DTError(f"{err}: free disk space, then resume with ckpt_path=last") from err
        raise DTError(f"{err}: choose a writable folder with hydra.run.dir=...") from err
    finally:
        _finish_wandb()


@report_errors
def _check_command_line() -> None:
    argv = sys.argv[1:]
    check_group_choices(argv)
    if not {"--cfg", "-c", "--help", "-h", "--hydra-help", "--info"} & set(argv):
        check_output_dir(argv)


def main() -> None:
    quiet_third_party()
    _check_command_line()
    sys.argv += _rank_overrides(sys.argv[1:])
    _hydra_main()


def _rank_overrides(argv: list[str]) -> list[str]:
    """Ranks > 0 of a data-parallel run (trainer=ddp) log to the console only: the run folder's log is rank 0's.

    Lightning's DDP launcher re-runs this command for ranks 1..N-1 with `hydra.run.dir=<rank 0's run folder>`
    and `hydra.job.name=train_ddp_process_<rank>`, which would give each its own `<job name>.log` there.
    """
    if rank_zero_only.rank == 0 or any(a.startswith(("hydra/job_logging=", "+hydra/job_logging=")) for a in argv):
        return []
    return ["hydra/job_logging=stdout"]


def _finish_wandb() -> None:
    if "wandb" in sys.modules and sys.modules["wandb"].run is not None:
        sys.modules["wandb"].finish()


if __name__ == "__main__":
    main()
