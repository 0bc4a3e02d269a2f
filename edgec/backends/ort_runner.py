"""ONNX Runtime sessions the way edgec runs a graph on the CPU.

Not a backend. The ONNX Runtime backend loads its packages with it, the export checks
its graph against PyTorch with it, and TensorRT checks a build_on_device graph with it
on a machine without a GPU; living here, none of them imports another backend.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgec.machine import cores


def _threads(threads: int) -> int:
    """Intra-op threads; 0 means every core the process may use (its affinity mask,
    which on a shared or containerised machine is fewer than os.cpu_count()). More
    than that (a target profile written for a bigger device) is cut to it: extra
    threads only fight over the same cores."""
    threads = int(threads or 0)
    return min(threads, cores()) if threads > 0 else cores()


def session(path: Path, *, threads: int = 0, allow_spinning: bool = False):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = _threads(threads)
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.log_severity_level = 3
    # Spinning workers hold their core between ops waiting for the next one; on a busy
    # or shared CPU they steal the time slices the calling thread needs. Measured 2-3x
    # slower under load (benchmarks/NOTES.md); -O allow_spinning=true turns it back on.
    so.add_session_config_entry("session.intra_op.allow_spinning", "1" if allow_spinning else "0")
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


class OrtRunner:
    """Runs a graph; feeds only the inputs the graph declares, as int64, and returns its
    one output (a task's logits or sentence embedding: edgec.iospec)."""

    def __init__(self, path: Path, *, threads: int = 0, allow_spinning: bool = False):
        self.session = session(path, threads=threads, allow_spinning=allow_spinning)
        self.input_names = [i.name for i in self.session.get_inputs()]

    def run(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        feed = {
            name: np.ascontiguousarray(inputs[name], dtype=np.int64) for name in self.input_names
        }
        return self.session.run(None, feed)[0]
