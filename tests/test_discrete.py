"""Discrete actions end to end: the head, CE training through dt.train, rollouts that sample alike, errors."""

from __future__ import annotations

import csv
from dataclasses import replace
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch

from dt.data.spec import DataSpec
from dt.envs import check_dataset_env, check_env, make_env_fn, make_vector_env
from dt.envs.recording import record_episode, write_minari_dataset
from dt.errors import DTError
from dt.evaluate import evaluate
from dt.evaluation.precision import module_policy
from dt.evaluation.rollout import rollout_batched, rollout_sequential
from dt.evaluation.spec import RolloutSpec
from dt.models.dt_module import DTModule
from dt.models.heads import DiscreteHead
from dt.train import train
from tests.helpers import compose_config, compose_eval

CARTPOLE_ID = "test/cartpole/tiny-v0"
# CartPole-v1 as a small env config (no conf/env file: the tests need no more than this).
CARTPOLE_ENV = [
    "env.name=cartpole",
    "env.id=CartPole-v1",
    "env.max_ep_len=30",
    "env.target_returns=[30]",
    "env.return_scale=10",
    "env.ref_min_score=null",
    "env.ref_max_score=null",
    "+env.success_return=25",
]
TRAIN = [
    f"dataset.id={CARTPOLE_ID}",
    "dataset.download=false",
    "logger=csv",
    "model.net.embed_dim=32",
    "model.net.n_layer=1",
    "K=4",
    "data.batch_size=8",
    "trainer.max_epochs=1",
    "trainer.limit_train_batches=6",
    "trainer.log_every_n_steps=1",
    "eval.episodes=3",
]


def make_cartpole_dataset(root: Path, num_episodes: int = 10, max_len: int = 30, seed: int = 0) -> None:
    """Uniformly random CartPole-v1 episodes as a Minari dataset (Discrete(2) actions)."""
    env = gym.make("CartPole-v1", max_episode_steps=max_len)
    env.action_space.seed(seed)
    episodes = [record_episode(env, lambda obs: env.action_space.sample(), seed + e) for e in range(num_episodes)]
    write_minari_dataset(
        root,
        CARTPOLE_ID,
        episodes,
        env.spec,
        eval_env="CartPole-v1",
        algorithm_name="random",
        description="tiny random-policy CartPole-v1 dataset made by the dt test suite",
    )


@pytest.fixture(scope="module")
def cartpole_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("minari")
    make_cartpole_dataset(root)
    return root


