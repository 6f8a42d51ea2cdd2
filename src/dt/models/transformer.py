"""A Decision Transformer in plain PyTorch (after nanoGPT's model.py).

Each step t contributes three tokens (R̂_t, s_t, a_t). Every token gets its modality's embedding plus a
learned embedding of its step's timestep (no per-token position embedding). The action a_t is predicted
from the hidden state of the s_t token, so causal attention alone keeps it from seeing a_t or anything
later, including right padding.

Only the state tokens' final hidden states are read, so the final block computes its queries, attention
output and MLP for those tokens alone (keys and values still come from every token): the same outputs for
about two thirds less of the last block's work. Acting (`last_only`) is the same path with one query.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import torch
import torch.nn as nn
import torch.nn.functional as F

from dt.errors import DTError
from dt.models.encoders import make_state_encoder

# gelu_new: GPT-2's tanh approximation of GELU (Hugging Face's `gelu_new`); gelu: the exact erf form.
ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU, "gelu_new": partial(nn.GELU, approximate="tanh"), "silu": nn.SiLU}


@dataclass
class DTConfig:
    state_dim: int
    act_dim: int  # action dimensions, or the number of actions when discrete
    discrete: bool = False
    context_len: int = 20  # K steps, 3K tokens
    max_ep_len: int = 1000
    embed_dim: int = 128
    n_layer: int = 3
    n_head: int = 1
    dropout: float = 0.1  # attention weights and residual branches (GPT-2's attn_pdrop, resid_pdrop)
    embed_dropout: float | None = None  # after the embedding LayerNorm (embd_pdrop); None: `dropout`
    activation: str = "relu"
    state_shape: tuple[int, ...] | None = None  # (4, 84, 84) for pixel stacks; None: a (state_dim,) vector
    # gpt2: N(0, 0.02) everywhere. pytorch: the official code's init, where the embeddings and the action head
    # live outside HF's GPT2Model and keep PyTorch's defaults (Embedding N(0, 1), Linear Kaiming-uniform).
    embed_init: str = "gpt2"
    # scaled: GPT-2's N(0, 0.02 / sqrt(2 n_layer)) for the projections into the residual stream (Hugging Face's
    # GPT-2 since 4.x); plain: N(0, 0.02) like every other weight (the official code's older GPT-2 copy).
    residual_init: str = "scaled"
    # true: the last block computes queries and everything after them for the tokens the head reads only (the
    # same outputs within float rounding; at 3 layers ~18% fewer block FLOPs); false: for every token.
    last_block_states_only: bool = True


EMBED_INITS = ("gpt2", "pytorch")
RESIDUAL_INITS = ("scaled", "plain")


class CausalSelfAttention(nn.Module):
    def __init__(self, config: DTConfig) -> None:
        super().__init__()
        assert config.embed_dim % config.n_head == 0, "embed_dim must be divisible by n_head"
        self.n_head = config.n_head
        self.qkv = nn.Linear(config.embed_dim, 3 * config.embed_dim)
        self.proj = nn.Linear(config.embed_dim, config.embed_dim)
        self.dropout = config.dropout
        self.resid_dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor, queries: slice | None = None) -> torch.Tensor:
        """Causal attention over x (B, T, C): (B, T, C); with `queries`, the outputs of those tokens alone
        (B, Tq, C), each attending to every token up to itself (keys and values still from all of x)."""
        B, T, C = x.shape
        if queries is None:
            q, k, v = self.qkv(x).split(C, dim=2)  # 3 x (B, T, C)
        else:  # the rows of qkv's weight that make q, for the query tokens alone
            weight, bias = self.qkv.weight, self.qkv.bias
            q = F.linear(x[:, queries], weight[:C], bias[:C])  # (B, Tq, C)
            k, v = F.linear(x, weight[C:], bias[C:]).split(C, dim=2)  # 2 x (B, T, C)
        mask = causal_rows(queries, T, x.device)
        # (B, T, C) -> (B, nh, T, hs)
        q, k, v = (t.view(B, -1, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))
        y = F.scaled_dot_product_attention(
            q,
            k,
            v,
            attn_mask=mask,
            is_causal=queries is None,
            dropout_p=self.dropout if self.training else 0.0,
        )  # (B, nh, Tq, hs)
        y = y.transpose(1, 2).contiguous().view(B, -1, C)  # (B, nh, Tq, hs) -> (B, Tq, C)
        return self.resid_dropout(self.proj(y))


def causal_rows(queries: slice | None, T: int, device: torch.device) -> torch.Tensor | None:
    """The rows of the (T, T) causal mask for the `queries` tokens, (Tq, T) bool (True: may attend); None when
    no mask is needed (every token: SDPA's is_causal; the last token alone sees everything)."""
    if queries is None:
        return None
    rows = range(T)[queries]  # the query tokens' positions, as Python ints: no graph break under torch.compile
    if len(rows) == 1 and rows[0] == T - 1:
        return None
    query_positions = torch.arange(rows.start, rows.stop, rows.step, device=device)  # (Tq,)
    return torch.arange(T, device=device)[None, :] <= query_positions[:, None]


class MLP(nn.Module):
    def __init__(self, config: DTConfig) -> None:
        super().__init__()
        self.fc = nn.Linear(config.embed_dim, 4 * config.embed_dim)
        self.act = ACTIVATIONS[config.activation]()
        self.proj = nn.Linear(4 * config.embed_dim, config.embed_dim)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.proj(self.act(self.fc(x))))


