"""Whether TensorRT can work here: its version, whether it imports, and the GPU.

Listing backends asks this on every machine, so nothing here imports tensorrt unless
asked to (the import takes seconds and loads CUDA libraries), and the GPU is read from
the CUDA driver through ctypes, without torch or cuda-python.

A bare `find_spec`/`import tensorrt` is not trusted: tensorrt-stubs installs a
`tensorrt/` folder holding only `__init__.pyi`, which imports as an empty namespace
package, so a machine with the type stubs would look like one with TensorRT.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import sys

from edgec_runtime.errors import BackendUnavailable

SUPPORTED_MAJORS = (10, 11)
DISTRIBUTIONS = ("tensorrt", "tensorrt-cu13", "tensorrt-cu12", "tensorrt-cu11")
NOT_INSTALLED = (
    "tensorrt is not installed: pip install 'edgec[tensorrt]' (needs NVIDIA's package index)"
)
STUBS_ONLY = (
    "tensorrt is not installed (only tensorrt-stubs is): "
    "pip install 'edgec[tensorrt]' (needs NVIDIA's package index)"
)


def installed_version() -> str | None:
    """TensorRT's version without importing it. A module already imported answers for
    itself; otherwise the distribution's metadata does (tensorrt-stubs is not one)."""
    module = sys.modules.get("tensorrt")
    if module is not None:
        return str(getattr(module, "__version__", "")) or None
    for distribution in DISTRIBUTIONS:
        try:
            return importlib.metadata.version(distribution)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


def _not_findable() -> str | None:
    """NOT_INSTALLED when there is no tensorrt module at all, STUBS_ONLY when all there is
    is a namespace package (a folder without __init__.py has no origin)."""
    try:
        spec = importlib.util.find_spec("tensorrt")
    except (ImportError, ValueError):  # ValueError: a module in sys.modules without a spec
        return NOT_INSTALLED
    if spec is None:
        return NOT_INSTALLED
    if spec.origin is None:
        return STUBS_ONLY
    return None


def tensorrt_problem(load: bool = False) -> str | None:
    """Why the tensorrt module cannot be used here, or None. `load` imports it, which
    also catches a wheel built for another CUDA; only building and loading need that."""
    problem = _not_findable()
    if problem:
        return problem
    version = installed_version()
    if version is None or load:
        try:
            import tensorrt as trt
        except Exception as e:  # a wheel built for another CUDA fails inside its import
            return f"tensorrt is installed but fails to import ({type(e).__name__}: {e}): reinstall it for this machine's CUDA"
        if getattr(trt, "Builder", None) is None:
            return STUBS_ONLY
        version = str(trt.__version__)
    try:
        major = int(version.split(".")[0])
    except ValueError:
        major = -1
    if major not in SUPPORTED_MAJORS:
        return (
            f"TensorRT {version} is unsupported (need 10.x or 11.x): pip install 'tensorrt>=10,<12'"
        )
    return None


def cuda_device() -> tuple[dict | None, str]:
    """GPU 0 as the CUDA driver reports it: (facts, "") or (None, why there is none)."""
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


def engine_problem(no_gpu_fix: str) -> str | None:
    """Why TensorRT cannot run an engine here (not installed, or no CUDA device), with
    the caller's advice for the missing GPU; None when it can. Does not import tensorrt."""
    problem = tensorrt_problem()
    if problem:
        return problem
    gpu, why = cuda_device()
    return None if gpu is not None else f"no CUDA device found ({why}): {no_gpu_fix}"


def require_tensorrt_and_gpu() -> tuple[str, dict]:
    """(TensorRT version, GPU facts) for building or loading, or BackendUnavailable
    saying what is missing. Imports tensorrt."""
    problem = tensorrt_problem(load=True)
    if problem:
        raise BackendUnavailable(problem)
    gpu, why = cuda_device()
    if gpu is None:
        raise BackendUnavailable(f"no CUDA device found ({why})")
    import tensorrt as trt

    return str(trt.__version__), gpu
