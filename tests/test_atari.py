"""Atari: conv encoder, frames stored once, stacks at episode starts, ALE envs and rollouts, both loaders."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch

from dt.data.datamodule import WindowDataset
from dt.data.dqn_replay import load_dqn_replay, plan_visits
from dt.data.frames import FrameStacks, preprocess_frames
from dt.data.sources import from_episode_list, load_minari
from dt.envs import make_env_fn, make_vector_env
from dt.envs.atari import check_game, make_atari
from dt.errors import DTError
from dt.evaluation.precision import module_policy
from dt.evaluation.rollout import rollout_batched, rollout_sequential
from dt.evaluation.spec import RolloutSpec
from dt.models.dt_module import DTModule
from dt.models.encoders import AtariEncoder
from dt.models.transformer import DecisionTransformer, DTConfig, decay_groups
from dt.train import train

pytest.importorskip("ale_py", reason="Atari needs the atari extra: pip install -e '.[atari]'")
pytest.importorskip("cv2", reason="Atari needs the atari extra: pip install -e '.[atari]'")

from tests.atari_data import atari_steps, write_dqn_replay, write_minari_atari
from tests.helpers import compose_config

STACK = (4, 84, 84)


def pixel_trajectories(lengths: list[int]):
    """Episodes whose frame at step i is filled with the value (i + 1) % 256: a frame names its step."""
    frames, actions, rewards, step = [], [], [], 0
    for length in lengths:
        values = (np.arange(step, step + length) + 1) % 256
        frames.append(np.broadcast_to(values[:, None, None], (length, 84, 84)).astype(np.uint8))
        actions.append(np.arange(length) % 4)
        rewards.append(np.ones(length, dtype=np.float32))
        step += length
    return from_episode_list(frames, actions, rewards)


# -- the conv encoder -------------------------------------------------------------------------------------------


def test_conv_encoder_is_the_papers_and_scales_uint8_by_1_over_255() -> None:
    torch.manual_seed(0)
    encoder = AtariEncoder(STACK, embed_dim=16)
    convs = [m for m in encoder.conv if isinstance(m, torch.nn.Conv2d)]
    assert [(c.out_channels, c.kernel_size, c.stride) for c in convs] == [
        (32, (8, 8), (4, 4)),
        (64, (4, 4), (2, 2)),
        (64, (3, 3), (1, 1)),
    ]
    assert encoder.proj[0].in_features == 3136 and isinstance(encoder.proj[1], torch.nn.Tanh)
    states = torch.randint(0, 256, (2, 3, *STACK), dtype=torch.uint8)  # (B, T, 4, 84, 84)
    out = encoder(states)
    assert out.shape == (2, 3, 16) and out.abs().max() <= 1
    expected = encoder.proj(encoder.conv(states.reshape(6, *STACK).float() / 255.0)).reshape(2, 3, 16)
    torch.testing.assert_close(out, expected)


def test_model_picks_the_encoder_by_state_shape_and_acts_from_the_last_step() -> None:
    torch.manual_seed(0)
    config = DTConfig(state_dim=4 * 84 * 84, act_dim=6, discrete=True, context_len=3, embed_dim=32, n_head=2)
    config.state_shape = STACK
    model = DecisionTransformer(config).eval()
    assert isinstance(model.embed_state, AtariEncoder)
    states = torch.randint(0, 256, (2, 3, *STACK), dtype=torch.uint8)
    args = (torch.randn(2, 3), states, torch.randint(0, 6, (2, 3)), torch.arange(3).expand(2, 3))
    logits = model(*args)
    assert logits.shape == (2, 3, 6)
    torch.testing.assert_close(model(*args, last_only=True), logits[:, -1], atol=1e-5, rtol=1e-5)
    decayed = {id(p) for p in decay_groups(model, 0.1)[0]["params"]}
    assert id(model.embed_state.conv[0].weight) in decayed  # conv weights decay, as the official optimizer


# -- frames stored once -----------------------------------------------------------------------------------------


def test_frames_cost_one_uint8_frame_per_step() -> None:
    traj = pixel_trajectories([50, 30, 20])
    assert traj.pixels and traj.observations.dtype == np.uint8 and traj.observations.shape == (100, 84, 84)
    data = WindowDataset(traj, context_len=5, max_ep_len=100)
    assert data.states.shape == (100, *STACK)
    frame_bytes = data.states.frames.numel() * data.states.frames.element_size()
    assert frame_bytes / traj.num_steps == 84 * 84  # 7,056 B: a quarter of 4 stored uint8 copies
    assert np.shares_memory(data.states.frames.numpy(), traj.observations)  # no copy, no float cast


def test_stacks_at_episode_starts_are_zero_padded_never_the_previous_episode() -> None:
    traj = pixel_trajectories([5, 6])  # episode 1 starts at step 5
    stacks = WindowDataset(traj, context_len=3, max_ep_len=10).states
    value = lambda stack: stack[:, 0, 0].tolist()  # noqa: E731  the step name of each frame in a stack
    assert value(stacks[torch.tensor(0)]) == [0, 0, 0, 1]  # first step: three zero frames, then its own
    assert value(stacks[torch.tensor(4)]) == [2, 3, 4, 5]  # inside an episode: frames i-3..i
    assert value(stacks[torch.tensor(5)]) == [0, 0, 0, 6]  # episode 1's first step: not frames 2, 3, 4, 5
    assert value(stacks[torch.tensor(6)]) == [0, 0, 6, 7]
    assert value(stacks[torch.tensor(8)]) == [6, 7, 8, 9]


def test_windows_gather_stacks_and_mask_padding() -> None:
    traj = pixel_trajectories([5, 6])
    batch = WindowDataset(traj, context_len=3, max_ep_len=10).__getitems__([3, 5])
    assert batch["states"].shape == (2, 3, *STACK) and batch["states"].dtype == torch.uint8
    assert batch["states"][0, :, -1, 0, 0].tolist() == [4, 5, 0]  # window 3..5 runs past its episode: padded
    assert batch["states"][1, 0, :, 0, 0].tolist() == [0, 0, 0, 6]
    assert batch["mask"].tolist() == [[True, True, False], [True, True, True]]


def test_frame_gather_runs_on_any_index_shape() -> None:
    stacks = FrameStacks(
        torch.arange(1, 7, dtype=torch.uint8)[:, None, None].expand(6, 2, 2).contiguous(),
        torch.tensor([0, 0, 0, 3, 3, 3]),
    )
    assert stacks[torch.tensor([[2, 3]])].shape == (1, 2, 4, 2, 2)


# -- the ALE env and rollouts ----------------------------------------------------------------------------------


def test_atari_env_is_the_dqn_preprocessing() -> None:
    env = make_atari("ALE/Breakout-v5", max_episode_steps=3)
    obs, _ = env.reset(seed=0)
    assert env.observation_space.shape == STACK and obs.dtype == np.uint8
    assert not obs[:3].any() and obs[3].any()  # zero frames before the episode start, as the training stacks
    kwargs = env.unwrapped.spec.kwargs
    assert kwargs["frameskip"] == 1 and kwargs["repeat_action_probability"] == 0.0 and not kwargs["full_action_space"]
    for _ in range(3):
        _, _, terminated, truncated, _ = env.step(0)
    assert truncated and not terminated  # max_episode_steps counts agent steps (4 frames each)
    env.close()


def test_unknown_game_is_a_user_error() -> None:
    with pytest.raises(DTError, match="unknown Atari game 'ALE/Breakot-v5'"):
        check_game("ALE/Breakot-v5")


def test_stored_rgb_frames_are_preprocessed_as_the_env() -> None:
    from dt.envs.atari import register_ale

    register_ale()
    env = gym.wrappers.AtariPreprocessing(
        gym.make("ALE/Pong-v5", frameskip=1, repeat_action_probability=0.0), noop_max=0, frame_skip=1
    )
    obs, _ = env.reset(seed=0)
    for _ in range(5):
        obs, *_ = env.step(2)
    rgb = env.unwrapped.ale.getScreenRGB()  # frame skip 1: no max-pooling, so both see one screen
    np.testing.assert_array_equal(preprocess_frames(rgb[None])[0], obs)
    env.close()


def pixel_module(act_dim: int = 4, K: int = 3, max_ep_len: int = 50) -> DTModule:
    torch.manual_seed(0)
    spec = {"state_dim": 4 * 84 * 84, "state_shape": list(STACK), "act_dim": act_dim, "discrete": True}
    spec |= {"state_mean": [], "state_std": [], "env_id": "ALE/Breakout-v5", "ref_min_score": 1.7}
    spec |= {"ref_max_score": 30.5}
    net = {"embed_dim": 16, "n_layer": 1, "n_head": 1, "activation": "gelu", "dropout": 0.0}
    optim = {"lr": 6e-4, "weight_decay": 0.1, "warmup_steps": 2, "betas": [0.9, 0.95]}
    run_config = {"env": {"factory": "dt.envs.atari.make_atari"}}
    return DTModule(net, optim, spec, K, max_ep_len, return_scale=1.0, run_config=run_config).eval()


def test_pixel_module_skips_state_normalization() -> None:
    module = pixel_module()
    assert module.state_mean.numel() == 0
    states = torch.full((1, 2, *STACK), 255, dtype=torch.uint8)
    action = module.predict_action(torch.zeros(1, 2), states, torch.zeros(1, 2).long(), torch.zeros(1, 2).long())
    assert action.shape == (1,) and action.dtype == torch.long


@pytest.mark.parametrize("action_selection", ["argmax", "sample"])
def test_discrete_vectorized_rollout_on_ale_equals_sequential(action_selection: str) -> None:
    module = pixel_module(K=3)
    spec = RolloutSpec.from_module(module, max_ep_len=7, action_selection=action_selection)  # 7 > K: window slides
    assert spec.obs_shape == STACK and spec.discrete
    envs = make_vector_env(make_env_fn(spec), 2)
    policy = module_policy(module, "32")
    (batched,) = rollout_batched(policy, envs, spec, target_returns=[90], seed=3)
    envs.close()
    sequential = rollout_sequential(policy, make_env_fn(spec)(), spec, target_return=90, seed=3, num_episodes=2)
    assert batched.lengths.tolist() == sequential.lengths.tolist() == [7, 7]
    np.testing.assert_array_equal(batched.returns, sequential.returns)
    np.testing.assert_allclose(batched.normalized, 100 * (batched.returns - 1.7) / (30.5 - 1.7))


# -- loaders ----------------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def dqn_replay_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two Breakout buffers of 40 transitions, episodes of 9 steps (4 whole ones and a cut one per buffer)."""
    return write_dqn_replay(tmp_path_factory.mktemp("dqn_replay"))


