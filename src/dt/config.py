"""Where the Hydra configs live: `conf/` in a source checkout, `dt/conf` inside an installed wheel."""

from __future__ import annotations

from pathlib import Path

from dt import resolvers


def _config_dir() -> str:
    packaged = Path(__file__).parent / "conf"
    checkout = Path(__file__).resolve().parents[2] / "conf"
    return str(packaged if packaged.is_dir() else checkout)


CONFIG_DIR = _config_dir()

resolvers.register()  # the configs' ${dt.*:...} interpolations
