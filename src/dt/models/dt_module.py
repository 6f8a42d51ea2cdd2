"""The Decision Transformer's LightningModule: `DecisionTransformer` behind the shared `PolicyModule`."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from dt.models.policy_module import PolicyModule
from dt.models.transformer import DecisionTransformer, DTConfig


class DTModule(PolicyModule):
    """The Decision Transformer: `net` holds the DTConfig fields other than the data-derived ones."""

    NAME = "dt"

    def build_model(self, net: dict[str, Any]) -> DecisionTransformer:
        spec, hp = self.data_spec, self.hparams
        config = DTConfig(
            state_dim=spec.state_dim,
            act_dim=spec.act_dim,
            discrete=spec.discrete,
            context_len=hp.context_len,
            max_ep_len=hp.max_ep_len,
            state_shape=spec.state_shape,
            **net,
        )
        return DecisionTransformer(config)

    def forward(
        self,
        returns_to_go: torch.Tensor,  # (B, T) raw, in reward units
        states: torch.Tensor,  # (B, T, S) raw, or (B, T, 4, 84, 84) uint8
        actions: torch.Tensor,  # (B, T, A) or (B, T)
        timesteps: torch.Tensor,  # (B, T)
        last_only: bool = False,
    ) -> torch.Tensor:
        """Raw model outputs for every step, (B, T, A), or the last one (B, A); the one place inputs are normalized."""
        states = self.normalize_states(states)
        return self.network()(returns_to_go / self.return_scale, states, actions, timesteps, last_only)

    def last_outputs(self, returns_to_go: Tensor, states: Tensor, actions: Tensor, timesteps: Tensor) -> Tensor:
        """Only the last state token's output is computed (`last_only`); the last action input is ignored."""
        return self(returns_to_go, states, actions, timesteps, last_only=True)

    def padded_outputs(
        self, returns_to_go: Tensor, states: Tensor, actions: Tensor, timesteps: Tensor, length: Tensor
    ) -> Tensor:
        """Causal attention keeps the padding after step length - 1 from reaching it: read that step's output."""
        outputs = self(returns_to_go, states, actions, timesteps)  # (B, K, A)
        last = (length - 1).view(-1, 1, 1).expand(-1, 1, outputs.shape[-1])  # (B, 1, A)
        return outputs.gather(1, last)[:, 0]

    def outputs_and_targets(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Every step of the window is a target; right padding is masked out."""
        outputs = self(batch["returns_to_go"], batch["states"], batch["actions"], batch["timesteps"])
        return outputs, batch["actions"], batch["mask"]
