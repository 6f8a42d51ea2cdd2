"""The GPU path's pieces, on CPU: on-device gathers, fused AdamW, torch.compile and bf16 agree with plain fp32."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch

from dt.data.datamodule import DTDataModule, HistoryWindowDataset, WindowDataset
from dt.data.frames import FrameStacks
from dt.errors import DTError
from dt.evaluate import load_module
from dt.models.dt_module import DTModule
from dt.train import train
from tests.helpers import compose_config, tiny_train_overrides


@pytest.fixture
def tiny_data(tiny_minari: str) -> DTDataModule:
    dm = DTDataModule(tiny_minari, download=False, context_len=5, max_ep_len=1000, batch_size=8)
    dm.setup("fit")
    return dm


def tiny_module(dm: DTDataModule, **kwargs) -> DTModule:
    torch.manual_seed(0)
    net = {"embed_dim": 32, "n_layer": 2, "n_head": 2, "activation": "relu", "dropout": 0.0}
    optim = {"lr": 1e-3, "weight_decay": 1e-4, "warmup_steps": 1, "betas": [0.9, 0.999]} | kwargs.pop("optim", {})
    return DTModule(net, optim, dm.spec, context_len=5, max_ep_len=1000, return_scale=1000.0, **kwargs)


@pytest.mark.parametrize("windows", [WindowDataset, HistoryWindowDataset])
def test_windows_are_gathered_where_the_dataset_lives(tiny_data: DTDataModule, windows: type) -> None:
    """`to(device)` moves every array: a gather then never touches the CPU (meta tensors fail on any mix)."""
    traj = tiny_data.trajectories
    cpu = windows(traj, 5, 1000)
    batch = windows(traj, 5, 1000).to("meta").__getitems__([0, 7, 30])
    expected = cpu.__getitems__([0, 7, 30])
    for key, value in batch.items():
        assert value.device.type == "meta" and value.shape == expected[key].shape, key


def test_frame_stacks_move_with_their_episode_starts() -> None:
    stacks = FrameStacks(torch.zeros(10, 84, 84, dtype=torch.uint8), torch.zeros(10, dtype=torch.long)).to("meta")
    assert stacks[torch.tensor([3, 9], device="meta")].shape == (2, 4, 84, 84)


def test_gather_device_defaults_to_the_cpu_without_a_gpu(tiny_minari: str) -> None:
    dm = DTDataModule(tiny_minari, download=False, context_len=5)
    assert dm.gather_device() == torch.device("cpu")
    with pytest.raises(DTError, match="data.gather_device"):
        DTDataModule(tiny_minari, gather_device="cuda:0")


def losses_after_steps(module: DTModule, batch: dict[str, torch.Tensor], steps: int = 3, bf16: bool = False):
    """The loss on a fixed batch before each of `steps` optimizer steps (the module's own AdamW)."""
    optimizer = module.configure_optimizers()["optimizer"]
    losses = []
    for _ in range(steps):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            outputs, actions, mask = module.outputs_and_targets(batch)
        loss = module.head.loss(outputs.float(), actions, mask.float())
        losses.append(loss.item())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return losses


def test_fast_path_losses_equal_the_plain_fp32_path(tiny_data: DTDataModule) -> None:
    """Fused AdamW and torch.compile: the same losses within 1e-5; bf16 autocast within 1e-2 relative."""
    batch = tiny_data.train_set.__getitems__(list(range(0, 64, 4)))
    plain = losses_after_steps(tiny_module(tiny_data, optim={"fused": False}).train(), copy.deepcopy(batch))
    fused = losses_after_steps(tiny_module(tiny_data, optim={"fused": True}).train(), copy.deepcopy(batch))
    assert fused == pytest.approx(plain, rel=0, abs=1e-5)
    compiled_module = tiny_module(tiny_data, compile="aot_eager").train()
    compiled = losses_after_steps(compiled_module, copy.deepcopy(batch))
    assert compiled_module.network() is not compiled_module.model  # the compiled wrapper trained
    assert compiled == pytest.approx(plain, rel=0, abs=1e-5)
    bf16 = losses_after_steps(tiny_module(tiny_data).train(), copy.deepcopy(batch), bf16=True)
    assert bf16 == pytest.approx(plain, rel=1e-2)
    assert plain[-1] < plain[0]  # the steps did train


def test_compiled_training_keeps_plain_checkpoints(tiny_minari: str, tmp_path: Path) -> None:
    """model.compile and fused AdamW through dt.train: acting stays eager, checkpoints load without the wrapper."""
    overrides = [*tiny_train_overrides(), "model.compile=aot_eager", "model.optim.fused=true"]
    cfg = compose_config(overrides, output_dir=tmp_path)
    assert cfg.trainer.precision == "32-true" and cfg.data.gather_device == "auto"  # no GPU here
    trainer = train(cfg)
    assert trainer.global_step == 4
    state = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    assert not any("_orig_mod" in key for key in state)
    module = load_module(str(tmp_path / "checkpoints" / "last.ckpt"))
    assert module.hparams.compile == "aot_eager" and module.eval().network() is module.model  # acting: eager


def test_bad_fused_setting_is_one_line(tiny_data: DTDataModule) -> None:
    with pytest.raises(DTError, match="model.optim.fused"):
        tiny_module(tiny_data, optim={"fused": "yes"}).configure_optimizers()


def test_trainer_precision_resolves_per_machine(tmp_path: Path) -> None:
    cfg = compose_config([], output_dir=tmp_path)
    expected = "bf16-mixed" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "32-true"
    assert cfg.trainer.precision == expected
