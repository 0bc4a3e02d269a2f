"""The TensorRT backend.

TensorRT cannot be installed on the development machines, so most tests drive the
backend against tests/tensorrt_standin.py, a STAND-IN module that records what
edgec asks of TensorRT. One test (`gpu` marker) builds and runs a real engine, and
skips with its reason where TensorRT or CUDA is missing.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from conftest import random_sentences
from tensorrt_standin import make_tensorrt_standin

from edgec.backends.settings import (
    TYPES,
    resolve_options,
)
from edgec.backends.tensorrt import BACKEND
from edgec.targets import get_target
from edgec_runtime.errors import BackendUnavailable, BadInput
from edgec_runtime.runners.onnxruntime import OrtRunner
from edgec_runtime.runners.tensorrt import engine, probe, runner
from edgec_runtime.settings import BackendSettings, DeviceSettings, ModelFacts

# Random tiny weights give logits near 0.01; symmetric int8 moved them by about 4% of
# that on ONNX Runtime (measured), broken int8 by ~100%.
INT8_RELATIVE_TOLERANCE = 0.15
MIN_INT8_AGREEMENT = 0.9

H100 = {
    "name": "NVIDIA H100 80GB HBM3",
    "compute_capability": "9.0",
    "cuda_version": "12.8",
    "device_count": 1,
}
A100 = {
    "name": "NVIDIA A100-SXM4-40GB",
    "compute_capability": "8.0",
    "cuda_version": "12.8",
    "device_count": 1,
}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from edgec.export import export_onnx
    from edgec.model import load_source_model
    from edgec.verify.reference import calibration_batches

    root = tmp_path_factory.mktemp("trt")
    from tiny_models import make_tiny_classifier

    source = load_source_model(make_tiny_classifier("bert", root / "bert"))
    onnx_path = root / "bert.onnx"
    export_onnx(source, onnx_path)
    return {
        "source": source,
        "onnx": onnx_path,
        "calibration": calibration_batches(source, random_sentences(24)),
        "facts": ModelFacts(**source.shape_facts()),
    }


@pytest.fixture
def standin(monkeypatch):
    """TensorRT 10 stand-in and an H100, as seen by the backend."""
    module = make_tensorrt_standin("10.9.0.34")
    monkeypatch.setitem(sys.modules, "tensorrt", module)
    monkeypatch.setattr(probe, "cuda_device", lambda: (dict(H100), ""))
    return module


def settings_of(target: str, model: ModelFacts | None = None, **options) -> BackendSettings:
    """What a build for `target` hands the backend: the target's device settings, the
    model's facts and the declared options (defaults < target < these), as the
    pipeline resolves them."""
    profile = get_target(target)
    return BackendSettings(
        device=DeviceSettings(
            device=profile.device, threads=profile.threads, shapes=profile.shapes
        ),
        model=model or ModelFacts(),
        options=resolve_options(BACKEND, profile.options, options, {}),
    )


def assert_int8_parity(logits: np.ndarray, fp32: np.ndarray) -> None:
    assert logits.shape == fp32.shape and np.isfinite(logits).all()
    assert np.abs(logits - fp32).max() <= INT8_RELATIVE_TOLERANCE * np.abs(fp32).max()
    assert (logits.argmax(-1) == fp32.argmax(-1)).mean() >= MIN_INT8_AGREEMENT


def onnx_ops(model) -> list[str]:
    return [n.op_type for n in model.graph.node]


# ---------------------------------------------------------------- available()


def test_available_when_tensorrt_is_not_installed(monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorrt", None)  # find_spec -> None, import fails
    assert BACKEND.available("cuda") == (
        "tensorrt is not installed: pip install 'edgec[tensorrt]' (needs NVIDIA's package index)"
    )


def test_available_without_a_cuda_device(monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorrt", make_tensorrt_standin())
    monkeypatch.setattr(
        probe,
        "cuda_device",
        lambda: (None, "no NVIDIA driver: libcuda.so.1 is not on this machine"),
    )
    reason = BACKEND.available("cuda")
    assert reason.startswith("no CUDA device found (no NVIDIA driver") and "\n" not in reason


def test_available_with_an_unsupported_version(monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorrt", make_tensorrt_standin("8.6.1"))
    monkeypatch.setattr(probe, "cuda_device", lambda: (dict(H100), ""))
    assert BACKEND.available("cuda").startswith("TensorRT 8.6.1 is unsupported (need 10.x or 11.x)")


@pytest.mark.parametrize("version", ["10.9.0.34", "11.0.0"])
def test_available_with_tensorrt_and_a_gpu(standin, monkeypatch, version):
    monkeypatch.setitem(sys.modules, "tensorrt", make_tensorrt_standin(version))
    assert BACKEND.available("cuda") is None
    assert "not served by tensorrt" in BACKEND.available("cpu")


def test_cuda_detection_does_not_need_torch():
    """On this machine: no driver, so a reason, and torch is never imported for it."""
    code = (
        "import sys\n"
        "from edgec_runtime.runners.tensorrt.probe import cuda_device\n"
        "gpu, why = cuda_device()\n"
        "assert 'torch' not in sys.modules\n"
        "print(gpu, why)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    assert out.stdout.strip()


def test_availability_of_an_installed_tensorrt_is_read_without_importing_it(tmp_path):
    """A tensorrt that raises on import, with its distribution metadata: `edgec backends`
    reads its version from the metadata and never imports it; building does."""
    (tmp_path / "tensorrt").mkdir()
    (tmp_path / "tensorrt" / "__init__.py").write_text("raise ImportError('imported!')\n")
    info = tmp_path / "tensorrt-10.9.0.34.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: tensorrt\nVersion: 10.9.0.34\n")
    code = (
        "import sys\n"
        "from edgec.views import backend_rows\n"
        "row = next(r for r in backend_rows() if r['name'] == 'tensorrt')\n"
        "assert 'tensorrt' not in sys.modules, 'imported'\n"
        "from edgec_runtime.runners.tensorrt.probe import tensorrt_problem\n"
        "print(row['reason']); print(tensorrt_problem(load=True))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True, env=env
    ).stdout.splitlines()
    assert out[0].startswith("no CUDA device found")  # 10.x is supported: on to the GPU
    assert "fails to import (ImportError: imported!)" in out[1]


def test_type_stubs_alone_are_not_tensorrt(tmp_path):
    """tensorrt-stubs installs tensorrt/__init__.pyi only, which imports as an empty
    namespace package: that is no TensorRT, with or without importing it."""
    (tmp_path / "tensorrt").mkdir()
    (tmp_path / "tensorrt" / "__init__.pyi").write_text("class Builder: ...\n")
    code = (
        "import sys\n"
        "sys.modules.pop('tensorrt', None)\n"
        "from edgec.backends.tensorrt import BACKEND\n"
        "from edgec_runtime.runners.tensorrt.probe import tensorrt_problem\n"
        "print(BACKEND.available('cuda')); print(tensorrt_problem(load=True))\n"
        "print(BACKEND.version())\n"
    )
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True, env=env
    ).stdout.splitlines()
    assert out[0] == out[1] == probe.STUBS_ONLY
    assert out[0].startswith("tensorrt is not installed (only tensorrt-stubs is)")
    assert out[2] == "None"


def test_listing_backends_does_not_import_tensorrt():
    code = (
        "import sys, edgec.backends.tensorrt\n"
        "from edgec.plugins import backends\n"
        "assert 'tensorrt' in backends()\n"
        "import edgec.backends.tensorrt.build, edgec_runtime.runners.tensorrt.runner\n"
        "heavy = [m for m in ('tensorrt', 'torch', 'onnxruntime') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_no_backend_imports_another():
    """TensorRT shares the Q/DQ quantizer and the ONNX Runtime session with the ONNX
    Runtime backend through edgec.backends.qdq and ort_runner, not through it."""
    code = (
        "import sys\n"
        "import edgec.backends.tensorrt.build, edgec.backends.tensorrt.graphs\n"
        "import edgec_runtime.runners.tensorrt.runner, edgec_runtime.runners.tensorrt.probe\n"
        "assert 'edgec.backends.onnxruntime' not in sys.modules\n"
        "assert 'edgec.backends.openvino' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# ---------------------------------------------------------------- declared as data


def test_options_are_declared_with_todays_defaults():
    declared = {o.name: (o.type, o.default) for o in BACKEND.options}
    assert declared == {
        "workspace_mb": (int, 1024),
        "build_on_device": (bool, False),
        "timing_cache": (str, None),
        "smooth": (list, None),  # the task's: edgec.backends.smooth.DEFAULT_ROLES
        "keep_float": (list, []),
        "calibration": (str, "minmax"),
        "search_margin": (float, 0.5),
        "search_trials": (int, 80),
        "search_seconds": (float, 1800.0),
        "quantize_ops": (list, ["MatMul", "Gemm"]),
    }
    assert all(o.help and "\n" not in o.help for o in BACKEND.options)
    assert all(o.type in TYPES for o in BACKEND.options)  # parse and describe can name it


def test_int8_and_its_search_are_the_precisions_that_need_calibration():
    assert BACKEND.calibrated == ("int8",) and BACKEND.searched == ("int8",)
    assert BACKEND.needs_calibration("int8") and BACKEND.needs_calibration("int8-auto")
    assert not BACKEND.needs_calibration("fp16") and not BACKEND.needs_calibration("fp32")


@pytest.mark.parametrize(
    "name,raw,value",
    [
        ("workspace_mb", "512", 512),
        ("build_on_device", "true", True),
        ("timing_cache", "/cache/a100.cache", "/cache/a100.cache"),
        ("timing_cache", None, None),  # unset: no seed
        ("quantize_ops", '["MatMul"]', ["MatMul"]),
    ],
)
def test_options_parse_their_own_type(name, raw, value):
    option = next(o for o in BACKEND.options if o.name == name)
    assert option.parse(raw, BACKEND.name) == value


@pytest.mark.parametrize(
    "name,raw",
    [
        ("workspace_mb", "lots"),
        ("workspace_mb", "1.5"),
        ("build_on_device", "1"),
        ("timing_cache", 3),
    ],
)
def test_a_value_of_the_wrong_type_is_bad_input_naming_the_option(name, raw):
    option = next(o for o in BACKEND.options if o.name == name)
    expected = rf"tensorrt option {name}=.*give {re.escape(TYPES[option.type])}"
    with pytest.raises(BadInput, match=expected):
        option.parse(raw, BACKEND.name)


# ---------------------------------------------------------------- compile()


def test_fp16_on_tensorrt_10_pins_layernorm_and_softmax(standin, tiny, tmp_path):
    trt = standin
    compiled = BACKEND.compile(
        tiny["onnx"], "fp16", tiny["calibration"], settings_of("nvidia-gpu"), tmp_path
    )

    assert trt.calls.network_flags == [0]  # weakly typed: precision flags apply
    (config,) = trt.calls.configs
    assert trt.BuilderFlag.FP16 in config.flags
    assert trt.BuilderFlag.OBEY_PRECISION_CONSTRAINTS in config.flags
    assert config.pool_limits == {trt.MemoryPoolType.WORKSPACE: 2048 << 20}
    assert not trt.calls.calibrators

    network = trt.calls.built[0]["network"]

    def of_type(kind):
        return [layer for layer in network.layers if layer.type == kind]

    norms, softmaxes = of_type(trt.LayerType.NORMALIZATION), of_type(trt.LayerType.SOFTMAX)
    ops = onnx_ops(trt.calls.parsed_files[0]["model"])
    assert len(norms) == ops.count("LayerNormalization") == 5  # embeddings + 2 per layer
    assert len(softmaxes) == ops.count("Softmax") == 2
    for layer in norms + softmaxes:
        assert layer.precision == trt.float32
        assert layer.output_types == {0: trt.float32}
    matmuls = of_type(trt.LayerType.MATRIX_MULTIPLY)
    assert matmuls and all(m.precision is None for m in matmuls)  # free to run in fp16
    pinned = sorted(layer.name for layer in norms + softmaxes)
    assert sorted(compiled.metadata["fp32_layers"]) == pinned
    assert compiled.metadata["builder_flags"] == ["FP16", "OBEY_PRECISION_CONSTRAINTS"]


def test_profiles_come_from_the_target_shapes(standin, tiny, tmp_path):
    compiled = BACKEND.compile(tiny["onnx"], "fp32", None, settings_of("nvidia-gpu"), tmp_path)
    (profile,) = standin.calls.profiles
    expected = ((1, 1), (8, 128), (64, 512))  # nvidia-gpu: batch [1, 8, 64], sequence [1, 128, 512]
    assert profile.shapes == {
        n: expected for n in ("input_ids", "attention_mask", "token_type_ids")
    }
    assert standin.calls.configs[0].profiles == [profile]
    assert compiled.metadata["profile"]["input_ids"] == {
        "min": [1, 1],
        "opt": [8, 128],
        "max": [64, 512],
    }


def test_sequence_profile_stops_at_the_model_max_length(standin, tiny, tmp_path):
    settings = settings_of("nvidia-gpu", model=ModelFacts(max_length=128))
    compiled = BACKEND.compile(tiny["onnx"], "fp32", None, settings, tmp_path)
    assert compiled.metadata["recipe"]["shapes"]["sequence"] == [1, 128, 128]
    assert standin.calls.profiles[0].shapes["input_ids"][2] == (64, 128)


def test_fp32_turns_tf32_off(standin, tiny, tmp_path):
    BACKEND.compile(tiny["onnx"], "fp32", None, settings_of("nvidia-gpu"), tmp_path)
    (config,) = standin.calls.configs
    assert standin.BuilderFlag.TF32 not in config.flags
    assert standin.BuilderFlag.FP16 not in config.flags


def test_engine_timing_cache_and_metadata_are_written(standin, tiny, tmp_path):
    compiled = BACKEND.compile(tiny["onnx"], "fp16", None, settings_of("nvidia-gpu"), tmp_path)
    assert compiled.files == ["model.engine", "timing.cache", "trt_recipe.json"]
    assert (tmp_path / "model.engine").read_bytes() == standin.calls.built[0]["engine"]
    assert (tmp_path / "timing.cache").read_bytes() == b"STANDIN-TIMING-CACHE:"  # new, then saved
    meta = compiled.metadata
    assert meta["tensorrt_version"] == "10.9.0.34"
    assert meta["gpu"] == {"name": H100["name"], "compute_capability": "9.0"}
    assert meta["cuda_version"] == "12.8" and meta["recipe"]["precision"] == "fp16"
    assert meta["network"] == "weakly-typed" and meta["build_on_device"] is False
    json.dumps(meta)


def test_an_earlier_timing_cache_seeds_the_build(standin, tiny, tmp_path):
    seed = tmp_path / "seed.cache"
    seed.write_bytes(b"EARLIER")
    out = tmp_path / "out"
    out.mkdir()
    BACKEND.compile(
        tiny["onnx"], "fp32", None, settings_of("nvidia-gpu", timing_cache=str(seed)), out
    )
    assert standin.calls.configs[0].timing_cache.loaded_from == b"EARLIER"
    assert (out / "timing.cache").read_bytes() == b"STANDIN-TIMING-CACHE:EARLIER"


def test_int8_parses_a_symmetric_qdq_graph_without_a_calibrator(standin, tiny, tmp_path):
    from onnx import numpy_helper

    settings = settings_of("nvidia-gpu", model=tiny["facts"])
    compiled = BACKEND.compile(tiny["onnx"], "int8", tiny["calibration"], settings, tmp_path)
    (parsed,) = standin.calls.parsed_files
    model = parsed["model"]
    quantize = [n for n in model.graph.node if n.op_type == "QuantizeLinear"]
    assert quantize, "the graph handed to the parser has no QuantizeLinear nodes"
    initializers = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    for node in quantize:
        zero_point = initializers[node.input[2]]
        assert zero_point.dtype == np.int8 and not zero_point.any()
    assert standin.calls.network_flags == [
        1 << int(standin.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    ]
    (config,) = standin.calls.configs
    assert (
        standin.BuilderFlag.INT8 not in config.flags
        and standin.BuilderFlag.FP16 not in config.flags
    )
    assert not standin.calls.calibrators and not hasattr(config, "int8_calibrator")
    assert compiled.metadata["quantization"]["activations"] == "int8-symmetric"
    smoothing = compiled.metadata["quantization"]["smoothing"]  # measured as TensorRT runs
    assert smoothing["measured_for"] == "static int8-symmetric activations"
    assert compiled.metadata["network"] == "strongly-typed"
    # Every group is int8 unless kept float (int8-auto's search, or -O keep_float).
    assert compiled.metadata["quantization"]["kept_float"]["nodes"] == 0
    (tmp_path / "kept").mkdir()
    kept = BACKEND.compile(
        tiny["onnx"], "int8", tiny["calibration"],
        settings.with_options(keep_float=["ffn-down"]), tmp_path / "kept",
    )  # fmt: skip
    assert kept.metadata["quantization"]["kept_float"]["nodes"] == 2  # one per layer

    # What TensorRT would build computes the same model, within int8's error.
    qdq = tmp_path / "parsed.onnx"
    onnx.save(model, str(qdq))
    probe_inputs = _probe(tiny, 32)
    assert_int8_parity(OrtRunner(qdq).run(probe_inputs), _fp32(tiny, probe_inputs))


@pytest.mark.parametrize("target", ["nvidia-gpu", "jetson-orin"])
def test_int8_without_calibration_names_the_fix(standin, tiny, tmp_path, target):
    with pytest.raises(BadInput, match="--calibration-data or --eval-data"):
        BACKEND.compile(tiny["onnx"], "int8", None, settings_of(target), tmp_path)
    assert not standin.calls.built


def test_fp16_on_tensorrt_11_parses_an_fp16_cast_graph(monkeypatch, tiny, tmp_path):
    import onnxruntime as ort

    standin = make_tensorrt_standin("11.0.0")
    monkeypatch.setitem(sys.modules, "tensorrt", standin)
    monkeypatch.setattr(probe, "cuda_device", lambda: (dict(H100), ""))
    compiled = BACKEND.compile(tiny["onnx"], "fp16", None, settings_of("nvidia-gpu"), tmp_path)

    assert standin.calls.network_flags == [
        1 << int(standin.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    ]
    assert not standin.calls.configs[0].flags - {
        standin.BuilderFlag.TF32
    }  # no precision flags exist
    model = standin.calls.parsed_files[0]["model"]
    weights = [
        i
        for i in model.graph.initializer
        if i.data_type in (onnx.TensorProto.FLOAT16, onnx.TensorProto.FLOAT)
    ]
    assert any(i.data_type == onnx.TensorProto.FLOAT16 for i in weights)
    inferred = onnx.shape_inference.infer_shapes(model)
    types = {
        v.name: v.type.tensor_type.elem_type
        for v in [*inferred.graph.value_info, *inferred.graph.input]
    }
    for node in model.graph.node:
        if node.op_type in ("LayerNormalization", "Softmax"):
            assert types[node.input[0]] == onnx.TensorProto.FLOAT, f"{node.name} is not fp32"
    assert compiled.metadata["fp16_graph"]

    # The cast graph is what TensorRT would build: it must still compute the same model.
    cast = tmp_path / "fp16.onnx"
    onnx.save(model, str(cast))
    inputs = {k: v for k, v in _probe(tiny).items()}
    fp32 = ort.InferenceSession(str(tiny["onnx"])).run(None, inputs)[0]
    fp16 = ort.InferenceSession(str(cast)).run(None, inputs)[0]
    assert np.abs(fp16 - fp32).max() <= 1e-3 + 1e-2 * np.abs(fp32).max()


def _probe(tiny, n: int = 4) -> dict:
    from edgec.export import reference_inputs

    return reference_inputs(tiny["source"], random_sentences(n, seed=7))


def _fp32(tiny, inputs: dict) -> np.ndarray:
    from edgec.export import torch_outputs

    return torch_outputs(tiny["source"], inputs)


def test_parser_errors_are_listed(monkeypatch, tiny, tmp_path):
    standin = make_tensorrt_standin(
        parse_errors=["In node 12 (Erf): UNSUPPORTED_NODE", "In node 40: shape mismatch"]
    )
    monkeypatch.setitem(sys.modules, "tensorrt", standin)
    monkeypatch.setattr(probe, "cuda_device", lambda: (dict(H100), ""))
    with pytest.raises(
        BackendUnavailable, match=r"cannot parse .*UNSUPPORTED_NODE; In node 40: shape mismatch"
    ):
        BACKEND.compile(tiny["onnx"], "fp32", None, settings_of("nvidia-gpu"), tmp_path)


def test_compile_without_tensorrt_says_why(monkeypatch, tiny, tmp_path):
    monkeypatch.setitem(sys.modules, "tensorrt", None)
    with pytest.raises(BackendUnavailable, match="tensorrt is not installed"):
        BACKEND.compile(tiny["onnx"], "fp16", None, settings_of("nvidia-gpu"), tmp_path)


# ---------------------------------------------------------------- build on device


def test_build_on_device_packages_graph_and_recipe_without_tensorrt(monkeypatch, tiny, tmp_path):
    monkeypatch.setitem(sys.modules, "tensorrt", None)  # the build machine has no TensorRT
    settings = settings_of("jetson-orin", model=tiny["facts"])
    compiled = BACKEND.compile(tiny["onnx"], "int8", tiny["calibration"], settings, tmp_path)
    assert compiled.files == ["model.onnx", "trt_recipe.json"]
    recipe = json.loads((tmp_path / "trt_recipe.json").read_text())
    assert recipe == {
        "recipe_version": 1,
        "precision": "int8",
        "shapes": {"batch": [1, 1, 8], "sequence": [1, 128, 256]},
        "workspace_mb": 1024,
    }
    assert "QuantizeLinear" in onnx_ops(onnx.load(str(tmp_path / "model.onnx")))
    assert compiled.metadata["build_on_device"] is True


def test_a_build_on_device_package_is_checked_with_onnx_runtime_here(monkeypatch, tiny, tmp_path):
    """No TensorRT on the build machine: verification runs the packaged int8 Q/DQ graph
    on the CPU, and it must agree with fp32."""
    monkeypatch.setitem(sys.modules, "tensorrt", None)
    settings = settings_of("jetson-orin", model=tiny["facts"])
    compiled = BACKEND.compile(tiny["onnx"], "int8", tiny["calibration"], settings, tmp_path)
    section = {"precision": "int8", "files": compiled.files, **compiled.metadata}
    checker, where = BACKEND.check_runner(tmp_path, section, settings)
    assert isinstance(checker, OrtRunner)
    assert "ONNX Runtime on the CPU" in where and "int8 Q/DQ graph" in where
    probe_inputs = _probe(tiny, 32)
    assert_int8_parity(checker.run(probe_inputs), _fp32(tiny, probe_inputs))
    assert BACKEND.compile_problem("cuda", settings) is None  # no TensorRT needed to build it


def test_build_on_device_builds_once_then_uses_the_cache(standin, tiny, tmp_path, monkeypatch):
    monkeypatch.setenv("EDGEC_CACHE", str(tmp_path / "cache"))
    package = tmp_path / "package"
    package.mkdir()
    BACKEND.compile(tiny["onnx"], "fp16", None, settings_of("jetson-orin"), package)
    first = engine.engine_on_device(package, dict(H100))
    second = engine.engine_on_device(package, dict(H100))
    assert first == second and first.parent == tmp_path / "cache" / "engines"
    assert len(standin.calls.built) == 1
    assert first.read_bytes() == standin.calls.built[0]["engine"]
    other_gpu = engine.engine_on_device(package, dict(A100))
    assert other_gpu != first and len(standin.calls.built) == 2
    assert not list((tmp_path / "cache" / "engines").glob(".building-*"))


# ---------------------------------------------------------------- load()


def _built_section(standin, tiny, tmp_path) -> dict:
    compiled = BACKEND.compile(tiny["onnx"], "fp16", None, settings_of("nvidia-gpu"), tmp_path)
    return {"name": "tensorrt", "precision": "fp16", "files": compiled.files, **compiled.metadata}


def test_load_refuses_an_engine_for_another_gpu(standin, tiny, tmp_path, monkeypatch):
    section = _built_section(standin, tiny, tmp_path)
    monkeypatch.setattr(probe, "cuda_device", lambda: (dict(A100), ""))
    with pytest.raises(BackendUnavailable) as error:
        BACKEND.load(tmp_path, section, settings_of("nvidia-gpu"))
    message = str(error.value)
    assert (
        "built for NVIDIA H100 80GB HBM3 (compute capability 9.0) with TensorRT 10.9.0.34"
        in message
    )
    assert "NVIDIA A100-SXM4-40GB (compute capability 8.0)" in message
    assert "rebuild" in message and "build_on_device" in message


def test_load_refuses_an_engine_from_another_tensorrt(standin, tiny, tmp_path, monkeypatch):
    section = _built_section(standin, tiny, tmp_path)
    monkeypatch.setitem(sys.modules, "tensorrt", make_tensorrt_standin("10.13.2.6"))
    with pytest.raises(
        BackendUnavailable, match="with TensorRT 10.9.0.34, this machine has .* TensorRT 10.13.2.6"
    ):
        BACKEND.load(tmp_path, section, settings_of("nvidia-gpu"))


def test_same_architecture_other_model_only_warns():
    other = dict(H100, name="NVIDIA H100 PCIe")
    meta = {
        "tensorrt_version": "10.9.0.34",
        "gpu": {"name": H100["name"], "compute_capability": "9.0"},
    }
    with pytest.warns(UserWarning, match="may be slower"):
        assert runner.engine_mismatch(meta, "10.9.0.34", other) is None


# ---------------------------------------------------------------- the real thing


@pytest.mark.gpu
@pytest.mark.parametrize("precision,tolerance", [("fp32", 1e-4), ("fp16", 2e-2), ("int8", None)])
def test_real_tensorrt_build_load_and_parity(tiny, tmp_path, precision, tolerance):
    reason = BACKEND.available("cuda")
    if reason:
        pytest.skip(f"needs real TensorRT and a CUDA GPU: {reason}")
    from edgec.export import torch_outputs

    facts = ModelFacts(**tiny["source"].shape_facts(), max_length=tiny["source"].max_length)
    settings = settings_of("nvidia-gpu", model=facts, workspace_mb=512)
    compiled = BACKEND.compile(tiny["onnx"], precision, tiny["calibration"], settings, tmp_path)
    section = {
        "name": "tensorrt",
        "precision": precision,
        "files": compiled.files,
        **compiled.metadata,
    }
    engine = BACKEND.load(tmp_path, section, settings)
    for inputs in (_probe(tiny), {k: v[:1, :5] for k, v in _probe(tiny).items()}):
        logits = engine.run(inputs)
        expected = torch_outputs(tiny["source"], inputs)
        assert logits.shape == expected.shape and np.isfinite(logits).all()
        if tolerance is None:  # int8: close to fp32 and the same predictions
            assert_int8_parity(logits, expected)
        else:
            assert np.abs(logits - expected).max() <= tolerance
    assert Path(tmp_path / "model.engine").stat().st_size > 0
