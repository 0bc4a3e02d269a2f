"""The ONNX Runtime backend on a tiny model: its declared options, each precision's
parity with fp32, and the shared static quantizer (edgec.backends.qdq): which MatMuls
stay float, and the symmetric form TensorRT consumes."""

from __future__ import annotations

import re
import subprocess
import sys

import numpy as np
import onnx
import pytest
from conftest import random_sentences

from edgec.backends.groups import quantizable_groups, resolve_groups
from edgec.backends.onnxruntime import BACKEND, fuse_transformer_ops
from edgec.backends.qdq import quantize_static_qdq
from edgec.backends.settings import (
    TYPES,
    resolve_options,
)
from edgec.export import export_onnx, reference_inputs, torch_outputs
from edgec.model import load_source_model, num_layers
from edgec.verify.reference import calibration_batches
from edgec_runtime.errors import BadInput
from edgec_runtime.settings import BackendSettings, DeviceSettings, ModelFacts

# Random tiny weights give logits near 0.01; int8 moved them by at most 7% of that
# (measured: dynamic 4e-4, static 8e-4, symmetric static 4e-4), broken int8 by ~100%.
INT8_RELATIVE_TOLERANCE = 0.15
MIN_INT8_AGREEMENT = 0.9


@pytest.fixture(scope="module")
def exported(tiny_bert, tmp_path_factory):
    source = load_source_model(tiny_bert)
    path = tmp_path_factory.mktemp("ort") / "export.onnx"
    export_onnx(source, path)
    return source, path, calibration_batches(source, random_sentences(24, seed=7))


def settings_of(source, threads: int = 1, **options) -> BackendSettings:
    """What a build hands the backend: device settings, the model's facts and the
    declared options resolved over their defaults, as the pipeline resolves them."""
    return BackendSettings(
        device=DeviceSettings(device="cpu", threads=threads),
        model=ModelFacts(**source.shape_facts(), max_length=source.max_length),
        options=resolve_options(BACKEND, {}, options, {}),
    )


def quantized_matmuls(path) -> set[str]:
    """MatMuls whose weight input arrives through a DequantizeLinear (i.e. int8)."""
    graph = onnx.load(str(path)).graph
    dequantized = {n.output[0] for n in graph.node if n.op_type == "DequantizeLinear"}
    return {n.name for n in graph.node if n.op_type == "MatMul" and n.input[1] in dequantized}


def assert_int8_parity(logits: np.ndarray, fp32: np.ndarray) -> None:
    assert logits.shape == fp32.shape and np.isfinite(logits).all()
    assert np.abs(logits - fp32).max() <= INT8_RELATIVE_TOLERANCE * np.abs(fp32).max()
    assert (logits.argmax(-1) == fp32.argmax(-1)).mean() >= MIN_INT8_AGREEMENT


# ---------------------------------------------------------------- declared as data


def test_options_are_declared_with_todays_defaults():
    declared = {o.name: (o.type, o.default) for o in BACKEND.options}
    assert declared == {
        "tokenizer": (str, "python"),
        "allow_spinning": (bool, False),
        "fuse": (bool, True),
        "per_channel": (bool, True),
        "smooth": (list, None),  # the task's: edgec.backends.smooth.DEFAULT_ROLES
        "static_graph": (str, "fused"),
        "symmetric": (bool, False),
        "keep_float": (list, []),
        "calibration": (str, "minmax"),
        "search_margin": (float, 0.5),
        "search_trials": (int, 80),
        "search_seconds": (float, 1800.0),
        "quantize_ops": (list, ["MatMul", "Gemm"]),
    }
    assert all(o.help and "\n" not in o.help for o in BACKEND.options)
    assert all(o.type in TYPES for o in BACKEND.options)  # parse and describe can name it


def test_static_int8_and_its_search_are_the_precisions_that_need_calibration():
    assert BACKEND.calibrated == ("int8-static",)
    assert BACKEND.searched == ("int8", "int8-static")
    assert BACKEND.needs_calibration("int8-static") and BACKEND.needs_calibration("int8-auto")
    assert not BACKEND.needs_calibration("int8") and not BACKEND.needs_calibration("fp32")


