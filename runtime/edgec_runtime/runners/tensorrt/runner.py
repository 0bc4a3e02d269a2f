"""Running a TensorRT engine, and whether a prebuilt one can run on this machine.

Device buffers come from torch's CUDA allocator (torch is already a dependency, and it
saves a second CUDA binding); tensorrt and torch are imported when a runner is made.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

import numpy as np

from edgec_runtime.errors import BackendUnavailable

if TYPE_CHECKING:
    import tensorrt
    import torch


def engine_mismatch(metadata: dict, trt_version: str, gpu: dict) -> str | None:
    """Why a prebuilt engine cannot run here: it is tied to the exact TensorRT version and
    the GPU's compute capability it was built with. Another GPU of the same architecture
    runs it, only warned that the tuning was for the other one."""
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
        warnings.warn(f"{fix} (it will run, but may be slower)", stacklevel=3)
    return None


def dims(shape: tensorrt.Dims) -> tuple[int, ...]:
    """Dims iterates at run time, but its stubs declare only len() and indexing."""
    return tuple(shape[i] for i in range(len(shape)))


class TensorRTRunner:
    """An engine, one execution context and device buffers that grow only when needed."""

    def __init__(self, engine_bytes: bytes) -> None:
        import tensorrt as trt
        import torch

        self.torch = torch
        self.runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
        engine = self.runtime.deserialize_cuda_engine(engine_bytes)
        if engine is None:
            raise BackendUnavailable(
                f"TensorRT {trt.__version__} could not deserialize this engine: rebuild the package on this machine"
            )
        self.engine: tensorrt.ICudaEngine = engine
        self.context = engine.create_execution_context()
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        is_input = {n: engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT for n in names}
        self.input_names = [n for n in names if is_input[n]]
        self.output_names = [n for n in names if not is_input[n]]
        self.logits_name = "logits" if "logits" in self.output_names else self.output_names[0]
        self.dtypes = {n: np.dtype(trt.nptype(engine.get_tensor_dtype(n))) for n in names}
        self.buffers: dict = {}
        self.stream = torch.cuda.Stream()

    def _buffer(self, name: str, numel: int) -> torch.Tensor:
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
                shapes[name] = dims(self.context.get_tensor_shape(name))
                device = self._buffer(name, int(np.prod(shapes[name])))
                self.context.set_tensor_address(name, device.data_ptr())
            if not self.context.execute_async_v3(self.stream.cuda_stream):
                raise RuntimeError("TensorRT execute_async_v3 failed (see the TensorRT log)")
        self.stream.synchronize()
        shape = shapes[self.logits_name]
        logits = self._buffer(self.logits_name, int(np.prod(shape))).view(shape)
        return logits.float().cpu().numpy()
