"""`dt.Policy`: a trained checkpoint as a stateful policy for your own loop, numpy in and numpy out.

    policy = Policy.from_checkpoint("outputs/<run>/checkpoints/last.ckpt")
    policy.reset(target_return="1.5max", num_envs=1, seed=0)
    action = policy.act(observation)  # first step: no reward yet
    action = policy.act(observation, reward)  # then the reward the previous action earned

It keeps what acting needs between calls, per env: the last K states, actions and returns-to-go in rings
(step t in slot t % K), the step count (timesteps clamped below the model's limit) and a random stream for
sampling discrete actions. The return-to-go starts at the target and drops by each reward (stays fixed in
delayed mode). `dt.evaluate` and the training callback act through this class (`rollout_batched`): there is one
place that turns observations into actions.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from dt.errors import DTError

if TYPE_CHECKING:
    import gymnasium as gym

    from dt.data.spec import DataSpec
    from dt.evaluation.spec import RolloutSpec

# (returns_to_go (B, k) raw, states (B, k, ...) raw, actions (B, k, A) or (B, k), timesteps (B, k)) -> actions
# (B, A) or (B,); called with `uniform=` (B,) draws in [0, 1) as well when discrete actions are sampled.
ActionFn = Callable[..., torch.Tensor]


def episode_noise(spec: RolloutSpec, seed: int, index: int) -> np.ndarray | None:
    """The initial-state noise (mode=noise) of the `index`-th env a reset starts, from (seed, index)."""
    if spec.init_state_noise <= 0:
        return None
    return np.random.default_rng([seed, index]).normal(0.0, spec.init_state_noise, spec.state_dim)


def sampling_stream(spec: RolloutSpec, seed: int, index: int) -> np.random.Generator | None:
    """The random stream for sampling the discrete actions of the `index`-th env a reset starts; None for argmax.

    Per env, not per batch: an episode draws the same numbers whichever episodes run beside it.
    """
    return np.random.default_rng([seed, index, 1]) if spec.samples else None  # 1: apart from the noise's stream


def load_module(ckpt: str | None, device: str | torch.device = "cpu") -> Any:
    """The PolicyModule (DTModule, BCModule) a dt.train checkpoint holds; DTError for a missing or foreign file."""
    from dt.checkpointing import load_dt_checkpoint
    from dt.models.policy_module import policy_class

    if not ckpt:
        raise DTError("no checkpoint given: ckpt=outputs/<run>/checkpoints/last.ckpt")
    cls = policy_class(load_dt_checkpoint(ckpt))
    return cls.load_from_checkpoint(ckpt, map_location=device, weights_only=True)


class Policy:
    """Acts for `num_envs` envs at once: `reset(target_return, num_envs, seed)`, then `act(observations, rewards)`.

    Built from a checkpoint (`from_checkpoint`), a module (`from_module`), or any `ActionFn` with the
    `RolloutSpec` it acts under. Continuous actions are clipped to [action_low, action_high]: `action_space`'s
    bounds when one is given, else the tanh head's range [-1, 1].
    """

    def __init__(
        self,
        action_fn: ActionFn,
        spec: RolloutSpec,
        device: str | torch.device = "cpu",
        action_space: gym.spaces.Space | None = None,
        data_spec: DataSpec | None = None,
    ) -> None:
        self.action_fn, self.spec, self.device = action_fn, spec, torch.device(device)
        self.module: Any = None  # the PolicyModule behind action_fn, when built from one (what dt.export exports)
        self.data_spec = data_spec  # the dataset's return statistics, for targets such as "1.5max"
        self.action_low = np.full(spec.act_dim, -1.0, dtype=np.float32)  # the tanh head's range
        self.action_high = np.full(spec.act_dim, 1.0, dtype=np.float32)
        if action_space is not None:
            from dt.envs import check_action_space

            check_action_space(action_space, spec.discrete, spec.act_dim, "the policy")
        if action_space is not None and not spec.discrete:
            self.action_low = np.asarray(action_space.low, np.float32).reshape(-1)
            self.action_high = np.asarray(action_space.high, np.float32).reshape(-1)
        self.num_envs = 0
        self._t = np.zeros(0, dtype=np.int64)  # (E,) steps acted since the env's reset; -1: never reset

    @classmethod
    def from_module(
        cls,
        module: Any,
        spec: RolloutSpec | None = None,
        precision: str | None = None,
        action_space: gym.spaces.Space | None = None,
        action_selection: str | None = None,
    ) -> Policy:
        """A PolicyModule's `predict_action` (put the module in eval mode first) under `spec`, by default its own.

        `precision` (auto | 32 | bf16) and `action_selection` (sample | argmax, discrete actions; used when `spec`
        is None) default to the training run's `eval` settings (else conf/train.yaml's), as `dt.evaluate`'s do.
        """
        from dt.evaluation.precision import module_policy
        from dt.evaluation.settings import EvalSettings
        from dt.evaluation.spec import RolloutSpec

        given = {"precision": precision, "action_selection": action_selection}
        settings = EvalSettings.for_run(module.hparams.get("run_config") or {}, given)
        if spec is None:
            spec = RolloutSpec.from_module(module, action_selection=settings.action_selection)
        policy = cls(module_policy(module, settings.precision), spec, module.device, action_space, module.data_spec)
        policy.module = module
        return policy

    @classmethod
    def from_checkpoint(
        cls,
        path: str,
        device: str | torch.device = "cpu",
        precision: str | None = None,
        action_selection: str | None = None,
        action_space: gym.spaces.Space | None = None,
    ) -> Policy:
        """The policy a `dt.train` checkpoint holds, in eval mode on `device` (settings as `from_module`'s): the
        same seeds give the same episodes as `dt.evaluate`."""
        module = load_module(path, device).eval()
        return cls.from_module(module, None, precision, action_space, action_selection)

    def reset(
        self,
        target_return: float | str,
        num_envs: int | None = None,
        seed: int = 0,
        envs: Sequence[int] | np.ndarray | None = None,
    ) -> None:
        """Start new episodes conditioned on `target_return`: a number, or a multiple of the dataset's returns
        such as "1.5max" or "mean".

        `num_envs` (given, or on the first reset) sets how many envs the policy serves, all stopped; then the
        envs in `envs` (default: all) start. The k-th env started draws its initial-state noise and sampling
        stream from (seed, k): reset a finished env alone with `envs=[i]` and a new seed.
        """
        from dt.evaluation.targets import resolve_targets

        target = resolve_targets([target_return], self.data_spec)[0].value
        if num_envs is not None or self.num_envs == 0:
            self._allocate(1 if num_envs is None else num_envs)
        rows = self._rows(envs)
        self._t[rows] = 0
        self._rtg[rows, 0] = target
        for k, row in enumerate(rows):
            self._noise[row] = episode_noise(self.spec, seed, k)
            self._streams[row] = sampling_stream(self.spec, seed, k)

    def _allocate(self, num_envs: int) -> None:
        if isinstance(num_envs, bool) or not isinstance(num_envs, (int, np.integer)) or num_envs < 1:
            raise DTError(f"num_envs={num_envs} must be a positive integer")
        E, K, spec, device = int(num_envs), self.spec.context_len, self.spec, self.device
        self.num_envs = E
        self._t = np.full(E, -1, dtype=np.int64)
        self._states = torch.zeros((E, K, *spec.obs_shape), dtype=spec.obs_dtype, device=device)
        self._rtg = torch.zeros((E, K), dtype=torch.float32, device=device)
        if spec.discrete:
            self._actions = torch.zeros((E, K), dtype=torch.long, device=device)
        else:
            self._actions = torch.zeros((E, K, spec.act_dim), dtype=torch.float32, device=device)
        self._noise: list[np.ndarray | None] = [None] * E
        self._streams: list[np.random.Generator | None] = [None] * E

    def _rows(self, envs: Sequence[int] | np.ndarray | None) -> np.ndarray:
        if envs is None:
            return np.arange(self.num_envs)
        rows = np.asarray(envs, dtype=np.int64).reshape(-1)
        if rows.size and (rows.min() < 0 or rows.max() >= self.num_envs):
            raise DTError(f"envs={rows.tolist()} must be env indices below num_envs={self.num_envs}")
        return rows

    @torch.inference_mode()
    def act(
        self,
        observations: np.ndarray,
        rewards: np.ndarray | float | None = None,
        envs: Sequence[int] | np.ndarray | None = None,
    ) -> np.ndarray:
        """Actions for a batch of raw observations (one row per env, or one observation when num_envs=1).

        `rewards`: what each env received for the previous action (ignored on an env's first step); `envs`: which
        envs the rows are (default: all, in order). Returns (B, A) float32 or (B,) int64 (one action unbatched).
        """
        if self.num_envs == 0:
            raise DTError("act() before reset(): call policy.reset(target_return, num_envs=...) first")
        rows = self._rows(envs)
        obs = np.asarray(observations)
        single = obs.shape == self.spec.obs_shape and len(rows) == 1
        obs = obs[None] if single else obs
        if obs.shape != (len(rows), *self.spec.obs_shape):
            raise DTError(
                f"observations have shape {obs.shape} but the policy expects ({len(rows)}, "
                f"{', '.join(map(str, self.spec.obs_shape))}): one row per env, the checkpoint's observation size"
            )
        t = self._t[rows]
        if (t < 0).any():
            raise DTError(f"act() on env(s) {rows[t < 0].tolist()} before reset(): call policy.reset(...) first")
        self._observe(rows, t, obs, rewards)
        actions = self._act(rows, t)
        self._t[rows] += 1
        return actions[0] if single else actions

    def _observe(self, rows: np.ndarray, t: np.ndarray, obs: np.ndarray, rewards: Any) -> None:
        """Write each env's step t: its observation, and past step 0 its return-to-go after the reward."""
        K, first = self.spec.context_len, t == 0
        if first.any():
            noise = [self._noise[r] for r in rows[first]]
            if noise[0] is not None:  # mode=noise: the model sees a perturbed initial state
                obs = obs.astype(np.float64, copy=True)
                obs[first] += np.stack(noise)
        later = ~first
        if later.any():
            if rewards is None:
                raise DTError("act(observations, rewards): pass the reward each env got for the previous action")
            rewards = np.broadcast_to(np.asarray(rewards, dtype=np.float64), (len(rows),))[later]
            rows_t = torch.as_tensor(rows[later], device=self.device)
            rtg = self._rtg[rows_t, torch.as_tensor((t[later] - 1) % K, device=self.device)]
            if not self.spec.delayed:
                rtg = rtg - torch.as_tensor(rewards, dtype=torch.float32, device=self.device)
            self._rtg[rows_t, torch.as_tensor(t[later] % K, device=self.device)] = rtg
        slots = torch.as_tensor(t % K, device=self.device)
        rows_t = torch.as_tensor(rows, device=self.device)
        self._states[rows_t, slots] = torch.as_tensor(obs, device=self.device).to(self._states.dtype)
        self._actions[rows_t, slots] = 0  # a_t is not known yet; the model never reads it

    def _act(self, rows: np.ndarray, t: np.ndarray) -> np.ndarray:
        """One model call per window length k = min(t + 1, K): a single call when the envs run in lockstep."""
        K, limit = self.spec.context_len, self.spec.timestep_limit
        if self.spec.discrete:
            out = np.zeros(len(rows), dtype=np.int64)
        else:
            out = np.zeros((len(rows), self.spec.act_dim), dtype=np.float32)
        k_of = np.minimum(t + 1, K)
        for k in np.unique(k_of):
            sel = np.flatnonzero(k_of == k)
            steps = torch.as_tensor(t[sel, None] - k + 1 + np.arange(k), device=self.device)  # (M, k) lo..t
            rows_t = torch.as_tensor(rows[sel, None], device=self.device)
            slots = steps % K
            inputs = (
                self._rtg[rows_t, slots],
                self._states[rows_t, slots],
                self._actions[rows_t, slots],
                steps.clamp(max=limit - 1),
            )
            if self.spec.samples:
                uniform = [self._streams[r].random() for r in rows[sel]]
                action = self.action_fn(*inputs, uniform=torch.tensor(uniform, dtype=torch.float64, device=self.device))
            else:
                action = self.action_fn(*inputs)
            if not self.spec.discrete:
                low, high = (torch.as_tensor(b, device=self.device) for b in (self.action_low, self.action_high))
                action = torch.clamp(action.float(), low, high)
            self._actions[rows_t[:, 0], slots[:, -1]] = action
            out[sel] = action.cpu().numpy()
        return out
