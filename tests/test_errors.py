"""Bad input ends in one clear line: corrupt or mismatched data, unknown names, out-of-range settings."""

from __future__ import annotations

import subprocess
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from dt.cli import check_group_choices
from dt.config import CONFIG_DIR
from dt.errors import DTError
from dt.train import train
from tests.helpers import compose_config, read_metrics, run_cli, tiny_train_overrides


def write_hdf5(path: Path, obs_dim: int = 11, episode_len: int = 5, episodes: int = 4, bad: str | None = None) -> Path:
    rng = np.random.default_rng(0)
    n = episode_len * episodes
    data = {
        "observations": rng.normal(size=(n, obs_dim)),
        "actions": rng.uniform(-1, 1, size=(n, 3)).astype(np.float32),
        "rewards": rng.normal(size=n),
        "terminals": np.zeros(n, dtype=bool),
        "timeouts": (np.arange(n) % episode_len) == episode_len - 1,
    }
    if bad:
        data[bad].flat[7] = np.nan
    with h5py.File(path, "w") as f:
        for key, value in data.items():
            f[key] = value
    return path


def hdf5_overrides(path: Path) -> list[str]:
    return [*tiny_train_overrides(), f"dataset.path={path}", "dataset.id=null"]


def train_error(overrides: list[str], tmp_path: Path) -> str:
    with pytest.raises(DTError) as info:
        train(compose_config(overrides, output_dir=tmp_path / "run"))
    return str(info.value)


