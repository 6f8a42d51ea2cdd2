"""MLP behaviour cloning, the paper's baseline (kzl/decision-transformer `mlp_bc.py`).

The last K states, flattened, go through an MLP (hidden size `embed_dim`, `n_layer` layers, ReLU, dropout)
to the action of the last step; returns-to-go, past actions and timesteps are ignored. K=1 is plain BC;
`dataset.pct_traj=0.1` trains it on the best 10% of the data (%BC).

Training windows end at every step (`data.window=history`) and are left-padded with zeros before the
episode's start, exactly the context a rollout gives the policy in its first K - 1 steps. (The official code
samples windows by their first step, so its steps 0..K-2 are never targets; with K=1 both are the same.)
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from dt.errors import DTError
from dt.models.policy_module import PolicyModule
from dt.models.transformer import ACTIVATIONS


class MLPBC(nn.Module):
    """(B, K, S) normalized states, zeros where padded -> (B, A) raw action outputs."""

    def __init__(
        self,
        state_dim: int,
        act_dim: int,
        context_len: int,
        embed_dim: int = 128,
        n_layer: int = 3,
        dropout: float = 0.1,
        activation: str = "relu",
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Linear(context_len * state_dim, embed_dim)]
        for _ in range(n_layer - 1):
            layers += [ACTIVATIONS[activation](), nn.Dropout(dropout), nn.Linear(embed_dim, embed_dim)]
        layers += [ACTIVATIONS[activation](), nn.Dropout(dropout), nn.Linear(embed_dim, act_dim)]
        self.net = nn.Sequential(*layers)

    def forward(self, states: torch.Tensor) -> torch.Tensor:
        return self.net(states.flatten(1))  # (B, K, S) -> (B, K * S) -> (B, A)


class BCModule(PolicyModule):
    """MLP BC with DTModule's constructor, checkpoint contents and `predict_action` contract."""

    NAME = "bc"

    def build_model(self, net: dict[str, Any]) -> MLPBC:
        if self.data_spec.pixels:
            raise DTError("model=bc takes vector states; pixel (Atari) states need model=dt")
        return MLPBC(self.data_spec.state_dim, self.data_spec.act_dim, self.hparams.context_len, **net)

    def forward(self, states: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Raw outputs (B, A) for the last of states (B, T, S) raw; T < K is left-padded, `mask` (B, T) zeroes steps."""
        K = self.hparams.context_len
        states = self.normalize_states(states[:, -K:])  # (B, T', S), T' = min(T, K)
        if mask is not None:
            states = states * mask[:, -K:, None].to(states.dtype)
        states = F.pad(states, (0, 0, K - states.shape[1], 0))  # (B, K, S): zeros before the first step
        return self.network()(states)

    def last_outputs(self, returns_to_go: Tensor, states: Tensor, actions: Tensor, timesteps: Tensor) -> Tensor:
        """Only the states are read."""
        return self(states)

    def padded_outputs(
        self, returns_to_go: Tensor, states: Tensor, actions: Tensor, timesteps: Tensor, length: Tensor
    ) -> Tensor:
        """The real steps moved to the window's end and zeros before them: the left padding `forward` gives."""
        B, K = states.shape[:2]
        step = torch.arange(K, device=states.device) - (K - length[:, None])  # (B, K): step at each position
        index = step.clamp(min=0).view(B, K, 1).expand_as(states)
        return self(states.gather(1, index), mask=step >= 0)

    def outputs_and_targets(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The window's last step is the target (history windows: always a real step)."""
        outputs = self(batch["states"], batch["mask"])[:, None]  # (B, 1, A)
        return outputs, batch["actions"][:, -1:], batch["mask"][:, -1:]
