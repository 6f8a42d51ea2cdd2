"""Shared fixtures: a tiny Minari dataset made on the spot (plain helpers: tests/helpers.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.helpers import TINY_ID, make_minari_dataset

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
