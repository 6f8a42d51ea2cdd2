"""Target-return evaluation: the episodes of every target in lockstep on one Gymnasium vector env.

All episodes start together, so at step t every running episode has the same history length
min(t + 1, K): the model sees one unpadded (M, k) batch per env step, where M counts the episodes still
running. Finished episodes leave that batch. With a sync vector env only the running sub-envs are stepped;
an async one steps all of its envs, finished ones with a zero action, and whatever those return afterwards
(the autoreset step, a new episode) is never read.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from dt.envs import check_action_space, make_env
from dt.errors import DTError

# (returns_to_go (B, T) raw, states (B, T, S) raw, actions (B, T, A) or (B, T), timesteps (B, T)) -> actions
# (B, A) or (B,); called with `uniform=` (B,) draws in [0, 1) as well when discrete actions are sampled.
Policy = Callable[..., torch.Tensor]

ACTION_SELECTIONS = ("sample", "argmax")


@dataclass(frozen=True)
class RolloutSpec:
    """What a rollout needs besides the policy; `from_module` reads it all from a checkpoint's module."""

    env_id: str
    state_dim: int
    act_dim: int
    discrete: bool
    context_len: int
    max_ep_len: int  # episode length limit at evaluation
    timestep_limit: int  # the model's timestep embedding size: timesteps are clipped below it
    delayed: bool = False  # the target stays fixed instead of being decremented by the rewards
    init_state_noise: float = 0.0  # std of Gaussian noise on the initial state the model sees
    ref_min_score: float | None = None
    ref_max_score: float | None = None
    env_factory: str | None = None  # dotted path of the env config's factory; None: gym.make
    action_selection: str = "argmax"  # discrete actions: "sample" from the softmax or take the "argmax"
    success_return: float | None = None  # an episode whose return reaches this counts as a success
    state_shape: tuple[int, ...] | None = None  # (4, 84, 84) for pixel stacks; None: (state_dim,)

    def __post_init__(self) -> None:
        if self.action_selection not in ACTION_SELECTIONS:
            choices = ", ".join(ACTION_SELECTIONS)
            raise DTError(f"eval.action_selection={self.action_selection} must be one of {choices}")

    @property
    def samples(self) -> bool:
        return self.discrete and self.action_selection == "sample"

    @property
    def obs_shape(self) -> tuple[int, ...]:
        return tuple(self.state_shape or (self.state_dim,))

    @property
    def obs_dtype(self) -> torch.dtype:
        """Pixel stacks stay uint8 (the model scales them); vectors become float32."""
        return torch.uint8 if len(self.obs_shape) > 1 else torch.float32

    @classmethod
    def from_module(
        cls,
        module: Any,
        max_ep_len: int | None = None,
        env_id: str | None = None,
        action_selection: str = "argmax",
    ) -> RolloutSpec:
        """Settings of a DTModule: env and reference scores from its dataset first, else its env config."""
        hp = module.hparams
        data_spec = hp["data_spec"]
        run = hp.get("run_config") or {}
        env_cfg, mode_cfg = run.get("env") or {}, run.get("mode") or {}
        env_id = env_id or data_spec.get("env_id") or env_cfg.get("id")
        if not env_id:
            raise DTError("the checkpoint names no environment: set eval.env_id=<gymnasium id>")
        # Prefer the dataset's reference scores: they belong to the data the policy learned from.
        ref_min, ref_max = data_spec.get("ref_min_score"), data_spec.get("ref_max_score")
        if ref_min is None or ref_max is None:
            ref_min, ref_max = env_cfg.get("ref_min_score"), env_cfg.get("ref_max_score")
        return cls(
            env_id=env_id,
            state_dim=int(data_spec["state_dim"]),
            act_dim=int(data_spec["act_dim"]),
            discrete=bool(data_spec["discrete"]),
            context_len=int(hp["context_len"]),
            max_ep_len=int(max_ep_len or hp["max_ep_len"]),
            # Clamp at the dataset's longest episode: later timestep embeddings were never trained.
            timestep_limit=min(int(hp["max_ep_len"]), int(data_spec.get("max_timestep", hp["max_ep_len"])) + 1),
            delayed=bool(mode_cfg.get("delayed", False)),
            init_state_noise=float(mode_cfg.get("init_state_noise", 0.0) or 0.0),
            ref_min_score=ref_min,
            ref_max_score=ref_max,
            env_factory=env_cfg.get("factory"),
            action_selection=str(action_selection),
            success_return=env_cfg.get("success_return"),
            state_shape=tuple(data_spec.get("state_shape") or [data_spec["state_dim"]]),
        )

    def normalize(self, returns: np.ndarray) -> np.ndarray | None:
        """D4RL normalized score, 0 = random and 100 = expert; None without reference scores."""
        if self.ref_min_score is None or self.ref_max_score is None:
            return None
        return 100.0 * (returns - self.ref_min_score) / (self.ref_max_score - self.ref_min_score)


@dataclass
class TargetResult:
    target_return: float
    returns: np.ndarray  # (N,) undiscounted episode returns
    lengths: np.ndarray  # (N,) episode lengths
    normalized: np.ndarray | None  # (N,) normalized returns, None without reference scores
    success_return: float | None = None  # the env config's success threshold, if it has one

    @property
    def success_rate(self) -> float | None:
        """Fraction of episodes whose return reaches `success_return`; None when the env defines none."""
        if self.success_return is None:
            return None
        return float((self.returns >= self.success_return).mean())

    def metrics(self, prefix: str = "eval") -> dict[str, float]:
        """`<prefix>/target_<R>/return_mean` etc., R written as an integer when it is one."""
        name = f"{prefix}/target_{target_name(self.target_return)}"
        metrics = {
            f"{name}/return_mean": float(self.returns.mean()),
            f"{name}/return_std": float(self.returns.std()),
            f"{name}/length_mean": float(self.lengths.mean()),
        }
        if self.normalized is not None:
            metrics[f"{name}/normalized_mean"] = float(self.normalized.mean())
        if self.success_rate is not None:
            metrics[f"{name}/success_rate"] = self.success_rate
        return metrics


