"""Dataset ids, parsed in one place: run names, results files, the report's panels and the paper lookup.

A Minari id is `namespace/name-vN` (`sb3/hopper/medium-v0`); several ids train as one and are written
joined by `+` in results files (`sb3/hopper/medium-v0+sb3/hopper/expert-v0`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_VERSION = re.compile(r"-v\d+$")


def join_ids(ids: str | Iterable[str]) -> str:
    """One id, or several as `a+b` (the `dataset` field of results files)."""
    return ids if isinstance(ids, str) else "+".join(str(i) for i in ids)


def split_ids(ids: str | Iterable[str]) -> list[str]:
    """The ids of `a+b`, of a list, or of a single id."""
    return str(ids).split("+") if isinstance(ids, str) else [str(i) for i in ids]


def dataset_name(dataset_id: str, version: bool = True) -> str:
    """The last part of an id: `sb3/hopper/medium-v0` -> `medium-v0`, or `medium` without the version."""
    name = str(dataset_id).rstrip("/").rsplit("/", 1)[-1]
    return name if version else _VERSION.sub("", name)


def dataset_names(ids: str | Iterable[str], version: bool = True) -> list[str]:
    """`dataset_name` of every id in `a+b` or a list."""
    return [dataset_name(i, version) for i in split_ids(ids)]
