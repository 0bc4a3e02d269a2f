"""TensorRT backend: a serialized engine for one NVIDIA GPU, TensorRT 10.x or 11.x.

An engine is tied to the GPU's compute capability and the exact TensorRT version it
was built with, so both are recorded and checked before an engine is loaded. Where
the build machine is not the device (Jetson), `build_on_device` packages the ONNX
graph and a build recipe instead, and the engine is built on first load and cached.

How each precision is built, and why:

- fp32: the parsed graph as is, with TF32 turned off (TensorRT enables it by
  default on Ampere and later, which would break fp32 parity).
- fp16 on TensorRT 10: a weakly typed network with BuilderFlag.FP16, so the builder
  picks fp16 kernels where they are faster without rewriting the ONNX file, while
  LayerNorm and Softmax layers are pinned to fp32 (their reductions overflow or lose
  too much in fp16) and OBEY_PRECISION_CONSTRAINTS makes the pin binding.
- fp16 on TensorRT 11: weak typing is gone, so the ONNX graph itself is cast to fp16
  with the same LayerNorm/Softmax islands kept in fp32, and built strongly typed.
- int8: explicit quantization only, from a symmetric int8 Q/DQ graph (zero point 0)
  made with ONNX Runtime's static quantizer on the user's calibration texts, built
  as a strongly typed network on both 10 and 11. No IInt8Calibrator: TensorRT 11
  removed it, and explicit Q/DQ gives the same engine on every version.

tensorrt (and torch, for device buffers) are imported only inside functions.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np

from edgec.backends import Backend, Compiled
from edgec.errors import BackendUnavailable, BadInput
from edgec.plugins import hookimpl

ENGINE_FILE = "model.engine"
TIMING_CACHE_FILE = "timing.cache"
ONNX_FILE = "model.onnx"
RECIPE_FILE = "trt_recipe.json"
RECIPE_VERSION = 1
SUPPORTED_MAJORS = (10, 11)
DISTRIBUTIONS = ("tensorrt", "tensorrt-cu13", "tensorrt-cu12", "tensorrt-cu11")
DEFAULT_WORKSPACE_MB = 1024
FP32_LAYER_TYPES = ("NORMALIZATION", "SOFTMAX")
FP32_LAYER_NAMES = re.compile(r"layer_?norm|softmax", re.IGNORECASE)  # decomposed LayerNorm, too
FP32_ONNX_OPS = ("LayerNormalization", "Softmax", "ReduceMean", "Pow", "Sqrt")
NOT_INSTALLED = (
    "tensorrt is not installed: pip install 'edgec[tensorrt]' (needs NVIDIA's package index)"
)


class TensorRTBuildError(BackendUnavailable):
    """TensorRT could not parse or build this model on this machine."""


# ---------------------------------------------------------------- what is here


def installed_version() -> str | None:
    """TensorRT's version without importing it: the import takes seconds and loads CUDA
    libraries, which listing backends must not. A module already imported answers for
    itself; otherwise the distribution's metadata does."""
    module = sys.modules.get("tensorrt")
    if module is not None:
        return str(getattr(module, "__version__", "")) or None
    for distribution in DISTRIBUTIONS:
        try:
            return importlib.metadata.version(distribution)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


def tensorrt_problem(load: bool = False) -> str | None:
    """Why the tensorrt module cannot be used here, or None. `load` imports it, which
    also catches a wheel built for another CUDA; only building and loading need that."""
    if importlib.util.find_spec("tensorrt") is None:
        return NOT_INSTALLED
    version = installed_version()
    if version is None or load:
        try:
            import tensorrt as trt
        except Exception as e:  # a wheel built for another CUDA fails inside its import
            return f"tensorrt is installed but fails to import ({type(e).__name__}: {e}): reinstall it for this machine's CUDA"
        version = str(trt.__version__)
    major = int(version.split(".")[0])
    if major not in SUPPORTED_MAJORS:
        return (
            f"TensorRT {version} is unsupported (need 10.x or 11.x): pip install 'tensorrt>=10,<12'"
        )
    return None


