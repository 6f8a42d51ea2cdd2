"""`eval.compile`: the acting call under `torch.compile`, for a few fixed batch sizes.

torch.compile specializes on shapes, and a rollout's shapes move: the batch shrinks as episodes end and the
window grows over an episode's first K - 1 steps. So the calls with a full window (K steps, nearly all of
them) have their batch padded with zero rows up to the next bucket (the vector env's size, then halves down
to 1) and each bucket compiles once; shorter windows run eager. Rows never mix (attention and LayerNorm work
within a row), so the padding changes no real row's action; it is dropped. On CUDA the fixed shapes allow
CUDA graphs (inductor's mode="reduce-overhead"): one graph per bucket, replayed with no per-kernel launches.
"""

from __future__ import annotations

import torch

from dt.errors import DTError
from dt.evaluation.precision import module_policy

RECOMPILE_LIMIT = 64  # dynamo's default (8) is below one bucket ladder (9 buckets for 200 envs) plus a new module


def compile_backend(setting: bool | str) -> str | None:
    """eval.compile: false -> None (eager), true -> inductor, or a torch.compile backend name (aot_eager, ...)."""
    if setting is False or setting is None:
        return None
    if setting is True:
        return "inductor"
    if isinstance(setting, str) and setting in torch.compiler.list_backends(exclude_tags=()):
        return setting
    raise DTError(f"eval.compile={setting} must be false, true (inductor) or a torch.compile backend name")


def bucket_sizes(max_batch: int) -> list[int]:
    """The compiled batch sizes, ascending: max_batch, then halves rounded up, down to 1 (200: 1, 2, 4, 7, ... 200)."""
    sizes = [max_batch]
    while sizes[-1] > 1:
        sizes.append(-(-sizes[-1] // 2))
    return sorted(sizes)


def pad_rows(x: torch.Tensor, rows: int) -> torch.Tensor:
    """x (M, ...) as a new contiguous (rows, ...) tensor, zeros below: every call of a bucket has the same strides."""
    padded = x.new_zeros((rows, *x.shape[1:]))
    padded[: len(x)] = x
    return padded


class CompiledPolicy:
    """`module_policy(module, precision)` (an `ActionFn`, see dt.evaluation.policy) whose full-window calls run
    compiled at bucketed batch sizes up to `max_batch`; every other call runs eager."""

    def __init__(
        self, module: torch.nn.Module, precision: str, context_len: int, max_batch: int, backend: str = "inductor"
    ) -> None:
        self.module, self.context_len = module, context_len
        self.policy = module_policy(module, precision)
        self.buckets = bucket_sizes(max_batch)
        cuda_graphs = module.device.type == "cuda" and backend == "inductor"
        mode = "reduce-overhead" if cuda_graphs else None
        traceable = module_policy(module, precision, traceable=True)  # called in inference mode, below
        self.compiled = torch.compile(traceable, backend=backend, mode=mode, dynamic=False)  # a graph per bucket
        self.compiled_calls = 0  # calls that ran compiled (the bench and the tests read it)

    def __call__(
        self,
        rtg: torch.Tensor,  # (M, T)
        states: torch.Tensor,  # (M, T, ...)
        actions: torch.Tensor,  # (M, T, A) or (M, T)
        timesteps: torch.Tensor,  # (M, T)
        uniform: torch.Tensor | None = None,  # (M,)
    ) -> torch.Tensor:
        rows, steps = timesteps.shape
        sampling = {} if uniform is None else {"uniform": uniform}
        if steps != self.context_len or rows > self.buckets[-1]:
            return self.policy(rtg, states, actions, timesteps, **sampling)
        size = next(b for b in self.buckets if b >= rows)
        inputs = [pad_rows(x, size) for x in (rtg, states, actions, timesteps)]
        sampling = {name: pad_rows(x, size) for name, x in sampling.items()}
        with torch._dynamo.config.patch(recompile_limit=RECOMPILE_LIMIT), torch.inference_mode():
            action = self.compiled(*inputs, **sampling)
        self.compiled_calls += 1
        return action[:rows].clone()  # a copy: CUDA graphs overwrite their output on the next replay