class Block(nn.Module):
    def __init__(self, config: DTConfig) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.embed_dim)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = nn.LayerNorm(config.embed_dim)
        self.mlp = MLP(config)

    def forward(self, x: torch.Tensor, queries: slice | None = None) -> torch.Tensor:
        """(B, T, C) -> (B, T, C); with `queries`, the `queries` tokens alone (B, Tq, C)."""
        x = (x if queries is None else x[:, queries]) + self.attn(self.ln_1(x), queries)
        return x + self.mlp(self.ln_2(x))


class DecisionTransformer(nn.Module):
    """Maps (returns-to-go, states, actions, timesteps) windows to action predictions at every step."""

    def __init__(self, config: DTConfig) -> None:
        super().__init__()
        if config.activation not in ACTIVATIONS:
            raise DTError(f"model.net.activation={config.activation} must be one of {', '.join(sorted(ACTIVATIONS))}")
        if config.embed_init not in EMBED_INITS:
            raise DTError(f"model.net.embed_init={config.embed_init} must be one of {', '.join(EMBED_INITS)}")
        if config.residual_init not in RESIDUAL_INITS:
            raise DTError(f"model.net.residual_init={config.residual_init} must be one of {', '.join(RESIDUAL_INITS)}")
        self.config = config
        C = config.embed_dim
        self.embed_timestep = nn.Embedding(config.max_ep_len, C)
        self.embed_return = nn.Linear(1, C)
        self.embed_state = make_state_encoder(tuple(config.state_shape or (config.state_dim,)), C)
        self.embed_action = nn.Embedding(config.act_dim, C) if config.discrete else nn.Linear(config.act_dim, C)
        self.embed_ln = nn.LayerNorm(C)
        self.drop = nn.Dropout(config.dropout if config.embed_dropout is None else config.embed_dropout)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.n_layer))
        self.ln_f = nn.LayerNorm(C)
        self.action_head = nn.Linear(C, config.act_dim)
        self.apply(self._init_weights)
        if config.residual_init == "scaled":
            for name, p in self.blocks.named_parameters():  # attn.proj and mlp.proj: into the residual stream
                if name.endswith("proj.weight"):
                    nn.init.normal_(p, mean=0.0, std=0.02 / (2 * config.n_layer) ** 0.5)
        if config.embed_init == "pytorch":
            for part in (self.embed_timestep, self.embed_return, self.embed_state, self.embed_action, self.action_head):
                for layer in part.modules():
                    if isinstance(layer, (nn.Linear, nn.Embedding, nn.Conv2d)):
                        layer.reset_parameters()

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    def forward(
        self,
        returns_to_go: torch.Tensor,  # (B, T) scaled
        states: torch.Tensor,  # (B, T, S) normalized, or (B, T, 4, 84, 84) uint8
        actions: torch.Tensor,  # (B, T, A) float, or (B, T) long when discrete
        timesteps: torch.Tensor,  # (B, T) long
        last_only: bool = False,
    ) -> torch.Tensor:
        """Action outputs at every step: (B, T, A) pre-tanh means, or (B, T, n_actions) logits.

        `last_only` (acting): the output for the last step alone, (B, A); the same numbers as `[:, -1]` of
        the full output, for less work.
        """
        B, T = timesteps.shape
        assert self.config.context_len >= T, f"window of {T} steps exceeds K={self.config.context_len}"
        time = self.embed_timestep(timesteps)  # (B, T, C)
        tokens = torch.stack(
            (
                self.embed_return(returns_to_go[..., None]) + time,
                self.embed_state(states) + time,
                self.embed_action(actions) + time,
            ),
            dim=2,
        )  # (B, T, 3, C)
        x = tokens.reshape(B, 3 * T, -1)  # (B, 3T, C) interleaved R̂_0, s_0, a_0, R̂_1, ...
        x = self.drop(self.embed_ln(x))
        # The tokens the head reads: s_0, s_1, ... at 1, 4, 7, ...; acting, s_{T-1} alone, the last token once
        # the last action token (which comes after it) is dropped.
        if last_only:
            x = x[:, :-1]  # (B, 3T - 1, C)
        states_only = slice(-1, None) if last_only else slice(1, None, 3)
        for block in self.blocks[:-1]:
            x = block(x)
        if self.config.last_block_states_only:
            x = self.blocks[-1](x, states_only)  # (B, Tq, C)
        else:
            x = self.blocks[-1](x)[:, states_only]  # (B, 3T or 3T - 1, C) -> (B, Tq, C)
        outputs = self.action_head(self.ln_f(x))  # (B, Tq, A)
        return outputs[:, 0] if last_only else outputs  # (B, A) or (B, T, A)


DECAY_PARAMS = ("weights", "all")


def decay_groups(module: nn.Module, weight_decay: float, params: str = "weights") -> list[dict]:
    """AdamW groups. weights: decay Linear and Conv2d weights only, never biases, LayerNorms or embeddings (nanoGPT);
    all: every parameter, as the official code's `AdamW(model.parameters(), weight_decay=...)`."""
    if params not in DECAY_PARAMS:
        raise DTError(f"model.optim.weight_decay_params={params} must be one of {', '.join(DECAY_PARAMS)}")
    if params == "all":
        return [{"params": list(module.parameters()), "weight_decay": weight_decay}]
    decay = {id(m.weight) for m in module.modules() if isinstance(m, (nn.Linear, nn.Conv2d))}
    every = list(module.parameters())
    return [
        {"params": [p for p in every if id(p) in decay], "weight_decay": weight_decay},
        {"params": [p for p in every if id(p) not in decay], "weight_decay": 0.0},
    ]
