"""Evaluation targets as numbers or as multiples of the dataset's returns: `eval.target_returns=[1.5max,3600]`.

The paper conditions on 1x to 5x the best return in the data; writing targets relative to the data makes one
config fit every dataset. A multiple is resolved once, from the dataset statistics the module stores in its
`data_spec` (so `dt.evaluate` resolves it from the checkpoint alone), and rounded to 4 significant digits so
metric names stay short (`eval/target_4834/return_mean`).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from dt.data.spec import DataSpec
from dt.errors import DTError

FORMS = "a number (3600), or a multiple of the dataset's best or mean episode return (1.5max, 0.5mean, max)"
_MULTIPLE = re.compile(r"^([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)?\s*\*?\s*(max|mean)$")
_STATS = {"max": "return_max", "mean": "return_mean"}


@dataclass(frozen=True)
class Target:
    written: str  # as the user wrote it: "3600", "1.5max"
    value: float  # the return the rollouts condition on


def _written(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def resolve_targets(values: Any, data_spec: DataSpec | None = None) -> list[Target]:
    """`eval.target_returns` (a list, or one entry for `-m` sweeps) -> Targets; one-line DTError when malformed."""
    if isinstance(values, (str, int, float)):
        values = [values]
    try:
        values = list(values or [])
    except TypeError:
        values = []
    if not values:
        raise DTError(f"eval.target_returns must be a non-empty list of targets, each {FORMS}")
    return [_resolve(value, data_spec) for value in values]


def _as_number(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _resolve(value: Any, data_spec: DataSpec | None) -> Target:
    written = _written(value)
    number = None if isinstance(value, bool) else _as_number(value)
    if number is None:
        match = _MULTIPLE.match(written)
        if not match:
            raise DTError(f"eval.target_returns entry '{written}' is not a target: each is {FORMS}")
        stat = getattr(data_spec, _STATS[match.group(2)], None)
        if stat is None:
            raise DTError(
                f"eval.target_returns entry '{written}' needs the dataset's {match.group(2)} return, which this "
                "checkpoint does not record: give the target as a number"
            )
        number = float(f"{float(match.group(1) or 1.0) * float(stat):.4g}")
    if not math.isfinite(number):
        raise DTError(f"eval.target_returns entry '{written}' is not finite: each is {FORMS}")
    return Target(written, number)
