"""The compiler half: describe the `onnx-reference` backend and compile its packages."""

from __future__ import annotations

import shutil
from pathlib import Path

from edgec.backends import Backend, Compiled
from edgec.backends.settings import Option
from edgec.plugins import hookimpl

MODEL_FILE = "model.onnx"


class OnnxReferenceBackend(Backend):
    """`load` is inherited: it runs edgec_onnx_reference.runner, the device half."""

    def compile(self, onnx_path, precision, calibration, settings, workdir) -> Compiled:
        shutil.copy2(onnx_path, Path(workdir) / MODEL_FILE)
        metadata = {"evaluator": "onnx.reference.ReferenceEvaluator"}
        if settings.options["check_model"]:
            import onnx

            onnx.checker.check_model(str(onnx_path), full_check=True)
            metadata["checked"] = True
        return Compiled([MODEL_FILE], metadata)


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
