"""A saved W&B workspace for a DT sweep: `python -m dt.dashboard entity=ENTITY project=PROJECT [targets=3600,1800]
[name="DT sweep"]`. Needs the `dashboard` extra (W&B's `wandb-workspaces`; `make install` adds it) and a W&B login.

Built with W&B's own workspace API, from what the training runs log (dt.evaluation.wandb_run): runs grouped by
dataset, model and K (lines are means over seeds); per target the normalized score against the training step;
achieved vs target (each run's own plot, and the achieved return at every target); the best score by K and target
(bars grouped by K, and a parallel-coordinates panel over K, model, dataset, seed and every target's best).
Without `targets=` the targets are read from the project's runs (the `eval/target_<R>/...` keys of their summaries).
"""

from __future__ import annotations

import re
import sys
from typing import Any

from dt.errors import DTError, report_errors
from dt.evaluation.wandb_run import STEP
from dt.metrics import logged_name, target_name

USAGE = 'python -m dt.dashboard entity=ENTITY project=PROJECT [targets=3600,1800] [name="DT sweep"]'
KEYS = ("entity", "project", "targets", "name")
GROUP_BY = ("dataset", "model", "K")  # flattened config keys (dt.evaluation.wandb_run.flat_config)


def build_workspace(entity: str, project: str, targets: list[float], name: str = "DT sweep") -> Any:
    """The workspace object (not saved): `.save()` writes it to W&B."""
    import wandb_workspaces.reports.v2 as wr
    import wandb_workspaces.workspaces as ws

    def key(target: float, metric: str) -> str:
        return logged_name(target, metric)

    def title(target: float) -> str:
        return f"target {target_name(target)}"

    curves = [
        wr.LinePlot(title=f"{title(t)}: normalized score vs step", x=STEP, y=[key(t, "normalized_mean")])
        for t in targets
    ]
    achieved = [
        wr.MediaBrowser(
            title="achieved vs target (each run's last evaluation)", media_keys=["eval/achieved_vs_target"]
        ),
        wr.BarPlot(
            title="achieved return per target (last evaluation)",
            metrics=[wr.SummaryMetric(f"{key(t, 'return_mean')}.last") for t in targets],
        ),
        *(
            wr.LinePlot(title=f"{title(t)}: achieved return vs step", x=STEP, y=[key(t, "return_mean")])
            for t in targets
        ),
    ]
    best = [
        wr.BarPlot(
            title=f"{title(t)}: best normalized score by K",
            metrics=[wr.SummaryMetric(f"{key(t, 'normalized_mean')}.max")],
            groupby=wr.Config("K"),
            groupby_aggfunc="mean",
            groupby_rangefunc="stderr",
        )
        for t in targets
    ]
    columns = [wr.Config(c) for c in ("K", "model", "dataset", "seed")]
    columns += [wr.SummaryMetric(f"{key(t, 'normalized_mean')}.max") for t in targets]
    best.append(
        wr.ParallelCoordinatesPlot(
            title="best normalized score by K and target",
            columns=[wr.ParallelCoordinatesPlotColumn(metric=c) for c in columns],
        )
    )
    return ws.Workspace(
        entity=entity,
        project=project,
        name=name,
        sections=[
            ws.Section(name="normalized score vs step, by target", panels=curves, is_open=True),
            ws.Section(name="achieved vs target", panels=achieved, is_open=True),
            ws.Section(name="best score by K and target", panels=best, is_open=True),
        ],
        settings=ws.WorkspaceSettings(x_axis=STEP),
        runset_settings=ws.RunsetSettings(groupby=[ws.Config(c) for c in GROUP_BY]),
    )


def project_targets(entity: str, project: str) -> list[float]:
    """The targets the project's runs evaluated, from their summaries' `eval/target_<R>/normalized_mean` keys."""
    import wandb

    found = set()
    for run in wandb.Api().runs(f"{entity}/{project}"):
        for name in run.summary.keys():  # noqa: SIM118 (a W&B summary has keys(), no __iter__)
            match = re.fullmatch(r"eval/target_([-0-9.e+]+)/normalized_mean", name)
            if match:
                found.add(float(match.group(1)))
    if not found:
        raise DTError(f"no run in {entity}/{project} logged eval/target_<R>/normalized_mean: pass targets=3600,1800")
    return sorted(found, reverse=True)


def parse_args(argv: list[str]) -> dict[str, str]:
    """`key=value` arguments, Hydra style; unknown or missing keys are a one-line error."""
    args = {}
    for arg in argv:
        name, sep, value = arg.partition("=")
        if not sep or name not in KEYS or not value:
            raise DTError(f"'{arg}' is not one of {', '.join(k + '=...' for k in KEYS)}: usage: {USAGE}")
        args[name] = value
    missing = [k for k in ("entity", "project") if k not in args]
    if missing:
        raise DTError(f"missing {', '.join(k + '=...' for k in missing)}: usage: {USAGE}")
    return args


def parse_targets(text: str) -> list[float]:
    try:
        return [float(t) for t in text.split(",") if t.strip()]
    except ValueError as err:
        raise DTError(f"targets={text}: give target returns as numbers, e.g. targets=3600,1800") from err


@report_errors
def main(argv: list[str] | None = None) -> None:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        import wandb_workspaces  # noqa: F401
    except ImportError as err:
        raise DTError('dt.dashboard needs W&B\'s workspace API: pip install -e ".[dashboard]"') from err
    entity, project = args["entity"], args["project"]
    targets = parse_targets(args["targets"]) if "targets" in args else project_targets(entity, project)
    workspace = build_workspace(entity, project, targets, args.get("name", "DT sweep")).save()
    print(f"dt: workspace saved: {workspace.url}")


if __name__ == "__main__":
    main()
