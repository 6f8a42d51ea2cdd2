"""`EvalSettings`: the `eval:` config node as typed fields, with no defaults of its own: conf/train.yaml holds
them (and conf/evaluate.yaml says which to take from the checkpoint's training run). Used by the one evaluation
setup (`dt.evaluation.setup`) and by `dt.Policy`, which reads its defaults from a checkpoint's run the same way."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from dt.config import CONFIG_DIR
from dt.errors import DTError


@dataclass(frozen=True)
class EvalSettings:
    target_returns: Any  # as written: numbers or multiples of the dataset's returns ("1.5max"), see targets
    episodes: int  # per target
    vectorization: str  # sync | async
    precision: str  # auto | 32 | bf16, see precision
    max_ep_len: int | None  # None: the checkpoint's
    env_id: str | None  # None: the dataset's env, else the run's env.id
    action_selection: str  # sample | argmax (discrete actions)
    compile: bool | str  # false | true (inductor) | a torch.compile backend: see dt.evaluation.compiled
    seed: int  # env i of each target is reset with seed + i

    @classmethod
    def from_config(cls, node: Mapping[str, Any]) -> EvalSettings:
        """Every field from `node` (the callback's config: conf/callbacks/default.yaml fills it from `eval:`)."""
        names = [f.name for f in fields(cls)]
        missing, unknown = [n for n in names if n not in node], [k for k in node if k not in names]
        if missing or unknown:
            raise DTError(
                f"evaluation settings: missing {missing or 'none'}, unknown {unknown or 'none'}: "
                "check the rollout_eval callback's config (conf/callbacks/default.yaml)"
            )
        return cls(**{**node, "precision": str(node["precision"])})

    @classmethod
    def for_run(cls, run_config: Mapping[str, Any], given: Mapping[str, Any] | None = None) -> EvalSettings:
        """A checkpoint's settings (`dt.evaluate`, `dt.Policy`): each `given`'s (None: unset; `seed` too), else the
        training run's (`run_config`: its resolved config), else conf/train.yaml's (a run config without that
        key: an older checkpoint)."""
        names = [f.name for f in fields(cls)]
        trained = {**(run_config.get("eval") or {}), "seed": run_config.get("seed")}
        defaults = train_config_defaults(run_config, names)
        given = given or {}
        chosen = {
            k: given[k] if given.get(k) is not None else trained[k] if k in trained else defaults[k] for k in names
        }
        if chosen["seed"] is None:
            chosen["seed"] = defaults["seed"]
        return cls(**{**chosen, "seed": int(chosen["seed"])})


def train_config_defaults(run_config: Mapping[str, Any], names: list[str]) -> dict[str, Any]:
    """conf/train.yaml's `eval.<name>` for each name (`seed`: its top-level seed), its interpolations such as
    `${env.target_returns}` read from `run_config`; None where they cannot be resolved."""
    train = OmegaConf.load(Path(CONFIG_DIR) / "train.yaml")
    context = OmegaConf.create({"env": dict(run_config.get("env") or {}), "eval": train.eval, "seed": train.seed})
    defaults: dict[str, Any] = {}
    for name in names:
        try:
            value = OmegaConf.select(context, name if name == "seed" else f"eval.{name}")
        except OmegaConfBaseException:
            value = None
        defaults[name] = OmegaConf.to_container(value) if OmegaConf.is_config(value) else value
    return defaults