def test_dqn_replay_takes_whole_trajectories_from_random_buffers(dqn_replay_run: Path) -> None:
    traj = load_dqn_replay(dqn_replay_run, num_steps=30, trajectories_per_buffer=2, seed=0)
    assert traj.pixels and traj.env_id == "ALE/Breakout-v5" and traj.discrete
    assert traj.lengths.tolist() == [9, 9, 9, 9]  # two visits of 2 whole episodes: 36 >= 30 steps
    written = atari_steps("Breakout", 40, 9, seed=0)
    first_buffer = np.random.default_rng(0).integers(2)
    buffer = written if first_buffer == 0 else atari_steps("Breakout", 40, 9, seed=1)
    np.testing.assert_array_equal(traj.observations[:18], buffer["observation"][:18])
    np.testing.assert_array_equal(traj.actions[:18], buffer["action"][:18])
    assert set(np.unique(traj.rewards)) <= {0.0, 1.0}  # Dopamine's clipped rewards


def test_dqn_replay_plan_visits_buffers_until_enough_steps() -> None:
    bounds = [np.array([0, 10, 20, 30]), np.array([0, 5, 12])]
    taken = plan_visits(bounds, num_steps=40, trajectories_per_buffer=2, seed=1)
    assert sum(end - start for _, start, end in taken) >= 40
    for b in (0, 1):  # each buffer's trajectories in order, none twice
        mine = [(s, e) for tb, s, e in taken if tb == b]
        assert mine == sorted(set(mine)) and all(s == e0 for (_, e0), (s, _) in zip(mine, mine[1:], strict=False))
    with pytest.raises(DTError, match="hold only 42 steps"):
        plan_visits(bounds, num_steps=100, trajectories_per_buffer=2, seed=1)


