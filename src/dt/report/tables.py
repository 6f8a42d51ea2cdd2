"""Tables and plots from results files: `python -m dt.report DIR [DIR ...] [--out OUT]`.

Finds every `results.json` under the folders (training runs and `dt.evaluate` outputs), groups runs by
`run.experiment`, and writes `OUT/report.md` (OUT defaults to the first DIR): per experiment a table whose
rows are configurations and whose columns give, per target return, the score over seeds (mean ± std) of
the **last** evaluation and of the **best** one (the max over evaluation steps of the per-target mean,
CORL's convention), the number of seeds, the success rate when the env defines one, and the paper's number
where one exists; under it, the aggregate statistics across the experiment's datasets (IQM and mean with
stratified-bootstrap intervals, probability of improvement of DT over each baseline: see dt.report.aggregate);
plus PNG learning curves, achieved-vs-target plots and performance profiles beside it.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dt.data.ids import dataset_names
from dt.errors import DTError, report_errors
from dt.files import atomic_write
from dt.report.aggregate import REPS, RunScore, aggregate_section
from dt.report.paper import paper_score
from dt.report.plots import achieved_vs_target, learning_curves, score_key
from dt.results import FILENAME, SCHEMA, load_results

Document = dict[str, Any]
CONFIG_KEYS = ("env", "dataset", "mode", "model", "K", "pct_traj")
NO_EXPERIMENT = "runs"  # the group of runs that name no experiment


def find_results(folders: list[Path]) -> list[tuple[Path, Document]]:
    """Every readable results file under the folders, in path order; unreadable ones are skipped with a
    warning (an old or foreign file should not hide the others), none at all is an error."""
    paths = set()
    for folder in folders:
        if not folder.is_dir():
            raise DTError(f"{folder} is not a folder: pass the outputs/ or multirun/ folder of your runs")
        paths.update(p.resolve() for p in folder.rglob(FILENAME))
    where = ", ".join(str(f) for f in folders)
    if not paths:
        raise DTError(f"no {FILENAME} under {where}: pass a folder of dt.train or dt.evaluate runs")
    found = []
    for path in sorted(paths):
        try:
            found.append((path, load_results(path)))
        except DTError as err:
            print(f"dt: warning: skipped {err}", file=sys.stderr)
    if not found:
        raise DTError(f"no {FILENAME} of schema {SCHEMA} under {where}: rerun the runs with this version of dt")
    return found


def data_kept(run: dict) -> float:
    """The %BC fraction, 1.0 when the file leaves it out."""
    return 1.0 if run.get("pct_traj") is None else float(run["pct_traj"])


def config_key(document: Document, settings: tuple[str, ...] = ()) -> tuple:
    """One table row: the configuration, `settings` (overrides that set it apart), and `evaluate` for results of
    dt.evaluate (other numbers)."""
    run = document["run"]
    return (*(run.get(k) for k in CONFIG_KEYS[:-1]), data_kept(run), settings, document["kind"])


# Overrides already shown as columns, or that only name or place a run: never a reason for a row of its own.
SHOWN_OVERRIDES = {"seed", "env", "dataset", "dataset.id", "dataset.path", "dataset.pct_traj", "mode", "model", "K"}
PLACING_OVERRIDES = {"experiment", "experiment_name", "dataset.download", "logger", "ckpt_path"}


def distinct_settings(documents: list[Document]) -> dict[int, tuple[str, ...]]:
    """Per document (by id), its overrides that not every document of the table shares, e.g. `model.optim.lr=3e-4`
    in a learning-rate sweep: runs that differ in them get rows of their own instead of being averaged together."""

    def relevant(override: str) -> bool:
        key = override.split("=", 1)[0].lstrip("+~")
        return not (key in SHOWN_OVERRIDES or key in PLACING_OVERRIDES or key.startswith(("hydra", "logger.")))

    chosen = {id(d): {o for o in d["run"].get("overrides") or [] if relevant(o)} for d in documents}
    shared = set.intersection(*chosen.values()) if chosen else set()
    return {key: tuple(sorted(values - shared)) for key, values in chosen.items()}


def dataset_label(document: Document) -> str:
    """One plot panel per env and dataset: `hopper medium-v0+expert-v0`."""
    run = document["run"]
    dataset = "+".join(dataset_names(str(run.get("dataset"))))
    return f"{run.get('env')} {dataset}"


def config_label(document: Document, settings: tuple[str, ...] = ()) -> str:
    """A line in a panel: model, mode and K, %BC when set, the overrides that set the run apart."""
    run = document["run"]
    label = f"{run.get('model')} {run.get('mode')} K={run.get('K')}"
    if data_kept(run) != 1.0:
        label += f" top{data_kept(run):.0%}"
    label += "".join(f" {o}" for o in settings)
    return label + (" (evaluate)" if document["kind"] == "evaluate" else "")


@dataclass
class Cell:
    """One (configuration, target) cell: per-seed scores of the last and best evaluations."""

    last: list[float]
    best: list[float]
    success: list[float]


def run_cells(document: Document, key: str) -> dict[str, tuple[float, float, float | None]]:
    """target -> (last score, best score, last success rate) for one run."""
    by_target: dict[str, list[dict]] = defaultdict(list)
    for e in document["evals"]:
        by_target[e["target"]].append(e)
    cells = {}
    for target, evals in by_target.items():
        last = max(evals, key=lambda e: e["step"])
        cells[target] = (last[key], max(e[key] for e in evals), last.get("success_rate"))
    return cells


def run_scores(documents: list[Document], label: Callable[[Document], str]) -> list[RunScore]:
    """Every run's last and best score per target, for the aggregate statistics across datasets."""
    key = score_key(documents)
    return [
        RunScore(label(d), str(d["run"].get("model")), dataset_label(d), int(d["run"].get("seed") or 0), t, last, best)
        for d in documents
        for t, (last, best, _) in run_cells(d, key).items()
    ]


