"""Target-return evaluation: the episodes of every target in lockstep on one Gymnasium vector env.

All episodes start together, so at step t every running episode has the same history length
min(t + 1, K): the model sees one unpadded (M, k) batch per env step, where M counts the episodes still
running. Finished episodes leave that batch. With a sync vector env only the running sub-envs are stepped;
an async one steps all of its envs, finished ones with a zero action, and whatever those return afterwards
(the autoreset step, a new episode) is never read.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import gymnasium as gym
import numpy as np
import torch

from dt.errors import DTError
from dt.evaluation.spec import RolloutSpec
from dt.metrics import TargetResult

# (returns_to_go (B, T) raw, states (B, T, S) raw, actions (B, T, A) or (B, T), timesteps (B, T)) -> actions
# (B, A) or (B,); called with `uniform=` (B,) draws in [0, 1) as well when discrete actions are sampled.
Policy = Callable[..., torch.Tensor]


def _initial_noise(spec: RolloutSpec, seed: int, num_episodes: int) -> np.ndarray | None:
    """Per-episode noise from (seed, episode), so batched and sequential rollouts draw the same."""
    if spec.init_state_noise <= 0:
        return None
    draws = [
        np.random.default_rng([seed, i]).normal(0.0, spec.init_state_noise, spec.state_dim) for i in range(num_episodes)
    ]
    return np.stack(draws)


def _sampling_streams(spec: RolloutSpec, seed: int, episodes: Sequence[int]) -> list[np.random.Generator] | None:
    """A random stream for each of `episodes`, from (seed, episode), for sampling discrete actions; None for argmax.

    Per episode, not per batch: episode i draws the same numbers whichever episodes run beside it.
    """
    if not spec.samples:
        return None
    return [np.random.default_rng([seed, int(i), 1]) for i in episodes]  # 1: apart from the noise's stream


def _act(policy: Policy, streams: list[np.random.Generator] | None, episodes: np.ndarray, *inputs: torch.Tensor):
    """The policy's actions for a batch of episodes; with `streams`, one uniform draw each from its own stream."""
    if streams is None:
        return policy(*inputs)
    uniform = torch.tensor([streams[i].random() for i in episodes], dtype=torch.float64, device=inputs[0].device)
    return policy(*inputs, uniform=uniform)


def _action_buffer(spec: RolloutSpec, shape: tuple[int, ...], device: torch.device) -> torch.Tensor:
    if spec.discrete:
        return torch.zeros(shape, dtype=torch.long, device=device)
    return torch.zeros((*shape, spec.act_dim), dtype=torch.float32, device=device)


