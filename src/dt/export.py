"""Export one acting step of a checkpoint: `python -m dt.export ckpt=PATH format=onnx|pt2 out=FILE`.

The graph (dt.evaluation.acting_step) takes K-step windows and their valid lengths, batch size free, and has
the state statistics, return scale, timestep clamp and action bounds inside; ONNX files also carry them, with
the env id, K and delayed mode, as `metadata_props` (JSON values under `dt.*` keys).
`examples/onnx_hopper.py` runs an episode from the .onnx file with numpy and onnxruntime alone.
ONNX needs the export extra: `pip install -e ".[export]"`. pt2 is `torch.export.save`'s format.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import IO, Any

import torch

from dt.console import quiet_third_party
from dt.errors import DTError, report_errors
from dt.files import atomic_write

FORMATS = ("onnx", "pt2")
USAGE = "python -m dt.export ckpt=PATH format=onnx|pt2 out=FILE"


def parse_args(argv: list[str]) -> dict[str, str]:
    """`key=value` arguments, as the Hydra commands take them; ckpt and out are required."""
    args = {"format": "onnx"}
    for arg in argv:
        key, sep, value = arg.partition("=")
        if not sep or key not in ("ckpt", "format", "out"):
            raise DTError(f"unknown argument '{arg}': {USAGE}")
        args[key] = value
    if not args.get("ckpt") or not args.get("out"):
        raise DTError(f"ckpt= and out= are required: {USAGE}")
    if args["format"] not in FORMATS:
        raise DTError(f"format={args['format']} must be one of {', '.join(FORMATS)}")
    return args


def export(ckpt: str, out: str | Path, format: str = "onnx") -> Path:
    """Write the acting step of `ckpt` to `out` (fp32, on the CPU) atomically; returns the path."""
    from dt.evaluation.policy import Policy

    if format not in FORMATS:
        raise DTError(f"format={format} must be one of {', '.join(FORMATS)}")
    return export_policy(Policy.from_checkpoint(ckpt, device="cpu", precision="32"), out, format)


def export_policy(policy: Any, out: str | Path, format: str = "onnx") -> Path:
    """Write the acting step of a `Policy` built from a module (on the CPU, fp32) to `out` atomically."""
    from dt.evaluation.acting_step import INPUT_NAMES, ActingStep, example_inputs, metadata

    step = ActingStep(policy).eval()
    inputs = example_inputs(policy)
    batch = torch.export.Dim("batch", min=1)
    dynamic = {name: {0: batch} for name in INPUT_NAMES}
    with atomic_write(out, "wb") as f, torch.inference_mode(False), torch.no_grad():
        if format == "pt2":
            torch.export.save(torch.export.export(step, inputs, dynamic_shapes=dynamic), f)
        else:
            _write_onnx(step, inputs, dynamic, metadata(policy), policy.spec.discrete, f)
    return out


def _write_onnx(step, inputs, dynamic, props: dict[str, str], discrete: bool, file: IO[bytes]) -> None:
    try:
        import onnx
    except ImportError as err:
        raise DTError('format=onnx needs the export extra: pip install -e ".[export]"') from err
    outputs = ["action", "logits"] if discrete else ["action"]
    program = torch.onnx.export(
        step,
        inputs,
        dynamo=True,
        verbose=False,
        input_names=list(dynamic),
        output_names=outputs,
        dynamic_shapes=dynamic,
        external_data=False,
    )
    model = program.model_proto
    for key, value in props.items():
        model.metadata_props.add(key=key, value=value)
    onnx.save(model, file)


@report_errors
def main(argv: list[str] | None = None) -> None:
    quiet_third_party()
    args = parse_args(sys.argv[1:] if argv is None else argv)
    path = export(args["ckpt"], args["out"], args["format"])
    print(f"exported: {path}")


if __name__ == "__main__":
    main()
