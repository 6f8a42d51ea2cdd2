"""trainer=ddp: per-rank window sampling, one run folder written by rank 0, evaluation on rank 0."""

from __future__ import annotations

import json
from pathlib import Path

import hydra
import numpy as np
import pytest
import torch
from torch.utils.data import DistributedSampler

from dt.data.datamodule import UniformStepSampler
from dt.errors import DTError
from dt.train import check_ddp_launch
from tests.helpers import cli_env, compose_config, run_cli, tiny_train_overrides
from tests.windows import record_overrides

# --- the sampler -------------------------------------------------------------------------------------------


def old_stream(num_steps: int, num_samples: int, seed: int, epoch: int) -> list[int]:
    """The single-process stream as it was before data-parallel sampling (exact resumes compare against it)."""
    return np.random.default_rng([seed, epoch]).integers(0, num_steps, size=num_samples).tolist()


@pytest.mark.parametrize("epoch", [0, 3])
def test_world_size_one_is_the_single_process_stream(epoch: int) -> None:
    sampler = UniformStepSampler(1000, 640, seed=5, epoch=epoch, rank=0, world_size=1)
    assert list(sampler) == old_stream(1000, 640, 5, epoch)
    assert list(UniformStepSampler(1000, 640, seed=5, epoch=epoch)) == old_stream(1000, 640, 5, epoch)
    resumed = UniformStepSampler(1000, 640, seed=5, epoch=epoch, skip=64, world_size=1)
    assert list(resumed) == old_stream(1000, 640, 5, epoch)[64:]


def rank_batches(num_steps: int, batch: int, batches: int, seed: int, epoch: int, world_size: int) -> list[np.ndarray]:
    """Per rank, the epoch's starts as (batches, batch)."""
    streams = []
    for rank in range(world_size):
        sampler = UniformStepSampler(num_steps, batch * batches, seed, rank=rank, world_size=world_size)
        sampler.set_epoch(epoch)
        streams.append(np.array(list(sampler)).reshape(batches, batch))
    return streams


@pytest.mark.parametrize("num_steps", [101, 5000])  # odd: the ranks' shares differ by one step
def test_two_ranks_draw_disjoint_windows_at_every_step(num_steps: int) -> None:
    batch, batches = 16, 200
    first, second = rank_batches(num_steps, batch, batches, seed=0, epoch=0, world_size=2)
    for step in range(batches):
        assert not set(first[step]) & set(second[step]), step
    assert not set(first.ravel()) & set(second.ravel())  # over the whole epoch, too
    assert (first % 2 == 0).all() and (second % 2 == 1).all()
    # together, every step with equal probability: close to uniform over the whole dataset
    both = np.concatenate([first.ravel(), second.ravel()])
    assert both.min() >= 0 and both.max() < num_steps
    if num_steps == 101:
        counts = np.bincount(both, minlength=num_steps)  # 6400 draws: about 63 per step
        assert counts.min() > 30 and counts.max() < 100


def test_ranks_streams_are_seeded_by_seed_epoch_and_rank() -> None:
    epoch0 = rank_batches(5000, 8, 10, seed=0, epoch=0, world_size=2)
    assert [s.tolist() for s in epoch0] == [s.tolist() for s in rank_batches(5000, 8, 10, 0, 0, world_size=2)]
    assert not (epoch0[0] == rank_batches(5000, 8, 10, seed=0, epoch=1, world_size=2)[0]).all()
    assert not (epoch0[0] == rank_batches(5000, 8, 10, seed=1, epoch=0, world_size=2)[0]).all()
    assert not (epoch0[0] // 2 == epoch0[1] // 2).all()  # not the same draws shifted by one step
    four = rank_batches(5000, 8, 10, seed=0, epoch=0, world_size=4)
    assert [set(s.ravel() % 4) for s in four] == [{0}, {1}, {2}, {3}]


def test_mid_epoch_resume_skips_per_rank() -> None:
    for rank in range(2):
        whole = list(UniformStepSampler(300, 64, seed=2, epoch=1, rank=rank, world_size=2))
        resumed = UniformStepSampler(300, 64, seed=2, epoch=1, skip=24, rank=rank, world_size=2)
        assert list(resumed) == whole[24:]
        assert list(resumed) == whole  # the next epoch is whole again


def test_sampler_is_a_distributed_sampler() -> None:
    # Lightning wraps any other sampler in a DistributedSampler of its own under DDP (use_distributed_sampler)
    assert isinstance(UniformStepSampler(100, 10, seed=0, rank=1, world_size=2), DistributedSampler)


def test_fewer_steps_than_ranks_is_an_error() -> None:
    with pytest.raises(DTError, match="cannot be split over 4 ranks"):
        UniformStepSampler(3, 8, seed=0, rank=0, world_size=4)


# --- launching -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "devices", "refused"), [("MULTIRUN", 2, True), ("RUN", 2, False), ("MULTIRUN", 1, False)]
)
def test_ddp_processes_cannot_be_launched_from_a_sweep(mode: str, devices: int, refused: bool, tmp_path: Path) -> None:
    # Lightning would re-run `python -m dt.train -m ...` for rank 1: a second sweep, in a second sweep folder
    overrides = ["trainer=ddp", "trainer.accelerator=cpu", f"trainer.devices={devices}", f"hydra.mode={mode}"]
    cfg = compose_config(overrides, output_dir=tmp_path)
    trainer = hydra.utils.instantiate(cfg.trainer, logger=False)
    if refused:
        with pytest.raises(DTError, match="a -m sweep cannot do"):
            check_ddp_launch(trainer)
    else:
        check_ddp_launch(trainer)


