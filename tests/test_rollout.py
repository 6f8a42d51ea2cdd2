"""Batched lockstep rollouts: equal to the sequential reference, delayed mode, finished episodes, metrics."""

from __future__ import annotations

from dataclasses import replace

import gymnasium as gym
import numpy as np
import pytest
import torch

from dt.console import format_table
from dt.envs import make_env_fn, make_vector_env
from dt.errors import DTError
from dt.evaluation.precision import module_policy, uses_bf16
from dt.evaluation.rollout import rollout_batched, rollout_sequential
from dt.evaluation.spec import RolloutSpec
from dt.metrics import TargetResult


class CountdownEnv(gym.Env):
    """Episode length 2 + seed % 5, reward 1 per step; logs every action it gets after its first episode ends."""

    observation_space = gym.spaces.Box(-np.inf, np.inf, (2,), np.float64)
    action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)

    def __init__(self) -> None:
        self.length, self.t, self.episodes = 0, 0, 0
        self.late_actions: list[np.ndarray] = []

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        if seed is not None:
            self.length = 2 + seed % 5
        self.t, self.episodes = 0, self.episodes + 1
        return np.array([0.0, self.length]), {}

    def step(self, action):
        if self.t >= self.length or self.episodes > 1:
            self.late_actions.append(np.asarray(action))
        self.t += 1
        return np.array([self.t, self.length]), 1.0, self.t >= self.length, False, {}


class RecordingPolicy:
    """Deterministic policy that remembers every batch it was given."""

    def __init__(self) -> None:
        self.calls: list[dict[str, torch.Tensor]] = []

    def __call__(self, rtg, states, actions, timesteps) -> torch.Tensor:
        self.calls.append({"rtg": rtg.clone(), "states": states.clone(), "timesteps": timesteps.clone()})
        return torch.full((len(rtg), 1), 0.5)


TOY_SPEC = RolloutSpec(
    env_id="countdown",
    state_dim=2,
    act_dim=1,
    discrete=False,
    context_len=3,
    max_ep_len=10,
    timestep_limit=10,
    action_selection="sample",
)


def toy_rollout(spec: RolloutSpec, seed: int = 0, num_envs: int = 5) -> tuple[TargetResult, RecordingPolicy, list]:
    envs = make_vector_env(CountdownEnv, num_envs)
    policy = RecordingPolicy()
    (result,) = rollout_batched(policy, envs, spec, target_returns=[100.0], seed=seed)
    return result, policy, envs.envs


def test_finished_episodes_leave_the_batch_and_autoreset_never_counts() -> None:
    result, policy, envs = toy_rollout(TOY_SPEC)
    expected = 2 + np.arange(5) % 5  # lengths 2..6 from seeds 0..4
    np.testing.assert_array_equal(result.lengths, expected)
    np.testing.assert_array_equal(result.returns, expected)  # 1 per step: no reward after the end
    batch_sizes = [len(call["rtg"]) for call in policy.calls]
    assert batch_sizes == [(expected > t).sum() for t in range(expected.max())]
    assert all(env.late_actions == [] for env in envs)  # sync: finished envs are not stepped at all
    for t, call in enumerate(policy.calls):  # lockstep: one unpadded window of min(t + 1, K) steps
        k = min(t + 1, TOY_SPEC.context_len)
        assert call["states"].shape[1] == k
        assert torch.equal(call["timesteps"][0], torch.arange(t + 1 - k, t + 1))
        assert torch.equal(call["states"][:, -1, 0], torch.full((batch_sizes[t],), float(t)))


def test_async_vector_env_gives_the_same_episodes() -> None:
    envs = make_vector_env(CountdownEnv, 5, "async")
    try:
        (result,) = rollout_batched(RecordingPolicy(), envs, TOY_SPEC, target_returns=[100.0], seed=0)
    finally:
        envs.close()
    np.testing.assert_array_equal(result.returns, toy_rollout(TOY_SPEC)[0].returns)


def test_max_ep_len_cuts_episodes() -> None:
    result, policy, _ = toy_rollout(replace(TOY_SPEC, max_ep_len=4))
    np.testing.assert_array_equal(result.lengths, [2, 3, 4, 4, 4])
    assert len(policy.calls) == 4


