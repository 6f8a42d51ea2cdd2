"""The evaluation's precision policy, and a module's policy under it.

`eval.precision=auto` means bf16 autocast on a CUDA device that supports bf16, fp32 everywhere else. On the
CPU auto stays fp32 even where the CPU has native bf16 matmuls (AVX512-BF16, AMX): the same checkpoint then
gives the same returns on every CPU; `eval.precision=bf16` asks for bf16 explicitly.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from dt.errors import DTError

PRECISIONS = ("auto", "32", "bf16")


def check_precision(precision: str) -> str:
    """`precision` itself, or a DTError naming the choices."""
    if str(precision) not in PRECISIONS:
        raise DTError(f"eval.precision={precision} must be one of {', '.join(PRECISIONS)}")
    return str(precision)


def uses_bf16(device: torch.device, precision: str) -> bool:
    """Whether rollouts on `device` run under bf16 autocast: auto is bf16 only on CUDA with bf16 support."""
    if check_precision(precision) != "auto":
        return precision == "bf16"
    return device.type == "cuda" and torch.cuda.is_bf16_supported()


def precision_name(device: torch.device, precision: str) -> str:
    """ "bf16" or "fp32", as the evaluation table's header says it."""
    return "bf16" if uses_bf16(device, precision) else "fp32"


def module_policy(module: torch.nn.Module, precision: str, traceable: bool = False) -> Callable[..., torch.Tensor]:
    """An `ActionFn` (dt.evaluation.policy): a DTModule's `predict_action` on its own device, under bf16 autocast when
    `uses_bf16`; float32 out. `traceable`: `act` instead (predict_action without entering inference mode, which
    torch.compile cannot trace into), for a caller already in inference mode (`dt.evaluation.compiled`)."""
    predict = module.act if traceable else module.predict_action
    device = module.device
    bf16 = uses_bf16(device, str(precision))

    def act(
        rtg: torch.Tensor,
        states: torch.Tensor,
        actions: torch.Tensor,
        timesteps: torch.Tensor,
        uniform: torch.Tensor | None = None,
    ) -> torch.Tensor:
        sampling = {} if uniform is None else {"uniform": uniform}
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            action = predict(rtg, states, actions, timesteps, **sampling)
        return action.float() if action.is_floating_point() else action

    return act
