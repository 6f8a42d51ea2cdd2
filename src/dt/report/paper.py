"""Published Decision Transformer numbers to print beside ours (Chen et al. 2021, arXiv 2106.01345).

D4RL-normalized scores on the D4RL v2 datasets, mean over 3 seeds, 100k training steps, K=20 for hopper.
Our local datasets (`sb3/hopper/*`) are not D4RL: these numbers are a reference point, not a target to
match. Only numbers checked against the paper are listed; add others with their table.
"""

from __future__ import annotations

from dt.data.ids import dataset_names

# (env, D4RL dataset, mode, model) -> (score, where in the paper)
PAPER_SCORES: dict[tuple[str, str, str, str], tuple[float, str]] = {
    ("hopper", "medium", "normal", "dt"): (67.6, "Table 2"),
    ("hopper", "medium", "normal", "bc"): (63.9, "Table 2"),
    ("hopper", "medium-replay", "normal", "dt"): (82.7, "Table 2"),
    ("hopper", "medium-replay", "normal", "bc"): (27.6, "Table 2"),
    ("hopper", "medium-expert", "normal", "dt"): (107.6, "Table 2"),
    ("hopper", "medium-expert", "normal", "bc"): (79.6, "Table 2"),
    ("hopper", "medium", "delayed", "dt"): (60.7, "Table 7, delayed rewards"),
}
PAPER_CONTEXT = {"hopper": 20}  # the K the paper's gym numbers were trained with

# The last part of a dataset id (`sb3/hopper/replay-v0` -> `replay`) -> the D4RL dataset it stands in for.
D4RL_NAMES = {"medium": "medium", "replay": "medium-replay", "medium-replay": "medium-replay", "expert": "expert"}


def d4rl_name(dataset: str | None) -> str | None:
    """`medium`, `medium-replay` or `medium-expert` (medium and expert ids joined by `+`), else None."""
    if not dataset:
        return None
    parts = dataset_names(dataset, version=False)  # sb3/hopper/replay-v0: replay
    if any(part not in D4RL_NAMES for part in parts):
        return None
    names = sorted({D4RL_NAMES[part] for part in parts})
    if names == ["expert", "medium"]:
        return "medium-expert"
    return names[0] if len(names) == 1 else None


def paper_score(run: dict) -> tuple[float, str] | None:
    """The paper's number for a configuration (full data, the paper's K), or None."""
    if (run.get("pct_traj") or 1.0) != 1.0 or run.get("K") != PAPER_CONTEXT.get(run.get("env")):
        return None
    return PAPER_SCORES.get((run.get("env"), d4rl_name(run.get("dataset")), run.get("mode"), run.get("model")))
