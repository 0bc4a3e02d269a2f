"""Static int8 as explicit Q/DQ nodes in the ONNX graph, from the user's calibration texts.

Not a backend: ONNX Runtime runs the Q/DQ graph as its int8-static precision, and
TensorRT builds its int8 engines from the same graph in its symmetric form (int8
activations, zero point 0), the only int8 TensorRT 11 still accepts. Both call
`quantize_static_qdq` here, so neither backend imports the other.

Which node groups stay float (`keep_float`, edgec.backends.groups) and which
calibration method sets the activation ranges are choices, not rules: the sensitivity
search (edgec.int8_search, precision int8-auto) makes them per model on held-out
texts. The activation ranges of one graph, calibration set and method are computed
once and cached (ONNX Runtime's calibration cache, under the edgec cache), so the
search's trials, and a rebuild, only re-write the graph.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from edgec.backends.derived import derived, file_digest, samples_digest
from edgec.backends.groups import (
    QUANTIZABLE_OPS,
    describe_groups,
    quantizable_groups,
    resolve_groups,
)
from edgec.backends.smooth import smoothed
from edgec.quiet import prints_to_stderr
from edgec_runtime.errors import BadInput
from edgec_runtime.paths import cache_dir

DEFAULT_OP_TYPES = ("MatMul", "Gemm")
# ONNX Runtime's calibrators by edgec's name. Measured on the sentiment teacher with
# every MatMul quantized (benchmarks/NOTES.md, section 10): minmax -1.38 points,
# percentile -1.50, entropy -2.00; which wins is the model's, so the search measures it.
CALIBRATION_METHODS = {"minmax": "MinMax", "entropy": "Entropy", "percentile": "Percentile"}
DEFAULT_CALIBRATION = "minmax"
NO_CALIBRATION = (
    "static int8 needs calibration texts to set its activation scales: "
    "pass --calibration-data or --eval-data"
)


class CalibrationReader:
    """Feeds calibration batches to ORT's static quantizer, one per `collect_data` call.

    `__len__` and `set_range` let the quantizer calibrate batch by batch (its
    CalibStridedMinMax stride of 1): the histogram calibrators keep every activation of
    a call in memory and need one shape per call, and batches differ in length.
    """

    def __init__(self, batches: list[dict], input_names: list[str]):
        self._all = [{n: np.asarray(b[n], dtype=np.int64) for n in input_names} for b in batches]
        self._batches = iter(self._all)

    def __len__(self) -> int:
        return len(self._all)

    def set_range(self, start_index: int, end_index: int) -> None:
        self._batches = iter(self._all[start_index:end_index])

    def get_next(self):
        return next(self._batches, None)


def ranges_cache(graph: Path, calibration: list[dict], op_types, method: str, symmetric: bool):
    """The cache file of this graph's activation ranges for these texts and settings."""
    digest = hashlib.sha256(file_digest(graph).encode() + samples_digest(calibration).encode())
    digest.update(json.dumps([list(op_types), method, symmetric]).encode())
    return cache_dir("calibration") / f"{digest.hexdigest()[:32]}.json"


def _calibrate_into(cache: Path, quantize) -> None:
    """Run `quantize(path)` with ORT writing its ranges to a temporary file, renamed
    into `cache` once complete: a killed build never leaves half a cache behind."""
    if cache.is_file():
        quantize(cache)
        return
    partial = cache.with_name(f"{cache.stem}.{os.getpid()}.partial.json")
    try:
        quantize(partial)
        os.replace(partial, cache)
    finally:
        partial.unlink(missing_ok=True)


def quantize_static_qdq(
    src: Path,
    dst: Path,
    calibration: list[dict] | None,
    *,
    symmetric: bool,
    op_types: Sequence[str] = DEFAULT_OP_TYPES,
    keep_float: Sequence[str] = (),
    method: str = DEFAULT_CALIBRATION,
    smooth: Sequence[str] | None = (),
    task: str = "",
) -> dict:
    """Write `dst`, a Q/DQ int8 copy of `src`; return what was done, for the manifest.

    `symmetric` gives int8 activations with zero point 0 (TensorRT's form) instead of
    asymmetric uint8. Weights are always symmetric int8 per output channel. The node
    groups named in `keep_float` stay float; those in `smooth` (None: the `task`'s
    default for static int8) have their input outliers moved into the weights first
    (edgec.backends.smooth), measured for one static range per tensor, before the
    ranges are calibrated.
    """
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if not calibration:
        raise BadInput(NO_CALIBRATION)  # the pipeline refuses earlier; this is the last guard
    if method not in CALIBRATION_METHODS:
        raise BadInput(
            f"calibration method {method!r}: choose one of {', '.join(CALIBRATION_METHODS)}"
        )
    op_types = list(op_types)
    with tempfile.TemporaryDirectory(prefix="edgec-calib-") as tmp:
        # Calibration writes large scratch files into the working directory.
        pre, _ = derived(
            src,
            "quant-pre-process",
            lambda a, b: quant_pre_process(str(a), str(b), skip_symbolic_shape=True),
        )
        form = {"per_channel": True, "static": True, "symmetric": symmetric}
        pre, smoothing = smoothed(pre, calibration, smooth, task, **form)
        graph = onnx.load(str(pre))
        input_names = [i.name for i in graph.graph.input]
        groups = quantizable_groups(graph, tuple(set(op_types) & set(QUANTIZABLE_OPS)))
        excluded = resolve_groups(groups, keep_float)
        node_groups = describe_groups(graph, groups)
        cache = ranges_cache(pre, calibration, op_types, method, symmetric)
        target = str(Path(dst).resolve())  # before the chdir moves "."

        def quantize(cache_path: Path) -> None:
            quantize_static(
                str(pre),
                target,
                CalibrationReader(calibration, input_names),
                quant_format=QuantFormat.QDQ,
                activation_type=QuantType.QInt8 if symmetric else QuantType.QUInt8,
                weight_type=QuantType.QInt8,
                per_channel=True,
                op_types_to_quantize=op_types,
                nodes_to_exclude=excluded,
                calibrate_method=getattr(CalibrationMethod, CALIBRATION_METHODS[method]),
                calibration_cache_path=str(cache_path),
                extra_options={
                    "ActivationSymmetric": symmetric,
                    "WeightSymmetric": True,
                    "CalibStridedMinMax": 1,
                },
            )

        cwd = os.getcwd()
        os.chdir(tmp)
        try:
            with prints_to_stderr():  # the histogram methods print their progress
                _calibrate_into(cache, quantize)
        finally:
            os.chdir(cwd)
    return {
        "method": "static-qdq",
        "activations": "int8-symmetric" if symmetric else "uint8-asymmetric",
        "weights": "int8-symmetric-per-channel",
        "op_types": op_types,
        "calibration_method": method,
        "kept_float": {"groups": list(keep_float), "nodes": len(excluded)},
        "node_groups": node_groups,
        "calibration_batches": len(calibration),
        "smoothing": smoothing,
    }
