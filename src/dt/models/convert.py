"""Weights between dt's `DecisionTransformer` and Hugging Face's `DecisionTransformerModel` (the official model).

Both are GPT-2 over (R̂_t, s_t, a_t) tokens with a learned timestep embedding; three things differ in storage only:
- HF's GPT-2 keeps its position table (`encoder.wpe`) and passes position id 0 for every token, so row 0 is added
  to every token right after the embedding LayerNorm: from HF it folds exactly into that LayerNorm's bias; to HF
  the table is written as zeros (the official code has no position table at all).
- HF's Conv1D stores a weight as (in, out): transposed against nn.Linear's (out, in).
- HF also has `predict_state` and `predict_return` heads, which the paper never trains: dropped from HF, written
  as zeros to HF. Its `encoder.wte` (a vocabulary of 1, unused) likewise.
Only what HF can express converts: continuous actions, vector states, a 4x MLP, LayerNorm eps 1e-5.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from dt.errors import DTError
from dt.files import atomic_write
from dt.models.transformer import DecisionTransformer, DTConfig

HF_MODEL_TYPE = "decision_transformer"
HF_WEIGHTS = ("model.safetensors", "pytorch_model.bin")
HF_POSITIONS = 1024  # GPT2Config's n_positions, as the official code sets it
# HF activation names (transformers.activations.ACT2FN) -> dt's model.net.activation
FROM_HF_ACTIVATION = {
    "relu": "relu",
    "gelu": "gelu",
    "gelu_new": "gelu_new",
    "gelu_pytorch_tanh": "gelu_new",
    "silu": "silu",
    "swish": "silu",
}
# DecisionTransformerConfig's defaults: what a config.json that omits a field means
HF_DEFAULTS = {
    "state_dim": 17,
    "act_dim": 4,
    "hidden_size": 128,
    "max_ep_len": 4096,
    "action_tanh": True,
    "n_layer": 3,
    "n_head": 1,
    "n_inner": None,
    "activation_function": "relu",
    "resid_pdrop": 0.1,
    "embd_pdrop": 0.1,
    "layer_norm_epsilon": 1e-5,
    "scale_attn_weights": True,
    "scale_attn_by_inverse_layer_idx": False,
    "add_cross_attention": False,
}
TO_HF_ACTIVATION = {"relu": "relu", "gelu": "gelu", "gelu_new": "gelu_new", "silu": "silu"}
# dt block parameter -> (HF block parameter, whether it is a Conv1D weight stored (in, out))
BLOCK_PARAMS = {
    "ln_1.weight": ("ln_1.weight", False),
    "ln_1.bias": ("ln_1.bias", False),
    "attn.qkv.weight": ("attn.c_attn.weight", True),
    "attn.qkv.bias": ("attn.c_attn.bias", False),
    "attn.proj.weight": ("attn.c_proj.weight", True),
    "attn.proj.bias": ("attn.c_proj.bias", False),
    "ln_2.weight": ("ln_2.weight", False),
    "ln_2.bias": ("ln_2.bias", False),
    "mlp.fc.weight": ("mlp.c_fc.weight", True),
    "mlp.fc.bias": ("mlp.c_fc.bias", False),
    "mlp.proj.weight": ("mlp.c_proj.weight", True),
    "mlp.proj.bias": ("mlp.c_proj.bias", False),
}
# dt parameter -> HF parameter, outside the blocks (embed_ln.bias also takes wpe's row 0)
OUTER_PARAMS = {
    "embed_timestep.weight": "embed_timestep.weight",
    "embed_return.weight": "embed_return.weight",
    "embed_return.bias": "embed_return.bias",
    "embed_state.weight": "embed_state.weight",
    "embed_state.bias": "embed_state.bias",
    "embed_action.weight": "embed_action.weight",
    "embed_action.bias": "embed_action.bias",
    "embed_ln.weight": "embed_ln.weight",
    "embed_ln.bias": "embed_ln.bias",
    "ln_f.weight": "encoder.ln_f.weight",
    "ln_f.bias": "encoder.ln_f.bias",
    "action_head.weight": "predict_action.0.weight",
    "action_head.bias": "predict_action.0.bias",
}


def load_hf_folder(folder: str | Path) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """(config.json, weights) of a saved `DecisionTransformerModel`; DTError for anything else."""
    folder = Path(folder)
    config_file = folder / "config.json"
    if not config_file.is_file():
        raise DTError(f"{folder} has no config.json: pass a Hugging Face DecisionTransformerModel folder")
    try:
        config = json.loads(config_file.read_text())
    except (OSError, ValueError) as err:
        raise DTError(f"{config_file} is not readable JSON ({err}): pass a DecisionTransformerModel folder") from err
    if not isinstance(config, dict) or config.get("model_type") != HF_MODEL_TYPE:
        kind = config.get("model_type") if isinstance(config, dict) else None
        raise DTError(f"{folder} holds a {kind or 'unknown'} model, not a DecisionTransformerModel: pass one")
    weights = next((folder / name for name in HF_WEIGHTS if (folder / name).is_file()), None)
    if weights is None:
        raise DTError(f"{folder} has no {' or '.join(HF_WEIGHTS)}: pass a folder written by save_pretrained")
    try:
        if weights.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(weights)
        else:
            state = torch.load(weights, map_location="cpu", weights_only=True)
    except Exception as err:
        raise DTError(f"{weights} is not a readable weights file ({type(err).__name__}): pass another folder") from err
    return config, state


def config_from_hf(hf: dict[str, Any], context_len: int) -> DTConfig:
    """The DTConfig of an HF DecisionTransformerConfig (as a dict); DTError for what dt's model cannot express.

    Dropout: attention and residual share dt's `dropout` (HF's resid_pdrop; attn_pdrop is used only in training).
    """
    hf = {**HF_DEFAULTS, **hf}
    size, inner = int(hf["hidden_size"]), hf["n_inner"]
    unsupported = {
        f"n_inner={inner} (dt's MLP is 4 x hidden_size)": inner is not None and int(inner) != 4 * size,
        f"layer_norm_epsilon={hf['layer_norm_epsilon']}": float(hf["layer_norm_epsilon"]) != 1e-5,
        "action_tanh=false": not hf["action_tanh"],
        "scale_attn_weights=false": not hf["scale_attn_weights"],
        "scale_attn_by_inverse_layer_idx=true": bool(hf["scale_attn_by_inverse_layer_idx"]),
        "add_cross_attention=true": bool(hf["add_cross_attention"]),
    }
    found = [what for what, bad in unsupported.items() if bad]
    if found:
        raise DTError(f"the Hugging Face config has {', '.join(found)}, which dt's model cannot express")
    activation = hf["activation_function"]
    if activation not in FROM_HF_ACTIVATION:
        raise DTError(f"activation_function={activation} has no dt equivalent: one of {', '.join(FROM_HF_ACTIVATION)}")
    return DTConfig(
        state_dim=int(hf["state_dim"]),
        act_dim=int(hf["act_dim"]),
        context_len=context_len,
        max_ep_len=int(hf["max_ep_len"]),
        embed_dim=size,
        n_layer=int(hf["n_layer"]),
        n_head=int(hf["n_head"]),
        dropout=float(hf["resid_pdrop"]),
        embed_dropout=float(hf["embd_pdrop"]),
        activation=FROM_HF_ACTIVATION[activation],
    )


def net_options(config: DTConfig) -> dict[str, Any]:
    """The `model.net` fields of a DTConfig (the rest come from the data and K)."""
    keys = ("embed_dim", "n_layer", "n_head", "activation", "dropout", "embed_dropout")
    return {k: getattr(config, k) for k in keys}


def state_dict_from_hf(hf_state: dict[str, torch.Tensor], config: DTConfig) -> dict[str, torch.Tensor]:
    """HF `DecisionTransformerModel` weights -> `DecisionTransformer(config)` weights, shapes checked."""
    get = _getter(hf_state)
    state = {ours: get(theirs) for ours, theirs in OUTER_PARAMS.items()}
    state["embed_ln.bias"] = state["embed_ln.bias"] + get("encoder.wpe.weight")[0]  # every token's position 0
    for i in range(config.n_layer):
        for ours, (theirs, conv) in BLOCK_PARAMS.items():
            weight = get(f"encoder.h.{i}.{theirs}")
            state[f"blocks.{i}.{ours}"] = weight.t() if conv else weight
    extra = sorted(k for k in hf_state if k.startswith("encoder.h.") and int(k.split(".")[2]) >= config.n_layer)
    if extra:
        raise DTError(f"the weights hold {extra[0]} but config.json says n_layer={config.n_layer}: they disagree")
    expected = DecisionTransformer(config).state_dict()
    for name, tensor in expected.items():
        if tuple(state[name].shape) != tuple(tensor.shape):
            raise DTError(
                f"weight {name} is {tuple(state[name].shape)} in the folder but config.json implies "
                f"{tuple(tensor.shape)}: the folder's config and weights disagree"
            )
    return {k: v.detach().to(torch.float32).contiguous().clone() for k, v in state.items()}


def _getter(hf_state: dict[str, torch.Tensor]):
    def get(name: str) -> torch.Tensor:
        if name not in hf_state:
            raise DTError(f"the weights lack {name}: not a complete DecisionTransformerModel")
        return hf_state[name]

    return get


def to_hf(model_state: dict[str, torch.Tensor], config: DTConfig) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """`DecisionTransformer(config)` weights -> (HF config.json dict, HF weights)."""
    if config.discrete or (config.state_shape is not None and len(config.state_shape) != 1):
        raise DTError(
            "Hugging Face's DecisionTransformerModel has continuous actions and vector states only: "
            "this checkpoint has discrete actions or pixel states"
        )
    if config.activation not in TO_HF_ACTIVATION:
        raise DTError(f"model.net.activation={config.activation} has no Hugging Face equivalent")
    C = config.embed_dim
    hf_config = {
        "model_type": HF_MODEL_TYPE,
        "architectures": ["DecisionTransformerModel"],
        "state_dim": config.state_dim,
        "act_dim": config.act_dim,
        "hidden_size": C,
        "max_ep_len": config.max_ep_len,
        "action_tanh": True,
        "vocab_size": 1,
        "n_positions": HF_POSITIONS,
        "n_layer": config.n_layer,
        "n_head": config.n_head,
        "n_inner": 4 * C,
        "activation_function": TO_HF_ACTIVATION[config.activation],
        "resid_pdrop": config.dropout,
        "attn_pdrop": config.dropout,
        "embd_pdrop": config.dropout if config.embed_dropout is None else config.embed_dropout,
        "layer_norm_epsilon": 1e-5,
        "initializer_range": 0.02,
        "scale_attn_weights": True,
        "scale_attn_by_inverse_layer_idx": False,
        "reorder_and_upcast_attn": False,
        "use_cache": True,
    }
    state = {theirs: model_state[ours] for ours, theirs in OUTER_PARAMS.items()}
    for i in range(config.n_layer):
        for ours, (theirs, conv) in BLOCK_PARAMS.items():
            weight = model_state[f"blocks.{i}.{ours}"]
            state[f"encoder.h.{i}.{theirs}"] = weight.t() if conv else weight
    state["encoder.wpe.weight"] = torch.zeros(HF_POSITIONS, C)  # no position embeddings: the official model
    state["encoder.wte.weight"] = torch.zeros(1, C)
    state["predict_state.weight"] = torch.zeros(config.state_dim, C)
    state["predict_state.bias"] = torch.zeros(config.state_dim)
    state["predict_return.weight"] = torch.zeros(1, C)
    state["predict_return.bias"] = torch.zeros(1)
    return hf_config, {k: v.detach().to(torch.float32).contiguous().clone() for k, v in state.items()}


def save_hf_folder(folder: str | Path, hf_config: dict[str, Any], hf_state: dict[str, torch.Tensor]) -> None:
    """config.json + model.safetensors, as `save_pretrained` writes them; each file written whole or not at all."""
    from safetensors.torch import save

    folder = Path(folder)
    with atomic_write(folder / "model.safetensors", "wb") as f:
        f.write(save(hf_state, metadata={"format": "pt"}))
    with atomic_write(folder / "config.json") as f:
        f.write(json.dumps(hf_config, indent=2) + "\n")
