"""The per-run results file, `<run folder>/results.json`: what `dt.report` reads (never W&B).

Written by the RolloutEval callback after every evaluation (kind "train") and by `dt.evaluate` (kind
"evaluate"), always to a temporary file renamed into place. Schema 1:

    {"schema": 1, "kind": "train" | "evaluate",
     "run": {run_name, experiment, env, env_id, dataset, mode, model, K, seed, pct_traj, ckpt},
     "dataset": {num_episodes, num_steps, return_mean, return_max, normalized_mean, normalized_max},
     "evals": [{step, epoch, target, target_return, return_mean, return_std, normalized_mean, length_mean,
                success_rate, episodes, returns}, ...]}

`target` is the target as written ("3600", "1.5max"), `target_return` the number it resolved to.
`success_rate` is the fraction of episodes whose return reaches the env config's `success_return` (null when
the env defines none).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from dt.rollout import RolloutSpec, TargetResult
from dt.targets import Target

SCHEMA = 1


def write_json_atomic(path: str | Path, payload: dict[str, Any]) -> None:
    """Temp file in the same folder, then rename: readers never see a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(payload, f, indent=1)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def dataset_name(dataset: dict[str, Any]) -> str | None:
    """The dataset as `run.dataset` records it: the Minari id, ids joined with "+", or the file path."""
    ids = dataset.get("id")
    if isinstance(ids, (list, tuple)):
        return "+".join(ids)
    return dataset.get("path") or ids


def success_return(module: Any) -> float | None:
    env = (module.hparams.get("run_config") or {}).get("env") or {}
    value = env.get("success_return")
    return None if value is None else float(value)


def success_rate(returns: np.ndarray, threshold: float | None) -> float | None:
    return None if threshold is None else float(np.mean(returns >= threshold))


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def run_block(module: Any, spec: RolloutSpec, experiment: str | None, ckpt: str | None) -> dict[str, Any]:
    """Who made the numbers, from the module's stored training config."""
    hp = module.hparams
    run = hp.get("run_config") or {}
    return {
        "run_name": run.get("run_name"),
        "experiment": experiment,
        "env": (run.get("env") or {}).get("name"),
        "env_id": spec.env_id,
        "dataset": dataset_name(run.get("dataset") or {}),
        "mode": (run.get("mode") or {}).get("name"),
        "model": hp.get("name") or (run.get("model") or {}).get("name"),
        "K": int(hp["context_len"]),
        "seed": run.get("seed"),
        "pct_traj": _float((run.get("dataset") or {}).get("pct_traj")),
        "ckpt": ckpt,
    }


def dataset_block(data_spec: dict[str, Any], spec: RolloutSpec) -> dict[str, Any]:
    """Size and returns of the training data (before %BC filtering), normalized as the evaluations are."""
    mean, best = _float(data_spec.get("return_mean")), _float(data_spec.get("return_max"))
    normalized = spec.normalize(np.array([mean, best])) if mean is not None and best is not None else None
    return {
        "num_episodes": data_spec.get("num_episodes"),
        "num_steps": data_spec.get("num_steps"),
        "return_mean": mean,
        "return_max": best,
        "normalized_mean": None if normalized is None else float(normalized[0]),
        "normalized_max": None if normalized is None else float(normalized[1]),
    }


def eval_rows(
    results: list[TargetResult], targets: list[Target], step: int, epoch: int, success: float | None
) -> list[dict[str, Any]]:
    """One row per target of one evaluation."""
    return [
        {
            "step": int(step),
            "epoch": int(epoch),
            "target": target.written,
            "target_return": float(r.target_return),
            "return_mean": float(r.returns.mean()),
            "return_std": float(r.returns.std()),
            "normalized_mean": None if r.normalized is None else float(r.normalized.mean()),
            "length_mean": float(r.lengths.mean()),
            "success_rate": success_rate(r.returns, success),
            "episodes": len(r.returns),
            "returns": [float(x) for x in r.returns],
        }
        for r, target in zip(results, targets, strict=True)
    ]


class ResultsFile:
    """The results.json of one run: the header once, evaluation rows appended and rewritten each time."""

    def __init__(self, path: str | Path, kind: str, run: dict[str, Any], dataset: dict[str, Any]) -> None:
        self.path = Path(path)
        self.payload: dict[str, Any] = {"schema": SCHEMA, "kind": kind, "run": run, "dataset": dataset, "evals": []}

    def keep_previous(self, up_to_step: int) -> None:
        """A resumed run keeps the rows its earlier part wrote up to the checkpoint it resumed from."""
        try:
            previous = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return
        if previous.get("schema") == SCHEMA and previous.get("run", {}).get("run_name") == self.run["run_name"]:
            self.payload["evals"] = [row for row in previous.get("evals", []) if row["step"] <= up_to_step]

    @property
    def run(self) -> dict[str, Any]:
        return self.payload["run"]

    def add(self, rows: list[dict[str, Any]]) -> None:
        steps = {row["step"] for row in rows}  # an evaluation repeated at one step replaces the earlier one
        self.payload["evals"] = [row for row in self.payload["evals"] if row["step"] not in steps] + rows
        write_json_atomic(self.path, self.payload)
