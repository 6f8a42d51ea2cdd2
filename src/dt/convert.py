"""Convert between dt checkpoints and Hugging Face `DecisionTransformerModel` folders (the official model).

    python -m dt.convert from-hf hf=FOLDER out=FILE.ckpt [dataset.id=ID | state_stats=FILE.json] [env=...] [K=20]
    python -m dt.convert to-hf ckpt=FILE.ckpt out=FOLDER

from-hf: an HF folder (config.json + model.safetensors or pytorch_model.bin) -> a dt checkpoint that
`python -m dt.evaluate ckpt=FILE.ckpt` runs. HF checkpoints carry no state mean/std: they come from the dataset
the model was trained on (`dataset.id=...`, `dataset=...` or `dataset.path=...`, read as dt.train reads it) or
from a JSON file {"state_mean": [...], "state_std": [...]} (by default FOLDER/state_stats.json, which to-hf
writes, when present). Every other `key=value` is a dt.train override (env,
K, eval settings), stored in the checkpoint as its run config; the architecture comes from config.json.
to-hf: a dt checkpoint -> config.json + model.safetensors (+ state_stats.json, the statistics HF has no place for).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
from omegaconf import OmegaConf, open_dict

from dt.checkpointing import AtomicCheckpointIO
from dt.cli import check_group_choices
from dt.config import compose_conf, instantiate
from dt.console import quiet_third_party
from dt.data.spec import DataSpec
from dt.envs import check_dataset_env
from dt.errors import DTError, report_errors
from dt.files import atomic_write
from dt.models.convert import config_from_hf, load_hf_folder, net_options, save_hf_folder, state_dict_from_hf, to_hf
from dt.models.policy_module import POLICY_CLASS_KEY
from dt.provenance import provenance

USAGE = (
    "usage: python -m dt.convert from-hf hf=FOLDER out=FILE.ckpt [dataset.id=ID | state_stats=FILE.json] "
    "[dt.train overrides] | to-hf ckpt=FILE.ckpt out=FOLDER"
)
STATS_FILE = "state_stats.json"  # what to-hf writes beside the HF files
DATASET_KEYS = ("dataset=", "dataset.id=", "dataset.path=")


def from_hf(hf: str | Path, out: str | Path, overrides: list[str], state_stats: str | Path | None = None) -> Path:
    """Write the dt checkpoint of an HF DecisionTransformerModel folder; returns its path."""
    hf_config, hf_state = load_hf_folder(hf)
    from_dataset = any(o.startswith(DATASET_KEYS) for o in overrides)
    if state_stats is None and not from_dataset and (Path(hf) / STATS_FILE).is_file():
        state_stats = Path(hf) / STATS_FILE  # written by to-hf
    if state_stats is None and not from_dataset:
        raise DTError(
            "HF checkpoints carry no state mean/std: pass the dataset the model was trained on "
            "(dataset.id=<minari id>) or state_stats=<file.json>"
        )
    cfg = compose_train(overrides, output_dir=Path(out).parent)
    config = config_from_hf(hf_config, int(cfg.K))
    with open_dict(cfg):
        cfg.model.net.update(net_options(config))
        cfg.model.max_ep_len = config.max_ep_len  # the timestep table's size
    spec = data_spec(cfg, state_stats)
    if (spec.state_dim, spec.act_dim, spec.discrete) != (config.state_dim, config.act_dim, False):
        what = "discrete" if spec.discrete else f"{spec.act_dim}-dim"
        raise DTError(
            f"the HF model takes {config.state_dim}-dim states and {config.act_dim}-dim actions but the data has "
            f"{spec.state_dim}-dim states and {what} actions: pass the dataset (and env) it was trained on"
        )
    run_config = {
        **OmegaConf.to_container(cfg, resolve=True),
        "provenance": provenance(),
        "overrides": list(overrides),
        "converted_from": str(hf),
    }
    module = instantiate(cfg.model, data_spec=spec.to_dict(), run_config=run_config, _recursive_=False, _convert_="all")
    module.model.load_state_dict(state_dict_from_hf(hf_state, module.model.config))
    checkpoint = {
        "state_dict": module.state_dict(),
        "hyper_parameters": dict(module.hparams),
        "pytorch-lightning_version": L.__version__,
        "global_step": 0,
        "epoch": 0,
        POLICY_CLASS_KEY: f"{type(module).__module__}.{type(module).__qualname__}",
    }
    AtomicCheckpointIO().save_checkpoint(checkpoint, out)
    return Path(out)


def to_hf_folder(ckpt: str | Path, out: str | Path) -> Path:
    """Write a dt checkpoint's Decision Transformer as an HF folder (+ state_stats.json); returns the folder."""
    from dt.evaluation.policy import load_module
    from dt.models.transformer import DecisionTransformer

    module = load_module(str(ckpt))
    if not isinstance(getattr(module, "model", None), DecisionTransformer):
        raise DTError(f"{ckpt} holds a {type(module).__name__}, not a Decision Transformer: nothing to convert")
    hf_config, hf_state = to_hf(module.model.state_dict(), module.model.config)
    save_hf_folder(out, hf_config, hf_state)
    stats = {"state_mean": module.state_mean.tolist(), "state_std": module.state_std.tolist()}
    with atomic_write(Path(out) / STATS_FILE) as f:
        f.write(json.dumps(stats) + "\n")
    return Path(out)


