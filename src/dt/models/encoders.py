"""State encoders, chosen by observation shape: a vector goes through a Linear, an image stack through a conv net."""

from __future__ import annotations

import torch
import torch.nn as nn


class AtariEncoder(nn.Module):
    """The paper's (Nature-DQN) encoder: uint8 (..., 4, 84, 84) stacks scaled by 1/255 -> (..., C) in [-1, 1]."""

    def __init__(self, in_shape: tuple[int, int, int], embed_dim: int) -> None:
        super().__init__()
        channels = in_shape[0]
        self.in_shape = tuple(in_shape)
        self.conv = nn.Sequential(
            nn.Conv2d(channels, 32, kernel_size=8, stride=4),
            nn.ReLU(),
            nn.Conv2d(32, 64, kernel_size=4, stride=2),
            nn.ReLU(),
            nn.Conv2d(64, 64, kernel_size=3, stride=1),
            nn.ReLU(),
            nn.Flatten(),
        )
        with torch.no_grad():
            flat = self.conv(torch.zeros(1, *in_shape)).shape[1]  # 64 * 7 * 7 = 3136 for 84x84
        self.proj = nn.Sequential(nn.Linear(flat, embed_dim), nn.Tanh())

    def forward(self, states: torch.Tensor) -> torch.Tensor:
        lead = states.shape[:-3]  # (B, T)
        x = states.reshape(-1, *self.in_shape)  # (B, T, 4, 84, 84) -> (B*T, 4, 84, 84)
        x = x.to(self.proj[0].weight.dtype) / 255.0
        return self.proj(self.conv(x)).reshape(*lead, -1)  # (B*T, C) -> (B, T, C)


def make_state_encoder(state_shape: tuple[int, ...], embed_dim: int) -> nn.Module:
    """Linear for (S,) vectors, `AtariEncoder` for (stack, H, W) frames."""
    if len(state_shape) == 1:
        return nn.Linear(state_shape[0], embed_dim)
    if len(state_shape) == 3:
        return AtariEncoder(state_shape, embed_dim)
    raise ValueError(f"state shape {tuple(state_shape)} is neither a vector (S,) nor a frame stack (C, H, W)")