def cuda_device() -> tuple[dict | None, str]:
    """GPU 0 as the CUDA driver reports it, via ctypes: no torch, no cuda-python.

    Returns (facts, "") or (None, why there is no usable device).
    """
    import ctypes

    for name in ("libcuda.so.1", "libcuda.so", "nvcuda.dll"):
        try:
            lib = ctypes.CDLL(name)
            break
        except OSError:
            continue
    else:
        return None, "no NVIDIA driver: libcuda.so.1 is not on this machine"
    if (rc := lib.cuInit(0)) != 0:
        return None, f"the NVIDIA driver failed to initialise (CUDA error {rc})"
    count, device, major, minor, version = (ctypes.c_int() for _ in range(5))
    lib.cuDeviceGetCount(ctypes.byref(count))
    if count.value == 0:
        return None, "the NVIDIA driver sees no GPU (check CUDA_VISIBLE_DEVICES)"
    lib.cuDeviceGet(ctypes.byref(device), 0)
    raw_name = ctypes.create_string_buffer(256)
    lib.cuDeviceGetName(raw_name, 256, device)
    lib.cuDeviceGetAttribute(ctypes.byref(major), 75, device)  # COMPUTE_CAPABILITY_MAJOR
    lib.cuDeviceGetAttribute(ctypes.byref(minor), 76, device)  # COMPUTE_CAPABILITY_MINOR
    lib.cuDriverGetVersion(ctypes.byref(version))
    return {
        "name": raw_name.value.decode(errors="replace"),
        "compute_capability": f"{major.value}.{minor.value}",
        "cuda_version": f"{version.value // 1000}.{version.value % 1000 // 10}",
        "device_count": count.value,
    }, ""


def require_tensorrt_and_gpu():
    """(tensorrt module, GPU facts), or BackendUnavailable saying what is missing."""
    problem = tensorrt_problem(load=True)
    if problem:
        raise BackendUnavailable(problem)
    gpu, why = cuda_device()
    if gpu is None:
        raise BackendUnavailable(f"no CUDA device found ({why})")
    import tensorrt as trt

    return trt, gpu


# ---------------------------------------------------------------- graphs


def fp16_graph(src: Path, dst: Path) -> None:
    """Cast the graph to fp16 for strongly typed builds, LayerNorm/Softmax kept in fp32."""
    import onnx
    from onnxruntime.transformers.float16 import DEFAULT_OP_BLOCK_LIST, convert_float_to_float16

    model = onnx.load(str(src))
    blocked = [*DEFAULT_OP_BLOCK_LIST, *FP32_ONNX_OPS]
    onnx.save(convert_float_to_float16(model, keep_io_types=True, op_block_list=blocked), str(dst))


def qdq_graph(src: Path, dst: Path, calibration, options: dict | None = None) -> dict:
    """Symmetric int8 Q/DQ graph (zero point 0), the form TensorRT quantizes from."""
    from edgec.backends.onnxruntime import quantize_static_qdq

    if not calibration:
        raise BadInput(
            "TensorRT int8 needs calibration texts: pass --eval-data or --calibration-data"
        )
    return quantize_static_qdq(
        Path(src), Path(dst), calibration, {**(options or {}), "symmetric": True}
    )


def weak_typing_available(trt) -> bool:
    """TensorRT 10 still has precision flags; 11 builds every network strongly typed."""
    return hasattr(trt.BuilderFlag, "FP16")


# ---------------------------------------------------------------- building