@pytest.mark.parametrize(
    "name,raw,value",
    [
        ("allow_spinning", "true", True),
        ("fuse", "false", False),
        ("symmetric", True, True),  # a TOML value is already typed
        ("quantize_ops", '["MatMul"]', ["MatMul"]),
    ],
)
def test_options_parse_their_own_type(name, raw, value):
    option = next(o for o in BACKEND.options if o.name == name)
    assert option.parse(raw, BACKEND.name) == value


@pytest.mark.parametrize(
    "name,raw", [("fuse", "yes"), ("per_channel", "2"), ("quantize_ops", "MatMul")]
)
def test_a_value_of_the_wrong_type_is_bad_input_naming_the_option(name, raw):
    option = next(o for o in BACKEND.options if o.name == name)
    expected = rf"onnxruntime option {name}=.*give {re.escape(TYPES[option.type])}"
    with pytest.raises(BadInput, match=expected):
        option.parse(raw, BACKEND.name)


def test_importing_it_imports_no_other_backend():
    code = (
        "import sys, edgec.backends.onnxruntime, edgec.backends.qdq, edgec_runtime.runners.onnxruntime\n"
        "others = [m for m in sys.modules if m.startswith(('edgec.backends.tensorrt', "
        "'edgec.backends.openvino'))]\n"
        "assert not others, others\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# ---------------------------------------------------------------- compile() and load()


@pytest.mark.parametrize(
    "precision,options",
    [("fp32", {}), ("int8", {}), ("int8-static", {}), ("int8-static", {"static_graph": "qdq"})],
)
def test_each_precision_matches_fp32(exported, tmp_path, precision, options):
    source, path, calibration = exported
    settings = settings_of(source, **options)
    compiled = BACKEND.compile(path, precision, calibration, settings, tmp_path)
    assert compiled.files == ["model.onnx"] and (tmp_path / "model.onnx").is_file()
    runner = BACKEND.load(tmp_path, {"files": compiled.files, **compiled.metadata}, settings)
    probe = reference_inputs(source, random_sentences(32, seed=11))
    logits, fp32 = runner.run(probe), torch_outputs(source, probe)
    if precision == "fp32":
        assert np.abs(logits - fp32).max() <= 1e-4
        assert compiled.metadata["optimization"]["fused"] in (True, False)
    else:
        assert_int8_parity(logits, fp32)
        method = {"int8": "dynamic", "int8-static": "static-fixed-scales"}[precision]
        assert compiled.metadata["quantization"]["method"] == ("static-qdq" if options else method)


def test_static_int8_without_calibration_names_the_fix(exported, tmp_path):
    source, path, _ = exported
    with pytest.raises(BadInput, match="--calibration-data or --eval-data"):
        BACKEND.compile(path, "int8-static", None, settings_of(source), tmp_path)


def test_options_reach_the_compiler(exported, tmp_path):
    source, path, calibration = exported
    settings = settings_of(source, fuse=False, per_channel=False)
    compiled = BACKEND.compile(path, "int8", calibration, settings, tmp_path)
    assert compiled.metadata["optimization"] == {"fused": False}
    assert compiled.metadata["quantization"]["per_channel"] is False


def test_sessions_take_threads_and_spinning_from_the_settings(exported, tmp_path):
    source, path, _ = exported
    compiled = BACKEND.compile(path, "fp32", None, settings_of(source), tmp_path)
    key = "session.intra_op.allow_spinning"
    section = {"files": compiled.files, **compiled.metadata}
    quiet = BACKEND.load(tmp_path, section, settings_of(source, threads=1)).session
    assert quiet.get_session_options().get_session_config_entry(key) == "0"
    assert quiet.get_session_options().intra_op_num_threads == 1
    spinning = BACKEND.load(tmp_path, section, settings_of(source, allow_spinning=True)).session
    assert spinning.get_session_options().get_session_config_entry(key) == "1"


# ---------------------------------------------------------------- the shared Q/DQ quantizer


def test_the_node_groups_are_found_by_shape_and_order(exported):
    source, path, _ = exported
    layers = num_layers(source.config)
    groups = quantizable_groups(onnx.load(str(path)))
    roles = ("qkv", "attention-core", "attention-out", "ffn-up", "ffn-down")
    assert list(groups) == [f"layer{i}.{r}" for i in range(layers) for r in roles] + ["head"]
    assert all(len(groups[f"layer{i}.qkv"]) == 3 for i in range(layers))
    assert all("output/dense" in n and "attention" not in n for n in groups["layer0.ffn-down"])
    assert all("attention/output" in n for n in groups["layer1.attention-out"])
    assert resolve_groups(groups, ["ffn-down"]) == [
        groups[f"layer{i}.ffn-down"][0] for i in range(layers)
    ]
    with pytest.raises(BadInput, match="names no node group of this model"):
        resolve_groups(groups, ["layer99.ffn-down"])


def test_the_fused_graph_has_its_own_groups(exported, tmp_path):
    source, path, calibration = exported
    fuse_transformer_ops(
        path,
        tmp_path / "fused.onnx",
        calibration[:2],
        **{
            "num_heads": source.config.num_attention_heads,
            "hidden_size": source.config.hidden_size,
        },
    )
    groups = quantizable_groups(onnx.load(str(tmp_path / "fused.onnx")))
    assert "layer0.attention" in groups and "layer0.qkv" not in groups
    assert "layer0.ffn-down" in groups and "head" in groups


@pytest.mark.parametrize("symmetric", [False, True])
def test_static_int8_keeps_float_the_groups_it_is_told(exported, tmp_path, symmetric):
    source, path, calibration = exported
    groups = quantizable_groups(onnx.load(str(path)))
    down = set(resolve_groups(groups, ["ffn-down"]))
    kept = quantize_static_qdq(
        path, tmp_path / "kept.onnx", calibration, symmetric=symmetric, keep_float=["ffn-down"]
    )
    assert kept["kept_float"] == {"groups": ["ffn-down"], "nodes": num_layers(source.config)}
    assert down and not down & quantized_matmuls(tmp_path / "kept.onnx")
    everything = quantize_static_qdq(path, tmp_path / "all.onnx", calibration, symmetric=symmetric)
    assert everything["kept_float"]["nodes"] == 0
    assert set(everything["node_groups"]) == set(groups)
    assert down <= quantized_matmuls(tmp_path / "all.onnx")
    zero_points = {
        i.name: onnx.numpy_helper.to_array(i)
        for i in onnx.load(str(tmp_path / "all.onnx")).graph.initializer
        if i.name.endswith("_zero_point")
    }
    if symmetric:  # TensorRT's explicit quantization: int8, zero point 0 (biases: int32)
        assert zero_points and not any(z.any() for z in zero_points.values())
        assert {z.dtype.name for n, z in zero_points.items() if "bias" not in n} == {"int8"}


# ---------------------------------------------------------------- static int8, fixed scales


def _ops(path) -> list:
    return list(onnx.load(str(path)).graph.node)


def test_static_int8_runs_the_fused_kernels_with_no_run_time_range(exported, tmp_path):
    """Every activation scale a constant: no DynamicQuantizeLinear is left, each
    MatMulInteger became one MatMulIntegerToFloat, QAttention reads constant scales."""
    source, path, calibration = exported
    compiled = BACKEND.compile(path, "int8-static", calibration, settings_of(source), tmp_path)
    quantization = compiled.metadata["quantization"]
    nodes = _ops(tmp_path / "model.onnx")
    constants = {i.name for i in onnx.load(str(tmp_path / "model.onnx")).graph.initializer}
    kinds = [n.op_type for n in nodes]
    assert "DynamicQuantizeLinear" not in kinds and "MatMulInteger" not in kinds
    assert kinds.count("QuantizeLinear") == quantization["fixed_scales"] >= 1
    assert kinds.count("MatMulIntegerToFloat") == quantization["matmul_integer_to_float"] >= 1
    attention = [n for n in nodes if n.op_type == "QAttention"]
    assert attention and all({n.input[3], n.input[6]} <= constants for n in attention)
    assert all(
        {n.input[1], n.input[2]} <= constants for n in nodes if n.op_type == "QuantizeLinear"
    )
    assert quantization["activations"] == "uint8-asymmetric"
    assert quantization["calibration_method"] == "minmax"


def _row_zero_alone_and_among_others(runner, batch: dict) -> tuple[np.ndarray, np.ndarray]:
    """Row 0's logits in its batch, and with the other rows' tokens shuffled."""
    other = {k: np.array(v) for k, v in batch.items()}
    ids = other["input_ids"][1:]
    other["input_ids"][1:] = (
        np.random.default_rng(3).permutation(ids.reshape(-1)).reshape(ids.shape)
    )
    return runner.run(batch)[0], runner.run(other)[0]


def test_fixed_scales_make_an_examples_logits_independent_of_its_batch(exported, tmp_path):
    """What static means: dynamic int8 sets each call's range from the whole batch, so
    an example's logits move with its neighbours; fixed scales do not."""
    source, path, calibration = exported
    logits = {}
    for precision in ("int8", "int8-static"):
        folder = tmp_path / precision
        folder.mkdir()
        settings = settings_of(source, threads=1)
        compiled = BACKEND.compile(path, precision, calibration, settings, folder)
        runner = BACKEND.load(folder, {"files": compiled.files, **compiled.metadata}, settings)
        logits[precision] = _row_zero_alone_and_among_others(runner, calibration[0])
    alone, among = logits["int8-static"]
    assert np.abs(alone - among).max() <= 1e-6
    alone, among = logits["int8"]
    assert np.abs(alone - among).max() > 1e-6  # the control: the test can tell the two


def test_static_int8_keeps_float_the_groups_it_is_told_in_the_fused_graph(exported, tmp_path):
    source, path, calibration = exported
    settings = settings_of(source, keep_float=["ffn-down"])
    compiled = BACKEND.compile(path, "int8-static", calibration, settings, tmp_path)
    quantization = compiled.metadata["quantization"]
    layers = num_layers(source.config)
    assert quantization["kept_float"] == {"groups": ["ffn-down"], "nodes": layers}
    nodes = _ops(tmp_path / "model.onnx")
    assert sum(n.op_type == "MatMul" for n in nodes) == layers  # float, their weights too
    everything = BACKEND.compile(path, "int8-static", calibration, settings_of(source), tmp_path)
    assert (
        everything.metadata["quantization"]["matmul_integer_to_float"]
        == quantization["matmul_integer_to_float"] + layers
    )


def test_each_calibration_method_sets_its_own_ranges_once(exported, monkeypatch):
    from edgec.backends import fixed_scales

    _, path, calibration = exported
    names = fixed_scales.quantized_activations(onnx.load(str(path)))
    ranges = {m: fixed_scales.activation_ranges(path, calibration, m) for m in CALIBRATIONS}
    for method, found in ranges.items():
        assert list(found) == names, method
        assert all(low < high for low, high in found.values())
    minmax = ranges["minmax"]
    for method in ("entropy", "percentile"):  # each clips the range, never widens it
        assert ranges[method] != minmax
        for name, (low, high) in ranges[method].items():
            assert minmax[name][0] - 1e-6 <= low and high <= minmax[name][1] + 1e-6

    def measured_again(*args):
        raise AssertionError("the ranges were measured again instead of read from the cache")

    monkeypatch.setattr(fixed_scales, "_measure_ranges", measured_again)
    assert fixed_scales.activation_ranges(path, calibration, "entropy") == ranges["entropy"]


CALIBRATIONS = ("minmax", "entropy", "percentile")


@pytest.mark.parametrize(
    "options", [{"symmetric": True}, {"quantize_ops": ["MatMul"]}], ids=["symmetric", "ops"]
)
def test_options_of_the_qdq_graph_are_refused_on_the_fused_one(exported, tmp_path, options):
    source, path, calibration = exported
    with pytest.raises(BadInput, match="add -O static_graph=qdq$"):
        BACKEND.compile(path, "int8-static", calibration, settings_of(source, **options), tmp_path)
    qdq = settings_of(source, static_graph="qdq", **options)
    compiled = BACKEND.compile(path, "int8-static", calibration, qdq, tmp_path)
    assert compiled.metadata["quantization"]["method"] == "static-qdq"
