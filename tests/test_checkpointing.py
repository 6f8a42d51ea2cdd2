"""Checkpoints: interrupted runs (SIGKILL, SIGTERM, SIGINT) resume exactly; `ckpt_path=last` finds the run's own."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from dt.checkpointing import resolve_ckpt_path
from tests.helpers import cli_env, read_metrics, run_cli, tiny_train_overrides
from tests.interrupt import signal_overrides

# --- interrupted runs --------------------------------------------------------------------------------------
# The run interrupts itself at a known step (tests/interrupt.py), so nothing here depends on timing.

EPOCHS, BATCHES, STOP_AT = 3, 30, 45  # stop half-way through the second epoch


def resumable_args(run_dir: Path, *extra: str) -> list[str]:
    overrides = [o for o in tiny_train_overrides() if not o.startswith(("trainer.max_epochs", "trainer.limit_train"))]
    return [
        *overrides,
        f"trainer.max_epochs={EPOCHS}",
        f"trainer.limit_train_batches={BATCHES}",
        f"hydra.run.dir={run_dir}",
        *extra,
    ]


def checkpoint_step(path: Path) -> int:
    return torch.load(path, map_location="cpu", weights_only=True)["global_step"]


def losses_by_step(run_dir: Path) -> dict[int, str]:
    """train/loss per step as logged in metrics.csv, as exact text."""
    return {int(r["step"]): r["train/loss"] for r in read_metrics(run_dir) if r["train/loss"]}


@pytest.fixture(scope="module")
def uninterrupted_losses(tiny_minari_root: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[int, str]:
    run_dir = tmp_path_factory.mktemp("uninterrupted")
    result = run_cli(*resumable_args(run_dir), env=cli_env(tiny_minari_root))
    assert result.returncode == 0, result.stderr[-3000:]
    losses = losses_by_step(run_dir)
    assert len(losses) == EPOCHS * BATCHES
    return losses


@pytest.mark.slow
def test_sigkill_mid_epoch_then_resume_exactly(
    tiny_minari_root: Path, tmp_path: Path, uninterrupted_losses: dict[int, str]
) -> None:
    env = {**os.environ, **cli_env(tiny_minari_root)}
    command = [sys.executable, "-m", "dt.train", *resumable_args(tmp_path, *signal_overrides(STOP_AT, "SIGKILL"))]
    process = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
    assert process.returncode == -signal.SIGKILL, process.stderr[-3000:]
    assert not (tmp_path / "checkpoints" / "epoch001.ckpt").exists()
    saved = checkpoint_step(tmp_path / "checkpoints" / "last.ckpt")
    assert saved == BATCHES  # the first epoch's checkpoint: at most one epoch of work lost
    assert not list((tmp_path / "checkpoints").glob(".*.tmp"))

    result = run_cli(*resumable_args(tmp_path, "ckpt_path=last"), env=cli_env(tiny_minari_root))
    assert result.returncode == 0, result.stderr[-3000:]
    assert checkpoint_step(tmp_path / "checkpoints" / "last.ckpt") == EPOCHS * BATCHES  # as an uninterrupted run
    resumed = {step: loss for step, loss in losses_by_step(tmp_path).items() if step >= saved}
    assert resumed == {step: loss for step, loss in uninterrupted_losses.items() if step >= saved}


@pytest.mark.slow
@pytest.mark.parametrize("signal_name", ["SIGTERM", "SIGINT"])
def test_signal_saves_mid_epoch_and_resumes_exactly_in_the_same_wandb_run(
    signal_name: str, tiny_minari_root: Path, tmp_path: Path, uninterrupted_losses: dict[int, str]
) -> None:
    args = [a if not a.startswith("logger=") else "logger=[csv,wandb]" for a in resumable_args(tmp_path)]
    first = run_cli(*args, *signal_overrides(STOP_AT, signal_name), env=cli_env(tiny_minari_root))
    assert "interrupted at step" in first.stdout, first.stdout[-2000:] + first.stderr[-2000:]
    assert checkpoint_step(tmp_path / "checkpoints" / "last.ckpt") == STOP_AT
    before = losses_by_step(tmp_path)
    first_runs = {p.name.rsplit("-", 1)[1] for p in (tmp_path / "wandb").glob("offline-run-*")}

    result = run_cli(*args, "ckpt_path=last", env=cli_env(tiny_minari_root))
    assert result.returncode == 0, result.stderr[-3000:]
    assert checkpoint_step(tmp_path / "checkpoints" / "last.ckpt") == EPOCHS * BATCHES
    runs = {p.name.rsplit("-", 1)[1] for p in (tmp_path / "wandb").glob("offline-run-*")}
    assert len(first_runs) == 1 and runs == first_runs, (first_runs, runs)
    after = losses_by_step(tmp_path)  # the one metrics.csv, kept and continued (dt.loggers.CSVLogger)
    assert sorted(before) == list(range(STOP_AT))  # SIGINT too: the step it stopped in logs its row
    assert sorted(after) == list(range(EPOCHS * BATCHES))
    assert after == uninterrupted_losses  # same batches and dropout, step by step


# --- ckpt_path=last ---------------------------------------------------------------------------------------


def fake_checkpoint(run_dir: Path, run_name: str) -> Path:
    path = run_dir / "checkpoints" / "last.ckpt"
    path.parent.mkdir(parents=True)
    torch.save({"state_dict": {}, "hyper_parameters": {"data_spec": {}, "run_config": {"run_name": run_name}}}, path)
    return path


def test_ckpt_path_last_finds_the_newest_run_of_the_same_name(tmp_path: Path) -> None:
    older = fake_checkpoint(tmp_path / "2026-01-01", "hopper-a")
    newer = fake_checkpoint(tmp_path / "2026-01-02", "hopper-a")
    fake_checkpoint(tmp_path / "2026-01-03", "hopper-b")  # newest, but another configuration
    os.utime(older, (1, 1))
    assert resolve_ckpt_path("last", tmp_path / "2026-01-04", "hopper-a") == str(newer)
    assert resolve_ckpt_path("last", tmp_path / "2026-01-01", "hopper-a") == str(older)  # the run's own comes first
    assert resolve_ckpt_path(None, tmp_path, "hopper-a") is None