def _step_running(
    envs: gym.vector.VectorEnv, alive: np.ndarray, actions: np.ndarray, env_actions: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Step the running episodes' envs: their (obs, reward, done), rows in `alive` order."""
    if isinstance(envs, gym.vector.SyncVectorEnv):
        # Only the running sub-envs: SyncVectorEnv.step would step the finished ones too, for nothing.
        # Its own autoreset bookkeeping goes stale meanwhile; the next rollout's reset() clears it.
        steps = [envs.envs[i].step(a) for i, a in zip(alive, actions, strict=True)]
        obs = np.stack([s[0] for s in steps])
        reward = np.array([s[1] for s in steps], dtype=np.float64)
        done = np.array([s[2] or s[3] for s in steps], dtype=bool)
        return obs, reward, done
    env_actions[:] = 0  # finished envs get a neutral action; their outputs are dropped below
    env_actions[alive] = actions
    obs, reward, terminated, truncated, _ = envs.step(env_actions)
    return obs[alive], reward[alive], (terminated | truncated)[alive]


@torch.inference_mode()
def rollout_batched(
    policy: Policy,
    envs: gym.vector.VectorEnv,
    spec: RolloutSpec,
    *,
    target_returns: Sequence[float],
    seed: int,
    device: torch.device | str = "cpu",
    progress: Callable[[int], None] | None = None,
) -> list[TargetResult]:
    """Every target's episodes in lockstep, one model call per env step: a result per target, in order.

    With T targets and N = num_envs / T episodes each, env j * N + e runs episode e of target j and is reset
    with seed + e: every target starts from the same N states (and draws the same per-episode noise and
    sampling streams), so targets differ by their conditioning only, as in `rollout_sequential`.

    Buffers hold whole episodes (E, max_ep_len) of returns-to-go and actions on `device`, allocated once, and
    the last K states only, in a ring (E, K, ...): step t sits in slot t % K, so nothing moves as the window
    slides (Atari stacks for 27k steps would not fit whole). The model reads the last K steps of the running
    episodes only. `progress`, if given, gets the number of episodes still running after every step.
    """
    device = torch.device(device)
    targets = [float(r) for r in target_returns]  # resolved and checked by dt.evaluation.targets
    E, L, K = envs.num_envs, spec.max_ep_len, spec.context_len
    if not targets or E % len(targets):
        raise DTError(f"{E} envs cannot hold the same number of episodes for each of {len(targets)} targets")
    N = E // len(targets)
    episode = np.tile(np.arange(N), len(targets))  # (E,) env -> its episode index within its target
    obs, _ = envs.reset(seed=[seed + int(e) for e in episode])
    noise = _initial_noise(spec, seed, N)
    streams = _sampling_streams(spec, seed, episode)  # one per env: every target replays its episode's draws
    if noise is not None:
        obs = obs + noise[episode]
    states = torch.zeros((E, K, *spec.obs_shape), dtype=spec.obs_dtype, device=device)  # ring: slot t % K
    actions = _action_buffer(spec, (E, L), device)
    rtg = torch.zeros((E, L), dtype=torch.float32, device=device)
    timesteps = torch.arange(L, device=device).clamp_(max=spec.timestep_limit - 1)
    states[:, 0] = torch.as_tensor(obs, dtype=spec.obs_dtype, device=device)
    rtg[:, 0] = torch.tensor(targets, dtype=torch.float32, device=device).repeat_interleave(N)

    returns = np.zeros(E, dtype=np.float64)
    lengths = np.zeros(E, dtype=np.int64)
    alive = np.arange(E)  # running episodes, in env order
    alive_t = torch.arange(E, device=device)
    env_actions = np.zeros(
        (E,) if spec.discrete else (E, spec.act_dim), dtype=np.int64 if spec.discrete else np.float32
    )
    for t in range(L):
        lo = max(0, t + 1 - K)
        slots = torch.arange(lo, t + 1, device=device) % K  # (k,) ring slots of steps lo..t, oldest first
        step_actions = _act(
            policy,
            streams,
            alive,
            rtg[alive_t, lo : t + 1],
            states[alive_t[:, None], slots],  # (M, k, ...)
            actions[alive_t, lo : t + 1],
            timesteps[lo : t + 1].expand(len(alive), -1),
        )  # (M, A) or (M,)
        actions[alive_t, t] = step_actions
        obs, reward, done = _step_running(envs, alive, step_actions.cpu().numpy(), env_actions)
        returns[alive] += reward
        lengths[alive] += 1
        running = ~done if t + 1 < L else np.zeros(len(alive), dtype=bool)
        if not running.all():
            alive, alive_t = alive[running], alive_t[torch.as_tensor(running, device=device)]
            obs, reward = obs[running], reward[running]
        if progress is not None:
            progress(len(alive))
        if len(alive) == 0:
            break
        states[alive_t, (t + 1) % K] = torch.as_tensor(obs, dtype=spec.obs_dtype, device=device)
        step_rtg = rtg[alive_t, t]
        if not spec.delayed:
            step_rtg = step_rtg - torch.as_tensor(reward, dtype=torch.float32, device=device)
        rtg[alive_t, t + 1] = step_rtg
    return [
        TargetResult(r, returns[rows], lengths[rows], spec.normalize(returns[rows]), spec.success_return)
        for r, rows in zip(targets, np.split(np.arange(E), len(targets)), strict=True)
    ]


@torch.inference_mode()
def rollout_sequential(
    policy: Policy,
    env: gym.Env,
    spec: RolloutSpec,
    *,
    target_return: float,
    seed: int,
    num_episodes: int,
    device: torch.device | str = "cpu",
) -> TargetResult:
    """The reference: one episode at a time, batch 1, histories grown by torch.cat as the official code does.

    Episode i is reset with seed + i, as episode i of each target in `rollout_batched`: both give the same episodes.
    """
    device = torch.device(device)
    K = spec.context_len
    noise = _initial_noise(spec, seed, num_episodes)
    streams = _sampling_streams(spec, seed, range(num_episodes))
    returns = np.zeros(num_episodes, dtype=np.float64)
    lengths = np.zeros(num_episodes, dtype=np.int64)
    for i in range(num_episodes):
        obs, _ = env.reset(seed=seed + i)
        if noise is not None:
            obs = obs + noise[i]
        states = torch.as_tensor(obs, dtype=spec.obs_dtype, device=device)[None]  # (t + 1, S)
        actions = _action_buffer(spec, (0,), device)  # (t, A)
        rtg = torch.tensor([target_return], dtype=torch.float32, device=device)  # (t + 1,)
        timesteps = torch.zeros(1, dtype=torch.long, device=device)  # (t + 1,)
        for t in range(spec.max_ep_len):
            actions = torch.cat([actions, _action_buffer(spec, (1,), device)])  # placeholder for a_t
            inputs = (rtg[None, -K:], states[None, -K:], actions[None, -K:], timesteps[None, -K:])
            action = _act(policy, streams, np.array([i]), *inputs)[0]
            actions[-1] = action
            obs, reward, terminated, truncated, _ = env.step(action.item() if spec.discrete else action.cpu().numpy())
            returns[i] += reward
            lengths[i] += 1
            if terminated or truncated:
                break
            states = torch.cat([states, torch.as_tensor(obs, dtype=spec.obs_dtype, device=device)[None]])
            step_rtg = rtg[-1:]
            if not spec.delayed:
                step_rtg = step_rtg - torch.tensor([reward], dtype=torch.float32, device=device)
            rtg = torch.cat([rtg, step_rtg])
            timesteps = torch.cat([timesteps, timesteps.new_full((1,), min(t + 1, spec.timestep_limit - 1))])
    return TargetResult(target_return, returns, lengths, spec.normalize(returns), spec.success_return)
