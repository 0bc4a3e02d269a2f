"""An edgec backend that runs models with ONNX's reference evaluator.

It shows the whole plugin contract in one small file: describe the backend as data
(its precisions, devices and options), then implement `compile` (which files go into
the package) and `load` (a runner mapping numpy inputs to logits). Both receive the
build's `BackendSettings` (device settings, model facts, this backend's options).
Heavy imports stay inside the functions.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from edgec.backends import Backend, Compiled
from edgec.backends.settings import Option
from edgec.plugins import hookimpl

MODEL_FILE = "model.onnx"


class ReferenceRunner:
    def __init__(self, path: Path):
        import onnx
        from onnx.reference import ReferenceEvaluator

        model = onnx.load(str(path))
        self.input_names = [i.name for i in model.graph.input]
        self.evaluator = ReferenceEvaluator(model)

    def run(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        feed = {name: np.asarray(inputs[name], dtype=np.int64) for name in self.input_names}
        return np.asarray(self.evaluator.run(["logits"], feed)[0])


class OnnxReferenceBackend(Backend):
    def compile(self, onnx_path, precision, calibration, settings, workdir) -> Compiled:
        shutil.copy2(onnx_path, Path(workdir) / MODEL_FILE)
        metadata = {"evaluator": "onnx.reference.ReferenceEvaluator"}
        if settings.options["check_model"]:
            import onnx

            onnx.checker.check_model(str(onnx_path), full_check=True)
            metadata["checked"] = True
        return Compiled([MODEL_FILE], metadata)

    def load(self, package_dir, compiled, settings):
        return ReferenceRunner(Path(package_dir) / compiled["files"][0])


@hookimpl
def register_backends(register):
    register(
        OnnxReferenceBackend(
            name="onnx-reference",
            precisions=("fp32",),
            devices=("cpu",),
            requires=("onnx",),
            description="ONNX reference evaluator (pure Python): slow, dependency-free oracle",
            options=(
                Option("check_model", bool, False, "run onnx.checker (full_check) on the graph"),
            ),
        )
    )