def make_recipe(precision: str, options: dict) -> dict:
    """Everything that decides the engine besides the graph and the machine.

    A sequence range past the model's max_length (when options carry it) is clamped:
    position embeddings end there, and such a profile would fail to build.
    """
    shapes = dict(options.get("shapes") or {"batch": [1, 1, 32], "sequence": [1, 128, 512]})
    if options.get("max_length"):
        limit = int(options["max_length"])
        shapes["sequence"] = [min(int(v), limit) for v in shapes["sequence"]]
    for axis in ("batch", "sequence"):
        lo, opt, hi = (int(v) for v in shapes[axis])
        if not 1 <= lo <= opt <= hi:
            raise BadInput(
                f"target shapes: {axis} must be [min, opt, max] with 1 <= min <= opt <= max, got {shapes[axis]}"
            )
    return {
        "recipe_version": RECIPE_VERSION,
        "precision": precision,
        "shapes": {axis: [int(v) for v in shapes[axis]] for axis in ("batch", "sequence")},
        "workspace_mb": int(options.get("workspace_mb", DEFAULT_WORKSPACE_MB)),
    }


def parse_onnx(trt, network, logger, path: Path):
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise TensorRTBuildError(
            f"TensorRT {trt.__version__} cannot parse the ONNX graph: {errors or 'no details'}. "
            "Try another precision or TensorRT version, or report it with --verbose output"
        )
    return parser


def add_profile(trt, builder, network, config, shapes: dict) -> dict:
    """One optimization profile: every (batch, sequence) input gets the target's ranges."""
    profile = builder.create_optimization_profile()
    recorded = {}
    for i in range(network.num_inputs):
        tensor = network.get_input(i)
        ranges = [tuple(shapes[axis][k] for axis in ("batch", "sequence")) for k in range(3)]
        profile.set_shape(tensor.name, *ranges)
        recorded[tensor.name] = dict(
            zip(("min", "opt", "max"), (list(r) for r in ranges), strict=True)
        )
    config.add_optimization_profile(profile)
    return recorded


def pin_fp32_layers(trt, network) -> list[str]:
    """Keep LayerNorm and Softmax in fp32 inside an otherwise fp16 engine."""
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


def build_engine(trt, onnx_path: Path, recipe: dict, engine_path: Path, timing_cache: Path) -> dict:
    """Parse, configure and build; write the engine and the timing cache; return facts."""
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    precision = recipe["precision"]
    strongly_typed = precision == "int8" or not weak_typing_available(trt)
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
        parse_onnx(trt, network, logger, graph)
        config = builder.create_builder_config()
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, recipe["workspace_mb"] << 20)
        facts["profile"] = add_profile(trt, builder, network, config, recipe["shapes"])
        if precision == "fp32" and hasattr(trt.BuilderFlag, "TF32"):
            config.clear_flag(trt.BuilderFlag.TF32)
        if precision == "fp16" and not strongly_typed:
            config.set_flag(trt.BuilderFlag.FP16)
            config.set_flag(trt.BuilderFlag.OBEY_PRECISION_CONSTRAINTS)
            facts["builder_flags"] = ["FP16", "OBEY_PRECISION_CONSTRAINTS"]
            facts["fp32_layers"] = pin_fp32_layers(trt, network)
        cache = config.create_timing_cache(
            timing_cache.read_bytes() if timing_cache.is_file() else b""
        )
        config.set_timing_cache(cache, False)
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


# ---------------------------------------------------------------- loading


def engine_mismatch(metadata: dict, trt_version: str, gpu: dict) -> str | None:
    """Why a prebuilt engine cannot run here (TensorRT version or GPU architecture)."""
    built_gpu = metadata.get("gpu", {})
    built = (
        f"{built_gpu.get('name', '?')} (compute capability {built_gpu.get('compute_capability', '?')}) "
        f"with TensorRT {metadata.get('tensorrt_version', '?')}"
    )
    here = f"{gpu['name']} (compute capability {gpu['compute_capability']}) with TensorRT {trt_version}"
    fix = (
        f"the engine was built for {built}, this machine has {here}: rebuild the package on "
        "this machine, or build with build_on_device = true so the engine is built where it runs"
    )
    if metadata.get("tensorrt_version") != trt_version:
        return fix
    if built_gpu.get("compute_capability") != gpu["compute_capability"]:
        return fix
    if built_gpu.get("name") != gpu["name"]:
        # Same architecture runs the engine; only its tuning was for the other GPU.
        warnings.warn(f"{fix} (it will run, but may be slower)", stacklevel=3)
    return None


