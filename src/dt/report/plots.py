"""PNG plots of results files (matplotlib, Agg backend): learning curves and achieved-vs-target return."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only: no display, no GUI toolkit
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from dt.files import atomic_write  # noqa: E402

Document = dict[str, Any]


def score_key(documents: list[Document]) -> str:
    """`normalized_mean` when every evaluation has one, else raw `return_mean`."""
    evals = [e for d in documents for e in d["evals"]]
    return "normalized_mean" if evals and all(e.get("normalized_mean") is not None for e in evals) else "return_mean"


def last_evals(document: Document) -> list[dict[str, Any]]:
    """The evaluations at the largest step of a run."""
    if not document["evals"]:
        return []
    last = max(e["step"] for e in document["evals"])
    return [e for e in document["evals"] if e["step"] == last]


COLOR_MAPS = ("Oranges", "Blues", "Greens", "Purples", "Reds", "Greys")


def shade(family: int, rank: int, count: int) -> tuple[float, ...]:
    """Colour `rank` of `count` in colour family `family`: rank 0 darkest."""
    cmap = plt.get_cmap(COLOR_MAPS[family % len(COLOR_MAPS)])
    return cmap(0.9 - 0.5 * rank / max(count - 1, 1))


def panels(documents: list[Document], panel: Callable[[Document], str]) -> dict[str, list[Document]]:
    """Documents split by `panel` (one subplot each), in name order."""
    split: dict[str, list[Document]] = defaultdict(list)
    for document in documents:
        split[panel(document)].append(document)
    return dict(sorted(split.items()))


def _figure(num_panels: int, width: float, height: float) -> tuple[plt.Figure, list[plt.Axes]]:
    cols = min(num_panels, 3)
    rows = -(-num_panels // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(width * cols, height * rows), squeeze=False)
    for ax in axes.flat[num_panels:]:
        ax.set_visible(False)
    return fig, list(axes.flat)


def learning_curves(
    documents: list[Document], label: Callable[[Document], str], panel: Callable[[Document], str], path: Path
) -> Path:
    """Score vs training step, one subplot per panel (dataset), one line per (label, target); the band is
    the std over seeds."""
    key = score_key(documents)
    target_values = {e["target"]: e["target_return"] for d in documents for e in d["evals"]}
    split = panels([d for d in documents if d["kind"] == "train"], panel) or {"no training runs": []}
    fig, axes = _figure(len(split), 6, 4)
    for ax, (title, group) in zip(axes, split.items(), strict=False):
        # (label, target) -> step -> one score per run
        curves: dict[tuple[str, str], dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
        for document in group:
            for e in document["evals"]:
                curves[(label(document), e["target"])][e["step"]].append(e[key])
        names = sorted({name for name, _ in curves})
        targets = sorted({t for _, t in curves}, key=lambda t: -target_values[t])
        for (name, target), by_step in sorted(
            curves.items(), key=lambda item: (item[0][0], -target_values[item[0][1]])
        ):
            steps = np.array(sorted(by_step))
            mean = np.array([np.mean(by_step[s]) for s in steps])
            std = np.array([np.std(by_step[s]) for s in steps])
            seeds = max(len(v) for v in by_step.values())
            # one colour family per label, darker for higher targets
            color = shade(names.index(name), targets.index(target), len(targets))
            legend = f"{name}, target {target} (n={seeds})"
            ax.plot(steps, mean, marker="o", markersize=3, color=color, label=legend)
            ax.fill_between(steps, mean - std, mean + std, color=color, alpha=0.15)
        ax.set_xlabel("training step")
        ax.set_ylabel("normalized score" if key == "normalized_mean" else "return")
        ax.set_title(title, fontsize=9)
        ax.grid(alpha=0.3)
        if curves:
            ax.legend(fontsize=6)
    return _save(fig, path)


def achieved_vs_target(
    documents: list[Document], label: Callable[[Document], str], panel: Callable[[Document], str], path: Path
) -> Path:
    """Achieved vs target return, one subplot per panel (dataset): one point per target per run (its last
    evaluation), the mean over a label's runs joined by a line, the oracle diagonal, and the dataset's best
    and mean returns marked."""
    split = panels(documents, panel)
    fig, axes = _figure(len(split), 5.5, 4.5)
    for ax, (title, group) in zip(axes, split.items(), strict=False):
        points: dict[str, dict[float, list[float]]] = defaultdict(lambda: defaultdict(list))
        for document in group:
            for e in last_evals(document):
                points[label(document)][e["target_return"]].append(e["return_mean"])
        for name, by_target in sorted(points.items()):
            xs = np.array(sorted(by_target))
            (line,) = ax.plot(xs, [np.mean(by_target[x]) for x in xs], marker="o", label=name)
            for x in xs:
                ax.scatter([x] * len(by_target[x]), by_target[x], s=10, color=line.get_color(), alpha=0.4)
        bests = [d["dataset"].get("return_max") for d in group if d["dataset"].get("return_max") is not None]
        means = [d["dataset"].get("return_mean") for d in group if d["dataset"].get("return_mean") is not None]
        marks = [max(bests)] if bests else []
        marks += [float(np.mean(means))] if means else []
        targets = [t for by_target in points.values() for t in by_target]
        if targets:
            lo, hi = min(targets + marks), max(targets + marks)
            ax.plot([lo, hi], [lo, hi], "k--", linewidth=1, label="oracle (achieved = target)")
        if bests:
            ax.axhline(max(bests), color="tab:green", linestyle=":", label=f"dataset best return ({round(max(bests))})")
        if means:
            mean = float(np.mean(means))
            ax.axhline(mean, color="tab:gray", linestyle=":", label=f"dataset mean return ({round(mean)})")
        ax.set_xlabel("target return")
        ax.set_ylabel("achieved return (mean over episodes)")
        ax.set_title(title, fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6)
    return _save(fig, path)


def _save(fig: plt.Figure, path: Path) -> Path:
    path = Path(path)
    fig.tight_layout()
    try:
        with atomic_write(path, "wb") as f:
            fig.savefig(f, dpi=100, format="png")
    finally:
        plt.close(fig)
    return path
