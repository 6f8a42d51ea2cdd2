"""OmegaConf resolvers the configs use for run names and W&B groups (registered when `dt.config` is imported).

- `${dt.dataset_tag:${.id},${.path}}`: a short, folder-safe dataset name from what is loaded:
  `sb3/hopper/medium-v0` -> `medium`, two ids -> `medium+expert`, `/data/hopper_medium-v2.hdf5` -> `hopper_medium`.
- `${dt.pct_tag:${dataset.pct_traj}}`: `-pct0.1` for %BC runs, empty when all data is used.
- `${dt.train_precision:}`: `trainer.precision`: bf16-mixed on a GPU with bf16, else 32-true.
- `${dt.sweep_group:${experiment_name},<fallback>}`: the W&B group; in a multirun the experiment's name and the
  sweep folder, so each sweep is one group; in a single run the experiment's name, else the fallback.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import OmegaConf

from dt.data.ids import dataset_name, dataset_names


def dataset_tag(ids: Any, path: str | None = None) -> str:
    if path:
        return dataset_name(Path(path).stem, version=False)
    if ids is None:
        return "none"
    return "+".join(dataset_names(ids, version=False))


def pct_tag(pct_traj: float) -> str:
    return "" if float(pct_traj) == 1.0 else f"-pct{float(pct_traj):g}"


def sweep_group(experiment: str | None, fallback: str) -> str:
    if HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN:
        sweep = Path(HydraConfig.get().sweep.dir).name
        return f"{experiment}-{sweep}" if experiment else sweep
    return experiment or fallback


def train_precision() -> str:
    return "bf16-mixed" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "32-true"


def register() -> None:
    resolvers = {
        "dt.dataset_tag": dataset_tag,
        "dt.pct_tag": pct_tag,
        "dt.sweep_group": sweep_group,
        "dt.train_precision": train_precision,
    }
    for name, fn in resolvers.items():
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_new_resolver(name, fn)
