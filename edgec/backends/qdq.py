"""Static int8 as explicit Q/DQ nodes in the ONNX graph, from the user's calibration texts.

Not a backend: ONNX Runtime runs the Q/DQ graph as its int8-static precision, and
TensorRT builds its int8 engines from the same graph in its symmetric form (int8
activations, zero point 0), the only int8 TensorRT 11 still accepts. Both call
`quantize_static_qdq` here, so neither backend imports the other.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from edgec_runtime.errors import BadInput

DEFAULT_OP_TYPES = ("MatMul", "Gemm")
NO_CALIBRATION = (
    "static int8 needs calibration texts to set its activation scales: "
    "pass --calibration-data or --eval-data"
)


class CalibrationReader:
    """Feeds calibration batches to ORT's static quantizer one at a time."""

    def __init__(self, batches: list[dict], input_names: list[str]):
        self._batches = iter(
            [{n: np.asarray(b[n], dtype=np.int64) for n in input_names} for b in batches]
        )

    def get_next(self):
        return next(self._batches, None)


def ffn_down_projections(
    model, *, hidden_size: int | None, intermediate_size: int | None
) -> list[str]:
    """MatMuls whose weight is [intermediate, hidden]: the feed-forward down-projections.

    Their input is the GELU output, whose outlier channels a per-tensor int8 scale
    cannot hold. On the sentiment teacher, static int8 of every MatMul lost 1.38
    points (agreement 0.931); keeping these 6 of 38 in float: 0.62 points (0.981), and
    with symmetric activations 0.88 points instead of 6.5. No other group of MatMuls
    mattered (benchmarks/NOTES.md, section 10). Unknown geometry finds none.
    """
    if hidden_size is None or intermediate_size is None:
        return []
    shape = [int(intermediate_size), int(hidden_size)]
    weights = {i.name: list(i.dims) for i in model.graph.initializer}
    return [
        node.name
        for node in model.graph.node
        if node.op_type == "MatMul" and any(weights.get(i) == shape for i in node.input)
    ]


def quantize_static_qdq(
    src: Path,
    dst: Path,
    calibration: list[dict] | None,
    *,
    symmetric: bool,
    hidden_size: int | None,
    intermediate_size: int | None,
    op_types: Sequence[str] = DEFAULT_OP_TYPES,
    float_ffn_down: bool = True,
) -> dict:
    """Write `dst`, a Q/DQ int8 copy of `src`; return what was done, for the manifest.

    `symmetric` gives int8 activations with zero point 0 (TensorRT's form) instead of
    asymmetric uint8. Weights are always symmetric int8 per output channel. With
    `float_ffn_down` the feed-forward down-projections, found by their
    [intermediate_size, hidden_size] weights, stay in float.
    """
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if not calibration:
        raise BadInput(NO_CALIBRATION)  # the pipeline refuses earlier; this is the last guard
    op_types = list(op_types)
    with tempfile.TemporaryDirectory(prefix="edgec-calib-") as tmp:
        # Calibration writes large scratch files into the working directory.
        pre = Path(tmp) / "pre.onnx"
        quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
        import onnx

        graph = onnx.load(str(pre))
        input_names = [i.name for i in graph.graph.input]
        keep_float = (
            ffn_down_projections(
                graph, hidden_size=hidden_size, intermediate_size=intermediate_size
            )
            if float_ffn_down
            else []
        )
        target = str(Path(dst).resolve())  # before the chdir moves "."
        cwd = os.getcwd()
        os.chdir(tmp)
        try:
            quantize_static(
                str(pre),
                target,
                CalibrationReader(calibration, input_names),
                quant_format=QuantFormat.QDQ,
                activation_type=QuantType.QInt8 if symmetric else QuantType.QUInt8,
                weight_type=QuantType.QInt8,
                per_channel=True,
                op_types_to_quantize=op_types,
                nodes_to_exclude=keep_float,
                extra_options={"ActivationSymmetric": symmetric, "WeightSymmetric": True},
            )
        finally:
            os.chdir(cwd)
    return {
        "method": "static-qdq",
        "activations": "int8-symmetric" if symmetric else "uint8-asymmetric",
        "weights": "int8-symmetric-per-channel",
        "op_types": op_types,
        "kept_float": {"rule": "feed-forward down-projections", "nodes": len(keep_float)},
        "calibration_batches": len(calibration),
    }
