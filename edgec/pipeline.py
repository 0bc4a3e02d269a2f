"""`build()`: source model -> ONNX -> backend -> verification -> package, as plain calls.

Read it top to bottom: each step is one call into a module that does one job. It
refuses to write a package that fails verification, and it writes packages
atomically, so a failed build leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from edgec.errors import BackendUnavailable, BadInput, VerificationFailed

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json")


class SilentUI:
    """The progress interface the pipeline reports to; the CLI supplies a rich one."""

    @contextlib.contextmanager
    def step(self, title: str):
        yield

    def track(self, items, description: str):
        return items

    def note(self, message: str) -> None:
        pass


@dataclass
class DataOptions:
    text_column: str | None = None
    pair_column: str | None = None
    label_column: str | None = None

    def load(self, path, label2id, require_labels=False):
        from edgec.data import load_text_set

        return load_text_set(
            path,
            label2id=label2id,
            text_column=self.text_column,
            pair_column=self.pair_column,
            label_column=self.label_column,
            require_labels=require_labels,
        )


@dataclass
class BuildRequest:
    model: Path
    target: object
    output: Path
    eval_data: Path | None = None
    calibration_data: Path | None = None
    backend: str | None = None
    precision: str | None = None
    data: DataOptions = field(default_factory=DataOptions)
    max_length: int | None = None
    trust_remote_code: bool = False
    thresholds: dict = field(default_factory=dict)
    options: dict = field(default_factory=dict)
    verify: bool = True
    force: bool = False
    archive: bool = False
    # --distill: replace the model by a distilled student before export (edgec.distill)
    distill: str | None = None
    train_data: Path | None = None
    min_retention: float | None = None
    distill_options: dict = field(default_factory=dict)  # edgec.distill.Hyperparameters
    distill_device: str = "auto"


def resolve_backend(target, backend_name: str | None, precision: str | None):
    """The backend and precision to build, and whether this machine can build them."""
    from edgec.plugins import get_backend

    backend = get_backend(backend_name or target.backend)
    precision = precision or target.precision
    if precision not in backend.precisions:
        raise BadInput(
            f"backend {backend.name} has no precision {precision!r}: choose one of {', '.join(backend.precisions)}"
        )
    reason = backend.available(target.device)
    if reason:
        raise BackendUnavailable(f"cannot build {backend.name} for target {target.name}: {reason}")
    return backend, precision


def verify_candidate(source, predictor, eval_set, thresholds, ui) -> dict:
    """Parity and tokenizer reports for a compiled model; `failures` empty means pass."""
    from edgec.verify.suite import verify_against_source

    return verify_against_source(source, predictor, eval_set, thresholds, ui)


def build(request: BuildRequest, ui=None) -> dict:
    """Run the whole chain; return the manifest of the written package."""
    from edgec.backends.onnxruntime import MODEL_FILE  # noqa: F401  (fail early if ORT is broken)
    from edgec.export import export_onnx
    from edgec.model import load_source_model
    from edgec.package import check_output, write_package
    from edgec.runtime import Predictor
    from edgec.verify.reference import calibration_batches

    ui = ui or SilentUI()
    started = time.perf_counter()
    target = request.target
    output = Path(request.output)
    check_output(output, request.force)
    backend, precision = resolve_backend(target, request.backend, request.precision)
    if request.eval_data is None and request.verify:
        raise BadInput(
            "edgec build needs --eval-data FILE to verify the package (or --no-verify to skip it)"
        )
    thresholds = {**target.verify, **{k: v for k, v in request.thresholds.items() if v is not None}}

    with ui.step(f"loading {request.model}"):
        source = load_source_model(
            request.model,
            trust_remote_code=request.trust_remote_code,
            max_length=request.max_length,
        )
    eval_set = request.data.load(request.eval_data, source.label2id) if request.eval_data else None
    calib_set = (
        request.data.load(request.calibration_data, source.label2id)
        if request.calibration_data
        else eval_set
    )
    text_pair = bool((eval_set or calib_set) and (eval_set or calib_set).pairs is not None)

    with tempfile.TemporaryDirectory(prefix="edgec-build-") as tmp:
        work = Path(tmp)
        distillation = None
        if request.distill:  # from here on the student is the source: parity is against it
            from edgec.distill.build_step import distill_source

            source, distillation = distill_source(request, eval_set, work / "student", ui)
        calibration = (
            calibration_batches(source, calib_set.texts, calib_set.pairs) if calib_set else None
        )
        with ui.step("exporting to ONNX and checking it against PyTorch"):
            export = export_onnx(
                source, work / "export.onnx", calibration[:2] if calibration else None
            )
        stage = work / "package"
        stage.mkdir()
        options = {**target.backend_options(), **source.shape_facts(), **request.options}
        with ui.step(f"compiling with {backend.name} ({precision})"):
            compiled = backend.compile(work / "export.onnx", precision, calibration, options, stage)
        source.tokenizer.save_pretrained(work / "tokenizer")
        for name in TOKENIZER_FILES:
            shutil.copy2(work / "tokenizer" / name, stage / name)
        backend_section = {
            "name": backend.name,
            "version": backend.version(),
            "precision": precision,
            "files": compiled.files,
            "options": {k: v for k, v in request.options.items()},
            **compiled.metadata,
        }
        manifest = {
            "source_model": source.describe(),
            "labels": source.labels,
            "distillation": distillation,
            "backend": backend_section,
            "target": target.describe(),
            "preprocessing": source.preprocessing(text_pair=text_pair),
            "io": {k: export[k] for k in ("input_names", "output_names", "dynamic_axes", "opset")},
            "export": export,
        }
        if distillation:
            from edgec.distill.build_step import describe_student

            manifest["source_model"] = describe_student(source, request)
        runner = backend.load(stage, backend_section, options)
        predictor = Predictor(stage, manifest, runner)
        if request.verify:
            verification = verify_candidate(source, predictor, eval_set, thresholds, ui)
            if verification["failures"]:
                from edgec.verify.reports import failure_message

                raise VerificationFailed(
                    failure_message(verification, "verification failed, no package written"),
                    report=verification,
                )
        else:
            verification = {
                "status": "unverified",
                "failures": [],
                "note": "built with --no-verify: accuracy and tokenizer were not checked",
            }
        manifest["verification"] = verification
        manifest["build_seconds"] = round(time.perf_counter() - started, 1)
        files = {name: stage / name for name in [*compiled.files, *TOKENIZER_FILES]}
        with ui.step(f"writing {output}"):
            write_package(output, files, manifest, force=request.force, archive=request.archive)
    from edgec.package import read_manifest

    return read_manifest(output)