# --- a real 2-process CPU run ------------------------------------------------------------------------------

EPOCHS, BATCHES, BATCH = 2, 3, 8
MONITOR = "eval/target_3600/return_mean"


def run_args(out: Path, windows: Path, *extra: str) -> list[str]:
    overrides = [o for o in tiny_train_overrides() if not o.startswith(("trainer.max_epochs", "trainer.limit_train"))]
    return [
        *overrides,
        f"data.batch_size={BATCH}",
        f"trainer.max_epochs={EPOCHS}",
        f"trainer.limit_train_batches={BATCHES}",
        "trainer.accelerator=cpu",
        # a timestamp to the microsecond: a rank that composed its own run folder would not land in rank 0's
        f"hydra.run.dir={out}/${{now:%H-%M-%S-%f}}",
        # tracks the best epoch by an evaluation metric: every rank must see the same value, or DDP would hang
        f"+callbacks.model_checkpoint.monitor={MONITOR}",
        "+callbacks.model_checkpoint.mode=max",
        *record_overrides(windows),
        *extra,
    ]


@pytest.fixture(scope="module")
def runs(tiny_minari_root: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    """The same settings run as 2 DDP processes and as 1 process: their run folders, records and stdout."""
    runs = {}
    for name, trainer_args in {"ddp": ["trainer=ddp", "trainer.devices=2"], "single": []}.items():
        out, windows = tmp_path_factory.mktemp(f"{name}_out"), tmp_path_factory.mktemp(f"{name}_windows")
        result = run_cli(*run_args(out, windows, *trainer_args), env=cli_env(tiny_minari_root), timeout=300)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        records = {int(p.stem[4:]): json.loads(p.read_text()) for p in windows.glob("rank*.json")}
        runs[name] = {"folders": sorted(out.iterdir()), "records": records, "stdout": result.stdout}
    return runs


@pytest.mark.slow
def test_ddp_run_writes_one_run_folder_once(runs: dict[str, dict]) -> None:
    ddp = runs["ddp"]
    assert len(ddp["folders"]) == 1, ddp["folders"]  # no second timestamped folder from rank 1
    folder = ddp["folders"][0]
    files = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
    assert files == [
        ".dt.lock",  # dt.runlock: one run per folder
        ".hydra/config.yaml",
        ".hydra/hydra.yaml",
        ".hydra/overrides.yaml",
        "checkpoints/epoch000.ckpt",
        "checkpoints/epoch001.ckpt",
        "checkpoints/last.ckpt",
        "csv/hparams.yaml",
        "csv/metrics.csv",
        "provenance.json",
        "results.json",
        "train.log",
    ], files
    assert ddp["stdout"].count("dt: done after") == 1  # the summary is rank 0's alone

    results = json.loads((folder / "results.json").read_text())
    assert [(e["step"], e["target"]) for e in results["evals"]] == [
        (step, target) for step in (BATCHES, 2 * BATCHES) for target in ("3600", "1800")
    ]
    last = torch.load(folder / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    single = torch.load(runs["single"]["folders"][0] / "checkpoints" / "last.ckpt", weights_only=True)
    assert last["global_step"] == single["global_step"] == EPOCHS * BATCHES  # batch and epoch length per rank
    # every rank logged rank 0's evaluation, and ModelCheckpoint ranked the epochs by it alike on every rank
    last_eval = {e["target"]: e for e in results["evals"] if e["step"] == EPOCHS * BATCHES}
    records = ddp["records"]
    assert records[0]["eval_metrics"] == records[1]["eval_metrics"]
    for target in ("3600", "1800"):
        logged = records[1]["eval_metrics"][f"eval/target_{target}/return_mean"]
        assert logged == pytest.approx(last_eval[target]["return_mean"], rel=1e-6)
    best = max(e["return_mean"] for e in results["evals"] if e["target"] == "3600")
    assert records[0]["best_model_score"] == records[1]["best_model_score"] == pytest.approx(best, rel=1e-6)


@pytest.mark.slow
def test_ddp_ranks_train_on_their_own_windows(runs: dict[str, dict]) -> None:
    records = runs["ddp"]["records"]
    assert sorted(records) == [0, 1]
    assert [records[r]["global_step"] for r in (0, 1)] == [EPOCHS * BATCHES] * 2
    assert records[0]["eval_envs_built"] and not records[1]["eval_envs_built"]  # evaluation on rank 0 only
    num_steps = records[0]["num_steps"]
    first, second = records[0]["batches"], records[1]["batches"]
    assert len(first) == len(second) == EPOCHS * BATCHES
    for step, (a, b) in enumerate(zip(first, second, strict=True)):
        assert len(a) == len(b) == BATCH
        assert not set(a) & set(b), f"step {step}: both ranks drew {set(a) & set(b)}"
    assert first != second
    # exactly dt's per-rank streams: Lightning neither replaced nor wrapped the sampler
    for rank, batches in ((0, first), (1, second)):
        expected = rank_batches(num_steps, BATCH, BATCHES, 0, 0, 2)[rank].tolist()
        expected += rank_batches(num_steps, BATCH, BATCHES, 0, 1, 2)[rank].tolist()
        assert batches == expected


@pytest.mark.slow
def test_single_process_run_keeps_the_old_stream(runs: dict[str, dict]) -> None:
    record = runs["single"]["records"][0]
    assert record["world_size"] == 1 and record["eval_envs_built"]
    stream = [s for batch in record["batches"] for s in batch]
    expected = [s for epoch in range(EPOCHS) for s in old_stream(record["num_steps"], BATCH * BATCHES, 0, epoch)]
    assert stream == expected