def target_name(target: float) -> str:
    return str(int(target)) if float(target).is_integer() else str(target)


def check_targets(target_returns: Any) -> list[float]:
    """A non-empty list of finite floats; a single number is a list of one (for `-m` sweeps)."""
    if isinstance(target_returns, (int, float)):
        target_returns = [target_returns]
    try:
        targets = [float(r) for r in target_returns or []]
    except (TypeError, ValueError) as err:
        raise DTError(f"eval.target_returns={target_returns} must be a list of numbers, e.g. [3600,1800]") from err
    if not targets or not all(math.isfinite(r) for r in targets):
        raise DTError(f"eval.target_returns={target_returns} must be a non-empty list of finite numbers")
    return targets


def make_env_fn(spec: RolloutSpec) -> Callable[[], gym.Env]:
    def make() -> gym.Env:
        return make_env(spec.env_id, max_episode_steps=spec.max_ep_len, factory=spec.env_factory)

    return make


def make_vector_env(
    env_fn: Callable[[], gym.Env], episodes: int, vectorization: str = "sync", targets: int = 1
) -> gym.vector.VectorEnv:
    """`episodes` x `targets` copies, one per episode of each target (`rollout_batched` steps them all together);
    async runs each in its own process (uses the cores, costs pipe round trips)."""
    if vectorization not in ("sync", "async"):
        raise DTError(f"eval.vectorization={vectorization} must be sync or async")
    if not isinstance(episodes, int) or episodes < 1:
        raise DTError(f"eval.episodes={episodes} must be a positive integer")
    num_envs = episodes * targets
    # NEXT_STEP: the step after an episode ends resets that env; rollout_batched never reads it.
    mode = gym.vector.AutoresetMode.NEXT_STEP
    if vectorization == "async":
        return gym.vector.AsyncVectorEnv([env_fn] * num_envs, autoreset_mode=mode)
    return gym.vector.SyncVectorEnv([env_fn] * num_envs, autoreset_mode=mode)


def check_env(env: gym.Env | gym.vector.VectorEnv, spec: RolloutSpec) -> None:
    """Fail early, with the fix, when the env does not match the model's state and action sizes."""
    is_vector = isinstance(env, gym.vector.VectorEnv)
    obs_space = env.single_observation_space if is_vector else env.observation_space
    act_space = env.single_action_space if is_vector else env.action_space
    if obs_space.shape != spec.obs_shape:
        raise DTError(
            f"env {spec.env_id} has observations {obs_space.shape} but the model expects {spec.obs_shape}: "
            "set eval.env_id to the dataset's environment"
        )
    check_action_space(act_space, spec.discrete, spec.act_dim, "the model")


PRECISIONS = ("auto", "32", "bf16")


def uses_bf16(device: torch.device, precision: str = "auto") -> bool:
    """auto: bf16 on CUDA and on CPUs with native bf16 matmuls (AVX512-BF16/AMX: ~2x faster at batch 100)."""
    if precision not in PRECISIONS:
        raise DTError(f"eval.precision={precision} must be one of {', '.join(PRECISIONS)}")
    if precision != "auto":
        return precision == "bf16"
    if device.type == "cuda":
        return True
    cpu = torch.cpu
    return device.type == "cpu" and (cpu._is_avx512_bf16_supported() or cpu._is_amx_tile_supported())


def module_policy(module: torch.nn.Module, precision: str = "auto") -> Policy:
    """A DTModule's `predict_action` on its own device, under bf16 autocast when `uses_bf16`; float32 out. Called
    inside the rollouts' inference mode, it calls `act` (what `predict_action` wraps), which torch.compile can trace."""
    device = module.device
    bf16 = uses_bf16(device, str(precision))

    def act(
        rtg: torch.Tensor,
        states: torch.Tensor,
        actions: torch.Tensor,
        timesteps: torch.Tensor,
        uniform: torch.Tensor | None = None,
    ) -> torch.Tensor:
        sampling = {} if uniform is None else {"uniform": uniform}
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            action = module.act(rtg, states, actions, timesteps, **sampling)
        return action.float() if action.is_floating_point() else action

    return act


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
    targets = check_targets(list(target_returns))
    E, L, K = envs.num_envs, spec.max_ep_len, spec.context_len
    if E % len(targets):
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


def format_table(results: list[TargetResult]) -> str:
    """Target vs achieved, one row per target."""
    with_success = any(r.success_rate is not None for r in results)
    header = f"{'target':>10} {'return mean':>12} {'std':>9} {'normalized':>10} {'length':>8} {'episodes':>8}"
    header += f" {'success':>8}" if with_success else ""
    rows = [header, "-" * len(header)]
    for r in results:
        normalized = f"{r.normalized.mean():10.1f}" if r.normalized is not None else f"{'n/a':>10}"
        success = f" {r.success_rate:8.1%}" if r.success_rate is not None else f" {'n/a':>8}"
        success = success if with_success else ""
        rows.append(
            f"{target_name(r.target_return):>10} {r.returns.mean():12.1f} {r.returns.std():9.1f} {normalized} "
            f"{r.lengths.mean():8.1f} {len(r.returns):8d}{success}"
        )
    return "\n".join(rows)
