"""Checkpoints that survive crashes: atomic writes, a save on interruption, `ckpt_path=last` resolution."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from lightning.pytorch.loggers import WandbLogger
from lightning.pytorch.utilities.exceptions import SIGTERMException

from dt.errors import Diverged, DTError, warn
from dt.files import atomic_write

WANDB_ID_KEY = "dt_wandb_run_id"
RNG_KEY = "dt_rng_states"


class AtomicCheckpointIO(TorchCheckpointIO):
    """Checkpoints that are whole and finite: written through `files.atomic_write` (a crash or a full disk never
    leaves half of one), and never with NaN/inf weights (a diverged run keeps its last finite last.ckpt)."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: str | Path, storage_options: Any = None) -> None:
        bad = [name for name, t in checkpoint.get("state_dict", {}).items() if not bool(torch.isfinite(t).all())]
        if bad:
            step = int(checkpoint.get("global_step", -1))
            raise Diverged(
                f"the weights became NaN/inf by step {step} ({bad[0]}, ...), so {Path(path).name} was not written "
                "and the checkpoints hold the last finite weights: lower model.optim.lr or check the dataset",
                step,
            )
        with atomic_write(path, "wb") as f:
            torch.save(checkpoint, f)


class CheckpointOnInterrupt(L.Callback):
    """Save `last.ckpt` when a run is stopped by SIGTERM (SLURM preemption) or SIGINT, and remember the W&B id."""

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        progress = trainer.fit_loop.epoch_loop.batch_progress.current
        if isinstance(exception, KeyboardInterrupt) and progress.processed > progress.completed:
            # Ctrl-C in the step's end hooks: its row was computed but not logged yet; log it as Lightning would
            trainer._logger_connector.update_train_step_metrics()
        if isinstance(exception, (KeyboardInterrupt, SIGTERMException)) and trainer.checkpoint_callback:
            path = Path(trainer.checkpoint_callback.dirpath) / "last.ckpt"
            trainer.save_checkpoint(path, weights_only=False)  # the full training state, to resume
            print(f"dt: interrupted at step {trainer.global_step}; resume with ckpt_path={path}", flush=True)

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict) -> None:
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                checkpoint[WANDB_ID_KEY] = logger.version


class RestoreRNG(L.Callback):
    """Checkpoints carry the torch RNG state (dropout) and a resumed run restores it: resumes are exact.

    Lightning does not save it. Only torch's generators: dt draws nothing else from a global RNG (the sampler,
    the DataLoader and the evaluation envs have their own seeds). Restored when training restarts, so that
    nothing in between (building the model, the eval envs) shifts the stream.
    """

    def __init__(self) -> None:
        self._to_restore: dict[str, Any] | None = None

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict) -> None:
        checkpoint[RNG_KEY] = {
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        }

    def on_load_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict) -> None:
        self._to_restore = checkpoint.get(RNG_KEY)

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._to_restore is None:
            return
        torch.set_rng_state(self._to_restore["torch"])
        if self._to_restore["cuda"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(self._to_restore["cuda"])
        self._to_restore = None


def load_dt_checkpoint(path: str | Path) -> dict[str, Any]:
    """The checkpoint's contents, or a DTError when it is missing or not written by dt."""
    path = Path(path)
    if not path.is_file():
        raise DTError(f"checkpoint {path} does not exist: pass the path of a .ckpt file written by dt.train")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise DTError(f"{path} is not a readable checkpoint ({type(err).__name__}): pick another .ckpt") from err
    hparams = checkpoint.get("hyper_parameters", {}) if isinstance(checkpoint, dict) else {}
    if "data_spec" not in hparams or "state_dict" not in checkpoint:
        raise DTError(f"{path} is not a dt checkpoint (no data_spec): pass a .ckpt written by dt.train")
    return checkpoint


def resolve_ckpt_path(ckpt_path: str | None, output_dir: str | Path, run_name: str) -> str | None:
    """`last`: this run's newest intact checkpoint, else the newest of a run of the same name beside it.

    Intact: a damaged `last.ckpt` (truncated by a full disk before dt wrote atomically, copied half-way) is
    reported in one warning line and the newest readable epoch checkpoint of that run is used instead.
    """
    if not ckpt_path:
        return None
    if ckpt_path != "last":
        load_dt_checkpoint(ckpt_path)
        return str(ckpt_path)
    output_dir = Path(output_dir)
    if (output_dir / "checkpoints" / "last.ckpt").exists():
        return str(newest_intact(output_dir / "checkpoints")[0])
    for candidate in sorted(output_dir.parent.glob("*/checkpoints/last.ckpt"), key=lambda p: -p.stat().st_mtime):
        try:
            path, checkpoint = newest_intact(candidate.parent)
        except DTError as err:
            warn(str(err))
            continue
        if (checkpoint["hyper_parameters"].get("run_config") or {}).get("run_name") == run_name:
            return str(path)  # a multirun's siblings are other configurations
    raise DTError(
        f"ckpt_path=last found no checkpoints/last.ckpt of run '{run_name}' in {output_dir.parent}/*: "
        "pass ckpt_path=<file.ckpt>, or hydra.run.dir=<the run's folder>"
    )


def newest_intact(folder: Path) -> tuple[Path, dict[str, Any]]:
    """The first readable dt checkpoint of a run's checkpoints folder: last.ckpt, then the others, newest first."""
    others = sorted((p for p in folder.glob("*.ckpt") if p.name != "last.ckpt"), key=lambda p: -p.stat().st_mtime)
    damaged: list[str] = []
    for path in [folder / "last.ckpt", *others]:
        try:
            checkpoint = load_dt_checkpoint(path)
        except DTError as err:
            if path.exists():
                damaged.append(f"{path.name} ({type(err.__cause__).__name__ if err.__cause__ else 'not dt'})")
            continue
        if damaged:
            step = checkpoint.get("global_step")
            warn(f"{folder}: damaged {', '.join(damaged)}; resuming from {path.name} (step {step})")
        return path, checkpoint
    raise DTError(
        f"every checkpoint in {folder} is damaged ({', '.join(damaged)}): pass ckpt_path=<an intact .ckpt>, "
        "or start the run afresh without ckpt_path"
    )