def mean_std(values: list[float]) -> str:
    """`67.6 ± 1.0` over seeds (population std, as CORL); a single seed has no ±."""
    if not values:
        return ""
    if len(values) == 1:
        return f"{values[0]:.1f}"
    return f"{np.mean(values):.1f} ± {np.std(values):.1f}"


def target_order(targets: set[str], documents: list[Document]) -> list[str]:
    """Targets by their return, highest first."""
    value = {e["target"]: e["target_return"] for d in documents for e in d["evals"]}
    return sorted(targets, key=lambda t: -value.get(t, 0.0))


def experiment_table(documents: list[Document], settings: dict[int, tuple[str, ...]]) -> str:
    """The markdown table of one experiment; `settings`: `distinct_settings(documents)`."""
    key = score_key(documents)
    rows: dict[tuple, dict[str, Cell]] = defaultdict(lambda: defaultdict(lambda: Cell([], [], [])))
    seeds: dict[tuple, set] = defaultdict(set)
    paper: dict[tuple, str] = {}
    for document in documents:
        row = config_key(document, settings[id(document)])
        seeds[row].add(document["run"].get("seed"))
        for target, (last, best, success) in run_cells(document, key).items():
            cell = rows[row][target]
            cell.last.append(last)
            cell.best.append(best)
            if success is not None:
                cell.success.append(success)
        found = paper_score(document["run"])
        if found:
            paper[row] = f"{found[0]:.1f} ({found[1]})"
    targets = target_order({t for cells in rows.values() for t in cells}, documents)
    has_success = any(c.success for cells in rows.values() for c in cells.values())
    score = "normalized score" if key == "normalized_mean" else "return"
    with_settings = any(row[-2] for row in rows)
    header = ["env", "dataset", "mode", "model", "K", "data kept"] + (["settings"] if with_settings else [])
    for t in targets:
        header += [f"target {t}: last", "best"] + (["success (last)"] if has_success else [])
    header += ["seeds", "paper (D4RL)"] if paper else ["seeds"]
    lines = [
        f"Score: {score}, mean ± std over seeds.",
        "",
        *dataset_lines(documents),
        "",
        "| " + " | ".join(header) + " |",
    ]
    lines.append("|" + "---|" * len(header))
    for row in sorted(rows, key=lambda r: tuple(str(x) for x in r)):
        env, dataset, mode, model, k, pct, distinct, kind = row
        model = f"{model} (evaluate)" if kind == "evaluate" else model
        cells = [str(env), f"`{dataset}`", str(mode), str(model), str(k), f"{pct:.0%}"]
        if with_settings:
            cells.append(" ".join(f"`{o}`" for o in distinct))
        for t in targets:
            c = rows[row].get(t)
            cells += [mean_std(c.last), mean_std(c.best)] if c else ["", ""]
            if has_success:
                cells.append(f"{np.mean(c.success):.2f}" if c and c.success else "")
        cells.append(str(len(seeds[row])))
        if paper:
            cells.append(paper.get(row, ""))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def dataset_lines(documents: list[Document]) -> list[str]:
    """One line per dataset: size, mean and best return (normalized when it can be); unknown parts left out."""
    lines = {}
    for document in documents:
        d, name = document["dataset"], document["run"].get("dataset")
        line = f"- dataset `{name}`: {d.get('num_episodes')} episodes, {d.get('num_steps')} steps"
        if d.get("return_mean") is not None and d.get("return_max") is not None:
            line += f", return mean {d['return_mean']:.1f} / best {d['return_max']:.1f}"
        if d.get("normalized_mean") is not None and d.get("normalized_max") is not None:
            line += f" (normalized {d['normalized_mean']:.1f} / {d['normalized_max']:.1f})"
        if name not in lines or document["kind"] == "train":  # training runs know their dataset best
            lines[name] = line
    return [lines[name] for name in sorted(lines, key=str)]


