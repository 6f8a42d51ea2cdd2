"""dt's Decision Transformer equals the official model, Hugging Face's `DecisionTransformerModel` (its port).

(a) Weights converted from HF (dt.models.convert) give HF's action predictions on full windows, and on windows HF
    left-pads with an attention mask (the official code's layout) where dt right-pads.
(b) From the same weights, 20 training steps on the same batches, dropout off, with the official optimizer (AdamW
    decaying every parameter, linear warmup, grad-norm clip 0.25) give the same loss at every step: ours through
    Lightning with `model=dt_official`'s options, HF's as kzl/decision-transformer's SequenceTrainer trains it.
    A control run with one setting changed must miss the tolerance, so the comparison can tell.
Needs transformers (the bench extra): skipped without it, a failure with DT_REQUIRE_TRANSFORMERS=1 (CI).
"""

from __future__ import annotations

import lightning as L
import pytest
import torch
from omegaconf import OmegaConf
from torch.utils.data import DataLoader

from dt.models.convert import config_from_hf, state_dict_from_hf
from dt.models.dt_module import DTModule
from dt.models.transformer import DecisionTransformer
from tests.helpers import compose_config, require_transformers

B, K, S, A, MAX_EP_LEN = 8, 6, 5, 2, 50
STEPS, WARMUP, CLIP = 20, 10, 0.25  # CLIP: the official code's, and dt's trainer default
LR, WEIGHT_DECAY = 3e-3, 0.5  # large, so that what each setting changes shows within 20 steps


def hf_model(activation: str = "relu", dropout: float = 0.1, seed: int = 0):
    """A random HF DecisionTransformerModel; every weight redrawn at scale 0.3 (outputs far from 0), wpe row 0 too."""
    transformers = require_transformers()
    torch.manual_seed(seed)
    config = transformers.DecisionTransformerConfig(
        state_dim=S,
        act_dim=A,
        hidden_size=32,
        n_layer=2,
        n_head=2,
        max_ep_len=MAX_EP_LEN,
        activation_function=activation,
        resid_pdrop=dropout,
        embd_pdrop=dropout,
        attn_pdrop=dropout,
    )
    model = transformers.DecisionTransformerModel(config)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 0.3)
    return model


def converted(hf) -> DecisionTransformer:
    config = config_from_hf(hf.config.to_dict(), K)
    model = DecisionTransformer(config)
    model.load_state_dict(state_dict_from_hf(hf.state_dict(), config))
    return model


def windows(seed: int) -> dict[str, torch.Tensor]:
    """B windows of 1..K real steps (at least one full), right-padded as dt's batches, with their lengths."""
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(1, K + 1, (B,), generator=g)
    lengths[0] = K
    mask = torch.arange(K)[None] < lengths[:, None]  # (B, K)
    start = torch.randint(0, MAX_EP_LEN - K, (B, 1), generator=g)
    return {
        "returns_to_go": torch.randn(B, K, generator=g) * mask,
        "states": torch.randn(B, K, S, generator=g) * mask[..., None],
        "actions": torch.rand(B, K, A, generator=g).mul(2).sub(1) * mask[..., None],
        "timesteps": (start + torch.arange(K)) * mask,
        "mask": mask,
        "lengths": lengths,
    }


