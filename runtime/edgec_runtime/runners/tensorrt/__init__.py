"""The runner of `tensorrt` packages: a prebuilt engine checked against this GPU and
TensorRT version, or, for a build_on_device package (Jetson), the engine built here
from the shipped graph and recipe at first load and cached.

probe (is TensorRT really installed, which GPU), engine (building engines) and runner
(running one) import tensorrt only inside their functions.
"""

from __future__ import annotations

from pathlib import Path

from edgec_runtime.errors import BackendUnavailable
from edgec_runtime.runners import RunnerPlugin, hookimpl


def device_problem(device: str) -> str | None:
    from edgec_runtime.runners.tensorrt import probe

    if device.lower() != "cuda":
        return f"device {device!r} is not served by tensorrt (it serves cuda)"
    return probe.engine_problem("run this package on a machine with an NVIDIA GPU")


def load(package_dir: Path, compiled: dict, settings):
    from edgec_runtime.runners.tensorrt import engine, probe, runner

    package_dir = Path(package_dir)
    trt_version, gpu = probe.require_tensorrt_and_gpu()
    if compiled.get("build_on_device"):
        path = engine.engine_on_device(package_dir, gpu)
    else:
        mismatch = runner.engine_mismatch(compiled, trt_version, gpu)
        if mismatch:
            raise BackendUnavailable(mismatch)
        path = package_dir / engine.ENGINE_FILE
    return runner.TensorRTRunner(path.read_bytes())


# tensorrt is found by probe (a bare find_spec is fooled by tensorrt-stubs), not `requires`.
RUNNER = RunnerPlugin(name="tensorrt", load=load, extra="tensorrt", device_problem=device_problem)


@hookimpl
def register_runners(register):
    register(RUNNER)
