"""Pixel states stored once: one uint8 frame per step, stacks of the last `FRAME_STACK` frames gathered by index.

As d3rlpy (and unlike the official DT code, which keeps four copies of every frame): the stack for step i is the
gather of frames i-3..i. Slots before the step's episode start are zero frames, never frames of the previous
episode, the same padding as `FrameStackObservation(padding_type="zero")` gives the evaluation env.

`preprocess_frames` brings stored RGB screens (Minari's Atari datasets) to the env's 84x84 grayscale
(`dt.envs.atari`); it cannot max-pool over the frame skip (only every 4th frame was stored), so those frames can
differ from the env's where sprites flicker.
"""

from __future__ import annotations

import numpy as np
import torch

from dt.errors import DTError

FRAME_STACK = 4  # frames per state, the paper's (4, 84, 84) stacks
FRAME_SIZE = 84  # frames are FRAME_SIZE x FRAME_SIZE grayscale


class FrameStacks:
    """`stacks[index]`: (..., FRAME_STACK, H, W) uint8 stacks ending at the given steps, from (N, H, W) frames.

    Works on whatever device `frames` and `episode_start` live on (the gather is pure tensor indexing).
    """

    def __init__(self, frames: torch.Tensor, episode_start: torch.Tensor, stack: int = FRAME_STACK) -> None:
        assert frames.dtype == torch.uint8 and frames.ndim == 3, "frames are (N, H, W) uint8"
        self.frames = frames  # (N, H, W)
        self.episode_start = episode_start  # (N,) first step of each step's episode
        self.offsets = torch.arange(1 - stack, 1, device=frames.device)  # (stack,) = [-3, -2, -1, 0]

    def __len__(self) -> int:
        return len(self.frames)

    def to(self, device: torch.device | str) -> FrameStacks:
        return FrameStacks(self.frames.to(device), self.episode_start.to(device), len(self.offsets))

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of the states this gather serves: (N, stack, H, W)."""
        return (len(self.frames), len(self.offsets), *self.frames.shape[1:])

    def __getitem__(self, index: torch.Tensor) -> torch.Tensor:
        steps = index[..., None] + self.offsets  # (..., stack): steps i-3..i
        inside = steps >= self.episode_start[index][..., None]  # (..., stack): within the step's own episode
        steps = torch.where(inside, steps, index[..., None])  # slots before the start read a real frame, zeroed below
        # index_select + view: one gather into the output (faster than advanced indexing for 100 MB batches)
        frames = self.frames.index_select(0, steps.reshape(-1)).view(*steps.shape, *self.frames.shape[1:])
        return frames.masked_fill_(~inside[..., None, None], 0)  # (..., stack, H, W)


def preprocess_frames(rgb: np.ndarray) -> np.ndarray:
    """(T, 210, 160, 3) uint8 RGB screens -> (T, 84, 84) uint8 grayscale, resized as `AtariPreprocessing` does."""
    import cv2

    if rgb.ndim != 4 or rgb.shape[-1] != 3:
        raise DTError(f"Atari frames of shape {rgb.shape} are not (T, H, W, 3) RGB screens: check the dataset")
    out = np.empty((len(rgb), FRAME_SIZE, FRAME_SIZE), dtype=np.uint8)
    for t, frame in enumerate(rgb):
        gray = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)  # ALE's grayscale is the same luminance weighting
        out[t] = cv2.resize(gray, (FRAME_SIZE, FRAME_SIZE), interpolation=cv2.INTER_AREA)
    return out
