"""What every trainable policy shares: state normalization, the action head, the loss and its logging, AdamW + warmup.

Every model (the Decision Transformer, the MLP BC baseline) is a `PolicyModule` with
`predict_action(returns_to_go, states, actions, timesteps)`: the rollout, the callback and `dt.evaluate` know
nothing else. A checkpoint records its class (`POLICY_CLASS_KEY`), so `dt.evaluate` rebuilds the right one.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import lightning as L
import torch
from torch import Tensor

from dt.data.spec import DataSpec
from dt.errors import Diverged, DTError
from dt.lookup import locate
from dt.models.heads import make_head
from dt.models.transformer import decay_groups

POLICY_CLASS_KEY = "dt_policy_class"  # checkpoint key: dotted path of the PolicyModule subclass
# Class paths that checkpoints written before the package layout (dt.module, dt.bc) hold, and where they live now.
MOVED_CLASSES = {"dt.module.DTModule": "dt.models.dt_module.DTModule", "dt.bc.BCModule": "dt.models.bc.BCModule"}


class PolicyModule(L.LightningModule):
    """Base of DTModule and BCModule: the one constructor, the state statistics, the head and the optimizer of
    `self.model`; everything needed to act from a checkpoint alone.

    Subclasses set `NAME`, build their network in `build_model` and implement `act` (behind `predict_action`) and
    `outputs_and_targets` (what the loss compares for one training batch). Every constructor argument is saved
    as a hyperparameter: a checkpoint rebuilds the module from them.

    Args:
        net: the network's settings other than the data-derived ones (embed_dim, n_layer, ...).
        optim: lr, weight_decay, warmup_steps, betas; decay (none | cosine), decay_steps, min_lr_ratio.
        data_spec: the DataSpec of `DTDataModule.spec` (state/action sizes, state mean/std, reference scores), or
            its `to_dict()` as a checkpoint's hyperparameters hold it.
        context_len, max_ep_len, return_scale: shared with the data and the rollout.
        run_config: the resolved Hydra config, stored so a checkpoint can be evaluated later.
        name: the model's short name in run names and results (`model.name`); None: the class's `NAME`.
        compile: `torch.compile` the network for training: true (inductor) or a backend name; false: eager.
    """

    NAME = "policy"

    def __init__(
        self,
        net: dict[str, Any],
        optim: dict[str, Any],
        data_spec: DataSpec | Mapping[str, Any],
        context_len: int,
        max_ep_len: int,
        return_scale: float,
        run_config: dict[str, Any] | None = None,
        name: str | None = None,
        compile: bool | str = False,
    ) -> None:
        super().__init__()
        self.data_spec = DataSpec.from_dict(data_spec)  # a checkpoint's hyperparameters hold the plain dict
        self.save_hyperparameters()
        self.hparams["data_spec"] = self.data_spec.to_dict()
        self.hparams["name"] = name or self.NAME
        self.head = make_head(self.data_spec.discrete)
        self.return_scale = return_scale
        self.compile_backend = "inductor" if compile is True else (compile or None)
        self._compiled: list[torch.nn.Module] = []  # a list: the wrapper must not become a submodule (state_dict)
        self.register_buffer("state_mean", torch.tensor(self.data_spec.state_mean, dtype=torch.float32))
        self.register_buffer("state_std", torch.tensor(self.data_spec.state_std, dtype=torch.float32))
        self.model = self.build_model(net)

    def build_model(self, net: dict[str, Any]) -> torch.nn.Module:
        """The network, from `net` and `self.data_spec` / `self.hparams` (context_len, max_ep_len)."""
        raise NotImplementedError

    def network(self) -> torch.nn.Module:
        """`self.model`; in training, its `torch.compile` wrapper when `model.compile` is set. Acting stays eager:
        its batch and window change every step, and each new shape would compile again."""
        if self.compile_backend is None or not self.training:
            return self.model
        if not self._compiled:
            self._compiled.append(torch.compile(self.model, backend=self.compile_backend))
        return self._compiled[0]

    def normalize_states(self, states: torch.Tensor) -> torch.Tensor:
        if not self.state_mean.numel():  # pixel states: the conv encoder scales frames by 1/255 instead
            return states
        return (states - self.state_mean) / self.state_std

    @torch.inference_mode()
    def predict_action(
        self,
        returns_to_go: torch.Tensor,  # (B, T) raw, in reward units
        states: torch.Tensor,  # (B, T, S) raw
        actions: torch.Tensor,  # (B, T, A) or (B, T)
        timesteps: torch.Tensor,  # (B, T)
        uniform: torch.Tensor | None = None,  # (B,) in [0, 1): sample discrete actions with these draws
    ) -> torch.Tensor:
        """Action for the last step of each context, (B, A) or (B,); argmax for discrete actions without `uniform`."""
        return self.act(returns_to_go, states, actions, timesteps, uniform)

    def act(
        self, returns_to_go: Tensor, states: Tensor, actions: Tensor, timesteps: Tensor, uniform: Tensor | None = None
    ) -> Tensor:
        """`predict_action` without entering inference mode, for callers already in it (the rollouts): what
        `eval.compile` traces, as torch.compile cannot trace into inference mode."""
        return self.head.act(self.last_outputs(returns_to_go, states, actions, timesteps), uniform)

    def last_outputs(self, returns_to_go: Tensor, states: Tensor, actions: Tensor, timesteps: Tensor) -> Tensor:
        """Raw outputs (B, A) for the last step of each context (inputs as `predict_action`'s), for the head."""
        raise NotImplementedError

    def padded_outputs(
        self,
        returns_to_go: torch.Tensor,  # (B, K) raw
        states: torch.Tensor,  # (B, K, S) raw
        actions: torch.Tensor,  # (B, K, A) or (B, K)
        timesteps: torch.Tensor,  # (B, K)
        length: torch.Tensor,  # (B,) real steps, 1..K: rows 0..length-1 of each window, oldest first
    ) -> torch.Tensor:
        """Raw outputs (B, A) for the last real step of right-padded K-step windows (fixed shapes, for export);
        padded rows must hold finite values (the exported graph zeroes them)."""
        raise NotImplementedError

    def outputs_and_targets(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(raw outputs (B, T, A), target actions (B, T, A) or (B, T), mask (B, T)) for the head's loss."""
        raise NotImplementedError

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        outputs, actions, mask = self.outputs_and_targets(batch)
        mask = mask.to(outputs.dtype)
        loss = self.head.loss(outputs, actions, mask)
        if not torch.isfinite(loss):
            raise Diverged(
                f"train/loss became {loss.item()} at step {self.global_step}: lower model.optim.lr "
                "or check the dataset for extreme values (the checkpoints hold the last finite weights)",
                self.global_step,
            )
        self.log("train/loss", loss, prog_bar=True)
        for name, value in self.head.metrics(outputs.detach(), actions, mask).items():
            self.log(f"train/{name}", value)  # action_error (continuous) or accuracy (discrete)
        self.log("train/lr", self.optimizers().param_groups[0]["lr"])
        return loss

    def check_finite_weights(self) -> None:
        """Diverged when a weight is NaN/inf (an optimizer step can make them so while the loss was finite)."""
        bad = next((name for name, p in self.named_parameters() if not bool(torch.isfinite(p).all())), None)
        if bad is not None:
            raise Diverged(
                f"the weights became NaN/inf by step {self.global_step} ({bad}): lower model.optim.lr "
                "or check the dataset for extreme values (the checkpoints hold the last finite weights)",
                self.global_step,
            )

    def configure_optimizers(self) -> dict[str, Any]:
        optim = self.hparams.optim
        fused = optim.get("fused", "auto")
        if fused not in ("auto", True, False):
            raise DTError(f"model.optim.fused={fused} must be auto (fused on CUDA), true or false")
        optimizer = torch.optim.AdamW(
            decay_groups(self.model, optim["weight_decay"], optim.get("weight_decay_params", "weights")),
            lr=optim["lr"],
            betas=tuple(optim["betas"]),
            fused=self.device.type == "cuda" if fused == "auto" else fused,  # one kernel for all parameters
        )
        warmup_steps = max(int(optim["warmup_steps"]), 1)
        decay = optim.get("decay") or "none"
        if decay not in ("none", "cosine"):
            raise DTError(f"model.optim.decay={decay} must be none (constant after warmup) or cosine")
        decay_steps = (optim.get("decay_steps") or self._run_steps()) if decay == "cosine" else None
        min_ratio = float(optim.get("min_lr_ratio", 0.1))

        def multiplier(step: int) -> float:
            if step < warmup_steps or decay == "none":
                return min((step + 1) / warmup_steps, 1.0)
            # cosine from 1 at the end of warmup to min_ratio at decay_steps, then flat
            progress = min((step - warmup_steps) / max(decay_steps - warmup_steps, 1), 1.0)
            return max(min_ratio, 0.5 * (1.0 + math.cos(math.pi * progress)))

        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, multiplier)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def _run_steps(self) -> int:
        """max_epochs x the epoch length, without `trainer.estimated_stepping_batches`: that builds the train
        dataloader before a resumed run restores its sampler, and the resumed batches would then differ."""
        epochs, epoch_length = self.trainer.max_epochs, self.trainer.limit_train_batches
        if not isinstance(epoch_length, int) or not epochs or epochs < 1:
            raise DTError("model.optim.decay=cosine over an open-ended run: set model.optim.decay_steps")
        return epochs * epoch_length

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint[POLICY_CLASS_KEY] = f"{type(self).__module__}.{type(self).__qualname__}"


def policy_class(checkpoint: dict[str, Any]) -> type[PolicyModule]:
    """The PolicyModule subclass a checkpoint holds (checkpoints older than the key hold a DTModule)."""
    path = checkpoint.get(POLICY_CLASS_KEY) or "dt.module.DTModule"
    path = MOVED_CLASSES.get(path, path)
    try:
        cls = locate(path, "class")
    except LookupError as err:
        raise DTError(f"the checkpoint holds a {path}, which this dt cannot import: update dt") from err
    if not (isinstance(cls, type) and issubclass(cls, PolicyModule)):
        raise DTError(f"the checkpoint names {path}, which is not a dt policy: pass a .ckpt written by dt.train")
    return cls
