"""Test-only callback: records, per rank, the window starts each training batch was gathered from."""

from __future__ import annotations

import json
from pathlib import Path

import lightning as L

from dt.evaluation.callback import RolloutEval


class RecordWindows(L.Callback):
    """Writes `<folder>/rank<global rank>.json`: the starts of every batch the DataLoader gathered, in order,
    and what this rank knows of the evaluations (its logged `eval/` metrics, its ModelCheckpoint's best score).

    Added on the command line: `+callbacks.record_windows._target_=tests.windows.RecordWindows
    +callbacks.record_windows.folder=<folder>`. It wraps the training set's `__getitems__` (what the DataLoader
    calls with each batch of sampled starts), so it sees exactly the windows the module trains on.
    """

    def __init__(self, folder: str) -> None:
        self.folder = Path(folder)
        self.batches: list[list[int]] = []

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        train_set = trainer.datamodule.train_set
        gather = train_set.__getitems__

        def recording_gather(starts: list[int]):
            self.batches.append([int(s) for s in starts])
            return gather(starts)

        train_set.__getitems__ = recording_gather  # this instance only

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        rollout = next((c for c in trainer.callbacks if isinstance(c, RolloutEval)), None)
        best = trainer.checkpoint_callback.best_model_score if trainer.checkpoint_callback else None
        record = {
            "rank": trainer.global_rank,
            "world_size": trainer.world_size,
            "global_step": trainer.global_step,
            "num_steps": len(trainer.datamodule.train_set),
            "eval_envs_built": rollout is not None and rollout.envs is not None,
            "eval_metrics": {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("eval/")},
            "best_model_score": None if best is None else float(best),
            "batches": self.batches,
        }
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / f"rank{trainer.global_rank}.json").write_text(json.dumps(record))


def record_overrides(folder: Path) -> list[str]:
    target = "+callbacks.record_windows"
    return [f"{target}._target_=tests.windows.RecordWindows", f"{target}.folder={folder}"]
