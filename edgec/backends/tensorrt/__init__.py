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
  made by edgec.backends.qdq on the user's calibration texts, built as a strongly
  typed network on both 10 and 11. No IInt8Calibrator: TensorRT 11 removed it, and
  explicit Q/DQ gives the same engine on every version.

This module is what listing backends imports, so it holds only the description, the
options and the backend's methods; the work is in submodules: probe (what is
installed, which GPU), graphs (ONNX rewrites), build (making engines) and runner
(running them). None imports tensorrt, torch or onnxruntime at module level.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from pathlib import Path

from edgec.backends import Backend, Compiled, Runner
from edgec.backends.qdq import DEFAULT_OP_TYPES
from edgec.backends.settings import SEARCH_OPTIONS, SMOOTH_OPTION, Option
from edgec.backends.tensorrt import build
from edgec.plugins import hookimpl
from edgec_runtime.errors import BadInput
from edgec_runtime.runners.tensorrt import engine, probe
from edgec_runtime.settings import BackendSettings


class TensorRTBackend(Backend):
    def available(self, device: str | None = None) -> str | None:
        if device is not None and not self.serves(device):
            return (
                f"device {device!r} is not served by tensorrt (it serves {', '.join(self.devices)})"
            )
        return probe.engine_problem("build for a CPU target, or on a machine with an NVIDIA GPU")

    def compile_problem(self, device: str | None, settings: BackendSettings) -> str | None:
        """build_on_device packages the graph and a recipe: no TensorRT, no GPU here."""
        if settings.options["build_on_device"]:
            if device is not None and not self.serves(device):
                return f"device {device!r} is not served by tensorrt"
            return None
        return self.available(device)

    def check_runner(
        self, package_dir: Path, compiled: dict, settings: BackendSettings
    ) -> tuple[Runner, str | None]:
        """Without TensorRT here, a build_on_device package's graph is checked with ONNX
        Runtime on the CPU: int8 with its Q/DQ nodes, other precisions in fp32."""
        if compiled.get("build_on_device") and self.available(settings.device.device):
            from edgec_runtime.runners.onnxruntime import OrtRunner

            what = (
                "its int8 Q/DQ graph"
                if compiled.get("precision") == "int8"
                else "its graph in fp32 (fp16 effects are not checked)"
            )
            where = (
                f"ONNX Runtime on the CPU: the engine is built on the device at first load; "
                f"{what} was checked here"
            )
            runner = OrtRunner(
                Path(package_dir) / engine.ONNX_FILE, threads=settings.device.threads
            )
            return runner, where
        return self.load(package_dir, compiled, settings), None

    def version(self) -> str | None:
        return None if probe.tensorrt_problem() else probe.installed_version()

    def compile(
        self,
        onnx_path: Path,
        precision: str,
        calibration: list[dict] | None,
        settings: BackendSettings,
        workdir: Path,
    ) -> Compiled:
        from edgec.backends.tensorrt.graphs import qdq_graph

        if precision not in self.precisions:
            raise BadInput(
                f"tensorrt has no precision {precision!r}: choose one of {', '.join(self.precisions)}"
            )
        src, workdir = Path(onnx_path), Path(workdir)
        recipe = build.make_recipe(precision, settings)
        recipe_text = json.dumps(recipe, indent=2) + "\n"
        if settings.options["build_on_device"]:
            # Ship the graph to build from; needs no TensorRT here.
            quantization = None
            if precision == "int8":
                quantization = qdq_graph(src, workdir / engine.ONNX_FILE, calibration, settings)
            else:
                (workdir / engine.ONNX_FILE).write_bytes(src.read_bytes())
            (workdir / engine.RECIPE_FILE).write_text(recipe_text, encoding="utf-8")
            metadata = {"build_on_device": True, "recipe": recipe, "quantization": quantization}
            return Compiled([engine.ONNX_FILE, engine.RECIPE_FILE], metadata)

        trt_version, gpu = probe.require_tensorrt_and_gpu()
        seed = settings.options["timing_cache"]
        if seed and Path(seed).is_file():
            # A cache from earlier builds on this GPU skips re-timing the same layers.
            (workdir / engine.TIMING_CACHE_FILE).write_bytes(Path(seed).read_bytes())
        with tempfile.TemporaryDirectory(prefix="edgec-trt-") as tmp:
            graph, quantization = src, None
            if precision == "int8":
                graph = Path(tmp) / "qdq.onnx"
                quantization = qdq_graph(src, graph, calibration, settings)
            facts = engine.build_engine(
                graph, recipe, workdir / engine.ENGINE_FILE, workdir / engine.TIMING_CACHE_FILE
            )
        (workdir / engine.RECIPE_FILE).write_text(recipe_text, encoding="utf-8")
        metadata = {
            "tensorrt_version": trt_version,
            "gpu": {k: gpu[k] for k in ("name", "compute_capability")},
            "cuda_version": gpu["cuda_version"],
            "build_on_device": False,
            "recipe": recipe,
            "quantization": quantization,
            **facts,
        }
        return Compiled(
            [engine.ENGINE_FILE, engine.TIMING_CACHE_FILE, engine.RECIPE_FILE], metadata
        )


BACKEND = TensorRTBackend(
    name="tensorrt",
    precisions=("fp32", "fp16", "int8", "int8-auto"),
    devices=("cuda",),
    requires=("tensorrt",),
    extra="tensorrt",
    description="TensorRT engine for NVIDIA GPUs (10.x/11.x): fp32, fp16, explicit Q/DQ int8; Jetson builds on device",
    options=(
        Option(
            "workspace_mb",
            int,
            build.DEFAULT_WORKSPACE_MB,
            "builder scratch memory in MiB (larger can be faster)",
            minimum=1,
        ),
        Option(
            "build_on_device",
            bool,
            False,
            "package the graph and a recipe; the device builds its engine at first load (Jetson)",
        ),
        Option(
            "timing_cache",
            str,
            None,
            "path to a timing cache from earlier builds on this GPU, to skip re-timing layers",
        ),
        SMOOTH_OPTION,
        *SEARCH_OPTIONS,
        Option(
            "quantize_ops",
            list,
            list(DEFAULT_OP_TYPES),
            "int8: the ONNX operator types to quantize",
        ),
    ),
    calibrated=("int8",),
    searched=("int8",),
)


@hookimpl
def register_backends(register: Callable[[Backend], None]) -> None:
    register(BACKEND)
