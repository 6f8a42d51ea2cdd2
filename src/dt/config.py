"""Where the Hydra configs live (`conf/` in a source checkout, `dt/conf` inside an installed wheel); the config
composed outside a command (`compose_conf`: benchmarks, experiments, tests, `dt.convert`); the dotted-path lookup
of what configs and checkpoints name (env factories, dataset generators, policy classes)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.errors import HydraException
from hydra.utils import get_class, get_method
from omegaconf import DictConfig, open_dict

from dt import resolvers
from dt.errors import DTError


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


def locate(path: str, want: str = "function") -> Any:
    """The function (`want="function"`) or class a dotted path names, by Hydra's own lookup.

    Raises LookupError with Hydra's reason; callers turn it into a one-line DTError naming their setting.
    """
    hydra_log = logging.getLogger("hydra.utils")
    level = hydra_log.level
    hydra_log.setLevel(logging.CRITICAL)  # Hydra logs every failed lookup; the caller's one line says it instead
    try:
        return (get_class if want == "class" else get_method)(path)
    except (ImportError, AttributeError, ValueError) as err:
        raise LookupError(str(err)) from err
    finally:
        hydra_log.setLevel(level)


def import_function(path: str, setting: str) -> Any:
    """The function a dotted path names, or a DTError naming the config `setting` that holds the path."""
    try:
        return locate(path)
    except LookupError as err:
        raise DTError(f"{setting}={path} is not an importable function: check the config") from err