def left_padded(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The same windows as the official code lays them out for HF: padding first (states 0, actions -10), masked."""
    out = {}
    for i, n in enumerate(batch["lengths"].tolist()):
        pad = K - n
        for key, fill in (("returns_to_go", 0.0), ("states", 0.0), ("actions", -10.0), ("timesteps", 0), ("mask", 0)):
            x = batch[key][i]
            padding = torch.full((pad, *x.shape[1:]), fill, dtype=x.dtype)
            out.setdefault(key, []).append(torch.cat([padding, x[:n]]))
    return {key: torch.stack(rows) for key, rows in out.items()}


def hf_actions(hf, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """HF's action predictions (tanh applied), (B, K, A)."""
    _, actions, _ = hf(
        states=batch["states"],
        actions=batch["actions"],
        rewards=None,
        returns_to_go=batch["returns_to_go"][..., None],
        timesteps=batch["timesteps"],
        attention_mask=batch["mask"].long(),
        return_dict=False,
    )
    return actions


def dt_actions(model: DecisionTransformer, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    return torch.tanh(model(batch["returns_to_go"], batch["states"], batch["actions"], batch["timesteps"]))


@pytest.mark.parametrize("activation", ["relu", "gelu_new"])
def test_converted_weights_predict_as_hf(activation: str) -> None:
    hf = hf_model(activation).eval()
    ours = converted(hf).eval()
    batch = windows(seed=1)
    full = {**batch, "mask": torch.ones(B, K, dtype=torch.bool)}  # every step real
    with torch.no_grad():
        torch.testing.assert_close(dt_actions(ours, full), hf_actions(hf, full), rtol=0, atol=1e-5)
        theirs, mine = hf_actions(hf, left_padded(batch)), dt_actions(ours, batch)
        for i, n in enumerate(batch["lengths"].tolist()):  # the real steps: last n of HF's, first n of ours
            torch.testing.assert_close(mine[i, :n], theirs[i, K - n :], rtol=0, atol=1e-5)
        # The comparison can tell: without wpe's row 0 folded in, the predictions differ far beyond 1e-5.
        unfolded = converted(hf).eval()
        unfolded.embed_ln.bias.copy_(hf.embed_ln.bias)
        assert (dt_actions(unfolded, full) - hf_actions(hf, full)).abs().max() > 1e-3


class LossRecorder(L.Callback):
    def __init__(self) -> None:
        self.losses: list[float] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.losses.append(outputs["loss"].item())


STATE_MEAN, STATE_STD, RETURN_SCALE = [0.5, -1.0, 0.0, 2.0, 0.1], [2.0, 0.5, 1.0, 3.0, 1.5], 10.0


def dt_losses(hf, batches: list[dict[str, torch.Tensor]], **overrides) -> list[float]:
    """Our training: DTModule with the `model=dt_official` preset's options through Lightning, at the test's sizes
    (dropout off) and optimizer figures; clipping as the composed trainer config's."""
    cfg = compose_config(["model=dt_official"])
    spec = {"state_dim": S, "act_dim": A, "discrete": False, "state_mean": STATE_MEAN, "state_std": STATE_STD}
    net = OmegaConf.to_container(cfg.model.net) | {"embed_dim": 32, "n_layer": 2, "n_head": 2}
    net |= {"dropout": 0.0, "embed_dropout": 0.0}
    optim = OmegaConf.to_container(cfg.model.optim) | {"lr": LR, "weight_decay": WEIGHT_DECAY, "warmup_steps": WARMUP}
    module = DTModule(net, optim | overrides, spec, context_len=K, max_ep_len=MAX_EP_LEN, return_scale=RETURN_SCALE)
    module.model.load_state_dict(converted(hf).state_dict())  # the same start as HF's
    recorder = LossRecorder()
    trainer = L.Trainer(
        max_steps=STEPS,
        gradient_clip_val=cfg.trainer.gradient_clip_val,
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[recorder],
    )
    trainer.fit(module, train_dataloaders=DataLoader(batches, batch_size=None))
    return recorder.losses


def hf_losses(hf, batches: list[dict[str, torch.Tensor]]) -> list[float]:
    """The official training step (kzl/decision-transformer gym: experiment.py, seq_trainer.py) on HF's model.

    The official GPT-2 has no position table: HF's, zero at row 0 in effect, is frozen at zero here so that it
    neither trains nor decays (HF's own Trainer would train it; the official model has nothing to train there).
    """
    with torch.no_grad():
        hf.encoder.wpe.weight.zero_()
    hf.encoder.wpe.weight.requires_grad_(False)
    optimizer = torch.optim.AdamW(hf.parameters(), lr=LR, weight_decay=WEIGHT_DECAY)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda steps: min((steps + 1) / WARMUP, 1))
    mean, std = torch.tensor(STATE_MEAN), torch.tensor(STATE_STD)
    losses = []
    for batch in batches:
        padded = left_padded(batch)
        inputs = {
            **padded,
            "states": (padded["states"] - mean) / std,  # the zero padding normalized too, as there
            "returns_to_go": padded["returns_to_go"] / RETURN_SCALE,
        }
        action_preds = hf_actions(hf, inputs)
        keep = padded["mask"].reshape(-1) > 0
        loss = torch.mean((action_preds.reshape(-1, A)[keep] - padded["actions"].reshape(-1, A)[keep]) ** 2)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(hf.parameters(), CLIP)
        optimizer.step()
        scheduler.step()
        losses.append(loss.item())
    return losses


def training_batches() -> list[dict[str, torch.Tensor]]:
    batches = []
    for step in range(STEPS):
        batch = windows(seed=100 + step)
        batch["returns_to_go"] = batch["returns_to_go"] * RETURN_SCALE  # dt's batches hold raw returns-to-go
        batches.append(batch)
    return batches


def test_training_matches_the_official_optimizer_step_for_step() -> None:
    batches = training_batches()
    hf = hf_model(dropout=0.0).train()
    with torch.no_grad():
        hf.encoder.wpe.weight.zero_()  # the official model: no position embedding (dt_losses converts after this)
    ours = dt_losses(hf, batches)
    control = dt_losses(hf, batches, weight_decay_params="weights")  # dt's default: biases, LN, embeddings spared
    theirs = hf_losses(hf, batches)
    assert len(ours) == len(theirs) == STEPS
    gaps = [abs(a - b) for a, b in zip(ours, theirs, strict=True)]
    assert max(gaps) < 1e-4, f"losses differ by up to {max(gaps):.2e}: {ours} vs {theirs}"
    assert theirs[-1] < 0.9 * theirs[0]  # it trained: the comparison covers real updates
    control_gap = max(abs(a - b) for a, b in zip(control, theirs, strict=True))
    assert control_gap > 1e-3, f"decaying only weights changed the losses by {control_gap:.2e}: no teeth"