def engine_cache_dir() -> Path:
    from edgec.paths import cache_root

    return cache_root() / "engines"


def engine_on_device(package_dir: Path, trt, gpu: dict) -> Path:
    """Build the packaged graph for this GPU once; later loads reuse the cached engine."""
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
        build_engine(trt, package_dir / ONNX_FILE, json.loads(recipe_bytes), partial, timing)
        os.replace(partial, engine)  # atomic: a crashed build never leaves a bad cache entry
    return engine


class TensorRTRunner:
    """An engine, one execution context and device buffers that grow only when needed."""

    def __init__(self, trt, engine_bytes: bytes):
        import torch

        self.torch = torch
        self.runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
        self.engine = self.runtime.deserialize_cuda_engine(engine_bytes)
        if self.engine is None:
            raise BackendUnavailable(
                f"TensorRT {trt.__version__} could not deserialize this engine: rebuild the package on this machine"
            )
        self.context = self.engine.create_execution_context()
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        is_input = {n: self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT for n in names}
        self.input_names = [n for n in names if is_input[n]]
        self.output_names = [n for n in names if not is_input[n]]
        self.logits_name = "logits" if "logits" in self.output_names else self.output_names[0]
        self.dtypes = {n: np.dtype(trt.nptype(self.engine.get_tensor_dtype(n))) for n in names}
        self.buffers: dict = {}
        self.stream = torch.cuda.Stream()

    def _buffer(self, name: str, numel: int):
        buffer = self.buffers.get(name)
        if buffer is None or buffer.numel() < numel:
            dtype = self.torch.from_numpy(np.empty(0, self.dtypes[name])).dtype
            buffer = self.buffers[name] = self.torch.empty(
                max(numel, 1), dtype=dtype, device="cuda"
            )
        return buffer[:numel]

    def run(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        torch = self.torch
        with torch.cuda.stream(self.stream):
            for name in self.input_names:
                array = np.ascontiguousarray(inputs[name], dtype=self.dtypes[name])
                self.context.set_input_shape(name, array.shape)
                device = self._buffer(name, array.size)
                device.copy_(torch.from_numpy(array).reshape(-1))
                self.context.set_tensor_address(name, device.data_ptr())
            shapes = {}
            for name in self.output_names:
                shapes[name] = tuple(self.context.get_tensor_shape(name))
                device = self._buffer(name, int(np.prod(shapes[name])))
                self.context.set_tensor_address(name, device.data_ptr())
            if not self.context.execute_async_v3(self.stream.cuda_stream):
                raise RuntimeError("TensorRT execute_async_v3 failed (see the TensorRT log)")
        self.stream.synchronize()
        shape = shapes[self.logits_name]
        logits = self._buffer(self.logits_name, int(np.prod(shape))).view(shape)
        return logits.float().cpu().numpy()


# ---------------------------------------------------------------- the backend


class TensorRTBackend(Backend):
    def available(self, device: str | None = None) -> str | None:
        if device is not None and not self.serves(device):
            return (
                f"device {device!r} is not served by tensorrt (it serves {', '.join(self.devices)})"
            )
        problem = tensorrt_problem()
        if problem:
            return problem
        gpu, why = cuda_device()
        if gpu is None:
            return f"no CUDA device found ({why}): build for a CPU target, or on a machine with an NVIDIA GPU"
        return None

    def compile_problem(self, device: str | None, options: dict) -> str | None:
        """build_on_device packages the graph and a recipe: no TensorRT, no GPU here."""
        if options.get("build_on_device"):
            if device is not None and not self.serves(device):
                return f"device {device!r} is not served by tensorrt"
            return None
        return self.available(device)

    def check_runner(self, package_dir, compiled, options):
        """Without TensorRT here, a build_on_device package's graph is checked with ONNX
        Runtime on the CPU: int8 with its Q/DQ nodes, other precisions in fp32."""
        if compiled.get("build_on_device") and self.available(options.get("device")):
            from edgec.backends.onnxruntime import OrtRunner

            what = (
                "its int8 Q/DQ graph"
                if compiled.get("precision") == "int8"
                else "its graph in fp32 (fp16 effects are not checked)"
            )
            where = (
                f"ONNX Runtime on the CPU: the engine is built on the device at first load; "
                f"{what} was checked here"
            )
            return OrtRunner(Path(package_dir) / ONNX_FILE, options), where
        return self.load(package_dir, compiled, options), None

    def version(self) -> str | None:
        return None if tensorrt_problem() else installed_version()

    def compile(self, onnx_path, precision, calibration, options, workdir) -> Compiled:
        if precision not in self.precisions:
            raise BadInput(
                f"tensorrt has no precision {precision!r}: choose one of {', '.join(self.precisions)}"
            )
        workdir = Path(workdir)
        recipe = make_recipe(precision, options)
        if options.get("build_on_device"):
            return self._package_graph(Path(onnx_path), recipe, calibration, options, workdir)
        trt, gpu = require_tensorrt_and_gpu()
        if options.get("timing_cache") and Path(options["timing_cache"]).is_file():
            # A cache from earlier builds on this GPU skips re-timing the same layers.
            (workdir / TIMING_CACHE_FILE).write_bytes(Path(options["timing_cache"]).read_bytes())
        with tempfile.TemporaryDirectory(prefix="edgec-trt-") as tmp:
            graph, quantization = Path(onnx_path), None
            if precision == "int8":
                graph = Path(tmp) / "qdq.onnx"
                quantization = qdq_graph(Path(onnx_path), graph, calibration, options)
            facts = build_engine(
                trt, graph, recipe, workdir / ENGINE_FILE, workdir / TIMING_CACHE_FILE
            )
        (workdir / RECIPE_FILE).write_text(json.dumps(recipe, indent=2) + "\n", encoding="utf-8")
        metadata = {
            "tensorrt_version": trt.__version__,
            "gpu": {k: gpu[k] for k in ("name", "compute_capability")},
            "cuda_version": gpu["cuda_version"],
            "build_on_device": False,
            "recipe": recipe,
            "quantization": quantization,
            **facts,
        }
        return Compiled([ENGINE_FILE, TIMING_CACHE_FILE, RECIPE_FILE], metadata)

    def _package_graph(
        self, onnx_path: Path, recipe: dict, calibration, options: dict, workdir: Path
    ) -> Compiled:
        """build_on_device: ship the graph to build from; needs no TensorRT here."""
        quantization = None
        if recipe["precision"] == "int8":
            quantization = qdq_graph(onnx_path, workdir / ONNX_FILE, calibration, options)
        else:
            (workdir / ONNX_FILE).write_bytes(onnx_path.read_bytes())
        (workdir / RECIPE_FILE).write_text(json.dumps(recipe, indent=2) + "\n", encoding="utf-8")
        metadata = {"build_on_device": True, "recipe": recipe, "quantization": quantization}
        return Compiled([ONNX_FILE, RECIPE_FILE], metadata)

    def load(self, package_dir, compiled, options) -> TensorRTRunner:
        package_dir = Path(package_dir)
        trt, gpu = require_tensorrt_and_gpu()
        if compiled.get("build_on_device"):
            engine = engine_on_device(package_dir, trt, gpu)
        else:
            mismatch = engine_mismatch(compiled, trt.__version__, gpu)
            if mismatch:
                raise BackendUnavailable(mismatch)
            engine = package_dir / ENGINE_FILE
        return TensorRTRunner(trt, engine.read_bytes())


BACKEND = TensorRTBackend(
    name="tensorrt",
    precisions=("fp32", "fp16", "int8"),
    devices=("cuda",),
    requires=("tensorrt",),
    extra="tensorrt",
    description="TensorRT engine for NVIDIA GPUs (10.x/11.x): fp32, fp16, explicit Q/DQ int8; Jetson builds on device",
)


@hookimpl
def register_backends(register):
    register(BACKEND)
