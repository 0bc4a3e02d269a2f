"""Static int8 on ONNX Runtime's CPU: dynamic int8's fused kernels with fixed scales.

A static Q/DQ graph (edgec.backends.qdq) runs 1.3x slower than dynamic int8 on ONNX
Runtime's CPU kernels (benchmarks/NOTES.md, section 12): the fused QAttention kernel
has no Q/DQ counterpart, so the graph loses the attention fusion. But the kernels
dynamic int8 runs take the activation's scale and zero point as inputs (QAttention's
input_scale and input_zero_point, MatMulIntegerToFloat's a_scale and a_zero_point), so
the same fused graph becomes static int8 once those inputs are constants:

- each DynamicQuantizeLinear, which finds its tensor's range on every call, becomes a
  QuantizeLinear with the range calibration found (one pass over the tensor, not two);
- each MatMulInteger with its float conversion (Cast, then Mul by both scales, which
  ONNX Runtime fuses only behind a DynamicQuantizeLinear) becomes one
  MatMulIntegerToFloat.

The ranges are calibrated on the float graph, for every tensor dynamic int8 can
quantize, so one calibration serves every choice of groups kept float (the sensitivity
search's trials); they are cached by graph, texts and method. Measured on the three
real models (section 15): 0.96-1.00x dynamic int8's latency, where the Q/DQ graph took
1.25-1.44x, and agreement with fp32 of 0.991-0.998, against the Q/DQ graph's 0.950-0.991.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

from edgec.backends.derived import file_digest, samples_digest
from edgec.backends.qdq import CALIBRATION_METHODS, NO_CALIBRATION
from edgec.quiet import prints_to_stderr
from edgec_runtime.errors import BadInput
from edgec_runtime.paths import cache_dir

# ONNX Runtime's own settings for its histogram methods (create_calibrator's defaults,
# which its quantize_static uses), so that a method means the same in both static forms.
HISTOGRAM_SETTINGS = {
    "entropy": {"num_bins": 128, "num_quantized_bins": 128, "symmetric": False},
    "percentile": {"num_bins": 2048, "num_quantized_bins": 128, "symmetric": True},
}
PERCENTILE = 99.999


def quantized_activations(model) -> list[str]:
    """The float tensors dynamic int8 quantizes on each call: the activation inputs of
    every MatMul and Gemm (which ONNX Runtime's quantizer turns into a MatMul; both
    inputs of one of two activations) and a fused Attention's input."""
    weights = {i.name for i in model.graph.initializer}
    names: list[str] = []
    for node in model.graph.node:
        inputs = {"MatMul": node.input[:2], "Gemm": node.input[:2], "Attention": node.input[:1]}
        inputs = inputs.get(node.op_type, [])
        names += [n for n in inputs if n and n not in weights and n not in names]
    return names


def _ranges_cache(graph: Path, calibration: list[dict], method: str, names: list[str]) -> Path:
    digest = hashlib.sha256(file_digest(graph).encode() + samples_digest(calibration).encode())
    digest.update(json.dumps([method, names]).encode())
    return cache_dir("calibration") / f"fixed-{digest.hexdigest()[:32]}.json"


def _measure_ranges(model, names: list[str], calibration: list[dict], method: str) -> dict:
    import onnx

    from edgec_runtime.runners.onnxruntime import session

    for name in names:
        model.graph.output.append(
            onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None)
        )
    float_graph = session(model.SerializeToString(), threads=2)  # beside a build's other work
    feeds = {i.name for i in float_graph.get_inputs()}
    low = dict.fromkeys(names, 0.0)
    high = dict.fromkeys(names, 0.0)
    collector = None
    if method != "minmax":
        from onnxruntime.quantization.calibrate import HistogramCollector

        collector = HistogramCollector(
            method=method, percentile=PERCENTILE, scenario="same", **HISTOGRAM_SETTINGS[method]
        )
    with prints_to_stderr():  # the histogram collector prints its progress
        for batch in calibration:
            feed = {k: np.asarray(v) for k, v in batch.items() if k in feeds}
            values = float_graph.run(names, feed)
            if collector is not None:
                collector.collect({n: [v] for n, v in zip(names, values, strict=True)})
                continue
            for name, value in zip(names, values, strict=True):
                low[name] = min(low[name], float(value.min()))
                high[name] = max(high[name], float(value.max()))
        if collector is not None:
            found = collector.compute_collection_result()
            low = {n: float(found[n][0]) for n in names}
            high = {n: float(found[n][1]) for n in names}
    return {name: [low[name], high[name]] for name in names}


