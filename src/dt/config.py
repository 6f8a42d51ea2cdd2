"""Where the Hydra configs live (`conf/` in a source checkout, `dt/conf` inside an installed wheel), and the
dotted-path lookup of what configs and checkpoints name (env factories, dataset generators, policy classes)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from hydra.utils import get_class, get_method

from dt import resolvers


def _config_dir() -> str:
    packaged = Path(__file__).parent / "conf"
    checkout = Path(__file__).resolve().parents[2] / "conf"
    return str(packaged if packaged.is_dir() else checkout)


CONFIG_DIR = _config_dir()

resolvers.register()  # the configs' ${dt.*:...} interpolations


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
