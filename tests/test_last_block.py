"""The last block computed for the state tokens only (`last_block_states_only`) equals the full computation."""

from __future__ import annotations

import pytest
import torch

from dt.models.heads import make_head
from dt.models.transformer import DecisionTransformer, DTConfig, causal_rows

B, K, S, A = 4, 5, 6, 3
PIXELS = (4, 84, 84)


def make_model(kind: str, n_layer: int) -> DecisionTransformer:
    torch.manual_seed(0)
    config = DTConfig(
        state_dim=S,
        act_dim=A,
        discrete=kind == "discrete",
        context_len=K,
        max_ep_len=40,
        embed_dim=32,
        n_layer=n_layer,
        n_head=2,
        dropout=0.0,  # the two computations draw different dropout masks; the train-mode path is still exercised
        activation="gelu",
        state_shape=PIXELS if kind == "pixels" else None,
    )
    return DecisionTransformer(config).train()


def random_windows(kind: str, seed: int) -> tuple[tuple[torch.Tensor, ...], torch.Tensor]:
    """Windows of K steps whose real lengths vary from 1 to K; the rest is right padding holding random values."""
    g = torch.Generator().manual_seed(seed)
    if kind == "pixels":
        states = torch.randint(0, 256, (B, K, *PIXELS), generator=g, dtype=torch.uint8)
    else:
        states = torch.randn(B, K, S, generator=g)
    discrete = kind == "discrete"
    actions = torch.randint(0, A, (B, K), generator=g) if discrete else torch.rand(B, K, A, generator=g) * 2 - 1
    rtg = torch.randn(B, K, generator=g)
    timesteps = torch.randint(0, 35, (B, 1), generator=g) + torch.arange(K)
    lengths = torch.tensor([K, 1, 3, K - 1])
    mask = (torch.arange(K) < lengths[:, None]).float()  # (B, K) 1 on real steps
    timesteps = timesteps * mask.long()  # padding: timestep 0, as WindowDataset pads
    return (rtg, states, actions, timesteps), mask


def outputs_and_grads(
    model: DecisionTransformer, inputs: tuple[torch.Tensor, ...], mask: torch.Tensor, states_only: bool
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    model.config.last_block_states_only = states_only
    model.zero_grad()
    outputs = model(*inputs)
    make_head(model.config.discrete).loss(outputs, inputs[2], mask).backward()
    return outputs.detach(), {name: p.grad.clone() for name, p in model.named_parameters()}


@pytest.mark.parametrize("n_layer", [1, 3])
@pytest.mark.parametrize("kind", ["continuous", "discrete", "pixels"])
def test_state_tokens_only_equal_the_full_last_block(kind: str, n_layer: int) -> None:
    """Outputs at every step (padding included) and every parameter's gradient within 1e-6 in fp32."""
    model = make_model(kind, n_layer)
    for seed in range(2):
        inputs, mask = random_windows(kind, seed)
        full, full_grads = outputs_and_grads(model, inputs, mask, states_only=False)
        trimmed, trimmed_grads = outputs_and_grads(model, inputs, mask, states_only=True)
        assert trimmed.shape == full.shape == (B, K, A)
        torch.testing.assert_close(trimmed, full, rtol=0, atol=1e-6)
        assert trimmed_grads.keys() == full_grads.keys()
        for name, grad in full_grads.items():
            assert grad.abs().sum() > 0, name  # every parameter is compared, none trivially
            torch.testing.assert_close(trimmed_grads[name], grad, rtol=0, atol=1e-6, msg=name)


@pytest.mark.parametrize("kind", ["continuous", "discrete", "pixels"])
def test_acting_is_the_same_path_with_the_last_state_token(kind: str) -> None:
    """`last_only` (one query) equals the last step of both full computations, for every window length."""
    model = make_model(kind, n_layer=2).eval()
    inputs, _ = random_windows(kind, seed=3)
    for T in (1, 2, K):
        window = tuple(x[:, :T] for x in inputs)
        acting = model(*window, last_only=True)
        for states_only in (True, False):
            model.config.last_block_states_only = states_only
            torch.testing.assert_close(acting, model(*window)[:, -1], rtol=0, atol=1e-6)
            torch.testing.assert_close(model(*window, last_only=True), acting, rtol=0, atol=1e-6)


def test_causal_rows_are_the_causal_mask_rows_of_the_queries() -> None:
    full = torch.ones(7, 7).tril().bool()
    torch.testing.assert_close(causal_rows(slice(1, None, 3), 7, torch.device("cpu")), full[1::3])
    assert causal_rows(None, 7, torch.device("cpu")) is None  # every token: SDPA's is_causal
    assert causal_rows(slice(-1, None), 7, torch.device("cpu")) is None  # the last token sees every token