def test_dqn_replay_wrapped_buffer_reads_oldest_first_and_drops_the_cut_episode(tmp_path: Path) -> None:
    logs = tmp_path / "Pong" / "1" / "replay_logs"
    logs.mkdir(parents=True)
    capacity, add_count = 10, 14  # slots 4..9 then 0..3 in time order
    terminal = np.zeros(capacity, dtype=np.uint8)
    terminal[[5, 8, 2]] = 1  # time order 4 5 | 6 7 8 | 9 0 1 2 | 3
    arrays = {
        "observation": np.arange(capacity, dtype=np.uint8)[:, None, None].repeat(84, 1).repeat(84, 2),
        "action": np.arange(capacity, dtype=np.int32) % 3,
        "reward": np.ones(capacity, dtype=np.float32),
        "terminal": terminal,
    }
    for name, array in {**{f"$store$_{k}": v for k, v in arrays.items()}, "add_count": np.array(add_count)}.items():
        with gzip.open(logs / f"{name}_ckpt.7.gz", "wb") as f:
            np.save(f, array)
    traj = load_dqn_replay(tmp_path / "Pong" / "1", num_steps=5, trajectories_per_buffer=5)
    assert traj.lengths.tolist() == [3, 4] and traj.env_id == "ALE/Pong-v5"
    assert traj.observations[:, 0, 0].tolist() == [6, 7, 8, 9, 0, 1, 2]


def test_dqn_replay_folder_without_logs_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(DTError, match="no DQN-replay logs"):
        load_dqn_replay(tmp_path)


