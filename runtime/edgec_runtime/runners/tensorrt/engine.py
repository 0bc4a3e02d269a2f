"""Making a TensorRT engine: the recipe, the parse, the profile, fp32 pins, the build,
and the cache of engines built on the device.

Everything that decides an engine besides the graph and the machine is the recipe, a
small JSON file shipped in the package: a Jetson rebuilds exactly this engine from it.

tensorrt is imported inside the functions that use it. Their TensorRT parameters are
annotated with tensorrt's own types so that mypy checks every call against
tensorrt-stubs (TensorRT 10's API), on machines where TensorRT cannot be installed.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from edgec_runtime.errors import BackendUnavailable
from edgec_runtime.iospec import BATCH, SEQUENCE

if TYPE_CHECKING:
    import tensorrt

ENGINE_FILE = "model.engine"
TIMING_CACHE_FILE = "timing.cache"
ONNX_FILE = "model.onnx"
RECIPE_FILE = "trt_recipe.json"
RECIPE_VERSION = 1
FP32_LAYER_TYPES = ("NORMALIZATION", "SOFTMAX")
FP32_LAYER_NAMES = re.compile(r"layer_?norm|softmax", re.IGNORECASE)  # decomposed LayerNorm, too


class TensorRTBuildError(BackendUnavailable):
    """TensorRT could not parse or build this model on this machine."""


FP32_ONNX_OPS = ("LayerNormalization", "Softmax", "ReduceMean", "Pow", "Sqrt")


def fp16_graph(src: Path, dst: Path) -> None:
    """Cast the graph to fp16 for strongly typed builds, LayerNorm/Softmax kept in fp32:
    TensorRT 11 has no precision flags, so the graph itself must say fp16."""
    import onnx
    from onnxruntime.transformers.float16 import DEFAULT_OP_BLOCK_LIST, convert_float_to_float16

    model = onnx.load(str(src))
    blocked = [*DEFAULT_OP_BLOCK_LIST, *FP32_ONNX_OPS]
    onnx.save(convert_float_to_float16(model, keep_io_types=True, op_block_list=blocked), str(dst))


def weak_typing_available() -> bool:
    """TensorRT 10 still has precision flags; 11 builds every network strongly typed."""
    import tensorrt as trt

    return hasattr(trt.BuilderFlag, "FP16")


def parse_onnx(
    network: tensorrt.INetworkDefinition, logger: tensorrt.ILogger, path: Path
) -> tensorrt.OnnxParser:
    import tensorrt as trt

    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise TensorRTBuildError(
            f"TensorRT {trt.__version__} cannot parse the ONNX graph: {errors or 'no details'}. "
            "Try another precision or TensorRT version, or report it with --verbose output"
        )
    return parser


def add_profile(
    builder: tensorrt.Builder,
    network: tensorrt.INetworkDefinition,
    config: tensorrt.IBuilderConfig,
    shapes: dict,
) -> dict:
    """One optimization profile: every (batch, sequence) input gets the target's ranges."""
    import tensorrt as trt

    profile = builder.create_optimization_profile()
    ranges = [[shapes[axis][k] for axis in (BATCH, SEQUENCE)] for k in range(3)]
    recorded = {}
    for i in range(network.num_inputs):
        name = network.get_input(i).name
        profile.set_shape(name, trt.Dims(ranges[0]), trt.Dims(ranges[1]), trt.Dims(ranges[2]))
        recorded[name] = dict(zip(("min", "opt", "max"), (list(r) for r in ranges), strict=True))
    config.add_optimization_profile(profile)
    return recorded


def pin_fp32_layers(network: tensorrt.INetworkDefinition) -> list[str]:
    """Keep LayerNorm and Softmax in fp32 inside an otherwise fp16 engine."""
    import tensorrt as trt

    floating = {trt.float32, trt.float16}
    pinned = []
    for i in range(network.num_layers):
        layer = network.get_layer(i)
        by_type = any(getattr(trt.LayerType, t, None) == layer.type for t in FP32_LAYER_TYPES)
        if not (by_type or FP32_LAYER_NAMES.search(layer.name or "")):
            continue
        outputs = [layer.get_output(j) for j in range(layer.num_outputs)]
        if not outputs or any(o.dtype not in floating for o in outputs):
            continue  # shape arithmetic inside a LayerNorm pattern is not float math
        layer.precision = trt.float32
        for j in range(layer.num_outputs):
            layer.set_output_type(j, trt.float32)
        pinned.append(layer.name)
    return pinned


