"""What a run prints: no third-party noise, evaluation progress, and a closing summary of where everything is."""

from __future__ import annotations

import logging
import sys
import time
import warnings
from pathlib import Path

import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger, Logger, TensorBoardLogger, WandbLogger
from tqdm.auto import tqdm

from dt import metrics
from dt.metrics import TargetResult


class _DropLightningTips(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("💡 Tip")


def quiet_third_party() -> None:
    """The one place where known harmless third-party messages are silenced, each with the reason."""
    # Lightning's own code triggers torch's deprecation of LeafSpec (lightning/pytorch/utilities/_pytree.py).
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)", category=FutureWarning)
    # A mid-epoch resume is exact here: DTDataModule restarts the sampler at the restored step (data.py).
    warnings.filterwarnings("ignore", message=r".*your dataloader is not resumable")
    # Adverts for Lightning's cloud products, printed at every fit.
    logging.getLogger("lightning.pytorch.utilities.rank_zero").addFilter(_DropLightningTips())
    # dt.export: torch's ONNX exporter lists torchvision's ops it cannot register (dt uses none of them), and
    # notes that the inputs' batch axes share one name, which is what dt.export asks for.
    logging.getLogger("torch.onnx._internal.exporter._registration").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", message=r".*The axis name: batch will not be used")


def quiet_loggers(loggers: list[Logger]) -> list[Logger]:
    """WandbLogger always passes `anonymous=None`, which wandb (0.2x+) warns about although it is unset."""
    for logger in loggers:
        if isinstance(logger, WandbLogger):
            logger._wandb_init.pop("anonymous", None)
    return loggers


class EvalProgress:
    """Progress of one evaluation (every target's episodes in one batch): a tqdm bar on a terminal, else one line.

    `hook` is the `progress` callable for `rollout_batched`: it receives the number of episodes still running
    after each lockstep env step.
    """

    def __init__(self, episodes: int, targets: list[float], desc: str = "eval") -> None:
        self.total, self.targets = episodes * len(targets), targets
        self.bar = tqdm(total=self.total, desc=desc, unit="episode", leave=False, disable=None)
        self.env_steps = 0
        self._running = self.total
        self._start = time.perf_counter()

    def hook(self, running: int) -> None:
        self.env_steps += self._running  # every running episode took one step
        self.bar.update(self._running - running)
        self._running = running
        self.bar.set_postfix(running=running, env_steps=self.env_steps, refresh=False)
        if running == 0 and self.bar.disable:
            seconds = time.perf_counter() - self._start
            targets = ", ".join(f"{t:g}" for t in self.targets)
            print(
                f"eval targets {targets}: {self.total} episodes, {self.env_steps} env steps, {seconds:.1f} s",
                file=sys.stderr,
            )

    def __enter__(self) -> EvalProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.close()


def format_table(results: list[TargetResult]) -> str:
    """Target vs achieved, one row per target: a column per metric that any target defines (n/a elsewhere)."""
    values = [r.values() for r in results]
    shown = [m for m in metrics.METRICS if any(v[m.name] is not None for v in values)]
    widths = [max(len(m.header), 8) + 1 for m in shown]
    header = " ".join([f"{'target':>10}", *(f"{m.header:>{w}}" for m, w in zip(shown, widths, strict=True))])
    header += f" {'episodes':>8}"
    rows = [header, "-" * len(header)]
    for r, v in zip(results, values, strict=True):
        cells = [_cell(v[m.name], m.cell, w) for m, w in zip(shown, widths, strict=True)]
        rows.append(" ".join([f"{r.name:>10}", *cells, f"{r.episodes:8d}"]))
    return "\n".join(rows)


def _cell(value: float | None, spec: str, width: int) -> str:
    return f"{'n/a' if value is None else format(value, spec):>{width}}"


def summary(results: list[TargetResult]) -> str:
    """One line for the console: `target 3600: return 1523 ± 310, normalized 47.4, length 520; ...`."""
    parts = []
    for r in results:
        values = r.values()
        briefs = "".join(m.brief(values[m.name]) for m in metrics.METRICS if values[m.name] is not None)
        parts.append(f"target {r.name}: {briefs.removeprefix(', ')}")
    return "; ".join(parts)


def update_scores(scores: dict[float, dict[str, dict]], results: list[TargetResult], step: int) -> None:
    """Per target return: the `last` evaluation and the `best` one (mean return, normalized mean, step)."""
    for r in results:
        values = r.values()
        score = {"return": values["return_mean"], "normalized": values["normalized_mean"], "step": step}
        entry = scores.setdefault(r.target_return, {"best": score})
        if score["return"] >= entry["best"]["return"]:
            entry["best"] = score
        entry["last"] = score


def _score(score: dict) -> str:
    normalized = f" (normalized {score['normalized']:.1f})" if score["normalized"] is not None else ""
    return f"return {score['return']:.1f}{normalized} at step {score['step']}"


def run_summary(trainer: L.Trainer, output_dir: str | Path, scores: dict[float, dict[str, dict]]) -> str:
    """Closing lines: eval scores (best and last per target), checkpoints, logs, the W&B run and how to upload it."""
    lines = [f"dt: done after {trainer.global_step} steps: {output_dir}"]
    for target, entry in scores.items():
        lines.append(f"  target {target:g}: best {_score(entry['best'])}; last {_score(entry['last'])}")
    for callback in trainer.checkpoint_callbacks:
        if isinstance(callback, ModelCheckpoint) and callback.dirpath:
            lines.append(f"  checkpoints: {callback.dirpath} (resume: ckpt_path=last)")
    log_file = Path(output_dir) / "train.log"
    if log_file.is_file():
        lines.append(f"  log: {log_file}")
    for logger in trainer.loggers:
        if isinstance(logger, CSVLogger):
            lines.append(f"  metrics: {Path(logger.log_dir) / 'metrics.csv'}")
        elif isinstance(logger, TensorBoardLogger):
            lines.append(f"  tensorboard: tensorboard --logdir {logger.log_dir}")
        elif isinstance(logger, WandbLogger):
            run = logger.experiment
            run_dir = Path(run.dir).parent  # <save_dir>/wandb/<offline-run-...>/files
            if run.settings.mode == "offline":
                lines.append(f"  W&B (offline): {run_dir}; upload: wandb sync {run_dir}")
            else:
                lines.append(f"  W&B: {run.url}")
    return "\n".join(lines)