def assert_one_line_error(result: subprocess.CompletedProcess, *fragments: str) -> None:
    assert result.returncode == 1, result.stdout[-2000:] + result.stderr[-2000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("dt: error: "), result.stderr[-2000:]
    assert all(fragment in lines[0] for fragment in fragments), lines[0]


# --- bad input ---------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_corrupt_hdf5_is_one_line_error(tmp_path: Path) -> None:
    (tmp_path / "garbage.hdf5").write_bytes(b"not an hdf5 file" * 100)
    result = run_cli(f"dataset.path={tmp_path / 'garbage.hdf5'}", f"hydra.run.dir={tmp_path / 'run'}")
    assert_one_line_error(result, "garbage.hdf5", "not a readable HDF5 file")


@pytest.mark.slow
def test_unreachable_minari_remote_is_one_quiet_line(tmp_path: Path) -> None:
    # A hub that refuses connections: without dt's pre-check, huggingface_hub would log ~20 retries over ~30 s.
    offline = {"MINARI_DATASETS_PATH": str(tmp_path / "empty"), "HF_ENDPOINT": "http://127.0.0.1:9"}
    result = run_cli("env=hopper", "dataset=medium", "mode=delayed", f"hydra.run.dir={tmp_path / 'run'}", env=offline)
    assert_one_line_error(result, "mujoco/hopper/medium-v0", "could not be downloaded", "MINARI_DATASETS_PATH")
    assert result.stdout == ""


def test_truncated_hdf5(tmp_path: Path) -> None:
    path = write_hdf5(tmp_path / "d.hdf5")
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    assert "not a readable HDF5 file" in train_error(hdf5_overrides(path), tmp_path)


def test_hdf5_missing_keys(tmp_path: Path) -> None:
    with h5py.File(tmp_path / "d.hdf5", "w") as f:
        f["observations"] = np.zeros((3, 11))
    assert "lacks ['actions'" in train_error(hdf5_overrides(tmp_path / "d.hdf5"), tmp_path)


def test_dataset_shapes_must_match_the_env(tmp_path: Path) -> None:
    path = write_hdf5(tmp_path / "d.hdf5", obs_dim=4)
    message = train_error(hdf5_overrides(path), tmp_path)
    assert "4-dim observations" in message and "Hopper-v5" in message


def test_dataset_env_must_match_the_env_config(tiny_minari: str, tmp_path: Path) -> None:
    message = train_error([*tiny_train_overrides(), "env=walker2d"], tmp_path)
    assert "collected in Hopper-v5" in message and "Walker2d-v5" in message


@pytest.mark.parametrize("field", ["observations", "actions", "rewards"])
def test_non_finite_data(field: str, tmp_path: Path) -> None:
    path = write_hdf5(tmp_path / "d.hdf5", bad=field)
    assert f"dataset {field} hold NaN or inf" in train_error(hdf5_overrides(path), tmp_path)


def test_episodes_shorter_than_k_are_padded(tmp_path: Path) -> None:
    path = write_hdf5(tmp_path / "d.hdf5", episode_len=3)
    trainer = train(compose_config([*hdf5_overrides(path), "K=10"], output_dir=tmp_path))
    assert trainer.global_step == 4
    assert all(np.isfinite(float(r["train/loss"])) for r in read_metrics(tmp_path) if r["train/loss"])


@pytest.mark.parametrize("group", ["env", "mode"])
def test_unknown_group_names_list_the_choices(group: str) -> None:
    choices = ", ".join(sorted(p.stem for p in (Path(CONFIG_DIR) / group).glob("*.yaml")))  # every config
    assert group != "mode" or choices == "delayed, noise, normal"
    with pytest.raises(DTError, match=f"unknown {group} 'nope': choose one of {choices}"):
        check_group_choices([f"{group}=nope"])
    with pytest.raises(DTError, match="unknown dataset 'mediun'"):
        check_group_choices(["-m", "dataset=medium,mediun"])
    check_group_choices(["env=hopper", "dataset=expert", "mode=noise", "logger=[csv,wandb]", "dataset.id=a/b-v0"])


@pytest.mark.slow
def test_unknown_name_on_the_command_line() -> None:
    assert_one_line_error(run_cli("dataset=mediun"), "unknown dataset 'mediun'", "expert, medium, ")


@pytest.mark.parametrize("k", [0, 1001])
def test_context_length_out_of_range(k: int, tiny_minari: str, tmp_path: Path) -> None:
    assert f"K={k} must lie in [1, max_ep_len=1000]" in train_error([*tiny_train_overrides(), f"K={k}"], tmp_path)


@pytest.mark.parametrize("targets", ["[]", "[3600,.inf]", "[nan]"])
def test_bad_target_returns(targets: str, tiny_minari: str, tmp_path: Path) -> None:
    assert "eval.target_returns" in train_error([*tiny_train_overrides(), f"eval.target_returns={targets}"], tmp_path)


@pytest.mark.parametrize("pct", [0.0, 1.5, -0.1])
def test_pct_traj_out_of_range(pct: float, tiny_minari: str, tmp_path: Path) -> None:
    assert "pct_traj" in train_error([*tiny_train_overrides(), f"dataset.pct_traj={pct}"], tmp_path)


def test_resume_from_missing_or_foreign_checkpoint(tiny_minari: str, tmp_path: Path) -> None:
    assert "does not exist" in train_error([*tiny_train_overrides(), f"ckpt_path={tmp_path / 'no.ckpt'}"], tmp_path)
    torch.save({"weights": torch.zeros(2)}, tmp_path / "foreign.ckpt")
    message = train_error([*tiny_train_overrides(), f"ckpt_path={tmp_path / 'foreign.ckpt'}"], tmp_path)
    assert "not a dt checkpoint" in message
    assert "found no checkpoints/last.ckpt" in train_error([*tiny_train_overrides(), "ckpt_path=last"], tmp_path)


@pytest.mark.slow
def test_unwritable_output_folder(tmp_path: Path) -> None:
    (tmp_path / "a_file").write_text("")
    result = run_cli(f"hydra.run.dir={tmp_path / 'a_file' / 'run'}")
    assert_one_line_error(result, "cannot write run outputs", "hydra.run.dir=")


@pytest.mark.slow
def test_full_traceback_on_request(tmp_path: Path) -> None:
    result = run_cli("K=0", "dataset.download=false", f"hydra.run.dir={tmp_path}", env={"HYDRA_FULL_ERROR": "1"})
    assert result.returncode != 0 and "Traceback" in result.stderr and "DTError" in result.stderr
