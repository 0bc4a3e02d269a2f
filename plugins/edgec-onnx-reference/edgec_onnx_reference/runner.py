"""The device half: load an `onnx-reference` package (edgec-runtime only)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgec_runtime.runners import RunnerPlugin, hookimpl


class ReferenceRunner:
    def __init__(self, path: Path):
        import onnx
        from onnx.reference import ReferenceEvaluator

        model = onnx.load(str(path))
        self.input_names = [i.name for i in model.graph.input]
        self.output_name = model.graph.output[0].name
        self.evaluator = ReferenceEvaluator(model)

    def run(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        feed = {name: np.asarray(inputs[name], dtype=np.int64) for name in self.input_names}
        return np.asarray(self.evaluator.run([self.output_name], feed)[0])


def load(package_dir, compiled, settings) -> ReferenceRunner:
    return ReferenceRunner(Path(package_dir) / compiled["files"][0])


@hookimpl
def register_runners(register):
    register(RunnerPlugin(name="onnx-reference", load=load, requires=("onnx",)))
