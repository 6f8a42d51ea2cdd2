"""The per-run results file, `<run folder>/results.json`: written by training and `dt.evaluate`, read by `dt.report`.

Schema 1 (the contract between the training callback, `dt.evaluate` and `dt.report`):
`{"schema": 1, "kind": "train"|"evaluate", "run": {...}, "dataset": {...}, "evals": [{...}, ...]}`,
one entry in `evals` per (evaluation step, target); a training run stopped by NaN/inf adds
`"diverged": {"step": N, "message": ...}`. Files are replaced atomically (temp file + rename), so
a reader never sees half of one.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from dt.data.ids import join_ids
from dt.data.spec import DataSpec
from dt.errors import DTError
from dt.files import atomic_write
from dt.metrics import TargetResult

SCHEMA = 1
FILENAME = "results.json"
RUN_KEYS = (
    "run_name", "experiment", "env", "env_id", "dataset", "mode", "model", "K", "seed", "pct_traj", "ckpt", "overrides"
)  # fmt: skip


def write_json_atomic(path: str | Path, document: dict[str, Any]) -> None:
    """The whole document or the previous file: never half of one (`files.atomic_write`)."""
    with atomic_write(path) as f:
        json.dump(document, f, indent=1)


def model_name(model_config: dict[str, Any]) -> str:
    """`dt` or `bc`: the config's `name` when it has one, else from the module class (`BCModule` -> bc)."""
    if model_config.get("name"):
        return str(model_config["name"])
    class_name = str(model_config.get("_target_", "DTModule")).rsplit(".", 1)[-1]
    return class_name.removesuffix("Module").lower() or "dt"


def run_info(run_config: dict[str, Any], ckpt: str | None = None, experiment: str | None = None) -> dict[str, Any]:
    """The `run` block from a resolved training config (a checkpoint's `run_config`). `overrides`: the training
    command's Hydra overrides, so that dt.report keeps runs apart that differ in anything (e.g. `model.optim.lr`)."""
    env, dataset, mode = run_config.get("env") or {}, run_config.get("dataset") or {}, run_config.get("mode") or {}
    dataset_id = dataset.get("id") or dataset.get("path")
    dataset_id = join_ids(dataset_id) if dataset_id is not None else None
    return {
        "run_name": run_config.get("run_name"),
        "experiment": experiment,
        "env": env.get("name"),
        "env_id": env.get("id"),
        "dataset": dataset_id,
        "mode": mode.get("name", "normal"),
        "model": model_name(run_config.get("model") or {}),
        "K": int(run_config.get("K", 0)),
        "seed": int(run_config.get("seed", 0)),
        "pct_traj": float(dataset.get("pct_traj", 1.0)),
        "ckpt": ckpt,
        "overrides": list(run_config.get("overrides") or []),
    }


def dataset_info(returns: np.ndarray, num_steps: int, normalize: Any) -> dict[str, Any]:
    """The `dataset` block: episode returns summarized, normalized with `normalize` (None: not normalizable)."""
    returns = np.asarray(returns, dtype=np.float64)
    normalized = normalize(returns)
    return {
        "num_episodes": len(returns),
        "num_steps": int(num_steps),
        "return_mean": float(returns.mean()),
        "return_max": float(returns.max()),
        "normalized_mean": float(normalized.mean()) if normalized is not None else None,
        "normalized_max": float(normalized.max()) if normalized is not None else None,
    }


def dataset_info_from_spec(data_spec: DataSpec, normalize: Any) -> dict[str, Any]:
    """The `dataset` block from a checkpoint's `data_spec` (its stored return statistics), for `dt.evaluate`."""
    mean, best = data_spec.return_mean, data_spec.return_max
    normalized = normalize(np.array([mean, best], dtype=np.float64)) if mean is not None and best is not None else None
    return {
        "num_episodes": data_spec.num_episodes,
        "num_steps": data_spec.num_steps,
        "return_mean": None if mean is None else float(mean),
        "return_max": None if best is None else float(best),
        "normalized_mean": float(normalized[0]) if normalized is not None else None,
        "normalized_max": float(normalized[1]) if normalized is not None else None,
    }


