"""torch -> ONNX, checked against PyTorch before anything else trusts it.

The legacy TorchScript exporter is used: it is stable for BERT-family encoders and
gives a graph that ORT's transformer optimizer recognises for fusion. Batch and
sequence axes are dynamic, so the package serves real sentence lengths instead of
padding everything to max_length.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from edgec.heads import graph_module, task_outputs
from edgec_runtime.errors import VerificationFailed
from edgec_runtime.iospec import dynamic_axes, family_spec, task_spec

OPSET = 17
PROBE_TEXTS = [
    "a gorgeous, witty, seductive movie.",
    "the plot is thin and the acting is worse; two hours i will never get back",
    "ok",
    "An unexpectedly moving story about families, memory and the places we leave behind, "
    "told with patience and a great deal of warmth.",
]


def reference_inputs(
    source, texts, pairs=None, max_length: int | None = None
) -> dict[str, np.ndarray]:
    """Tokenize with the source (transformers) tokenizer, padded to the batch's longest."""
    encoded = source.tokenizer(
        list(texts),
        list(pairs) if pairs is not None else None,
        truncation=True,
        max_length=max_length or source.max_length,
        padding="longest",
        return_tensors="np",
    )
    return {name: encoded[name].astype(np.int64) for name in source.input_names}


def torch_outputs(source, inputs: dict[str, np.ndarray]) -> np.ndarray:
    """The source model's task output (logits, or the pooled embedding) in PyTorch;
    remembered by input digest when the source has an `outputs_memo`."""
    import torch

    memo, key = source.outputs_memo, None
    if memo is not None:
        digest = hashlib.sha256()
        for name in sorted(inputs):
            digest.update(name.encode() + np.ascontiguousarray(inputs[name]).tobytes())
            digest.update(str(inputs[name].shape).encode())
        key = digest.hexdigest()
        if key in memo:
            return memo[key]
    with torch.inference_mode():
        feed = {k: torch.from_numpy(v) for k, v in inputs.items()}
        out = task_outputs(source.model, source.task, source.task_facts, feed)
    out = out.float().numpy()
    if memo is not None:
        memo[key] = out
    return out


def export_onnx(source, path: Path, sample_inputs: list[dict] | None = None) -> dict:
    """Write `path` and return the export facts; raise if ONNX drifts from PyTorch."""
    import torch

    names = source.input_names
    spec = family_spec(source.model_type)
    output = task_spec(source.task).output
    module = graph_module(source.model.eval(), source.task, source.task_facts, names)
    probe = reference_inputs(source, PROBE_TEXTS[:2])
    args = tuple(torch.from_numpy(probe[n]) for n in names)
    axes = dynamic_axes(names, source.task)
    torch.onnx.export(
        module,
        args,
        str(path),
        input_names=names,
        output_names=[output],
        dynamic_axes=axes,
        opset_version=OPSET,
        dynamo=False,
    )
    samples = [reference_inputs(source, PROBE_TEXTS), reference_inputs(source, PROBE_TEXTS[2:3])]
    samples += list(sample_inputs or [])
    drift = onnx_drift(source, path, samples)
    if drift > spec.export_tolerance:
        raise VerificationFailed(
            f"the ONNX export differs from PyTorch by {drift:.2e} in {output} "
            f"(limit {spec.export_tolerance:.0e}): "
            "the model uses an operation the exporter mistranslates; report it with --verbose output"
        )
    return {
        "opset": OPSET,
        "exporter": f"torch.onnx (TorchScript) {torch.__version__}",
        "input_names": names,
        "output_names": [output],
        "dynamic_axes": axes,
        "max_abs_logit_difference": drift,
    }


def onnx_drift(source, onnx_path: Path, samples: list[dict]) -> float:
    from edgec_runtime.runners.onnxruntime import OrtRunner

    runner = OrtRunner(onnx_path)
    return max(float(np.abs(runner.run(s) - torch_outputs(source, s)).max()) for s in samples)
