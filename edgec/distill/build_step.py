"""The distillation step of `edgec build --distill`: train the student, gate it on
retention, and hand it to the rest of the chain as the model to compile.

From here on the student is the source: export, compilation and parity are all
measured against it. The teacher survives only in the manifest's `distillation`
record, with the numbers that justified replacing it.
"""

from __future__ import annotations

from pathlib import Path

from edgec.distill.config import DistillConfig, Hyperparameters
from edgec.distill.run import distill
from edgec.gates import DEFAULT_MIN_RETENTION
from edgec.model_files import peek_task
from edgec_runtime.errors import BadInput, VerificationFailed
from edgec_runtime.iospec import SEQUENCE_CLASSIFICATION, TOKEN_CLASSIFICATION

# What each task's retention is computed from, for the one-line refusal when the eval
# set lacks it (an embedder's needs only texts).
EVAL_NEEDS = {
    SEQUENCE_CLASSIFICATION: (
        "labels",
        "labeled --eval-data: the retention gate compares the teacher's and the student's "
        "accuracy on it",
    ),
    TOKEN_CLASSIFICATION: (
        "tags",
        "tagged --eval-data (a tag for every word): the retention gate compares the "
        "teacher's and the student's entity F1 on it",
    ),
}


def distill_source(request, eval_set, workdir: Path, ui):
    """(student SourceModel, manifest `distillation` record) for a build request."""
    from edgec.distill.report import retention_text
    from edgec.model import load_source_model

    if request.train_data is None:
        raise BadInput("--distill needs --train-data FILE: the texts the student learns from")
    task = peek_task(request.model, request.task, request.trust_remote_code)
    field, needs = EVAL_NEEDS.get(task, (None, "--eval-data: the retention gate reads it"))
    if eval_set is None or (field and getattr(eval_set, field, None) is None):
        raise BadInput(f"--distill needs {needs}")
    min_retention = request.min_retention
    if min_retention is None:
        min_retention = DEFAULT_MIN_RETENTION
    if not 0 <= min_retention <= 1:
        raise BadInput(f"--min-retention {min_retention}: give a share between 0 and 1, e.g. 0.97")
    config = DistillConfig(
        teacher=Path(request.model),
        student=request.distill,
        train_data=Path(request.train_data),
        output=workdir,
        validation_data=request.validation_data,
        unlabeled=request.unlabeled,
        eval_data=Path(request.eval_data),
        data=request.data,
        hp=Hyperparameters(**request.distill_options),
        device=request.distill_device,
        max_length=request.max_length,
        trust_remote_code=request.trust_remote_code,
        force=True,
    )
    ui.info(f"distilling {request.model} into a {request.distill} student")
    report = distill(config, ui)
    teacher, student = report["teacher"], report["student"]
    retention = report["retention"]
    if retention is None:
        raise VerificationFailed(
            f"{report.get('retention_note') or 'retention is undefined'}, so retention means "
            "nothing: no package written"
        )
    if retention < min_retention:
        raise VerificationFailed(
            f"{retention_text(report)}, below --min-retention {min_retention}: no package "
            "written; train on more data, keep more layers, or lower --min-retention"
        )
    ui.info(retention_text(report))
    source = load_source_model(workdir, max_length=request.max_length)
    record = {
        "task": report["task"],
        "metric": report["metric"]["name"],
        "metric_key": report["metric"]["key"],
        "recipe": report["recipe"],
        "teacher": teacher,
        "student": {k: v for k, v in student.items() if k != "path"},
        "retention": retention,
        "min_retention": min_retention,
        "agreement": report["agreement"],
        "eval_data": report["eval_data"],
        "expected_speedup": report["expected_speedup"],
        "measured_speedup": report["speed"]["ratio"],
        "training_seconds": report["training"]["seconds"],
        "training_steps": report["training"]["steps"],
        "training_device": report["training"]["device"],
        "mixed_precision": report["training"]["mixed_precision"],
    }
    return source, record


def describe_student(source, request) -> dict:
    """The manifest's `source_model` for a distilled package: the student's facts, with
    a path that says where it came from (the student folder itself is not kept)."""
    return {
        **source.describe(),
        "path": f"{request.model} distilled to {request.distill} (student not kept)",
    }
