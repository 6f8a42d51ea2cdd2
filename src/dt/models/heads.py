"""Action heads: what the model's outputs mean, their training loss and metrics, and the action taken."""

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

    def metrics(self, outputs: torch.Tensor, actions: torch.Tensor, mask: torch.Tensor) -> dict[str, torch.Tensor]:
        """Logged as `train/<name>`."""
        return {"action_error": self.error(outputs, actions, mask)}

    def act(self, outputs: torch.Tensor, uniform: torch.Tensor | None = None) -> torch.Tensor:
        """The action itself; `uniform` (for sampling discrete actions) does not apply."""
        return self(outputs)


class DiscreteHead:
    """Logits over actions with a masked cross-entropy loss; acts greedily, or samples given uniform draws."""

    def __call__(self, outputs: torch.Tensor) -> torch.Tensor:
        return outputs

    def loss(self, outputs: torch.Tensor, actions: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        nll = F.cross_entropy(outputs.flatten(0, 1), actions.flatten(), reduction="none")  # (B*T,)
        return (nll * mask.flatten()).sum() / mask.sum()

    def error(self, outputs: torch.Tensor, actions: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Fraction of real steps whose greedy action differs from the dataset's."""
        wrong = (outputs.argmax(dim=-1) != actions).float()  # (B, T)
        return (wrong * mask).sum() / mask.sum()

    def metrics(self, outputs: torch.Tensor, actions: torch.Tensor, mask: torch.Tensor) -> dict[str, torch.Tensor]:
        """Logged as `train/<name>`: the greedy action's agreement with the dataset's."""
        return {"accuracy": 1.0 - self.error(outputs, actions, mask)}

    def act(self, outputs: torch.Tensor, uniform: torch.Tensor | None = None) -> torch.Tensor:
        """argmax of the logits (B, n) -> (B,); with `uniform` (B,) in [0, 1), a sample from their softmax.

        Sampling by inverse CDF from draws the caller makes keeps the randomness outside the model: each
        episode of a rollout owns its random stream, so batched and one-at-a-time rollouts sample alike.
        """
        if uniform is None:
            return outputs.argmax(dim=-1)
        cdf = outputs.float().softmax(dim=-1).cumsum(dim=-1)  # (B, n)
        index = torch.searchsorted(cdf, uniform.to(cdf)[:, None] * cdf[:, -1:], right=True)  # (B, 1): first cdf > u
        return index[:, 0].clamp_(max=outputs.shape[-1] - 1)


def make_head(discrete: bool) -> ContinuousHead | DiscreteHead:
    return DiscreteHead() if discrete else ContinuousHead()
