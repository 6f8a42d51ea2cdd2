"""Model: shapes, causality, padding invariance, heads; the optimizer and schedule the module builds."""

from __future__ import annotations

import pytest
import torch

from dt.errors import DTError
from dt.models.dt_module import DTModule
from dt.models.heads import ContinuousHead, DiscreteHead
from dt.models.transformer import DecisionTransformer, DTConfig, decay_groups

B, K, S, A = 3, 6, 5, 2


def make_model(discrete: bool = False, **kwargs) -> DecisionTransformer:
    torch.manual_seed(0)
    config = DTConfig(state_dim=S, act_dim=A, discrete=discrete, context_len=K, max_ep_len=50, embed_dim=32, **kwargs)
    return DecisionTransformer(config).eval()


def make_module(**optim) -> DTModule:
    """A small continuous-action DTModule as dt.train builds it (AdamW + warmup from `model.optim`)."""
    torch.manual_seed(0)
    spec = {"state_dim": S, "act_dim": A, "discrete": False, "state_mean": [0.0] * S, "state_std": [1.0] * S}
    net = {"embed_dim": 16, "n_layer": 1, "n_head": 1}
    optim = {"lr": 6e-4, "weight_decay": 0.1, "warmup_steps": 2, "betas": [0.9, 0.95], **optim}
    return DTModule(net, optim, spec, K, max_ep_len=50, return_scale=1.0)


def inputs(discrete: bool = False) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(1)
    actions = torch.randint(0, A, (B, K), generator=g) if discrete else torch.randn(B, K, A, generator=g)
    return torch.randn(B, K, generator=g), torch.randn(B, K, S, generator=g), actions, torch.arange(K).repeat(B, 1)


@pytest.mark.parametrize("discrete", [False, True])
def test_output_shapes(discrete: bool) -> None:
    model = make_model(discrete)
    assert model(*inputs(discrete)).shape == (B, K, A)
    rtg, states, actions, timesteps = inputs(discrete)
    assert model(rtg[:, :2], states[:, :2], actions[:, :2], timesteps[:, :2]).shape == (B, 2, A)


def test_later_tokens_do_not_change_earlier_outputs() -> None:
    model = make_model(n_layer=2, n_head=2)
    rtg, states, actions, timesteps = inputs()
    before = model(rtg, states, actions, timesteps)
    t = 3
    rtg2, states2, actions2 = rtg.clone(), states.clone(), actions.clone()
    rtg2[:, t:] += 5.0
    states2[:, t:] += 5.0
    actions2[:, t - 1 :] += 5.0  # a_{t-1} comes after s_{t-1}: the prediction at t-1 must not see it
    after = model(rtg2, states2, actions2, timesteps)
    torch.testing.assert_close(after[:, :t], before[:, :t])
    assert not torch.allclose(after[:, t:], before[:, t:])


def test_right_padding_never_influences_real_steps() -> None:
    model = make_model()
    rtg, states, actions, timesteps = inputs()
    real = 4  # steps 4 and 5 are padding
    garbage = [x.clone() for x in (rtg, states, actions)]
    for x in garbage:
        x[:, real:] = torch.randn_like(x[:, real:]) * 100
    timesteps_garbage = timesteps.clone()
    timesteps_garbage[:, real:] = 0
    out = model(rtg, states, actions, timesteps)
    out_garbage = model(*garbage, timesteps_garbage)
    torch.testing.assert_close(out_garbage[:, :real], out[:, :real])


