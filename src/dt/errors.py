"""User-facing errors: one line that says what is wrong and what to do."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from typing import Any


class DTError(Exception):
    """Bad input or environment the user can fix; reported as one line without a traceback."""


class Diverged(DTError):
    """Training produced a non-finite loss or weights at `step`: stopped before they reach a checkpoint."""

    def __init__(self, message: str, step: int) -> None:
        super().__init__(message)
        self.step = step


def warn(message: str) -> None:
    """One `dt: warning: ...` line on stderr: something was wrong, dt worked around it, the run goes on."""
    print(f"dt: warning: {message}", file=sys.stderr, flush=True)


def user_error(err: BaseException | None) -> DTError | None:
    """The DTError behind `err`, also when Hydra's instantiate or Lightning wrapped it."""
    while err is not None:
        if isinstance(err, DTError):
            return err
        err = err.__cause__ or err.__context__
    return None


def report_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn a DTError into `dt: error: ...` on stderr and exit code 1 (traceback with HYDRA_FULL_ERROR=1)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except Exception as err:
            cause = user_error(err)
            if cause is None or os.environ.get("HYDRA_FULL_ERROR") == "1":
                raise
            print(f"dt: error: {cause}", file=sys.stderr)
            sys.exit(1)

    return wrapper
