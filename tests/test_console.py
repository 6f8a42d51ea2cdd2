"""What a run prints: evaluation progress, a closing summary, and no third-party warnings."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from dt.console import EvalProgress
from tests.helpers import run_cli, tiny_train_overrides


def test_eval_progress_without_a_terminal_prints_one_line(capsys: pytest.CaptureFixture) -> None:
    with EvalProgress(episodes=2, targets=[3600.0, 1800.0]) as progress:  # pytest's stderr is not a TTY
        for running in (4, 2, 0):  # two episodes end after step 2, the last two after step 3
            progress.hook(running)
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1, lines
    assert re.fullmatch(r"eval targets 3600, 1800: 4 episodes, 10 env steps, [\d.]+ s", lines[0]), lines


@pytest.mark.slow
def test_default_run_prints_no_warnings_and_ends_with_a_summary(tiny_minari_root: Path, tmp_path: Path) -> None:
    overrides = [o for o in tiny_train_overrides() if not o.startswith("logger=")]  # the default logger: W&B
    env = {"MINARI_DATASETS_PATH": str(tiny_minari_root), "WANDB_MODE": "offline", "WANDB_SILENT": "false"}
    result = run_cli(*overrides, f"hydra.run.dir={tmp_path}", env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert not re.search(r"warn|deprecat|Tip:", result.stdout + result.stderr, re.IGNORECASE), result.stderr
    assert "eval targets 3600, 1800: 4 episodes" in result.stderr  # progress: one line without a terminal
    summary = result.stdout[result.stdout.index("dt: done after 4 steps") :]
    assert re.search(r"target 3600: best return [-\d.]+ \(normalized [-\d.]+\) at step 4; last", summary), summary
    assert f"checkpoints: {tmp_path / 'checkpoints'}" in summary
    sync = re.search(r"upload: wandb sync (\S+)", summary)
    assert sync and Path(sync.group(1)).is_dir() and Path(sync.group(1)).parent == tmp_path / "wandb"