def test_timestep_embedding_is_shared_by_the_three_tokens_of_a_step() -> None:
    model = make_model()
    rtg, states, actions, timesteps = inputs()
    timesteps = timesteps + torch.arange(B)[:, None] * 7  # a different timestep for every step of every row
    seen: dict[str, torch.Tensor] = {}
    parts = ("embed_timestep", "embed_return", "embed_state", "embed_action")
    for name in parts:
        getattr(model, name).register_forward_hook(lambda m, i, out, name=name: seen.__setitem__(name, out))
    model.embed_ln.register_forward_hook(lambda m, i, out: seen.__setitem__("tokens", i[0]))  # (B, 3T, C)
    model(rtg, states, actions, timesteps)
    time = seen["embed_timestep"]  # (B, T, C)
    torch.testing.assert_close(time, model.embed_timestep.weight[timesteps])
    tokens = seen["tokens"].reshape(B, K, 3, -1)  # R̂_t, s_t, a_t
    for slot, name in enumerate(parts[1:]):  # each token is its own embedding plus the step's one timestep vector
        torch.testing.assert_close(tokens[:, :, slot] - seen[name], time, rtol=0, atol=1e-6)
    assert not hasattr(model, "embed_position")  # no per-token position embedding


@pytest.mark.parametrize("params", ["weights", "all"])
def test_optimizer_lightning_builds_has_the_decay_groups(params: str) -> None:
    module = make_module(weight_decay_params=params)
    optimizer = module.configure_optimizers()["optimizer"]  # what Lightning's Trainer calls to get its optimizer
    names = {id(p): n for n, p in module.named_parameters()}
    groups = [{names[id(p)] for p in group["params"]} for group in optimizer.param_groups]
    assert set().union(*groups) == set(names.values()) and sum(map(len, groups)) == len(names)  # each once
    if params == "all":
        assert [g["weight_decay"] for g in optimizer.param_groups] == [0.1]
        return
    assert [g["weight_decay"] for g in optimizer.param_groups] == [0.1, 0.0]
    linear = {f"model.{n}.weight" for n, m in module.model.named_modules() if isinstance(m, torch.nn.Linear)}
    assert groups[0] == linear and "model.blocks.0.attn.qkv.weight" in linear  # nanoGPT: Linear weights only
    assert {"model.embed_timestep.weight", "model.embed_ln.weight", "model.blocks.0.attn.qkv.bias"} <= groups[1]


def test_cosine_decay_after_warmup() -> None:
    module = make_module()
    module.hparams.optim |= {"decay": "cosine", "decay_steps": 12, "min_lr_ratio": 0.1}
    scheduler = module.configure_optimizers()["lr_scheduler"]["scheduler"]
    multipliers = [scheduler.lr_lambdas[0](step) for step in range(16)]
    assert multipliers[:2] == [0.5, 1.0] and multipliers[7] == pytest.approx(0.5)  # halfway from 2 to 12
    assert multipliers[12:] == [pytest.approx(0.1)] * 4  # flat at min_lr_ratio after decay_steps
    module.hparams.optim["decay"] = "linear"
    with pytest.raises(DTError, match="model.optim.decay=linear"):
        module.configure_optimizers()


def test_continuous_head_masks_padding() -> None:
    head = ContinuousHead()
    outputs = torch.zeros(1, 3, 2)
    actions = torch.tensor([[[0.5, 0.5], [0.0, 0.0], [9.0, 9.0]]])
    mask = torch.tensor([[1.0, 1.0, 0.0]])
    assert head.loss(outputs, actions, mask).item() == pytest.approx(0.125)
    assert head.act(torch.full((1, 2), 100.0)).max().item() <= 1.0


def test_discrete_head_cross_entropy_and_greedy_action() -> None:
    head = DiscreteHead()
    logits = torch.tensor([[[5.0, 0.0], [0.0, 5.0]]])
    actions = torch.tensor([[0, 0]])
    mask = torch.tensor([[1.0, 0.0]])
    assert head.loss(logits, actions, mask).item() == pytest.approx(torch.log1p(torch.exp(torch.tensor(-5.0))).item())
    assert head.error(logits, actions, mask).item() == 0.0
    assert head.act(logits[:, -1]).tolist() == [1]


