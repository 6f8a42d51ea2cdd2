"""The composed Hydra config: every env/dataset/mode composes, the paper's defaults, run names."""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import pytest
from hydra.utils import instantiate
from omegaconf import OmegaConf

from dt.config import compose_conf
from dt.errors import DTError
from dt.resolvers import dataset_tag, pct_tag
from tests.helpers import compose_config

ENVS = ["hopper", "halfcheetah", "walker2d"]
QUALITIES = ["simple", "medium", "expert"]
MODES = ["normal", "delayed", "noise"]


@pytest.mark.parametrize("env,quality,mode", list(itertools.product(ENVS, QUALITIES, MODES)))
def test_every_env_dataset_mode_composes(env: str, quality: str, mode: str, tmp_path: Path) -> None:
    cfg = compose_config([f"env={env}", f"dataset={quality}", f"mode={mode}"], output_dir=tmp_path)
    assert cfg.data.dataset_id == f"mujoco/{env}/{quality}-v0"
    assert cfg.data.delayed == (mode == "delayed")
    assert cfg.model.context_len == cfg.data.context_len == 20
    assert cfg.data.batches_per_epoch == cfg.trainer.limit_train_batches == 10_000
    assert len(cfg.env.target_returns) == 2 and cfg.env.return_scale == 1000
    instantiate(cfg.data)  # constructs without touching the data


def test_defaults_are_the_papers_gym_settings(tmp_path: Path) -> None:
    cfg = compose_config([], output_dir=tmp_path)
    assert (cfg.K, cfg.data.batch_size, cfg.trainer.max_epochs) == (20, 64, 10)
    net = {"embed_dim": 128, "n_layer": 3, "n_head": 1, "activation": "relu", "dropout": 0.1, "embed_init": "gpt2"}
    net |= {"embed_dropout": None, "residual_init": "scaled"}
    assert cfg.model.net == net
    assert cfg.model.optim.lr == 1e-4 and cfg.model.optim.weight_decay == 1e-4
    assert cfg.model.optim.warmup_steps == 10_000 and cfg.trainer.gradient_clip_val == 0.25
    assert list(cfg.logger) == ["wandb"] and cfg.logger.wandb.mode == os.environ.get("WANDB_MODE", "offline")


def test_dt_official_preset_is_every_official_choice_at_once(tmp_path: Path) -> None:
    """`model=dt_official`: kzl/decision-transformer's gym recipe; only what differs from `dt` changes, name kept."""
    default, official = (compose_config(o, output_dir=tmp_path) for o in ([], ["model=dt_official"]))
    changed = {"embed_dropout": 0.1, "embed_init": "pytorch", "residual_init": "plain"}
    assert official.model.net == {**default.model.net, **changed}
    assert official.model.optim == {**default.model.optim, "weight_decay_params": "all"}
    assert (official.model.name, official.model._target_) == ("dt", default.model._target_)
    assert official.run_name == default.run_name and official.trainer.gradient_clip_val == 0.25


def test_run_name_parts() -> None:
    assert dataset_tag(["sb3/hopper/medium-v0", "sb3/hopper/expert-v0"]) == "medium+expert"
    assert dataset_tag("mujoco/hopper/simple-v0") == "simple"
    assert dataset_tag(None, "/data/hopper_medium-v2.hdf5") == "hopper_medium"
    assert (pct_tag(1.0), pct_tag(0.1), pct_tag(1)) == ("", "-pct0.1", "")


def test_compose_conf_is_the_commands_config_resolved_outside_a_run(tmp_path: Path) -> None:
    cfg = compose_conf(["env=walker2d", "experiment=context", "K=5"], output_dir=tmp_path)
    assert cfg.experiment_name == "context" and cfg.trainer.default_root_dir == str(tmp_path)
    assert cfg.model.context_len == 5 and cfg.model.max_ep_len == cfg.env.max_ep_len == 1000
    OmegaConf.to_container(cfg, resolve=True)  # nothing left that only a Hydra run could fill
    assert compose_conf(["evaluate_experiment=target_sweep"], config_name="evaluate").experiment_name == "target_sweep"
    with pytest.raises(DTError, match="check the overrides"):
        compose_conf(["model.nope.x=1"])
