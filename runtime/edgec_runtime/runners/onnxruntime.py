"""ONNX Runtime sessions the way edgec runs a graph on the CPU, and the runner of
`onnxruntime` packages.

The compiler uses the same session too: its export checks the graph against PyTorch
with it, and TensorRT checks a build_on_device graph with it on a machine without a
GPU. onnxruntime is imported only when a session is made.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgec_runtime.errors import BackendUnavailable
from edgec_runtime.iospec import STRING_INPUT, strings_in
from edgec_runtime.runners import RunnerPlugin, hookimpl, package_file
from edgec_runtime.threads import intra_op_threads


def session(path, *, threads: int = 0, allow_spinning: bool = False, custom_ops: bool = False):
    """`path`: a file, or a serialized model. `custom_ops`: register onnxruntime-extensions'
    operators, which a strings-in graph's tokenizer is made of."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    if custom_ops:
        so.register_custom_ops_library(extensions_library())
    so.intra_op_num_threads = intra_op_threads(threads)
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.log_severity_level = 3
    # Spinning workers hold their core between ops waiting for the next one; on a busy
    # or shared CPU they steal the time slices the calling thread needs. Measured 2-3x
    # slower under load (benchmarks/NOTES.md); -O allow_spinning=true turns it back on.
    so.add_session_config_entry("session.intra_op.allow_spinning", "1" if allow_spinning else "0")
    model = path if isinstance(path, bytes) else str(path)
    return ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])


def extensions_library() -> str:
    """The operator library of onnxruntime-extensions, found without importing the
    package: its __init__ imports transformers and torch wherever they are installed
    (seconds and hundreds of MB, measured from a cold start)."""
    import importlib.machinery
    import importlib.util

    spec = importlib.util.find_spec("onnxruntime_extensions")
    if spec is None or not spec.submodule_search_locations:
        raise BackendUnavailable(
            "this strings-in package needs onnxruntime-extensions: "
            "pip install 'edgec-runtime[onnxruntime]'"
        )
    folder = Path(spec.submodule_search_locations[0])
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        library = folder / f"_extensions_pydll{suffix}"
        if library.is_file():
            return str(library)
    raise BackendUnavailable(f"onnxruntime-extensions in {folder} has no operator library: reinstall it")


class OrtRunner:
    """Runs a graph; feeds only the inputs the graph declares, as int64 (or, for a
    strings-in graph, the texts), and returns its first output (a task's logits or sentence embedding: edgec_runtime.iospec)."""

    def __init__(
        self, path: Path, *, threads: int = 0, allow_spinning: bool = False, custom_ops=False
    ):
        self.session = session(
            path, threads=threads, allow_spinning=allow_spinning, custom_ops=custom_ops
        )
        self.input_names = [i.name for i in self.session.get_inputs()]

    def run(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        feed = {
            name: np.asarray(inputs[name], dtype=object)
            if name == STRING_INPUT
            else np.ascontiguousarray(inputs[name], dtype=np.int64)
            for name in self.input_names
        }
        return self.session.run(None, feed)[0]


def load(package_dir: Path, compiled: dict, settings) -> OrtRunner:
    return OrtRunner(
        package_file(package_dir, compiled),
        threads=settings.device.threads,
        allow_spinning=bool(settings.options.get("allow_spinning", False)),
        custom_ops=strings_in(compiled),
    )


RUNNER = RunnerPlugin(name="onnxruntime", load=load, requires=("onnxruntime",), extra="onnxruntime")


@hookimpl
def register_runners(register):
    register(RUNNER)