@pytest.mark.parametrize("discrete", [False, True])
def test_last_only_equals_the_last_step_of_the_full_output(discrete: bool) -> None:
    model = make_model(discrete, n_layer=2, n_head=2)
    rtg, states, actions, timesteps = inputs(discrete)
    for T in (1, 3, K):
        args = (rtg[:, :T], states[:, :T], actions[:, :T], timesteps[:, :T])
        torch.testing.assert_close(model(*args, last_only=True), model(*args)[:, -1], rtol=1e-5, atol=1e-6)


def test_embed_init_pytorch_is_the_official_codes_scale() -> None:
    """model.net.embed_init=pytorch: embeddings and head at PyTorch's defaults, the blocks at GPT-2's N(0, 0.02)."""
    torch.manual_seed(0)
    ours = DecisionTransformer(DTConfig(state_dim=11, act_dim=3))
    official = DecisionTransformer(DTConfig(state_dim=11, act_dim=3, embed_init="pytorch"))
    assert ours.embed_timestep.weight.std().item() == pytest.approx(0.02, rel=0.05)
    assert official.embed_timestep.weight.std().item() == pytest.approx(1.0, rel=0.05)  # nn.Embedding: N(0, 1)
    bound = 1 / 11**0.5  # nn.Linear: Kaiming-uniform, U(-1/sqrt(fan_in), 1/sqrt(fan_in))
    assert official.embed_state.weight.abs().max().item() <= bound and official.embed_state.weight.std().item() > 0.1
    assert official.blocks[0].mlp.fc.weight.std().item() == pytest.approx(0.02, rel=0.05)  # the blocks: GPT-2's
    with pytest.raises(DTError, match="model.net.embed_init=xavier must be one of gpt2, pytorch"):
        DecisionTransformer(DTConfig(state_dim=11, act_dim=3, embed_init="xavier"))


def test_residual_init_and_embed_dropout_options() -> None:
    """residual_init=plain drops GPT-2's 1/sqrt(2 n_layer) scale; embed_dropout sets the embedding dropout alone."""
    torch.manual_seed(0)
    scaled = DecisionTransformer(DTConfig(state_dim=11, act_dim=3, embed_dim=256, n_layer=8))
    plain = DecisionTransformer(DTConfig(state_dim=11, act_dim=3, embed_dim=256, n_layer=8, residual_init="plain"))
    for block in (0, 7):
        for name in ("attn", "mlp"):
            std = getattr(scaled.blocks[block], name).proj.weight.std().item()
            assert std == pytest.approx(0.02 / 4, rel=0.05)  # sqrt(2 * 8) = 4
            assert getattr(plain.blocks[block], name).proj.weight.std().item() == pytest.approx(0.02, rel=0.05)
    assert make_model().drop.p == 0.1 and make_model(embed_dropout=0.0).drop.p == 0.0
    assert make_model(embed_dropout=0.0).blocks[0].attn.resid_dropout.p == 0.1
    with pytest.raises(DTError, match="model.net.residual_init=fixup must be one of scaled, plain"):
        make_model(residual_init="fixup")


def test_gelu_new_is_gpt2s_tanh_gelu() -> None:
    x = torch.linspace(-6, 6, 101)
    gpt2 = 0.5 * x * (1 + torch.tanh((2 / torch.pi) ** 0.5 * (x + 0.044715 * x**3)))
    torch.testing.assert_close(make_model(activation="gelu_new").blocks[0].mlp.act(x), gpt2, rtol=0, atol=1e-6)


def test_weight_decay_params_all_decays_every_parameter() -> None:
    model = make_model()
    (everything,) = decay_groups(model, 0.1, "all")
    assert everything["weight_decay"] == 0.1 and len(everything["params"]) == len(list(model.parameters()))
    decayed, other = ({id(p) for p in group["params"]} for group in decay_groups(model, 0.1))  # Linear weights
    assert id(model.embed_timestep.weight) in other and id(model.embed_ln.bias) in other
    assert id(model.blocks[0].attn.qkv.weight) in decayed and id(model.blocks[0].attn.qkv.bias) in other
    with pytest.raises(DTError, match="model.optim.weight_decay_params=some must be one of weights, all"):
        decay_groups(model, 0.1, "some")