def use_timing_cache(config: tensorrt.IBuilderConfig, timing_cache: Path) -> str:
    """Seed the build with an earlier timing cache; one from another GPU or TensorRT
    version is refused by TensorRT, and the build times its layers afresh."""
    blob = timing_cache.read_bytes() if timing_cache.is_file() else b""
    if config.set_timing_cache(config.create_timing_cache(blob), False):
        return "reused" if blob else "new"
    config.set_timing_cache(config.create_timing_cache(b""), False)
    return "new (the earlier cache was for another GPU or TensorRT version)"


def build_engine(onnx_path: Path, recipe: dict, engine_path: Path, timing_cache: Path) -> dict:
    """Parse, configure and build; write the engine and the timing cache; return facts."""
    import tensorrt as trt

    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    precision = recipe["precision"]
    strongly_typed = precision == "int8" or not weak_typing_available()
    flags = 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED) if strongly_typed else 0
    network = builder.create_network(flags)
    facts: dict = {
        "network": "strongly-typed" if strongly_typed else "weakly-typed",
        "builder_flags": [],
    }
    with tempfile.TemporaryDirectory(prefix="edgec-trt-") as tmp:
        graph = Path(onnx_path)
        if precision == "fp16" and strongly_typed:
            graph = Path(tmp) / "fp16.onnx"
            fp16_graph(Path(onnx_path), graph)
            facts["fp16_graph"] = "onnx cast to fp16; LayerNorm/Softmax kept fp32"
        parse_onnx(network, logger, graph)
        config = builder.create_builder_config()
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, recipe["workspace_mb"] << 20)
        facts["profile"] = add_profile(builder, network, config, recipe["shapes"])
        if precision == "fp32" and hasattr(trt.BuilderFlag, "TF32"):
            config.clear_flag(trt.BuilderFlag.TF32)
        if precision == "fp16" and not strongly_typed:
            config.set_flag(trt.BuilderFlag.FP16)
            config.set_flag(trt.BuilderFlag.OBEY_PRECISION_CONSTRAINTS)
            facts["builder_flags"] = ["FP16", "OBEY_PRECISION_CONSTRAINTS"]
            facts["fp32_layers"] = pin_fp32_layers(network)
        facts["timing_cache"] = use_timing_cache(config, timing_cache)
        serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise TensorRTBuildError(
            f"TensorRT {trt.__version__} failed to build the engine (its log above says why): "
            "try a larger workspace_mb in the target, another precision, or report it with --verbose"
        )
    with open(engine_path, "wb") as f:
        f.write(serialized)
    with open(timing_cache, "wb") as f:
        f.write(config.get_timing_cache().serialize())
    return facts


def engine_cache_dir() -> Path:
    from edgec_runtime.paths import cache_root

    return cache_root() / "engines"


def engine_on_device(package_dir: Path, gpu: dict) -> Path:
    """Build the packaged graph for this GPU once; later loads reuse the cached engine."""
    import tensorrt as trt

    onnx_bytes = (package_dir / ONNX_FILE).read_bytes()
    recipe_bytes = (package_dir / RECIPE_FILE).read_bytes()
    machine = f"{gpu['name']}|{gpu['compute_capability']}|{trt.__version__}".encode()
    key = hashlib.sha256(onnx_bytes + b"\0" + recipe_bytes + b"\0" + machine).hexdigest()
    cache_dir = engine_cache_dir()
    engine = cache_dir / f"{key}.engine"
    if engine.is_file():
        return engine
    cache_dir.mkdir(parents=True, exist_ok=True)
    timing = cache_dir / f"timing-trt{trt.__version__}-sm{gpu['compute_capability']}.cache"
    with tempfile.TemporaryDirectory(prefix=".building-", dir=cache_dir) as tmp:
        partial = Path(tmp) / ENGINE_FILE
        build_engine(package_dir / ONNX_FILE, json.loads(recipe_bytes), partial, timing)
        os.replace(partial, engine)  # atomic: a crashed build never leaves a bad cache entry
    return engine