def activation_ranges(graph: Path, calibration: list[dict] | None, method: str) -> dict:
    """{tensor: [least, greatest]} for every tensor dynamic int8 can quantize in the
    float `graph`, over the calibration batches, by `method`; cached, and written whole
    or not at all (a killed build leaves no half cache)."""
    import onnx

    if not calibration:
        raise BadInput(NO_CALIBRATION)
    if method not in CALIBRATION_METHODS:
        raise BadInput(
            f"calibration method {method!r}: choose one of {', '.join(CALIBRATION_METHODS)}"
        )
    model = onnx.load(str(graph))
    names = quantized_activations(model)
    cache = _ranges_cache(graph, calibration, method, names)
    if cache.is_file():
        return json.loads(cache.read_text())
    ranges = _measure_ranges(model, names, calibration, method)
    partial = cache.with_name(f"{cache.stem}.{os.getpid()}.partial.json")
    partial.write_text(json.dumps(ranges))
    os.replace(partial, cache)
    return ranges


def _scale_and_zero_point(low: float, high: float) -> tuple[np.ndarray, np.ndarray]:
    """uint8's scale and zero point for [low, high], as ONNX Runtime's quantizer sets
    them (the range widened to hold 0)."""
    from onnx import TensorProto
    from onnxruntime.quantization.quant_utils import compute_scale_zp, get_qmin_qmax_for_qType

    qmin, qmax = get_qmin_qmax_for_qType(TensorProto.UINT8)
    zero, scale = compute_scale_zp(np.float32(low), np.float32(high), qmin, qmax)
    return np.asarray(scale, np.float32), np.asarray(zero, np.uint8)


def fix_scales(dynamic_graph: Path, dst: Path, ranges: dict) -> dict:
    """Write `dst`: `dynamic_graph` (ONNX Runtime's dynamic int8 of a float graph whose
    `ranges` were measured) with every activation scale fixed; return the counts."""
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(dynamic_graph))
    graph = model.graph
    consumers: dict[str, list] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    producer = {out: node for node in graph.node for out in node.output}
    initializers = {i.name for i in graph.initializer}
    replaced: dict[int, object] = {}
    dropped: set[int] = set()
    for node in graph.node:
        if node.op_type == "DynamicQuantizeLinear":
            x, (q, scale_name, zero_name) = node.input[0], node.output
            if x not in ranges:
                raise RuntimeError(
                    f"no calibrated range for {x!r}: not the input of a MatMul, Gemm or Attention"
                )
            scale, zero = _scale_and_zero_point(*ranges[x])
            graph.initializer.extend(
                [
                    numpy_helper.from_array(scale, scale_name),
                    numpy_helper.from_array(zero, zero_name),
                ]
            )
            replaced[id(node)] = helper.make_node(
                "QuantizeLinear", [x, scale_name, zero_name], [q], name=f"{node.name}_fixed"
            )
        elif node.op_type == "MatMulInteger" and node.input[1] in initializers:
            chain = _to_float_chain(node, consumers, producer)
            if chain is None:
                continue
            cast, mul, scales, a_scale, b_scale = chain
            a, b, a_zero, b_zero = node.input
            dropped.update({id(cast), id(mul), id(scales)})
            replaced[id(node)] = helper.make_node(
                "MatMulIntegerToFloat",
                [a, b, a_scale, b_scale, a_zero, b_zero],
                [mul.output[0]],
                name=f"{node.name}_to_float",
                domain="com.microsoft",
            )
    nodes = [replaced.get(id(n), n) for n in graph.node if id(n) not in dropped]
    del graph.node[:]
    graph.node.extend(nodes)
    onnx.save(model, str(dst))
    kinds = [n.op_type for n in nodes]
    return {
        "fixed_scales": kinds.count("QuantizeLinear"),
        "matmul_integer_to_float": kinds.count("MatMulIntegerToFloat"),
    }


def _to_float_chain(node, consumers: dict, producer: dict):
    """(Cast, Mul, the Mul of the two scales, the activation's scale, the weight's)
    around a MatMulInteger whose activation is dynamically quantized, as ONNX Runtime's
    dynamic quantizer writes them; None for any other shape of graph."""
    quantize = producer.get(node.input[0])
    if quantize is None or quantize.op_type != "DynamicQuantizeLinear":
        return None
    after = consumers.get(node.output[0], [])
    if len(after) != 1 or after[0].op_type != "Cast":
        return None
    cast = after[0]
    after = consumers.get(cast.output[0], [])
    if len(after) != 1 or after[0].op_type != "Mul":
        return None
    mul = after[0]
    other = [i for i in mul.input if i != cast.output[0]]
    scales = producer.get(other[0]) if len(other) == 1 else None
    if scales is None or scales.op_type != "Mul" or len(consumers[scales.output[0]]) != 1:
        return None
    a_scale = quantize.output[1]
    if a_scale not in scales.input:
        return None
    b_scale = next(i for i in scales.input if i != a_scale)
    return cast, mul, scales, a_scale, b_scale
