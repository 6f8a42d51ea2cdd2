"""Where the Hydra configs live (`conf/` in a source checkout, `dt/conf` inside an installed wheel); the config
composed outside a command (`compose_conf`: benchmarks, experiments, tests, `dt.convert`); `instantiate` with
one-line errors. The dotted-path lookup of what configs and checkpoints name is `dt.lookup`."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.errors import HydraException, InstantiationException
from hydra.utils import instantiate as hydra_instantiate
from omegaconf import DictConfig, open_dict

from dt import resolvers
from dt.errors import DTError, user_error


def _config_dir() -> str:
    packaged = Path(__file__).parent / "conf"
    checkout = Path(__file__).resolve().parents[2] / "conf"
    return str(packaged if packaged.is_dir() else checkout)


CONFIG_DIR = _config_dir()

resolvers.register()  # the configs' ${dt.*:...} interpolations


def compose_conf(
    overrides: Sequence[str] = (), config_name: str = "train", output_dir: str | Path | None = None
) -> DictConfig:
    """`conf/<config_name>.yaml` with `overrides`, as its command composes it, outside a Hydra run: the values a
    run fills through `${hydra:...}` (the experiment's name, the run folder: `output_dir`) are filled here, so
    the whole config resolves. Bad overrides: a one-line DTError."""
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
            cfg = compose(config_name=config_name, overrides=list(overrides), return_hydra_config=True)
    except HydraException as err:
        raise DTError(f"{err}".splitlines()[0] + ": check the overrides") from err
    choices = cfg.hydra.runtime.choices
    with open_dict(cfg):
        if "experiment_name" in cfg:
            cfg.experiment_name = choices.get("experiment" if config_name == "train" else "evaluate_experiment")
        if "paths" in cfg:
            cfg.paths.output_dir = None if output_dir is None else str(output_dir)
        del cfg.hydra
    return cfg


def instantiate(node: DictConfig, **kwargs) -> Any:
    """`hydra.utils.instantiate`, re-raising the DTError that Hydra wraps when a constructor rejects its input."""
    try:
        return hydra_instantiate(node, **kwargs)
    except InstantiationException as err:
        cause = user_error(err)
        if cause is None:
            raise
        raise cause from err
