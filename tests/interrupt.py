"""Test-only callback: a run that interrupts itself at a known step, so interruption tests need no timing."""

from __future__ import annotations

import errno
import os
import signal

import lightning as L
import torch


class SignalAtStep(L.Callback):
    """Sends `signal_name` (SIGKILL, SIGTERM, SIGINT) to this process right after optimizer step `step`.

    Added on the command line: `+callbacks.interrupt._target_=tests.interrupt.SignalAtStep
    +callbacks.interrupt.step=45 +callbacks.interrupt.signal_name=SIGTERM`.
    """

    def __init__(self, step: int, signal_name: str) -> None:
        self.step, self.signal = step, signal.Signals[signal_name]
        if self.signal == signal.SIGINT:
            # As at a terminal: a run started from a background job inherits SIGINT ignored (bash does that).
            signal.signal(signal.SIGINT, signal.default_int_handler)

    def on_train_batch_end(self, trainer: L.Trainer, *args: object) -> None:
        if trainer.global_step == self.step:
            os.kill(os.getpid(), self.signal)  # delivered before os.kill returns: Python runs the handler next


def signal_overrides(step: int, signal_name: str) -> list[str]:
    target = "+callbacks.interrupt"
    return [
        f"{target}._target_=tests.interrupt.SignalAtStep",
        f"{target}.step={step}",
        f"{target}.signal_name={signal_name}",
    ]


class NaNWeightsAtStep(L.Callback):
    """Sets one weight to NaN right after optimizer step `step`: a run that diverges at a known step.

    `+callbacks.diverge._target_=tests.interrupt.NaNWeightsAtStep +callbacks.diverge.step=45`.
    """

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *args: object) -> None:
        if trainer.global_step == self.step:
            with torch.no_grad():
                next(pl_module.parameters()).view(-1)[0] = float("nan")


class DiskFullAfterStep(L.Callback):
    """From optimizer step `step` on, every fsync fails with ENOSPC, as on a disk that has just filled up.

    `+callbacks.disk_full._target_=tests.interrupt.DiskFullAfterStep +callbacks.disk_full.step=45`.
    """

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_end(self, trainer: L.Trainer, *args: object) -> None:
        if trainer.global_step == self.step:
            os.fsync = _no_space


def _no_space(fd: int) -> None:
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
