"""The LightningModule: normalization, loss, optimizer and warmup around `DecisionTransformer`."""

from __future__ import annotations

import math
from typing import Any

import lightning as L
import torch

from dt.errors import DTError
from dt.heads import make_head
from dt.model import DecisionTransformer, DTConfig


class DTModule(L.LightningModule):
    """Owns everything needed to act from a checkpoint alone: the network, state statistics, scales.

    Args:
        net: DTConfig fields other than the data-derived ones (embed_dim, n_layer, ...).
        optim: lr, weight_decay, warmup_steps, betas; decay (none | cosine), decay_steps, min_lr_ratio.
        data_spec: DTDataModule.spec (state/action dims, state mean/std, reference scores).
        context_len, max_ep_len, return_scale: shared with the data and the rollout.
        run_config: the resolved Hydra config, stored so a checkpoint can be evaluated later.
    """

    def __init__(
        self,
        net: dict[str, Any],
        optim: dict[str, Any],
        data_spec: dict[str, Any],
        context_len: int,
        max_ep_len: int,
        return_scale: float,
        run_config: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        config = DTConfig(
            state_dim=data_spec["state_dim"],
            act_dim=data_spec["act_dim"],
            discrete=data_spec["discrete"],
            context_len=context_len,
            max_ep_len=max_ep_len,
            state_shape=tuple(data_spec.get("state_shape") or [data_spec["state_dim"]]),
            **net,
        )
        self.model = DecisionTransformer(config)
        self.head = make_head(config.discrete)
        self.return_scale = return_scale
        # Empty for pixel states: the conv encoder scales frames by 1/255 instead.
        self.register_buffer("state_mean", torch.tensor(data_spec["state_mean"], dtype=torch.float32))
        self.register_buffer("state_std", torch.tensor(data_spec["state_std"], dtype=torch.float32))

    def forward(
        self,
        returns_to_go: torch.Tensor,  # (B, T) raw, in reward units
        states: torch.Tensor,  # (B, T, S) raw, or (B, T, 4, 84, 84) uint8
        actions: torch.Tensor,  # (B, T, A) or (B, T)
        timesteps: torch.Tensor,  # (B, T)
        last_only: bool = False,
    ) -> torch.Tensor:
        """Raw model outputs for every step, (B, T, A), or the last one (B, A); the one place inputs are normalized."""
        if self.state_mean.numel():
            states = (states - self.state_mean) / self.state_std
        return self.model(returns_to_go / self.return_scale, states, actions, timesteps, last_only)

    @torch.inference_mode()
    def predict_action(
        self,
        returns_to_go: torch.Tensor,
        states: torch.Tensor,
        actions: torch.Tensor,
        timesteps: torch.Tensor,
    ) -> torch.Tensor:
        """Action for the last step of each context, (B, A) or (B,); the last action input is ignored."""
        return self.head.act(self(returns_to_go, states, actions, timesteps, last_only=True))

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        outputs = self(batch["returns_to_go"], batch["states"], batch["actions"], batch["timesteps"])
        mask = batch["mask"].to(outputs.dtype)
        loss = self.head.loss(outputs, batch["actions"], mask)
        if not torch.isfinite(loss):
            raise DTError(
                f"train/loss became {loss.item()} at step {self.global_step}: lower model.optim.lr "
                "or check the dataset for extreme values"
            )
        self.log("train/loss", loss, prog_bar=True)
        self.log("train/action_error", self.head.error(outputs.detach(), batch["actions"], mask))
        self.log("train/lr", self.optimizers().param_groups[0]["lr"])
        return loss

    def configure_optimizers(self) -> dict[str, Any]:
        optim = self.hparams.optim
        optimizer = torch.optim.AdamW(
            self.model.optim_groups(optim["weight_decay"]), lr=optim["lr"], betas=tuple(optim["betas"])
        )
        warmup_steps = max(int(optim["warmup_steps"]), 1)
        decay = optim.get("decay") or "none"
        if decay not in ("none", "cosine"):
            raise DTError(f"model.optim.decay={decay} must be none (constant after warmup) or cosine")
        decay_steps = optim.get("decay_steps") or self.trainer.estimated_stepping_batches
        min_ratio = float(optim.get("min_lr_ratio", 0.1))

        def multiplier(step: int) -> float:
            if step < warmup_steps or decay == "none":
                return min((step + 1) / warmup_steps, 1.0)
            # cosine from 1 at the end of warmup to min_ratio at decay_steps, then flat
            progress = min((step - warmup_steps) / max(decay_steps - warmup_steps, 1), 1.0)
            return max(min_ratio, 0.5 * (1.0 + math.cos(math.pi * progress)))

        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, multiplier)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