@pytest.fixture(scope="session")
def minari_atari_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("minari_atari")
    write_minari_atari(root)
    return root


def test_minari_atari_frames_are_preprocessed_on_load(minari_atari_root: Path, monkeypatch) -> None:
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(minari_atari_root))
    traj = load_minari("atari/breakout/expert-v0", download=False)
    assert traj.pixels and traj.observations.shape == (24, 84, 84) and traj.env_id == "ALE/Breakout-v5"
    import minari

    first = next(minari.load_dataset("atari/breakout/expert-v0").iterate_episodes())
    np.testing.assert_array_equal(traj.observations[:8], preprocess_frames(first.observations[:-1]))


# -- training end to end ----------------------------------------------------------------------------------------


def tiny_atari_overrides() -> list[str]:
    return [
        "logger=csv",
        "model.net.embed_dim=16",
        "model.net.n_layer=1",
        "K=3",
        "data.batch_size=4",
        "trainer.max_epochs=1",
        "trainer.limit_train_batches=2",
        "eval.episodes=2",
        "eval.max_ep_len=5",
    ]


def test_train_on_dqn_replay_logs_and_evaluate_on_ale(dqn_replay_run: Path, tmp_path: Path) -> None:
    overrides = ["env=breakout", f"dataset.path={dqn_replay_run}", "data.replay_steps=30", *tiny_atari_overrides()]
    trainer = train(compose_config(overrides, output_dir=tmp_path))
    module = trainer.lightning_module
    assert module.data_spec.state_shape == STACK and module.hparams.data_spec["state_shape"] == list(STACK)
    assert module.data_spec.act_dim == 4
    (result,) = trainer.callbacks[[type(c).__name__ for c in trainer.callbacks].index("RolloutEval")].results
    assert result.lengths.tolist() == [5, 5] and result.normalized is not None


def test_train_on_minari_atari_id(minari_atari_root: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(minari_atari_root))
    cfg = compose_config(
        ["env=breakout", "dataset=expert", "dataset.download=false", *tiny_atari_overrides()], output_dir=tmp_path
    )
    assert cfg.data.dataset_id == "atari/breakout/expert-v0"
    assert train(cfg).global_step == 2
    assert (tmp_path / "checkpoints" / "last.ckpt").is_file()


def test_bc_on_pixels_is_a_user_error(dqn_replay_run: Path, tmp_path: Path) -> None:
    overrides = ["env=breakout", f"dataset.path={dqn_replay_run}", "data.replay_steps=5", "model=bc"]
    with pytest.raises(DTError, match="model=bc takes vector states"):
        train(compose_config([*overrides, *tiny_atari_overrides()], output_dir=tmp_path))


def test_pixel_data_with_a_vector_env_is_a_user_error(tmp_path: Path) -> None:
    write_dqn_replay(tmp_path, num_buffers=1, steps=20)
    run = (tmp_path / "Breakout").rename(tmp_path / "MyGame") / "1"  # not an ALE game: no env id to compare
    with pytest.raises(DTError, match="holds pixel frames .* but env=hopper"):
        train(
            compose_config(
                ["env=hopper", f"dataset.path={run}", "data.replay_steps=5", *tiny_atari_overrides()],
                output_dir=tmp_path / "out",
            )
        )


def test_atari_experiments_are_the_papers_settings(tmp_path: Path) -> None:
    cfg = compose_config(["experiment=atari", "env=qbert", "dataset.path=/data/Qbert/1"], output_dir=tmp_path)
    assert (cfg.env.id, cfg.K, cfg.data.batch_size, cfg.trainer.gradient_clip_val) == ("ALE/Qbert-v5", 30, 128, 1.0)
    net = {"embed_dim": 128, "n_layer": 6, "n_head": 8, "activation": "gelu", "dropout": 0.1, "embed_init": "gpt2"}
    net |= {"embed_dropout": None, "residual_init": "scaled"}
    assert cfg.model.net == net
    assert (cfg.model.optim.lr, list(cfg.model.optim.betas), cfg.model.optim.weight_decay) == (6e-4, [0.9, 0.95], 0.1)
    assert cfg.model.optim.decay == "cosine" and cfg.eval.episodes == 10 and cfg.env.return_scale == 1
    assert cfg.data.replay_steps == 500_000 and cfg.env.target_returns == [2500]
    pong = compose_config(["experiment=atari_pong", "dataset.path=/data/Pong/1"], output_dir=tmp_path)
    assert (pong.env.id, pong.K, pong.data.batch_size, pong.env.target_returns) == ("ALE/Pong-v5", 50, 512, [20])
    assert os.path.basename(pong.data.dataset_path) == "1"
