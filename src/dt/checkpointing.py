"""Checkpoints that survive crashes: atomic writes, a save on interruption, `ckpt_path=last` resolution."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from lightning.pytorch.loggers import WandbLogger
from lightning.pytorch.utilities.exceptions import SIGTERMException

from dt.errors import DTError

WANDB_ID_KEY = "dt_wandb_run_id"
RNG_KEY = "dt_rng_states"


class AtomicCheckpointIO(TorchCheckpointIO):
    """Write to a temporary file in the same folder, then rename: a crash never leaves a corrupt checkpoint."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: str | Path, storage_options: Any = None) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                torch.save(checkpoint, f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


class CheckpointOnInterrupt(L.Callback):
    """Save `last.ckpt` when a run is stopped by SIGTERM (SLURM preemption) or SIGINT, and remember the W&B id."""

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
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
    """`last`: this run's last.ckpt, else the newest last.ckpt beside it from a run of the same name."""
    if not ckpt_path:
        return None
    if ckpt_path != "last":
        load_dt_checkpoint(ckpt_path)
        return str(ckpt_path)
    output_dir = Path(output_dir)
    own = output_dir / "checkpoints" / "last.ckpt"
    if own.is_file():
        load_dt_checkpoint(own)
        return str(own)
    for candidate in sorted(output_dir.parent.glob("*/checkpoints/last.ckpt"), key=lambda p: -p.stat().st_mtime):
        run_config = load_dt_checkpoint(candidate)["hyper_parameters"].get("run_config") or {}
        if run_config.get("run_name") == run_name:  # a multirun's siblings are other configurations
            return str(candidate)
    raise DTError(
        f"ckpt_path=last found no checkpoints/last.ckpt of run '{run_name}' in {output_dir.parent}/*: "
        "pass ckpt_path=<file.ckpt>, or hydra.run.dir=<the run's folder>"
    )
