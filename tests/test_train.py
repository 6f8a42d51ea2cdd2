"""Training end to end: fast_dev_run, the CLI, one seed one result, the shared dataset."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from dt.models.dt_module import DTModule
from dt.train import train
from tests.helpers import SHARED_MINARI, compose_config, read_metrics, run_cli, tiny_train_overrides


def test_fast_dev_run_trains_and_checkpoint_can_act(tiny_minari: str, tmp_path: Path) -> None:
    cfg = compose_config(tiny_train_overrides(), output_dir=tmp_path)
    trainer = train(cfg)
    assert trainer.global_step == 4
    ckpt = tmp_path / "checkpoints" / "last.ckpt"
    module = DTModule.load_from_checkpoint(ckpt)
    assert module.hparams.run_config["dataset"]["id"] == tiny_minari
    assert module.data_spec.state_dim == 11 and module.state_std.shape == (11,)
    action = module.predict_action(
        torch.zeros(2, 3), torch.zeros(2, 3, 11), torch.zeros(2, 3, 3), torch.zeros(2, 3).long()
    )
    assert action.shape == (2, 3) and action.abs().max() <= 1
    assert {"train/loss", "train/action_error", "train/lr"} <= set(read_metrics(tmp_path)[0])


def test_lightning_fast_dev_run_flag(tiny_minari: str, tmp_path: Path) -> None:
    cfg = compose_config([*tiny_train_overrides(), "+trainer.fast_dev_run=true"], output_dir=tmp_path)
    assert train(cfg).global_step == 1


@pytest.mark.slow
def test_cli_shows_config_for_the_main_command() -> None:
    result = run_cli("env=hopper", "dataset=medium", "mode=delayed", "--cfg", "job")
    assert result.returncode == 0, result.stderr
    assert "id: mujoco/hopper/medium-v0" in result.stdout and "name: delayed" in result.stdout


@pytest.mark.slow
def test_cli_missing_dataset_is_one_line_error(tmp_path: Path) -> None:
    result = run_cli(
        "dataset.download=false", f"hydra.run.dir={tmp_path}", env={"MINARI_DATASETS_PATH": str(tmp_path / "none")}
    )
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert "mujoco/hopper/medium-v0" in lines[0] and str(tmp_path / "none") in lines[0]


def test_download_failure_is_reported_with_the_fix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import minari

    from dt.data.sources import load_minari
    from dt.errors import DTError

    def offline(dataset_id: str, download: bool = False):
        raise ConnectionError("Name or service not known")

    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path))
    monkeypatch.setattr(minari, "load_dataset", offline)
    with pytest.raises(DTError, match="could not be downloaded .*MINARI_DATASETS_PATH.*minari download"):
        load_minari("mujoco/hopper/medium-v0", download=True)


@pytest.mark.slow
def test_cli_trains_with_offline_wandb(tiny_minari_root: Path, tmp_path: Path) -> None:
    overrides = [o for o in tiny_train_overrides() if not o.startswith("logger=")]
    result = run_cli(
        *overrides,
        "logger=wandb",
        f"hydra.run.dir={tmp_path}",
        env={"MINARI_DATASETS_PATH": str(tiny_minari_root), "WANDB_MODE": "offline"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "checkpoints" / "last.ckpt").is_file()
    assert list((tmp_path / "wandb").glob("offline-run-*")), "no offline W&B run written"


@pytest.mark.skipif(not (SHARED_MINARI / "sb3/hopper/medium-v0").is_dir(), reason="../shared/minari not present")
def test_training_loss_falls_on_shared_hopper_medium(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(SHARED_MINARI))
    cfg = compose_config(
        [
            "dataset.id=sb3/hopper/medium-v0",
            "dataset.download=false",
            "logger=csv",
            "model.net.embed_dim=64",
            "model.optim.lr=1e-3",
            "model.optim.warmup_steps=10",
            "trainer.max_epochs=1",
            "trainer.limit_train_batches=120",
            "trainer.log_every_n_steps=10",
        ],
        output_dir=tmp_path,
    )
    train(cfg)
    losses = [float(r["train/loss"]) for r in read_metrics(tmp_path) if r["train/loss"]]
    assert len(losses) == 12
    assert sum(losses[-3:]) / 3 < 0.7 * sum(losses[:3]) / 3, losses


# --- reproducibility ---------------------------------------------------------------------------------------


def logged_run(tmp_path: Path, seed: int) -> tuple[list[str], list[str]]:
    overrides = [*tiny_train_overrides(), f"seed={seed}", "trainer.limit_train_batches=8", "trainer.max_epochs=2"]
    train(compose_config(overrides, output_dir=tmp_path))
    rows = read_metrics(tmp_path)
    losses = [r["train/loss"] for r in rows if r["train/loss"]]
    returns = [r[k] for r in rows for k in r if k.endswith("return_mean") and r[k]]
    return losses, returns


def test_same_seed_same_losses_and_eval_returns(tiny_minari: str, tmp_path: Path) -> None:
    losses, returns = logged_run(tmp_path / "a", seed=7)
    assert len(losses) == 16 and len(returns) >= 4
    assert logged_run(tmp_path / "b", seed=7) == (losses, returns)
    assert logged_run(tmp_path / "c", seed=8)[0] != losses
