"""Plain helpers the test modules share (fixtures live in conftest.py; no test module imports another)."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

from dt.config import CONFIG_DIR
from dt.data.sources import from_episode_list
from dt.envs.recording import record_episode, write_minari_dataset

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_MINARI = REPO_ROOT.parent / "shared" / "minari"
TINY_ID = "test/hopper/tiny-v0"


def make_minari_dataset(root: Path, dataset_id: str, num_episodes: int = 12, max_len: int = 60, seed: int = 0) -> None:
    """Hopper-v5 episodes from a random-ish policy, written as a Minari dataset."""
    env = gym.make("Hopper-v5", max_episode_steps=max_len)
    rng = np.random.default_rng(seed)

    def act(obs: np.ndarray) -> np.ndarray:
        return np.clip(rng.normal(0.0, 0.3, size=3), -1, 1).astype(np.float32)

    episodes = [record_episode(env, act, seed + episode) for episode in range(num_episodes)]
    write_minari_dataset(
        root,
        dataset_id,
        episodes,
        env.spec,
        eval_env="Hopper-v5",
        algorithm_name="random",
        description="tiny random-policy Hopper-v5 dataset made by the dt test suite",
        ref_min_score=-20.272305,
        ref_max_score=3234.3,
    )


def compose_config(overrides: list[str], output_dir: Path | None = None) -> DictConfig:
    """The real `conf/train.yaml` composed as `python -m dt.train` would, with the Hydra node set."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose(config_name="train", overrides=overrides, return_hydra_config=True)
    if output_dir is not None:
        with open_dict(cfg):
            cfg.hydra.runtime.output_dir = str(output_dir)
        HydraConfig.instance().set_config(cfg)
        with open_dict(cfg):
            del cfg.hydra  # as @hydra.main hands it to the task: the hydra node lives in HydraConfig
    return cfg


def compose_eval(overrides: list[str]) -> DictConfig:
    """The real `conf/evaluate.yaml` composed as `python -m dt.evaluate` would."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        return compose(config_name="evaluate", overrides=overrides)


def tiny_train_overrides(dataset_id: str = TINY_ID) -> list[str]:
    """Overrides for a seconds-long CPU training run on the tiny dataset."""
    return [
        f"dataset.id={dataset_id}",
        "dataset.download=false",
        "logger=csv",
        "model.net.embed_dim=32",
        "model.net.n_layer=1",
        "K=5",
        "data.batch_size=8",
        "trainer.max_epochs=1",
        "trainer.limit_train_batches=4",
        "trainer.log_every_n_steps=1",
        "eval.episodes=2",
        "eval.max_ep_len=20",
    ]


def hand_made() -> tuple:
    """Three episodes of lengths 3, 1 and 4 with rewards chosen to make sums easy to check."""
    rewards = [np.array([1.0, 2.0, 3.0]), np.array([10.0]), np.array([0.5, 0.5, 0.5, 0.5])]
    observations = [np.arange(len(r) * 2, dtype=np.float64).reshape(len(r), 2) + 100 * i for i, r in enumerate(rewards)]
    actions = [np.full((len(r), 1), float(i + 1)) for i, r in enumerate(rewards)]
    return from_episode_list(observations, actions, rewards)


def read_metrics(output_dir: Path) -> list[dict[str, str]]:
    """The rows of a run's CSV logger."""
    with open(output_dir / "csv" / "metrics.csv") as f:
        return list(csv.DictReader(f))


def run_cli(*args: str, env: dict | None = None, timeout: int = 900) -> subprocess.CompletedProcess:
    """`python -m dt.train ARGS` in a subprocess, output captured."""
    return subprocess.run(
        [sys.executable, "-m", "dt.train", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def cli_env(tiny_minari_root: Path) -> dict[str, str]:
    """The subprocess finds the dataset, and the `tests` helpers (callbacks) from the repository root."""
    path = os.pathsep.join(p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH", "")) if p)
    return {"MINARI_DATASETS_PATH": str(tiny_minari_root), "WANDB_MODE": "offline", "PYTHONPATH": path}


def require_transformers():
    """The `transformers` module (the bench extra), else a skip; with DT_REQUIRE_TRANSFORMERS=1 (CI, once the extra
    is installed) a failure instead, so that the Hugging Face comparisons can never be skipped there unnoticed."""
    if os.environ.get("DT_REQUIRE_TRANSFORMERS") == "1":
        import transformers
    else:
        transformers = pytest.importorskip("transformers", reason='the bench extra: pip install -e ".[bench]"')
    transformers.logging.set_verbosity_error()  # GPT-2's bos/eos ids outside a vocabulary of 1: harmless
    return transformers
