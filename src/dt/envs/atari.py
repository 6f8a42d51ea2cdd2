"""Atari through ale-py (its wheel ships the ROMs) with the DQN preprocessing of the paper.

`make_atari` is the `factory:` of the Atari env configs: `ALE/<Game>-v5` with sticky actions off, frame skip 4
with max-pooling over the last two frames, up to 30 no-ops at reset, 84x84 grayscale (cv2.INTER_AREA), four
frames stacked with zero frames before the episode start (as `dt.data.frames` pads training stacks), and an episode
that ends at game over (not at a life loss). Rewards are the unclipped game score.

Stored RGB frames (Minari's Atari datasets) are brought to the same 84x84 grayscale by
`dt.data.frames.preprocess_frames`, beside the frame format.
"""

from __future__ import annotations

import gymnasium as gym

from dt.data.frames import FRAME_SIZE, FRAME_STACK
from dt.errors import DTError

FRAME_SKIP = 4
NOOP_MAX = 30


def register_ale() -> None:
    """Make the `ALE/*` ids known to Gymnasium (idempotent)."""
    try:
        import ale_py
    except ImportError as err:
        raise DTError("Atari needs ale-py and OpenCV: pip install 'dt[atari]'") from err
    gym.register_envs(ale_py)


def check_game(env_id: str) -> None:
    """A DTError naming some valid ids when `env_id` is not an ALE game."""
    register_ale()
    if env_id not in gym.registry or not env_id.startswith("ALE/"):
        examples = ", ".join(f"ALE/{game}-v5" for game in ("Breakout", "Qbert", "Pong", "Seaquest"))
        raise DTError(f"unknown Atari game '{env_id}': use an ALE id such as {examples}")


def make_atari(env_id: str, max_episode_steps: int | None = None) -> gym.Env:
    """The paper's Atari env: (4, 84, 84) uint8 stacks, `max_episode_steps` counted in agent steps (4 frames)."""
    check_game(env_id)
    # frameskip=1: AtariPreprocessing skips (and max-pools) itself; no sticky actions, as the DQN-replay data.
    env = gym.make(env_id, frameskip=1, repeat_action_probability=0.0)
    env = gym.wrappers.AtariPreprocessing(
        env,
        noop_max=NOOP_MAX,
        frame_skip=FRAME_SKIP,
        screen_size=FRAME_SIZE,
        terminal_on_life_loss=False,
        grayscale_obs=True,
        scale_obs=False,
    )
    env = gym.wrappers.FrameStackObservation(env, FRAME_STACK, padding_type="zero")
    if max_episode_steps is not None:
        env = gym.wrappers.TimeLimit(env, max_episode_steps)
    return env
