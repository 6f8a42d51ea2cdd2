"""`dt.Policy` in a plain Gymnasium loop: the episodes `dt.evaluate` reports, and one-line errors for bad input."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from dt import Policy
from dt.errors import DTError
from dt.evaluate import evaluate
from dt.evaluation.spec import RolloutSpec

FIXTURES = Path(__file__).parent / "fixtures"
DT_CKPT, BC_CKPT = FIXTURES / "pre_house_plan_dt.ckpt", FIXTURES / "pre_house_plan_bc.ckpt"  # tiny Hopper runs
REPO_ROOT = Path(__file__).resolve().parents[1]
MAX_EP_LEN = 60  # > K = 5: the window slides


def gym_loop(policy: Policy, target: float | str, seeds: list[int]) -> list[float]:
    """The README's loop: one env, one episode at a time."""
    env = gym.make("Hopper-v5", max_episode_steps=MAX_EP_LEN)
    returns = []
    for seed in seeds:
        obs, _ = env.reset(seed=seed)
        policy.reset(target_return=target)
        reward, done, total = None, False, 0.0
        while not done:
            obs, reward, terminated, truncated, _ = env.step(policy.act(obs, reward))
            total, done = total + reward, terminated or truncated
        returns.append(total)
    return returns


@pytest.mark.parametrize("ckpt", [DT_CKPT, BC_CKPT], ids=["dt", "bc"])
def test_gym_loop_gives_the_returns_dt_evaluate_reports(ckpt: Path) -> None:
    settings = {"episodes": 3, "max_ep_len": MAX_EP_LEN, "precision": "32", "target_returns": [3600, "1.5max"]}
    cfg = OmegaConf.create({"ckpt": str(ckpt), "device": "cpu", "seed": 4, "eval": settings})
    reported = evaluate(cfg)
    policy = Policy.from_checkpoint(str(ckpt), precision="32")
    for result, target in zip(reported, [3600, "1.5max"], strict=True):
        returns = gym_loop(policy, target, seeds=[4, 5, 6])
        np.testing.assert_allclose(returns, result.returns, rtol=0, atol=1e-4)
    assert reported[0].lengths.min() > policy.spec.context_len  # the window slid
    assert reported[1].target_return == pytest.approx(1.5 * 47.168, abs=0.01)  # 1.5max from the checkpoint


def test_envs_at_different_steps_act_as_one_at_a_time() -> None:
    """Three envs started at different times (a finished one restarted) act as each would alone."""
    policy = Policy.from_checkpoint(str(DT_CKPT), precision="32")
    alone = Policy.from_checkpoint(str(DT_CKPT), precision="32")
    rng = np.random.default_rng(0)
    obs = rng.normal(size=(12, 3, 11))
    policy.reset(100.0, num_envs=3, envs=[0])
    starts = {0: 0, 1: 3, 2: 7}
    for t in range(12):
        for env, start in starts.items():
            if t == start and env:
                policy.reset(100.0, envs=[env])
        running = [env for env, start in starts.items() if t >= start]
        actions = policy.act(obs[t, running], rewards=np.ones(len(running)), envs=running)
        assert actions.shape == (len(running), 3)
    for env, start in starts.items():  # replay env's episode alone: the same last action
        alone.reset(100.0, num_envs=1)
        for t in range(start, 12):
            action = alone.act(obs[t, env], 1.0)
        np.testing.assert_allclose(action, actions[running.index(env)], rtol=0, atol=1e-6)


def test_delayed_targets_clamped_timesteps_and_per_env_sampling() -> None:
    seen = []

    def model(rtg, states, actions, timesteps, uniform=None):
        seen.append((rtg[:, -1].clone(), timesteps.clone()))
        return (uniform * 4).long()

    spec = RolloutSpec(
        "CartPole-v1", 4, 4, True, context_len=3, max_ep_len=10, timestep_limit=3, action_selection="sample"
    )
    policy = Policy(model, replace(spec, delayed=True))
    policy.reset(50.0, num_envs=2, seed=3)
    first = [policy.act(np.zeros((2, 4)), rewards=[1.0, 2.0]) for _ in range(4)]
    assert all(torch.equal(rtg, torch.tensor([50.0, 50.0])) for rtg, _ in seen)  # delayed: fixed
    assert seen[-1][1].tolist() == [[1, 2, 2]] * 2  # steps 1..3, clamped below timestep_limit=3
    seen.clear()
    decrementing = Policy(model, spec)
    decrementing.reset(50.0, num_envs=2, seed=3)
    for _ in range(3):
        decrementing.act(np.zeros((2, 4)), rewards=[1.0, 2.0])
    assert seen[-1][0].tolist() == [48.0, 46.0]
    alone = Policy(model, replace(spec, delayed=True))
    alone.reset(50.0, num_envs=1, seed=3)  # the first env started draws from (3, 0), whatever runs beside it
    np.testing.assert_array_equal([alone.act(np.zeros(4), 1.0) for _ in range(4)], [a[0] for a in first])
    assert len({tuple(a) for a in first}) > 1  # sampled, not constant


def test_bad_input_gets_one_line_errors(tmp_path: Path) -> None:
    policy = Policy.from_checkpoint(str(DT_CKPT))
    with pytest.raises(DTError, match=r"act\(\) before reset\(\)"):
        policy.act(np.zeros(11))
    policy.reset(100.0, num_envs=2)
    with pytest.raises(DTError, match=r"observations have shape \(2, 4\) but the policy expects \(2, 11\)"):
        policy.act(np.zeros((2, 4)))
    policy.act(np.zeros((2, 11)))
    with pytest.raises(DTError, match="pass the reward"):
        policy.act(np.zeros((2, 11)))
    with pytest.raises(DTError, match="eval.target_returns entry 'high'"):
        policy.reset("high")
    torch.save({"state_dict": {}}, tmp_path / "other.ckpt")
    with pytest.raises(DTError, match="not a dt checkpoint"):
        Policy.from_checkpoint(str(tmp_path / "other.ckpt"))


@pytest.mark.slow
def test_import_dt_policy_loads_neither_lightning_nor_hydra() -> None:
    code = "import sys; from dt import Policy; print(sorted(m for m in ('lightning', 'hydra') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO_ROOT, check=True)
    assert out.stdout.strip() == "[]"


def test_continuous_actions_are_clipped_to_the_bounds() -> None:
    spec = RolloutSpec(
        "Hopper-v5", 2, 2, False, context_len=2, max_ep_len=5, timestep_limit=5, action_selection="argmax"
    )
    wild = lambda rtg, states, actions, timesteps: torch.tensor([[3.0, -3.0]] * len(rtg))  # noqa: E731
    head_range = Policy(wild, spec)
    narrow = Policy(wild, spec, action_space=gym.spaces.Box(-0.5, np.array([0.25, 0.5]), dtype=np.float32))
    for policy, expected in ((head_range, [1.0, -1.0]), (narrow, [0.25, -0.5])):
        policy.reset(10.0)
        np.testing.assert_array_equal(policy.act(np.zeros(2)), expected)
    with pytest.raises(DTError, match="the policy has 2 action dims but the env has 3"):
        Policy(wild, spec, action_space=gym.spaces.Box(-1, 1, (3,)))
