"""dt: Decision Transformer research framework (Lightning + Hydra + Minari)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["Policy"]

if TYPE_CHECKING:
    from dt.evaluation.policy import Policy


def __getattr__(name: str) -> Any:
    """`from dt import Policy` imports torch, not Lightning or Hydra: those load with the checkpoint."""
    if name == "Policy":
        from dt.evaluation.policy import Policy

        return Policy
    raise AttributeError(f"module 'dt' has no attribute {name!r}")
