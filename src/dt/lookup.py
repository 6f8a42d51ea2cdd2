"""The dotted-path lookup of what configs and checkpoints name (env factories, dataset generators, policy classes),
by Hydra's own `get_method`/`get_class`. Apart from `dt.config` so that the data and env packages, which only
look things up, sit below the config composition (and its resolvers, which read dataset ids)."""

from __future__ import annotations

import logging
from typing import Any

from hydra.utils import get_class, get_method

from dt.errors import DTError


def locate(path: str, want: str = "function") -> Any:
    """The function (`want="function"`) or class a dotted path names, by Hydra's own lookup.

    Raises LookupError with Hydra's reason; callers turn it into a one-line DTError naming their setting.
    """
    hydra_log = logging.getLogger("hydra.utils")
    level = hydra_log.level
    hydra_log.setLevel(logging.CRITICAL)  # Hydra logs every failed lookup; the caller's one line says it instead
    try:
        return (get_class if want == "class" else get_method)(path)
    except (ImportError, AttributeError, ValueError) as err:
        raise LookupError(str(err)) from err
    finally:
        hydra_log.setLevel(level)


def import_function(path: str, setting: str) -> Any:
    """The function a dotted path names, or a DTError naming the config `setting` that holds the path."""
    try:
        return locate(path)
    except LookupError as err:
        raise DTError(f"{setting}={path} is not an importable function: check the config") from err
