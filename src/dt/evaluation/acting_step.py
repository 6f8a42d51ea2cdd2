"""One acting step as a fixed-shape graph, for `dt.export`: K-step windows and their valid lengths in, actions out.

Everything `Policy` adds around the model is inside, so a runtime without dt needs only the window: state
normalization and the return scale (the module's own), the timestep clamp, the head (tanh, or argmax over
logits) and the action bounds. The caller keeps the window: rows 0..length-1 hold the last `length` steps,
oldest first, raw (env observations, returns-to-go in reward units, step numbers); later rows are ignored.
"""

from __future__ import annotations

import json
from typing import Any

import torch
import torch.nn as nn

from dt.errors import DTError
from dt.evaluation.policy import Policy


class ActingStep(nn.Module):
    """(states (B, K, S), actions (B, K, A) or (B, K), returns_to_go (B, K), timesteps (B, K), length (B,)) ->
    action (B, A) in bounds, or (action (B,), logits (B, n)) for discrete actions."""

    def __init__(self, policy: Policy) -> None:
        super().__init__()
        if policy.module is None:
            raise DTError("only a Policy built from a checkpoint or a module can be exported")
        self.module = policy.module
        self.discrete = policy.spec.discrete
        self.timestep_limit = policy.spec.timestep_limit
        self.register_buffer("action_low", torch.as_tensor(policy.action_low))
        self.register_buffer("action_high", torch.as_tensor(policy.action_high))

    def forward(
        self,
        states: torch.Tensor,
        actions: torch.Tensor,
        returns_to_go: torch.Tensor,
        timesteps: torch.Tensor,
        length: torch.Tensor,
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        K = states.shape[1]
        valid = torch.arange(K, device=states.device)[None] < length[:, None]  # (B, K)
        # Zero the ignored rows: causal attention never reads them, but NaN * 0 would still be NaN.
        states = torch.where(valid.view(*valid.shape, *[1] * (states.dim() - 2)), states, 0)
        actions = torch.where(valid.view(*valid.shape, *[1] * (actions.dim() - 2)), actions, 0)
        returns_to_go = torch.where(valid, returns_to_go, 0)
        timesteps = torch.where(valid, timesteps, 0).clamp(0, self.timestep_limit - 1)
        outputs = self.module.padded_outputs(returns_to_go, states, actions, timesteps, length)  # (B, A)
        if self.discrete:
            return outputs.argmax(dim=-1), outputs
        return torch.clamp(torch.tanh(outputs), self.action_low, self.action_high)


def example_inputs(policy: Policy, batch: int = 2) -> tuple[torch.Tensor, ...]:
    """A batch of windows of the graph's shapes and dtypes (what export traces with)."""
    spec, K = policy.spec, policy.spec.context_len
    states = torch.zeros((batch, K, *spec.obs_shape), dtype=spec.obs_dtype)
    if spec.discrete:
        actions = torch.zeros((batch, K), dtype=torch.long)
    else:
        actions = torch.zeros((batch, K, spec.act_dim), dtype=torch.float32)
    length = torch.full((batch,), K, dtype=torch.long)
    return states, actions, torch.zeros((batch, K)), torch.zeros((batch, K), dtype=torch.long), length


INPUT_NAMES = ("states", "actions", "returns_to_go", "timesteps", "length")


def metadata(policy: Policy) -> dict[str, str]:
    """What a runtime needs to drive the graph, and what is baked into it, as JSON strings (ONNX metadata_props)."""
    spec, module, data_spec = policy.spec, policy.module, policy.data_spec
    values: dict[str, Any] = {
        "dt.env_id": spec.env_id,
        "dt.context_len": spec.context_len,
        "dt.max_ep_len": spec.max_ep_len,
        "dt.timestep_limit": spec.timestep_limit,
        "dt.delayed": spec.delayed,
        "dt.discrete": spec.discrete,
        "dt.action_selection": spec.action_selection,
        "dt.return_scale": float(module.return_scale),
        "dt.state_mean": list(data_spec.state_mean),
        "dt.state_std": list(data_spec.state_std),
        "dt.action_low": policy.action_low.tolist(),
        "dt.action_high": policy.action_high.tolist(),
        "dt.return_max": data_spec.return_max,
        "dt.return_mean": data_spec.return_mean,
    }
    return {key: json.dumps(value) for key, value in values.items()}
