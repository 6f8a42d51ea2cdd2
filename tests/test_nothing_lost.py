"""Nothing lost: metrics kept on resume, divergence, damaged checkpoints, one run per folder, a full disk.

Interruptions and divergence happen at known steps (tests/interrupt.py): nothing here depends on timing.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from dt.checkpointing import AtomicCheckpointIO, resolve_ckpt_path
from dt.errors import Diverged, DTError
from dt.files import atomic_write, replace_folder
from dt.loggers import TensorBoardLogger, _KeepingWriter, read_rows, resume_logs_at
from dt.results import RunResults
from dt.runlock import LOCK_NAME, acquire, release
from dt.train import train
from tests.helpers import cli_env, compose_config, make_minari_dataset, read_metrics, run_cli, tiny_train_overrides
from tests.interrupt import signal_overrides

EPOCHS, BATCHES = 3, 30


def cli_args(run_dir: Path, *extra: str) -> list[str]:
    overrides = [o for o in tiny_train_overrides() if not o.startswith(("trainer.max_epochs", "trainer.limit_train"))]
    return [*overrides, f"trainer.max_epochs={EPOCHS}", f"trainer.limit_train_batches={BATCHES}", *extra] + [
        f"hydra.run.dir={run_dir}"
    ]


def checkpoint_step(path: Path) -> int:
    return torch.load(path, map_location="cpu", weights_only=True)["global_step"]


def one_error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.startswith("dt: error:")]
    assert len(lines) == 1 and "Traceback" not in stderr, stderr[-3000:]
    return lines[0]


# --- metrics.csv and TensorBoard across a resume -------------------------------------------------------------


@pytest.mark.slow
def test_killed_and_resumed_run_keeps_one_metrics_csv_with_every_step(tiny_minari_root: Path, tmp_path: Path) -> None:
    env = {**os.environ, **cli_env(tiny_minari_root)}
    command = [sys.executable, "-m", "dt.train", *cli_args(tmp_path, *signal_overrides(45, "SIGKILL"))]
    killed = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    assert checkpoint_step(tmp_path / "checkpoints" / "last.ckpt") == BATCHES  # resumes from step 30
    before = read_metrics(tmp_path)
    # killed in step 44's end hooks, before its row: rows 30..43 are logged again by the resumed run
    assert {int(r["step"]) for r in before if r["train/loss"]} == set(range(44))

    resumed = run_cli(*cli_args(tmp_path, "ckpt_path=last"), env=cli_env(tiny_minari_root))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    rows = read_metrics(tmp_path)
    train_steps = [int(r["step"]) for r in rows if r["train/loss"]]
    assert train_steps == list(range(EPOCHS * BATCHES))  # every step once, in order, from both parts
    eval_column = next(k for k in rows[0] if k.startswith("eval/") and k.endswith("return_mean"))
    assert [int(r["epoch"]) for r in rows if r[eval_column]] == list(range(EPOCHS))  # one evaluation per epoch
    kept = [r for r in before if int(r["step"]) < BATCHES or (int(r["step"]) == BATCHES and r[eval_column])]
    assert rows[: len(kept)] == kept  # the first part's rows as it wrote them


def test_csv_writer_trims_from_the_first_new_row_and_unions_the_header(tmp_path: Path) -> None:
    path = tmp_path / "metrics.csv"
    with open(path, "w", newline="") as f:
        f.write("epoch,step,train/loss\n0,0,1.0\n0,1,0.9\n0,2,0.8\n1,2,\n1,3,0.7\n1,4,0.")  # last row cut short
        f.write("\n1,4")
    assert [r["step"] for r in read_rows(path)[1]] == ["0", "1", "2", "2", "3", "4"]
    writer = _KeepingWriter(str(tmp_path))
    assert path.is_file()  # Lightning's writer deletes it here
    writer.log_metrics({"train/loss": 0.5, "eval/x": 3.0, "epoch": 1}, step=2)  # resumed at step 2, epoch 1
    writer.save()
    header, rows = read_rows(path)
    assert header == ["epoch", "eval/x", "step", "train/loss"]
    assert [(r["epoch"], r["step"], r["train/loss"], r["eval/x"]) for r in rows] == [
        ("0", "0", "1.0", ""),
        ("0", "1", "0.9", ""),
        ("0", "2", "0.8", ""),  # epoch 0's row at step 2 stays: it is not logged again
        ("1", "2", "0.5", "3.0"),
    ]


def test_a_new_run_in_a_used_folder_starts_a_new_metrics_csv(tmp_path: Path) -> None:
    (tmp_path / "metrics.csv").write_text("epoch,step,train/loss\n0,0,1.0\n0,1,0.9\n")
    writer = _KeepingWriter(str(tmp_path))
    writer.log_metrics({"train/loss": 0.5, "epoch": 0}, step=0)
    writer.save()
    assert [r["train/loss"] for r in read_rows(tmp_path / "metrics.csv")[1]] == ["0.5"]


def test_tensorboard_purges_the_overlapped_steps_of_a_resumed_run(tmp_path: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    first = TensorBoardLogger(tmp_path, name=None, version="", default_hp_metric=False)
    resume_logs_at([first], None)
    for step in range(45):
        first.log_metrics({"train/loss": float(step)}, step=step)
    first.finalize("failed")
    second = TensorBoardLogger(tmp_path, name=None, version="", default_hp_metric=False)
    resume_logs_at([second], 30)  # resumed from the checkpoint at step 30: 31..44 are logged again
    for step in range(31, 60):
        second.log_metrics({"train/loss": float(step) + 0.5}, step=step)
    second.finalize("success")
    events = EventAccumulator(str(tmp_path), purge_orphaned_data=True)
    events.Reload()
    scalars = events.Scalars("train/loss")
    assert [s.step for s in scalars] == list(range(60))
    assert [s.value for s in scalars] == [float(s) for s in range(31)] + [s + 0.5 for s in range(31, 60)]


# --- divergence ----------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_divergence_after_the_first_checkpoint_leaves_finite_weights(tiny_minari_root: Path, tmp_path: Path) -> None:
    diverge = ["+callbacks.diverge._target_=tests.interrupt.NaNWeightsAtStep", "+callbacks.diverge.step=45"]
    result = run_cli(*cli_args(tmp_path, *diverge), env=cli_env(tiny_minari_root))
    assert result.returncode == 1
    assert "train/loss became nan at step 45" in one_error_line(result.stderr)
    last = torch.load(tmp_path / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert last["global_step"] == BATCHES
    assert all(torch.isfinite(t).all() for t in last["state_dict"].values())
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["diverged"]["step"] == 45
    assert [e["step"] for e in results["evals"]] == [BATCHES] * len({e["target"] for e in results["evals"]})


def test_divergence_at_an_epoch_end_writes_no_checkpoint_and_no_evaluation(tiny_minari: str, tmp_path: Path) -> None:
    overrides = [*tiny_train_overrides(), "trainer.max_epochs=2", "trainer.limit_train_batches=4"]
    overrides += ["+callbacks.diverge._target_=tests.interrupt.NaNWeightsAtStep", "+callbacks.diverge.step=8"]
    with pytest.raises(Diverged, match="weights became NaN/inf by step 8"):
        train(compose_config(overrides, output_dir=tmp_path))
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["epoch000.ckpt", "last.ckpt"]
    assert checkpoint_step(tmp_path / "checkpoints" / "last.ckpt") == 4
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["diverged"]["step"] == 8 and {e["step"] for e in results["evals"]} == {4}


def test_a_checkpoint_with_nan_weights_is_never_written(tmp_path: Path) -> None:
    path = tmp_path / "last.ckpt"
    path.write_bytes(b"previous")
    with pytest.raises(Diverged, match="step 7"):
        AtomicCheckpointIO().save_checkpoint(
            {"state_dict": {"w": torch.tensor([1.0, float("inf")])}, "global_step": 7}, path
        )
    assert path.read_bytes() == b"previous" and os.listdir(tmp_path) == ["last.ckpt"]


# --- damaged checkpoints -------------------------------------------------------------------------------------


def save_checkpoint(path: Path, step: int, run_name: str = "run") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    hparams = {"data_spec": {}, "run_config": {"run_name": run_name}}
    torch.save({"state_dict": {}, "hyper_parameters": hparams, "global_step": step}, path)
    return path


def test_damaged_last_ckpt_falls_back_to_the_newest_intact_checkpoint(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    folder = tmp_path / "run" / "checkpoints"
    older, newer = save_checkpoint(folder / "epoch000.ckpt", 4), save_checkpoint(folder / "epoch001.ckpt", 8)
    os.utime(older, (1, 1))
    last = save_checkpoint(folder / "last.ckpt", 12)
    last.write_bytes(last.read_bytes()[:100])  # truncated
    assert resolve_ckpt_path("last", tmp_path / "run", "run") == str(newer)
    (warning,) = capsys.readouterr().err.splitlines()
    assert warning.startswith("dt: warning:") and "damaged last.ckpt" in warning and "epoch001.ckpt (step 8)" in warning

    newer.write_bytes(b"")
    assert resolve_ckpt_path("last", tmp_path / "run", "run") == str(older)
    older.write_bytes(b"not a checkpoint")
    with pytest.raises(DTError, match="every checkpoint in .* is damaged") as error:
        resolve_ckpt_path("last", tmp_path / "run", "run")
    assert all(name in str(error.value) for name in ("last.ckpt", "epoch000.ckpt", "epoch001.ckpt"))


def test_resume_with_a_damaged_last_ckpt_continues_from_the_epoch_checkpoint(
    tiny_minari: str, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    overrides = [*tiny_train_overrides(), "trainer.limit_train_batches=4"]
    train(compose_config([*overrides, "trainer.max_epochs=2"], output_dir=tmp_path))
    last = tmp_path / "checkpoints" / "last.ckpt"
    last.write_bytes(last.read_bytes()[: last.stat().st_size // 2])
    os.utime(tmp_path / "checkpoints" / "epoch000.ckpt", (1, 1))
    capsys.readouterr()
    trainer = train(compose_config([*overrides, "trainer.max_epochs=3", "ckpt_path=last"], output_dir=tmp_path))
    assert "resuming from epoch001.ckpt (step 8)" in capsys.readouterr().err
    assert trainer.global_step == 12 and checkpoint_step(last) == 12


# --- one run per folder --------------------------------------------------------------------------------------

HOLD = "import sys; from dt.runlock import acquire; acquire(sys.argv[1]); print('locked', flush=True); sys.stdin.read()"


def holder(folder: Path) -> subprocess.Popen:
    """Another process that holds the folder's lock until its stdin closes (or it is killed)."""
    process = subprocess.Popen([sys.executable, "-c", HOLD, str(folder)], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert process.stdout.readline() == b"locked\n"
    return process


@pytest.mark.slow
def test_a_folder_in_use_is_refused_naming_the_holder_and_freed_by_kill_9(tmp_path: Path) -> None:
    process = holder(tmp_path)
    with pytest.raises(DTError, match=f"in use by another dt.train \\(PID {process.pid}\\)"):
        acquire(tmp_path)
    process.kill()  # kill -9: the kernel releases the lock; the file stays behind, stale
    process.wait()
    assert (tmp_path / LOCK_NAME).is_file()
    assert acquire(tmp_path)  # taken over
    assert (tmp_path / LOCK_NAME).read_text() == f"{os.getpid()}\n"
    assert not acquire(tmp_path)  # this process holds it already
    release(tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("run_dir", ["run-0", "run-${seed}"])  # literal, and an interpolation Hydra resolves
def test_a_second_dt_train_in_a_folder_in_use_stops_before_writing(run_dir: str, tmp_path: Path) -> None:
    folder = tmp_path / "run-0"
    process = holder(folder)
    try:
        result = run_cli(*tiny_train_overrides(), "seed=0", f"hydra.run.dir={tmp_path}/{run_dir}")
    finally:
        process.stdin.close()
        process.wait()
    assert result.returncode == 1
    assert f"(PID {process.pid})" in one_error_line(result.stderr)
    assert os.listdir(tmp_path) == [folder.name] and os.listdir(folder) == [LOCK_NAME]  # no .hydra/, no log


# --- a full disk ---------------------------------------------------------------------------------------------


def no_space(*args: object) -> None:
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_atomic_write_on_a_full_disk_keeps_the_previous_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "results.json"
    with atomic_write(path) as f:
        f.write("previous")
    assert path.read_text() == "previous" and oct(path.stat().st_mode & 0o777) != oct(0o600)
    monkeypatch.setattr(os, "fsync", no_space)
    with (
        pytest.raises(
            DTError, match="cannot write .*results.json \\(No space left on device\\); nothing was half-written"
        ),
        atomic_write(path) as f,
    ):
        f.write("half of the new")
    assert path.read_text() == "previous" and os.listdir(tmp_path) == ["results.json"]


@pytest.mark.slow
def test_a_disk_that_fills_up_mid_run_ends_in_one_line_and_keeps_the_last_files(
    tiny_minari_root: Path, tmp_path: Path
) -> None:
    first = run_cli(*cli_args(tmp_path / "first", "trainer.max_epochs=1"), env=cli_env(tiny_minari_root))
    assert first.returncode == 0, first.stderr[-3000:]
    disk_full = ["+callbacks.disk_full._target_=tests.interrupt.DiskFullAfterStep", "+callbacks.disk_full.step=45"]
    result = run_cli(*cli_args(tmp_path / "run", *disk_full), env=cli_env(tiny_minari_root))
    assert result.returncode == 1
    assert "results.json (No space left on device)" in one_error_line(result.stderr)
    assert one_error_line(result.stderr).endswith("free disk space, then resume with ckpt_path=last")
    assert checkpoint_step(tmp_path / "run" / "checkpoints" / "last.ckpt") == BATCHES  # epoch 0's, whole
    assert sorted(os.listdir(tmp_path / "run" / "checkpoints")) == ["epoch000.ckpt", "last.ckpt"]
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["evals"] == json.loads((tmp_path / "first" / "results.json").read_text())["evals"]
    assert not [p for p in (tmp_path / "run").rglob("*.tmp")]


def test_a_full_disk_during_a_checkpoint_keeps_the_previous_one(
    tiny_minari: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_save, saves = torch.save, []

    def save_then_fill_the_disk(obj: object, f: object, *args: object, **kwargs: object) -> None:
        saves.append(1)
        if len(saves) <= 2:  # epoch 0's epoch000.ckpt and last.ckpt
            return real_save(obj, f, *args, **kwargs)
        f.write(b"half a checkpoint")
        no_space()

    monkeypatch.setattr(torch, "save", save_then_fill_the_disk)
    overrides = [*tiny_train_overrides(), "trainer.max_epochs=2", "trainer.limit_train_batches=4"]
    with pytest.raises(DTError, match="No space left on device.*resume with ckpt_path=last"):
        train(compose_config(overrides, output_dir=tmp_path))
    monkeypatch.setattr(torch, "save", real_save)
    assert sorted(os.listdir(tmp_path / "checkpoints")) == ["epoch000.ckpt", "last.ckpt"]  # no temp file
    assert checkpoint_step(tmp_path / "checkpoints" / "last.ckpt") == 4


def test_a_full_disk_during_a_results_write_keeps_the_previous_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    results = RunResults(tmp_path / "results.json", run={"run_name": "r"}, dataset={})
    results.mark_diverged(3, "first")
    before = (tmp_path / "results.json").read_text()
    monkeypatch.setattr(os, "fsync", no_space)
    with pytest.raises(DTError, match="No space left on device"):
        results.mark_diverged(5, "second")
    assert (tmp_path / "results.json").read_text() == before and os.listdir(tmp_path) == ["results.json"]


def test_replace_folder_swaps_a_whole_folder(tmp_path: Path) -> None:
    (tmp_path / "new").mkdir()
    (tmp_path / "new" / "data.h5").write_text("new")
    (tmp_path / "target").mkdir()
    (tmp_path / "target" / "data.h5").write_text("old")
    replace_folder(tmp_path / "new", tmp_path / "target")
    assert (tmp_path / "target" / "data.h5").read_text() == "new" and os.listdir(tmp_path) == ["target"]


def test_a_failed_dataset_write_leaves_no_half_dataset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import minari

    make_minari_dataset(tmp_path, "test/hopper/tiny-v0", num_episodes=2, max_len=10)
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    real = minari.create_dataset_from_buffers

    def write_then_fill_the_disk(*args: object, **kwargs: object) -> None:
        real(*args, **kwargs)
        no_space()

    monkeypatch.setattr(minari, "create_dataset_from_buffers", write_then_fill_the_disk)
    with pytest.raises(OSError):
        make_minari_dataset(tmp_path, "test/hopper/tiny-v0", num_episodes=3, max_len=10)
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before  # the old dataset, no leftovers
