"""Shared fixtures: a tiny Minari dataset made on the spot and the real composed Hydra config."""

from __future__ import annotations

import os
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

from dt.config import CONFIG_DIR

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_MINARI = REPO_ROOT.parent / "shared" / "minari"
TINY_ID = "test/hopper/tiny-v0"

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")


def make_minari_dataset(root: Path, dataset_id: str, num_episodes: int = 12, max_len: int = 60, seed: int = 0) -> None:
    """Hopper-v5 episodes from a random-ish policy, written with `minari.create_dataset_from_buffers`."""
    import minari
    from minari.data_collector import EpisodeBuffer

    env = gym.make("Hopper-v5", max_episode_steps=max_len)
    rng = np.random.default_rng(seed)
    buffers = []
    for episode in range(num_episodes):
        obs, _ = env.reset(seed=seed + episode)
        observations, actions, rewards, terms, truncs = [obs], [], [], [], []
        while True:
            action = np.clip(rng.normal(0.0, 0.3, size=3), -1, 1).astype(np.float32)
            obs, reward, term, trunc, _ = env.step(action)
            observations.append(obs)
            actions.append(action)
            rewards.append(float(reward))
            terms.append(term)
            truncs.append(trunc)
            if term or trunc:
                break
        buffers.append(
            EpisodeBuffer(
                id=episode,
                observations=np.stack(observations),
                actions=np.stack(actions),
                rewards=np.array(rewards),
                terminations=np.array(terms),
                truncations=np.array(truncs),
            )
        )
    old = os.environ.get("MINARI_DATASETS_PATH")
    os.environ["MINARI_DATASETS_PATH"] = str(root)
    try:
        minari.create_dataset_from_buffers(
            dataset_id,
            buffers,
            env=env.spec,
            eval_env="Hopper-v5",
            algorithm_name="random",
            author="dt tests",
            author_email="tests@example.invalid",
            code_permalink="https://example.invalid/dt",
            description="tiny random-policy Hopper-v5 dataset made by the dt test suite",
            ref_min_score=-20.272305,
            ref_max_score=3234.3,
        )
    finally:
        if old is None:
            del os.environ["MINARI_DATASETS_PATH"]
        else:
            os.environ["MINARI_DATASETS_PATH"] = old


@pytest.fixture(scope="session")
def tiny_minari_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Minari datasets folder holding TINY_ID (12 short Hopper-v5 episodes)."""
    root = tmp_path_factory.mktemp("minari")
    make_minari_dataset(root, TINY_ID)
    return root


@pytest.fixture
def tiny_minari(tiny_minari_root: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """Point MINARI_DATASETS_PATH at the tiny dataset's folder; returns its id."""
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tiny_minari_root))
    return TINY_ID


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