def compose_train(overrides: list[str], output_dir: Path) -> Any:
    """conf/train.yaml with `overrides`, its two `${hydra:...}` values filled as a dt.train run would."""
    check_group_choices(overrides)
    return compose_conf(overrides, output_dir=output_dir)


def data_spec(cfg: Any, state_stats: str | Path | None) -> DataSpec:
    """The module's data spec: from the configured dataset (as dt.train), or the env plus a statistics file."""
    if state_stats is None:
        datamodule = instantiate(cfg.data)
        datamodule.setup("fit")
        return check_dataset_env(datamodule.spec, cfg.env)
    mean, std = read_state_stats(state_stats)
    spec = DataSpec(
        state_shape=(len(mean),),
        act_dim=_env_action_dims(cfg.env),
        discrete=False,
        state_mean=mean,
        state_std=std,
        env_id=None,  # the env config's id, which check_dataset_env compares shapes against
        max_timestep=int(cfg.env.max_ep_len) - 1,
    )
    return check_dataset_env(spec, cfg.env)


def read_state_stats(path: str | Path) -> tuple[list[float], list[float]]:
    """(mean, std) from {"state_mean": [...], "state_std": [...]}; DTError for anything else."""
    path = Path(path)
    try:
        stats = json.loads(path.read_text())
        mean = np.asarray(stats["state_mean"], dtype=np.float64)
        std = np.asarray(stats["state_std"], dtype=np.float64)
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise DTError(
            f"state_stats={path} is not a JSON file with state_mean and state_std lists ({type(err).__name__})"
        ) from err
    if mean.ndim != 1 or mean.shape != std.shape or not np.isfinite(mean).all() or not (std > 0).all():
        raise DTError(f"state_stats={path}: state_mean and state_std must be equal-length lists, std > 0")
    return mean.tolist(), std.tolist()


def _env_action_dims(env_cfg: Any) -> int:
    from dt.envs import action_size, make_env

    env = make_env(env_cfg.id, factory=env_cfg.get("factory"))
    _, size = action_size(env.action_space)
    env.close()
    return int(size)


def parse(argv: list[str]) -> tuple[str, dict[str, str], list[str]]:
    """(command, its own key=value arguments, the dt.train overrides)."""
    if not argv or argv[0] not in ("from-hf", "to-hf"):
        raise DTError(USAGE)
    command, own_keys = argv[0], {"from-hf": ("hf", "out", "state_stats"), "to-hf": ("ckpt", "out")}[argv[0]]
    own, rest = {}, []
    for arg in argv[1:]:
        key, sep, value = arg.partition("=")
        if sep and key in own_keys:
            own[key] = value
        else:
            rest.append(arg)
    required = ("hf", "out") if command == "from-hf" else ("ckpt", "out")
    missing = [k for k in required if not own.get(k)]
    if missing:
        raise DTError(f"{command} needs {' and '.join(f'{k}=...' for k in missing)}; {USAGE}")
    if command == "to-hf" and rest:
        raise DTError(f"to-hf takes only ckpt=... and out=..., not {rest[0]}")
    return command, own, rest


@report_errors
def run(argv: list[str]) -> Path:
    command, own, overrides = parse(argv)
    if command == "from-hf":
        path = from_hf(own["hf"], own["out"], overrides, own.get("state_stats"))
        print(f"wrote {path}: python -m dt.evaluate ckpt={path}")
    else:
        path = to_hf_folder(own["ckpt"], own["out"])
        print(f"wrote {path}: DecisionTransformerModel.from_pretrained('{path}'); state statistics in {STATS_FILE}")
    return path


def main() -> None:
    quiet_third_party()
    run(sys.argv[1:])


if __name__ == "__main__":
    main()
