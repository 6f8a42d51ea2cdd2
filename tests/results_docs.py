"""Hand-written results.json documents and table helpers for the dt.report tests (tests only)."""

from __future__ import annotations

import json
from pathlib import Path

from dt.results import SCHEMA

PNG_MAGIC = b"\x89PNG"


def evals_at(step: int, scores: dict[str, float], success: float | None = None) -> list[dict]:
    """One evaluation step: target label -> normalized score (returns scaled by 10 for the raw columns)."""
    return [
        {
            "step": step,
            "epoch": step // 100,
            "target": target,
            "target_return": float(target),
            "return_mean": 10 * score,
            "return_std": 1.0,
            "normalized_mean": score,
            "length_mean": 100.0,
            "success_rate": success,
            "episodes": 2,
            "returns": [10 * score - 1, 10 * score + 1],
        }
        for target, score in scores.items()
    ]


def results_doc(model: str, seed: int, evals: list[dict], experiment: str | None = "table", K: int = 20) -> dict:
    return {
        "schema": SCHEMA,
        "kind": "train",
        "run": {
            "run_name": f"hopper-{model}-s{seed}",
            "experiment": experiment,
            "env": "hopper",
            "env_id": "Hopper-v5",
            "dataset": "sb3/hopper/medium-v0",
            "mode": "normal",
            "model": model,
            "K": K,
            "seed": seed,
            "pct_traj": 1.0,
            "ckpt": None,
        },
        "dataset": {
            "num_episodes": 10,
            "num_steps": 1000,
            "return_mean": 400.0,
            "return_max": 900.0,
            "normalized_mean": 40.0,
            "normalized_max": 90.0,
        },
        "evals": evals,
    }


def write_doc(folder: Path, document: dict) -> None:
    folder.mkdir(parents=True)
    (folder / "results.json").write_text(json.dumps(document))


def table_row(table: str, model: str) -> list[str]:
    line = next(line for line in table.splitlines() if f"| {model} |" in line)
    return [cell.strip() for cell in line.strip("|").split("|")]
