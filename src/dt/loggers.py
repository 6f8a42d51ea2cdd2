"""Loggers that keep a run's curves when it resumes in its own folder (`conf/logger/csv.yaml`, `tensorboard.yaml`).

Lightning's CSVLogger deletes `metrics.csv` when it starts in a folder that has one, and its TensorBoardLogger
adds an event file whose steps overlap the older ones. Here a resumed run keeps what the earlier part logged
before the point it resumes from and logs its own after it: one curve, no step twice. A new run in a used
folder starts a new curve, as Lightning's loggers do.
"""

from __future__ import annotations

import csv
import math
import os
from typing import Any

from lightning.fabric.loggers.csv_logs import _ExperimentWriter
from lightning.pytorch.loggers import CSVLogger as _CSVLogger
from lightning.pytorch.loggers import Logger
from lightning.pytorch.loggers import TensorBoardLogger as _TensorBoardLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter
from lightning.pytorch.utilities import rank_zero_only

from dt.files import atomic_write


def resume_logs_at(loggers: list[Logger], step: int | None) -> None:
    """Tell dt's loggers the resumed checkpoint's `global_step` (None: a new run), before fit starts."""
    for logger in loggers:
        if isinstance(logger, TensorBoardLogger):
            logger.resume_step = step


def read_rows(path: str | os.PathLike) -> tuple[list[str], list[dict[str, str]]]:
    """A metrics.csv's header and complete rows (a last row cut short by a crash is dropped)."""
    try:
        with open(path, newline="") as f:
            reader = csv.DictReader(f)
            rows = [row for row in reader if None not in row and None not in row.values()]
            return list(reader.fieldnames or []), rows
    except FileNotFoundError:
        return [], []


class _KeepingWriter(ExperimentWriter):
    """Lightning's writer, except that an existing metrics.csv is trimmed, not deleted.

    Trimmed when the run writes its first rows: the old rows from that first row's (step, epoch) on are the
    ones this run logs again (a resume from step G logs from G; the epoch-end evaluation logged at G belongs to
    the epoch before and stays). A new run's first row is (0, 0): nothing old stays.
    """

    def __init__(self, log_dir: str) -> None:
        self._trimmed = False
        super().__init__(log_dir)

    def _check_log_dir_exists(self) -> None:  # Lightning's deletes metrics.csv here; trimmed at the first save
        pass

    def save(self) -> None:
        if self.metrics and not self._trimmed:
            self._trim_before(min(_position(row) for row in self.metrics))
        super().save()

    def _trim_before(self, first: tuple[float, float]) -> None:
        self._trimmed = True
        header, rows = read_rows(self.metrics_file_path)
        kept = [row for row in rows if _position(row) < first]
        if kept:
            self.metrics_keys = sorted(header)
            self._rewrite(self.metrics_keys, kept)
        elif os.path.isfile(self.metrics_file_path):
            os.remove(self.metrics_file_path)

    def _rewrite_with_new_header(self, fieldnames: list[str]) -> None:  # columns grew: the union, atomically
        self._rewrite(fieldnames, read_rows(self.metrics_file_path)[1])

    def _rewrite(self, fieldnames: list[str], rows: list[dict[str, str]]) -> None:
        with atomic_write(self.metrics_file_path, newline="") as f:
            writer = csv.DictWriter(f, fieldnames=fieldnames)
            writer.writeheader()
            writer.writerows(rows)


def _position(row: dict[str, Any]) -> tuple[float, float]:
    """(step, epoch) of a row read back (text) or about to be written (numbers). A row without an epoch counts as
    epoch 0; an unreadable step sorts last, so an old row like that is dropped."""

    def number(value: Any, missing: float) -> float:
        if value is None or value == "":
            return missing
        try:
            return float(value)
        except (TypeError, ValueError):
            return math.inf

    return number(row.get("step"), math.inf), number(row.get("epoch"), 0.0)


class CSVLogger(_CSVLogger):
    """`<save_dir>/<name>/metrics.csv`, kept across resumes (see the module docstring)."""

    @property
    def experiment(self) -> _ExperimentWriter:
        if self._experiment is None and rank_zero_only.rank == 0:
            os.makedirs(self.root_dir, exist_ok=True)
            self._experiment = _KeepingWriter(log_dir=self.log_dir)
        return super().experiment


class TensorBoardLogger(_TensorBoardLogger):
    """TensorBoard's own purge (`SummaryWriter(purge_step=...)`): TensorBoard hides the events of the folder's
    older event files from that step on. A resume from step G purges from G + 1: the epoch-end evaluation logged
    at G stays, and a train step G logged twice has the same value (resumes are exact). A new run purges all."""

    resume_step: int | None = None

    @property
    def experiment(self) -> Any:
        if self._experiment is None:
            self._kwargs.setdefault("purge_step", 0 if self.resume_step is None else self.resume_step + 1)
        return super().experiment