def eval_entry(result: TargetResult, step: int, epoch: int, target: str) -> dict[str, Any]:
    """One `evals` entry: every metric of `dt.metrics` (None where undefined), the episode count and returns."""
    return {
        "step": int(step),
        "epoch": int(epoch),
        "target": target,
        "target_return": float(result.target_return),
        **result.values(),
        "episodes": result.episodes,
        "returns": np.asarray(result.returns, dtype=np.float64).tolist(),
    }


def load_results(path: str | Path) -> dict[str, Any]:
    """A results file, checked for the keys `dt.report` reads; DTError names the file otherwise."""
    path = Path(path)
    try:
        document = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise DTError(f"{path} is not a readable results file ({err}): delete it or rerun that run") from err
    if not isinstance(document, dict) or document.get("schema") != SCHEMA:
        raise DTError(f"{path} is not a dt results file of schema {SCHEMA}: delete it or rerun that run")
    missing = [key for key in ("kind", "run", "dataset", "evals") if key not in document]
    if missing:
        raise DTError(f"{path} lacks {missing}: delete it or rerun that run")
    return document


class RunResults:
    """A training run's results file: rewritten with every evaluation (see `dt.evaluation.callback.RolloutEval`)."""

    def __init__(self, path: str | Path, run: dict[str, Any], dataset: dict[str, Any]) -> None:
        self.path = Path(path)
        self.document: dict[str, Any] = {"schema": SCHEMA, "kind": "train", "run": run, "dataset": dataset, "evals": []}

    @classmethod
    def from_trainer(cls, trainer: Any, pl_module: Any, spec: Any) -> RunResults:
        """Run settings from the module's stored config, dataset returns from the datamodule."""
        run_config = pl_module.hparams.get("run_config") or {}
        traj = trainer.datamodule.trajectories
        dataset = dataset_info(traj.returns, traj.num_steps, spec.normalize)
        run = run_info(run_config, experiment=run_config.get("experiment_name"))
        return cls(Path(trainer.default_root_dir) / FILENAME, run, dataset)

    def keep_previous(self, up_to_step: int) -> None:
        """A resumed run keeps the entries its earlier part wrote, up to the step it resumed from."""
        try:
            previous = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return
        if (
            previous.get("schema") == SCHEMA
            and previous.get("run", {}).get("run_name") == self.document["run"]["run_name"]
        ):
            self.document["evals"] = [e for e in previous.get("evals", []) if e["step"] <= up_to_step]

    def mark_diverged(self, step: int, message: str) -> None:
        """The run stopped on NaN/inf at `step` (`"diverged": {"step", "message"}`; evals keep the finite ones)."""
        self.document["diverged"] = {"step": int(step), "message": message}
        write_json_atomic(self.path, self.document)

    def add(
        self,
        results: list[TargetResult],
        step: int,
        epoch: int,
        ckpt: str | None = None,
        targets: list[str] | None = None,
    ) -> None:
        """Append one evaluation (every target; `targets` as the user wrote them) and rewrite the file."""
        written = targets or [r.name for r in results]
        evals = self.document["evals"]
        evals[:] = [e for e in evals if e["step"] != step]  # a re-evaluation of the same weights replaces
        evals += [eval_entry(r, step, epoch, t) for r, t in zip(results, written, strict=True)]
        self.document["run"]["ckpt"] = ckpt
        write_json_atomic(self.path, self.document)


def write_evaluation(
    path: str | Path, run: dict[str, Any], dataset: dict[str, Any], entries: list[dict[str, Any]]
) -> None:
    """`dt.evaluate`'s results file: the same schema, kind "evaluate", one evaluation of one checkpoint."""
    write_json_atomic(path, {"schema": SCHEMA, "kind": "evaluate", "run": run, "dataset": dataset, "evals": entries})