def fill_dataset_returns(documents: list[Document]) -> None:
    """Results of dt.evaluate on checkpoints that stored no dataset returns borrow them from a run on the same
    dataset (same id, same env), so their plots still mark the dataset's mean and best."""
    known = {}
    for document in documents:
        d = document["dataset"]
        if d.get("return_mean") is not None:
            known[(document["run"].get("env"), document["run"].get("dataset"))] = d
    for document in documents:
        source = known.get((document["run"].get("env"), document["run"].get("dataset")))
        if document["dataset"].get("return_mean") is None and source is not None:
            document["dataset"] = dict(source)


def slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-") or "runs"


def write_report(folders: list[Path], out: Path | None = None, reps: int = REPS) -> tuple[Path, list[str], list[Path]]:
    """Write `report.md` and the plots; returns the report's path, the tables and the plot paths. `reps`: bootstrap
    resamples per interval."""
    found = find_results(folders)
    out = Path(out or folders[0])
    experiments: dict[str, list[Document]] = defaultdict(list)
    for _, document in found:
        experiments[document["run"].get("experiment") or NO_EXPERIMENT].append(document)
    sections, tables, plots = [f"# Report: {len(found)} results files under {', '.join(map(str, folders))}", ""], [], []
    fill_dataset_returns([document for _, document in found])
    for name, documents in sorted(experiments.items()):
        settings = distinct_settings(documents)  # the table's rows and the plots' lines alike
        table = experiment_table(documents, settings)
        stem = out / slug(name)

        def label(document: Document, settings: dict[int, tuple[str, ...]] = settings) -> str:
            return config_label(document, settings[id(document)])

        figures = [achieved_vs_target(documents, label, dataset_label, Path(f"{stem}_achieved_vs_target.png"))]
        if any(document["kind"] == "train" for document in documents):  # dt.evaluate results have no curve
            figures.insert(0, learning_curves(documents, label, dataset_label, Path(f"{stem}_learning_curves.png")))
        targets = target_order({e["target"] for d in documents for e in d["evals"]}, documents)
        score = "normalized score" if score_key(documents) == "normalized_mean" else "return"
        aggregate, profile = aggregate_section(
            run_scores(documents, label), targets, score, Path(f"{stem}_performance_profile.png"), reps
        )
        figures += [profile] if profile else []
        tables.append("\n".join([f"## {name}", "", table, "", *aggregate]))
        plots += figures
        links = " ".join(f"![{figure.stem.removeprefix(stem.name + '_')}]({figure.name})" for figure in figures)
        sections += [f"## {name}", "", table, "", *aggregate, "", links, ""]
    sections += [
        "last: the evaluation at the run's largest step; best: the max over evaluation steps (CORL's convention).",
        "Paper numbers are D4RL scores (Chen et al. 2021); datasets other than D4RL's are not directly comparable.",
    ]
    path = out / "report.md"
    with atomic_write(path) as f:
        f.write("\n".join(sections) + "\n")
    return path, tables, plots


@report_errors
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m dt.report", description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="+", type=Path, help="folders holding results.json files (searched deeply)")
    parser.add_argument("--out", type=Path, default=None, help="folder for report.md and plots (default: the first)")
    parser.add_argument(
        "--reps", type=int, default=REPS, help=f"bootstrap resamples per interval (default {REPS}; fewer: faster)"
    )
    args = parser.parse_args(argv)
    if args.reps < 1:
        raise DTError(f"--reps {args.reps}: give a positive number of bootstrap resamples (default {REPS})")
    path, tables, plots = write_report(args.folders, args.out, args.reps)
    print("\n\n".join(tables))
    print(f"\nreport: {path}")
    for plot in plots:
        print(f"plot: {plot}")


if __name__ == "__main__":
    main()
