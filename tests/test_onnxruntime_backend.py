"""The ONNX Runtime backend's static quantization on a tiny model: which MatMuls stay
float, and the symmetric form TensorRT consumes."""

from __future__ import annotations

import onnx
import pytest
from conftest import random_sentences

from edgec.backends.onnxruntime import ffn_down_projections, quantize_static_qdq
from edgec.export import export_onnx
from edgec.model import load_source_model, num_layers
from edgec.verify.reference import calibration_batches


@pytest.fixture(scope="module")
def exported(tiny_bert, tmp_path_factory):
    source = load_source_model(tiny_bert)
    path = tmp_path_factory.mktemp("ort") / "export.onnx"
    export_onnx(source, path)
    return source, path, calibration_batches(source, random_sentences(24, seed=7))


def quantized_matmuls(path) -> set[str]:
    """MatMuls whose weight input arrives through a DequantizeLinear (i.e. int8)."""
    graph = onnx.load(str(path)).graph
    dequantized = {n.output[0] for n in graph.node if n.op_type == "DequantizeLinear"}
    return {n.name for n in graph.node if n.op_type == "MatMul" and n.input[1] in dequantized}


def test_the_feed_forward_down_projections_are_found_by_their_shape(exported):
    source, path, _ = exported
    found = ffn_down_projections(onnx.load(str(path)), source.shape_facts())
    assert len(found) == num_layers(source.config)
    assert all("output/dense" in name and "attention" not in name for name in found)
    assert ffn_down_projections(onnx.load(str(path)), {}) == []  # geometry unknown: none


@pytest.mark.parametrize("symmetric", [False, True])
def test_static_int8_keeps_them_float_unless_asked(exported, tmp_path, symmetric):
    source, path, calibration = exported
    options = {**source.shape_facts(), "symmetric": symmetric}
    kept = quantize_static_qdq(path, tmp_path / "kept.onnx", calibration, options)
    assert kept["kept_float"]["nodes"] == num_layers(source.config)
    down = set(ffn_down_projections(onnx.load(str(path)), source.shape_facts()))
    assert down and not down & quantized_matmuls(tmp_path / "kept.onnx")
    everything = quantize_static_qdq(
        path, tmp_path / "all.onnx", calibration, {**options, "float_ffn_down": False}
    )
    assert everything["kept_float"]["nodes"] == 0
    assert down <= quantized_matmuls(tmp_path / "all.onnx")
    zero_points = {
        i.name: onnx.numpy_helper.to_array(i)
        for i in onnx.load(str(tmp_path / "all.onnx")).graph.initializer
        if i.name.endswith("_zero_point")
    }
    if symmetric:  # TensorRT's explicit quantization: int8, zero point 0 (biases: int32)
        assert zero_points and not any(z.any() for z in zero_points.values())
        assert {z.dtype.name for n, z in zero_points.items() if "bias" not in n} == {"int8"}