@pytest.fixture(scope="module")
def trained(cartpole_root: Path, tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("run")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MINARI_DATASETS_PATH", str(cartpole_root))
        return train(compose_config([*CARTPOLE_ENV, *TRAIN], output_dir=out)), out


def test_discrete_head_argmax_and_inverse_cdf_sampling() -> None:
    head = DiscreteHead()
    logits = torch.log(torch.tensor([[0.25, 0.75, 0.0], [0.5, 0.0, 0.5]]))  # (2, 3)
    assert head.act(logits).tolist() == [1, 0]
    assert head.act(logits, torch.tensor([0.2, 0.2])).tolist() == [0, 0]
    assert head.act(logits, torch.tensor([0.3, 0.6])).tolist() == [1, 2]  # a zero-probability action is never drawn
    assert head.act(logits, torch.tensor([0.9999, 0.0])).tolist() == [1, 0]
    draws = head.act(logits[:1].expand(4000, -1), torch.rand(4000, generator=torch.Generator().manual_seed(0)))
    assert abs((draws == 1).float().mean().item() - 0.75) < 0.03


def test_cross_entropy_training_logs_accuracy_and_acts_with_indices(trained) -> None:
    trainer, out = trained
    assert trainer.global_step == 6
    with open(out / "csv" / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    accuracy = [float(r["train/accuracy"]) for r in rows if r.get("train/accuracy")]
    assert accuracy and all(0.0 <= a <= 1.0 for a in accuracy)
    assert "train/action_error" not in rows[0]
    success = [float(r["eval/target_30/success_rate"]) for r in rows if r.get("eval/target_30/success_rate")]
    assert len(success) == 1 and 0.0 <= success[0] <= 1.0
    module = DTModule.load_from_checkpoint(out / "checkpoints" / "last.ckpt")
    assert module.data_spec.discrete and module.data_spec.act_dim == 2
    actions = module.predict_action(
        torch.zeros(3, 2), torch.zeros(3, 2, 4), torch.zeros(3, 2, dtype=torch.long), torch.zeros(3, 2).long()
    )
    assert actions.dtype == torch.long and actions.shape == (3,)


@pytest.mark.parametrize("selection", ["sample", "argmax"])
def test_discrete_batched_equals_sequential(trained, selection: str) -> None:
    module = DTModule.load_from_checkpoint(trained[1] / "checkpoints" / "last.ckpt").eval()
    spec = RolloutSpec.from_module(module, action_selection=selection)
    policy = module_policy(module, precision="32")
    episodes, targets = 5, [30.0, 5.0]  # both targets in one batch, each with its own copy of the episode streams
    envs = make_vector_env(make_env_fn(spec), episodes, targets=2)
    results = rollout_batched(policy, envs, spec, target_returns=targets, seed=3)
    for batched, target in zip(results, targets, strict=True):
        sequential = rollout_sequential(
            policy, make_env_fn(spec)(), spec, target_return=target, seed=3, num_episodes=episodes
        )
        np.testing.assert_array_equal(batched.lengths, sequential.lengths)
        np.testing.assert_array_equal(batched.returns, sequential.returns)
    batched = results[0]
    assert batched.lengths.max() > spec.context_len  # the window slid
    (again,) = rollout_batched(
        policy, make_vector_env(make_env_fn(spec), episodes), spec, target_returns=[30.0], seed=3
    )
    np.testing.assert_array_equal(again.lengths, batched.lengths)  # alone or beside another target: the same
    assert batched.success_rate == float((batched.returns >= 25).mean())


def test_sampling_follows_the_policy_and_the_seed() -> None:
    """A policy that always prefers action 1 with p=0.9: sampled episodes differ by seed, argmax never samples."""

    class Biased:
        def __call__(self, rtg, states, actions, timesteps, uniform=None):
            logits = torch.log(torch.tensor([0.1, 0.9])).expand(len(rtg), -1)
            return DiscreteHead().act(logits, uniform)

    spec = RolloutSpec(
        "CartPole-v1", 4, 2, True, context_len=3, max_ep_len=30, timestep_limit=30, action_selection="argmax"
    )
    envs = make_vector_env(make_env_fn(spec), 8)
    (greedy,) = rollout_batched(Biased(), envs, spec, target_returns=[30.0], seed=0)
    sampling = replace(spec, action_selection="sample")
    sampled = [rollout_batched(Biased(), envs, sampling, target_returns=[30.0], seed=s)[0] for s in (0, 1)]
    assert len(set(greedy.lengths.tolist())) <= 3  # always pushing right: the pole falls within a few steps
    assert not np.array_equal(sampled[0].lengths, sampled[1].lengths)


def test_evaluate_carries_action_selection_and_success_rate(trained) -> None:
    ckpt = trained[1] / "checkpoints" / "last.ckpt"
    results = evaluate(compose_eval([f"ckpt={ckpt}", "device=cpu", "eval.action_selection=argmax"]))
    assert results[0].success_rate is not None and "success_rate" in results[0].metrics()
    with pytest.raises(DTError, match="eval.action_selection=best must be one of sample, argmax"):
        evaluate(compose_eval([f"ckpt={ckpt}", "eval.action_selection=best"]))


def test_discrete_and_continuous_mismatches_are_one_line_errors() -> None:
    from omegaconf import OmegaConf

    discrete = DataSpec((11,), 3, True, [], [])
    hopper = OmegaConf.create({"name": "hopper", "id": "Hopper-v5"})
    with pytest.raises(DTError, match="the dataset has discrete actions but the env's are continuous"):
        check_dataset_env(discrete, hopper)
    continuous = DataSpec((4,), 2, False, [], [])
    cartpole = OmegaConf.create({"name": "cartpole", "id": "CartPole-v1"})
    with pytest.raises(DTError, match="the dataset has continuous actions but the env's are discrete"):
        check_dataset_env(continuous, cartpole)
    # An HDF5 file's action count is max + 1: widened to the env's n, never beyond it.
    assert check_dataset_env(replace(continuous, discrete=True, act_dim=1), cartpole).act_dim == 2
    with pytest.raises(DTError, match="the dataset has 5 actions but the env has 2"):
        check_dataset_env(replace(continuous, discrete=True, act_dim=5), cartpole)
    spec = RolloutSpec(
        "CartPole-v1", 4, 2, False, context_len=3, max_ep_len=30, timestep_limit=30, action_selection="sample"
    )
    with pytest.raises(DTError, match="the model has continuous actions but the env's are discrete"):
        check_env(make_env_fn(spec)(), spec)
