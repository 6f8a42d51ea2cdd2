"""The evaluation metrics, defined once: what one target's episodes become everywhere they are shown.

`METRICS` is the vocabulary. A `TargetResult` turns itself into it (`values`, `metrics`, `logged`), and every
reader goes through that: the loggers (`eval/target_<R>/<name>`), results.json's `evals` entries, the
console table and one-line summary, the W&B table and the benchmark. A new metric is one `Metric` here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Metric:
    name: str  # `eval/target_<R>/<name>` in the loggers, `<name>` in results.json
    of: Callable[[TargetResult], float | None]  # None: undefined for this run (no reference scores, say)
    header: str  # the console table's column
    cell: str  # format spec of a table cell: ".1f", ".1%"
    brief: Callable[[float], str]  # its part of the one-line summary, with the separator before it


def _number(x: float) -> str:
    """Whole numbers for MuJoCo-sized returns, two decimals for small ones (Key-to-Door's 0/1)."""
    return f"{x:.0f}" if abs(x) >= 100 else f"{x:.2f}"


def _normalized_mean(r: TargetResult) -> float | None:
    return None if r.normalized is None else float(r.normalized.mean())


METRICS: tuple[Metric, ...] = (
    Metric("return_mean", lambda r: float(r.returns.mean()), "return mean", ".1f", lambda v: f"return {_number(v)}"),
    Metric("return_std", lambda r: float(r.returns.std()), "std", ".1f", lambda v: f" ± {_number(v)}"),
    Metric("normalized_mean", _normalized_mean, "normalized", ".1f", lambda v: f", normalized {v:.1f}"),
    Metric("length_mean", lambda r: float(r.lengths.mean()), "length", ".1f", lambda v: f", length {v:.0f}"),
    Metric("success_rate", lambda r: r.success_rate, "success", ".1%", lambda v: f", success {v:.0%}"),
)


def target_name(target: float) -> str:
    """A target return as metric names write it: an integer when it is one (`target_3600`, `target_0.5`)."""
    return str(int(target)) if float(target).is_integer() else str(target)


def logged_name(target: float, metric: str, prefix: str = "eval") -> str:
    """How the loggers name one target's metric: `<prefix>/target_<R>/<metric>`."""
    return f"{prefix}/target_{target_name(target)}/{metric}"


@dataclass
class TargetResult:
    """The episodes rolled out for one target return."""

    target_return: float
    returns: np.ndarray  # (N,) undiscounted episode returns
    lengths: np.ndarray  # (N,) episode lengths
    normalized: np.ndarray | None  # (N,) normalized returns, None without reference scores
    success_return: float | None = None  # the env config's success threshold, if it has one

    @property
    def name(self) -> str:
        return target_name(self.target_return)

    @property
    def episodes(self) -> int:
        return len(self.returns)

    @property
    def success_rate(self) -> float | None:
        """Fraction of episodes whose return reaches `success_return`; None when the env defines none."""
        if self.success_return is None:
            return None
        return float((np.asarray(self.returns) >= self.success_return).mean())

    def values(self) -> dict[str, float | None]:
        """Every metric by name, None where undefined (results.json keeps the key)."""
        return {m.name: m.of(self) for m in METRICS}

    def metrics(self) -> dict[str, float]:
        """The defined metrics by name."""
        return {name: value for name, value in self.values().items() if value is not None}

    def logged(self, prefix: str = "eval") -> dict[str, float]:
        """The defined metrics as the loggers name them: `<prefix>/target_<R>/return_mean`, ..."""
        return {logged_name(self.target_return, name, prefix): value for name, value in self.metrics().items()}
