"""Shared fixtures: a tiny Minari dataset made on the spot, an untrained module on it (helpers: tests/helpers.py)."""

from __future__ import annotations

import os
from pathlib import Path

import hydra
import pytest
import torch
from omegaconf import OmegaConf

from tests.helpers import TINY_ID, compose_config, make_minari_dataset, tiny_train_overrides

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")


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


@pytest.fixture
def tiny_module(tiny_minari: str, tmp_path):
    """An untrained tiny DTModule (K=5) built from the real config, as dt.train builds it."""
    cfg = compose_config([*tiny_train_overrides(tiny_minari), "env.max_ep_len=40"], output_dir=tmp_path)
    torch.manual_seed(0)
    datamodule = hydra.utils.instantiate(cfg.data)
    datamodule.setup("fit")
    run_config = OmegaConf.to_container(cfg, resolve=True)
    module = hydra.utils.instantiate(
        cfg.model, data_spec=datamodule.spec.to_dict(), run_config=run_config, _recursive_=False, _convert_="all"
    )
    return module.eval()
