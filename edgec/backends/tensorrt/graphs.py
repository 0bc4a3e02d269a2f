"""The ONNX graph TensorRT is given, rewritten where a precision needs it.

These rewrites need onnx and ONNX Runtime's tools but no TensorRT and no GPU, so a
build_on_device package (a Jetson builds its own engine) is made here on any machine.
"""

from __future__ import annotations

from pathlib import Path

from edgec.backends.qdq import quantize_static_qdq
from edgec_runtime.settings import BackendSettings


# Their reductions overflow or lose too much in fp16 (decomposed LayerNorm included).
def qdq_graph(
    src: Path, dst: Path, calibration: list[dict] | None, settings: BackendSettings
) -> dict:
    """Symmetric int8 Q/DQ graph (zero point 0): the one int8 form TensorRT 10 and 11
    both build, since 11 removed implicit calibration. Missing calibration texts are
    refused by the pipeline before any work, and by quantize_static_qdq as a last guard."""
    return quantize_static_qdq(
        Path(src),
        Path(dst),
        calibration,
        symmetric=True,
        op_types=settings.options["quantize_ops"],
        keep_float=settings.options["keep_float"],
        method=settings.options["calibration"],
        smooth=settings.options["smooth"],
        task=settings.model.task,
    )
