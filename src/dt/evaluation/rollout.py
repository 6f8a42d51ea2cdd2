"""Target-return evaluation: the episodes of every target in lockstep on one Gymnasium vector env.

All episodes start together, so at step t every running episode has the same history length
min(t + 1, K): the model sees one unpadded (M, k) batch per env step, where M counts the episodes still
running. Finished episodes leave that batch. With a sync vector env only the running sub-envs are stepped;
an async one steps all of its envs, finished ones with a zero action, and whatever those return afterwards
(the autoreset step, a new episode) is never read. `rollout_batched` acts through `dt.Policy`, as users' own
loops do; `rollout_sequential` is the independent reference it is tested against.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import gymnasium as gym
import numpy as np
import torch

from dt.errors import DTError
from dt.evaluation.policy import ActionFn, Policy, episode_noise, sampling_stream
from dt.evaluation.spec import RolloutSpec
from dt.metrics import TargetResult


def _act(action_fn: ActionFn, stream: np.random.Generator | None, *inputs: torch.Tensor) -> torch.Tensor:
    """The actions for a batch of one episode; with `stream`, sampled with one uniform draw from it."""
    if stream is None:
        return action_fn(*inputs)
    return action_fn(*inputs, uniform=torch.tensor([stream.random()], dtype=torch.float64, device=inputs[0].device))


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


def rollout_batched(
    action_fn: ActionFn,
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
    with seed + e: every target starts from the same N states, and its envs are started by one
    `Policy.reset(target, seed=seed, envs=...)` so env j * N + e draws episode e's noise and sampling stream
    too. Targets differ by their conditioning only, as in `rollout_sequential`. The `Policy` keeps each env's
    last K steps in rings on `device` and is given the running episodes' rows only.
    `progress`, if given, gets the number of episodes still running after every step.
    """
    targets = [float(r) for r in target_returns]  # resolved and checked by dt.evaluation.targets
    E, L = envs.num_envs, spec.max_ep_len
    if not targets or E % len(targets):
        raise DTError(f"{E} envs cannot hold the same number of episodes for each of {len(targets)} targets")
    N = E // len(targets)
    obs, _ = envs.reset(seed=[seed + e for _ in targets for e in range(N)])
    policy = Policy(action_fn, spec, device, envs.single_action_space)
    for j, target in enumerate(targets):
        policy.reset(target, num_envs=E if j == 0 else None, seed=seed, envs=range(j * N, (j + 1) * N))

    returns = np.zeros(E, dtype=np.float64)
    lengths = np.zeros(E, dtype=np.int64)
    alive = np.arange(E)  # running episodes, in env order
    reward = None  # the first act of an episode reads no reward
    env_actions = np.zeros(
        (E,) if spec.discrete else (E, spec.act_dim), dtype=np.int64 if spec.discrete else np.float32
    )
    for t in range(L):
        step_actions = policy.act(obs, reward, envs=alive)  # (M, A) or (M,)
        obs, reward, done = _step_running(envs, alive, step_actions, env_actions)
        returns[alive] += reward
        lengths[alive] += 1
        running = ~done if t + 1 < L else np.zeros(len(alive), dtype=bool)
        if not running.all():
            alive, obs, reward = alive[running], obs[running], reward[running]
        if progress is not None:
            progress(len(alive))
        if len(alive) == 0:
            break
    return [
        TargetResult(r, returns[rows], lengths[rows], spec.normalize(returns[rows]), spec.success_return)
        for r, rows in zip(targets, np.split(np.arange(E), len(targets)), strict=True)
    ]


@torch.inference_mode()
def rollout_sequential(
    policy: ActionFn,
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
    returns = np.zeros(num_episodes, dtype=np.float64)
    lengths = np.zeros(num_episodes, dtype=np.int64)
    for i in range(num_episodes):
        obs, _ = env.reset(seed=seed + i)
        noise, stream = episode_noise(spec, seed, i), sampling_stream(spec, seed, i)  # episode i's, as batched
        if noise is not None:
            obs = obs + noise
        states = torch.as_tensor(obs, dtype=spec.obs_dtype, device=device)[None]  # (t + 1, S)
        actions = _action_buffer(spec, (0,), device)  # (t, A)
        rtg = torch.tensor([target_return], dtype=torch.float32, device=device)  # (t + 1,)
        timesteps = torch.zeros(1, dtype=torch.long, device=device)  # (t + 1,)
        for t in range(spec.max_ep_len):
            actions = torch.cat([actions, _action_buffer(spec, (1,), device)])  # placeholder for a_t
            inputs = (rtg[None, -K:], states[None, -K:], actions[None, -K:], timesteps[None, -K:])
            action = _act(policy, stream, *inputs)[0]
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
