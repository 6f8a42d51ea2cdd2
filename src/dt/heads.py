"""Action heads: what the model's outputs mean, their training loss and the action taken at evaluation."""

from __future__ import annotations

import torch
import torch.nn.functional as F


class ContinuousHead:
    """tanh-squashed actions in [-1, 1] with a masked MSE loss."""

    def __call__(self, outputs: torch.Tensor) -> torch.Tensor:
        return torch.tanh(outputs)

    def loss(self, outputs: torch.Tensor, actions: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        squared = (self(outputs) - actions).square().mean(dim=-1)  # (B, T)
        return (squared * mask).sum() / mask.sum()

    def error(self, outputs: torch.Tensor, actions: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Mean absolute action error over real steps, in action units."""
        absolute = (self(outputs) - actions).abs().mean(dim=-1)  # (B, T)
        return (absolute * mask).sum() / mask.sum()

    def act(self, outputs: torch.Tensor) -> torch.Tensor:
        return self(outputs)


class DiscreteHead:
    """Logits over actions with a masked cross-entropy loss; acts greedily."""

    def __call__(self, outputs: torch.Tensor) -> torch.Tensor:
        return outputs

    def loss(self, outputs: torch.Tensor, actions: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        nll = F.cross_entropy(outputs.flatten(0, 1), actions.flatten(), reduction="none")  # (B*T,)
        return (nll * mask.flatten()).sum() / mask.sum()

    def error(self, outputs: torch.Tensor, actions: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Fraction of real steps whose greedy action differs from the dataset's."""
        wrong = (outputs.argmax(dim=-1) != actions).float()  # (B, T)
        return (wrong * mask).sum() / mask.sum()

    def act(self, outputs: torch.Tensor) -> torch.Tensor:
        return outputs.argmax(dim=-1)


def make_head(discrete: bool) -> ContinuousHead | DiscreteHead:
    return DiscreteHead() if discrete else ContinuousHead()
