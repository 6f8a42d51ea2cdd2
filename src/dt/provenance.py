"""What produced a run: dt's version and git commit, and the versions of the libraries that change results."""

from __future__ import annotations

import json
import platform
import subprocess
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from dt.files import atomic_write

# Libraries whose versions move training numbers (torch, lightning) or evaluation returns (the simulator).
PACKAGES = ("torch", "lightning", "gymnasium", "mujoco", "minari")
# A different version of these can change every evaluation return of the same weights.
SIMULATOR_PACKAGES = ("gymnasium", "mujoco")


def _package_version(name: str) -> str | None:
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def _git(*args: str) -> str | None:
    """Output of a git command run in dt's source folder; None outside a checkout or without git."""
    try:
        result = subprocess.run(
            ["git", *args], cwd=Path(__file__).parent, capture_output=True, text=True, timeout=10, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip()


def provenance() -> dict[str, Any]:
    """{"dt", "git_commit", "git_dirty", "python", "torch_threads", <package>: version}; git fields are None outside
    a checkout. `torch_threads` shows a sweep's thread limit at work (joblib: OMP_NUM_THREADS=cores // n_jobs)."""
    import torch

    commit = _git("rev-parse", "HEAD")
    dirty = _git("status", "--porcelain", "--untracked-files=no") if commit else None
    return {
        "dt": _package_version("dt"),  # the installed distribution's (dt.__version__)
        "git_commit": commit,
        "git_dirty": bool(dirty) if commit else None,
        "python": platform.python_version(),
        "torch_threads": torch.get_num_threads(),
        **{name: _package_version(name) for name in PACKAGES},
    }


def write_provenance(folder: str | Path, info: dict[str, Any]) -> Path:
    path = Path(folder) / "provenance.json"
    with atomic_write(path) as f:
        f.write(json.dumps(info, indent=1) + "\n")
    return path


def simulator_mismatch(trained: dict[str, Any] | None, current: dict[str, Any] | None = None) -> str | None:
    """One line naming the gymnasium/mujoco versions that differ from the training run's; None when they agree.

    Checkpoints written before provenance was recorded carry none: nothing to compare.
    """
    if not trained:
        return None
    current = current or provenance()
    differ = [
        f"{name} {trained[name]} (now {current.get(name)})"
        for name in SIMULATOR_PACKAGES
        if trained.get(name) and trained.get(name) != current.get(name)
    ]
    if not differ:
        return None
    return f"dt: warning: checkpoint trained with {', '.join(differ)}: returns may differ from the training run's"
