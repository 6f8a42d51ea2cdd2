"""One run per folder: `<run folder>/.dt.lock`, held with `flock` by the process that trains there.

Two commands with the same `hydra.run.dir` (a resubmitted SLURM job while the first still runs) would write
the same checkpoints and results file. The second now stops at once with one line naming the holder's PID.
The kernel releases an flock when its holder exits, also on kill -9 or a crash, so a lock file left behind
by a dead run is simply taken over. The lock is taken by the Hydra callback `RunFolderLock` before Hydra
writes anything into the folder (conf/train.yaml's `hydra.callbacks`), and again by `dt.train.train` (a no-op
when held) for callers that bypass `hydra.main`.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig, OmegaConf

from dt.errors import DTError, report_errors

LOCK_NAME = ".dt.lock"
_held: dict[Path, int] = {}  # run folder -> the open lock file's descriptor


def acquire(folder: str | Path) -> bool:
    """Lock `folder` for this process; False when this process holds it already. DTError when another does."""
    folder = Path(folder).resolve()
    if folder in _held:
        return False
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as err:
        holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        raise DTError(
            f"run folder {folder} is in use by another dt.train (PID {holder}): wait for it to end, or choose "
            "another folder with hydra.run.dir=..."
        ) from err
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    _held[folder] = fd
    return True


def release(folder: str | Path) -> None:
    fd = _held.pop(Path(folder).resolve(), None)
    if fd is not None:
        os.close(fd)  # closing the last descriptor releases the flock; the file stays (see module docstring)


@contextmanager
def run_folder_lock(folder: str | Path) -> Iterator[None]:
    """Hold the folder's lock for the block (rank 0 of a data-parallel run only: the others share its folder)."""
    taken = rank_zero_only.rank == 0 and acquire(folder)
    try:
        yield
    finally:
        if taken:
            release(folder)


class RunFolderLock(Callback):
    """Hydra callback: lock the run folder before Hydra writes `.hydra/` and the log into it."""

    @report_errors  # called by Hydra outside dt.train's error handling: one `dt: error:` line, exit 1
    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        # hydra.run.dir resolves as run_job will resolve it: `${now:...}` is cached in this config
        if rank_zero_only.rank == 0:
            acquire(OmegaConf.select(config, "hydra.run.dir"))

    @report_errors
    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:  # a multirun's job folder
        if rank_zero_only.rank == 0:
            acquire(config.hydra.runtime.output_dir)

    def on_job_end(self, config: DictConfig, **kwargs: Any) -> None:
        release(config.hydra.runtime.output_dir)