@pytest.mark.parametrize("delayed", [False, True])
def test_returns_to_go_decrement_unless_delayed(delayed: bool) -> None:
    _, policy, _ = toy_rollout(replace(TOY_SPEC, delayed=delayed))
    for t, call in enumerate(policy.calls):
        last_rtg = call["rtg"][:, -1]
        assert torch.all(last_rtg == (100.0 if delayed else 100.0 - t)), (t, last_rtg)


@pytest.mark.parametrize("noise", [0.0, 0.1])
def test_batched_equals_sequential_on_hopper(tiny_module, noise: float) -> None:
    """Both targets in one batch give, per target, the episodes of one-at-a-time batch-1 rollouts."""
    spec = replace(
        RolloutSpec.from_module(tiny_module, action_selection="sample", max_ep_len=40), init_state_noise=noise
    )
    policy = module_policy(tiny_module, precision="32")
    episodes, targets = 4, [3600.0, 500.0]
    envs = make_vector_env(make_env_fn(spec), episodes, targets=len(targets))
    batched = rollout_batched(policy, envs, spec, target_returns=targets, seed=7)
    assert [r.target_return for r in batched] == targets and envs.num_envs == 8
    for result, target in zip(batched, targets, strict=True):
        sequential = rollout_sequential(
            policy, make_env_fn(spec)(), spec, target_return=target, seed=7, num_episodes=episodes
        )
        np.testing.assert_array_equal(result.lengths, sequential.lengths)
        assert result.lengths.max() > spec.context_len  # the context window did slide
        np.testing.assert_allclose(result.returns, sequential.returns, rtol=0, atol=1e-4)
    assert not np.array_equal(batched[0].returns, batched[1].returns)  # the target conditions the policy
    again = rollout_batched(policy, envs, spec, target_returns=targets, seed=7)  # same seed, same numbers
    for a, b in zip(again, batched, strict=True):
        np.testing.assert_array_equal(a.returns, b.returns)


def test_targets_must_split_the_envs_evenly() -> None:
    envs = make_vector_env(CountdownEnv, 5)
    with pytest.raises(DTError, match="5 envs"):
        rollout_batched(RecordingPolicy(), envs, TOY_SPEC, target_returns=[100.0, 50.0], seed=0)
    with pytest.raises(DTError, match="eval.episodes"):
        make_vector_env(CountdownEnv, 0, targets=2)


def test_spec_prefers_dataset_reference_scores(tiny_module) -> None:
    spec = RolloutSpec.from_module(tiny_module, action_selection="sample")
    assert spec.env_id == "Hopper-v5" and spec.context_len == 5
    assert (spec.ref_min_score, spec.ref_max_score) == (-20.272305, 3234.3)
    np.testing.assert_allclose(spec.normalize(np.array([-20.272305, 3234.3])), [0.0, 100.0])


def test_metric_names_and_table() -> None:
    result = TargetResult(3600.0, np.array([1.0, 3.0]), np.array([10, 20]), np.array([5.0, 7.0]))
    assert result.logged() == {
        "eval/target_3600/return_mean": 2.0,
        "eval/target_3600/return_std": 1.0,
        "eval/target_3600/normalized_mean": 6.0,
        "eval/target_3600/length_mean": 15.0,
    }
    fractional = TargetResult(1800.5, result.returns, result.lengths, normalized=None)
    assert sorted(fractional.logged()) == [
        f"eval/target_1800.5/{m}" for m in ("length_mean", "return_mean", "return_std")
    ]
    assert "3600" in format_table([result])


def test_precision(monkeypatch: pytest.MonkeyPatch) -> None:
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert not uses_bf16(cpu, "32") and uses_bf16(cpu, "bf16")
    assert not uses_bf16(cpu, "auto")  # fp32 on every CPU, native bf16 or not: the same returns everywhere
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: True)
    assert uses_bf16(cuda, "auto")
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: False)
    assert not uses_bf16(cuda, "auto")  # CUDA without bf16 (pre-Ampere): fp32
    with pytest.raises(DTError, match="eval.precision"):
        uses_bf16(cpu, "fp8")
