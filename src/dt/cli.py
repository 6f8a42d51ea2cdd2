"""Checks on the command line made before Hydra starts, so mistakes end in one line instead of a traceback."""

from __future__ import annotations

from pathlib import Path

from dt.config import CONFIG_DIR
from dt.errors import DTError
from dt.files import make_writable_folder


def check_group_choices(argv: list[str], config_dir: str = CONFIG_DIR) -> None:
    """Unknown names such as `env=hoper` get the list of choices."""
    for arg in argv:
        name, sep, value = arg.lstrip("+~").partition("=")
        group = Path(config_dir) / name
        if not sep or "." in name or not group.is_dir() or value in ("", "null"):
            continue
        choices = sorted(p.stem for p in group.glob("*.yaml"))
        for choice in value.strip("[]").split(","):  # `env=a,b` in multirun, `logger=[csv,wandb]`
            if choice.strip() not in choices:
                raise DTError(f"unknown {name} '{choice.strip()}': choose one of {', '.join(choices)}")


def check_output_dir(argv: list[str], default: str = "outputs") -> None:
    """The run folder (`hydra.run.dir` / `hydra.sweep.dir`, else ./outputs) must be creatable and writable."""
    multirun = "-m" in argv or "--multirun" in argv
    key = "hydra.sweep.dir=" if multirun else "hydra.run.dir="
    value = next((a[len(key) :] for a in argv if a.startswith(key)), "multirun" if multirun else default)
    literal, interpolated, _ = value.partition("${")
    # the folder made of the literal part before any interpolation (`runs/seed-${seed}` -> runs, not runs/seed-)
    folder = Path(literal or ".") if not interpolated or literal.endswith("/") else Path(literal).parent
    if not make_writable_folder(folder):
        raise DTError(f"cannot write run outputs to {folder}: choose a writable folder with {key}<folder>")
