"""Train a Decision Transformer: `python -m dt.train env=hopper dataset=medium mode=delayed`."""

from __future__ import annotations

import hydra
import lightning as L
from lightning.pytorch.loggers import Logger
from omegaconf import DictConfig, OmegaConf

from dt.config import CONFIG_DIR
from dt.errors import DTError, report_errors


def build_loggers(cfg: DictConfig) -> list[Logger]:
    return [hydra.utils.instantiate(c) for c in (cfg.get("logger") or {}).values()]


def build_callbacks(cfg: DictConfig) -> list[L.Callback]:
    return [hydra.utils.instantiate(c) for c in (cfg.get("callbacks") or {}).values()]


def train(cfg: DictConfig) -> L.Trainer:
    """Build data, module, loggers and trainer from a composed config, then fit."""
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    datamodule = hydra.utils.instantiate(cfg.data)
    datamodule.setup("fit")
    module = hydra.utils.instantiate(
        cfg.model,
        data_spec=datamodule.spec,
        run_config=OmegaConf.to_container(cfg, resolve=True),
        _recursive_=False,  # run_config holds `_target_` nodes to store, not to build
        _convert_="all",
    )
    trainer: L.Trainer = hydra.utils.instantiate(
        cfg.trainer, logger=build_loggers(cfg) or False, callbacks=build_callbacks(cfg)
    )
    trainer.fit(module, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"))
    return trainer


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="train")
@report_errors
def main(cfg: DictConfig) -> None:
    try:
        train(cfg)
    except OSError as err:  # unwritable output folder, full disk
        raise DTError(f"{err}: choose a writable folder with hydra.run.dir=...") from err
    finally:
        _finish_wandb()


def _finish_wandb() -> None:
    import sys

    if "wandb" in sys.modules and sys.modules["wandb"].run is not None:
        sys.modules["wandb"].finish()


if __name__ == "__main__":
    main()
