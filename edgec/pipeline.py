"""`build()`: source model -> ONNX -> backend(s) -> verification -> package, as plain calls.

Read it top to bottom: each step is one call into a module that does one job. It
refuses to write a package that fails verification, and it writes packages
atomically, so a failed build leaves nothing behind.

With several backends or precisions (`--backend onnxruntime,openvino --precision
int8,fp32`) every candidate is compiled into a stage folder of its own, verified on
its own and timed next to the others; only the picked candidate's stage becomes the
package, so no file or figure of one backend can end up in another's package.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from edgec.backends import AUTO_INT8
from edgec.candidates import (
    Candidate,
    candidate_row,
    compile_candidate,
    pick_candidate,
    search_candidate,
    time_candidates,
    verify_candidate,
)
from edgec.data import DataOptions
from edgec.ui import SilentUI
from edgec_runtime.errors import BackendUnavailable, BadInput, EdgecError

PICK_RULES = ("target", "fastest")


@dataclass
class BuildRequest:
    model: Path | str  # a model folder, or a Hugging Face hub id (edgec.hub)
    target: object
    output: Path
    task: str | None = None  # default: detected from the model folder (edgec.model)
    eval_data: Path | None = None
    calibration_data: Path | None = None
    backend: str | None = None  # one name or a comma list; default: the target's
    precision: str | None = None  # likewise
    pick: str = "target"  # with several candidates: "target" or "fastest"
    data: DataOptions = field(default_factory=DataOptions)
    max_length: int | None = None
    trust_remote_code: bool = False
    revision: str | None = None  # of a hub id: a branch, tag or commit (default main)
    thresholds: dict = field(default_factory=dict)
    options: dict = field(default_factory=dict)
    verify: bool = True
    force: bool = False
    archive: bool = False
    # --distill: replace the model by a distilled student before export (edgec.distill)
    distill: str | None = None
    train_data: Path | None = None
    validation_data: Path | None = None  # early stopping; default: 10% of train_data
    unlabeled: Path | None = None  # extra texts the teacher labels (KD term only)
    min_retention: float | None = None
    distill_options: dict = field(default_factory=dict)  # edgec.distill.Hyperparameters
    distill_device: str = "auto"


def parse_candidate(spec: str) -> tuple[str, str | None]:
    """`"openvino:int8"` -> `("openvino", "int8")`; `"openvino"` -> `("openvino", None)`.

    The one grammar for a candidate, in `edgec build --backend` and `edgec bench --backend`.
    """
    name, _, precision = spec.strip().partition(":")
    if not name or (_ and not precision):
        raise BadInput(f"{spec!r} is not BACKEND[:PRECISION], e.g. onnxruntime:int8")
    return name, precision or None


def split_list(value: str | None) -> list[str]:
    """`"a, b"` -> `["a", "b"]`, without duplicates, order kept."""
    return list(dict.fromkeys(v.strip() for v in (value or "").split(",") if v.strip()))


def backend_settings(backend, target, user_options: dict, gates: dict, model=None):
    """The one object a backend is given: the target's device settings, the model's
    facts and the backend's own options (defaults < target profile < -O)."""
    from edgec.backends.settings import resolve_options
    from edgec_runtime.settings import BackendSettings, DeviceSettings, ModelFacts

    return BackendSettings(
        device=DeviceSettings(device=target.device, threads=target.threads, shapes=target.shapes),
        model=model or ModelFacts(),
        options=resolve_options(backend, target.options, user_options, gates),
    )


def check_option_keys(target, pairs, user_options: dict) -> None:
    """-O keys must belong to a candidate backend, and a target profile's extra keys to
    some installed backend: a typo is exit 2 naming the valid keys, before any work."""
    from edgec.backends.settings import check_keys
    from edgec.plugins import backends

    chosen = list({b.name: b for b, _ in pairs}.values())
    check_keys(user_options, chosen, "-O")
    check_keys(target.options, list(backends().values()), f"target {target.name} ({target.origin})")


def model_facts(source):
    from edgec_runtime.settings import ModelFacts

    return ModelFacts(
        **source.shape_facts(),
        max_length=source.max_length,
        pad_token_id=source.tokenizer.pad_token_id or 0,
        task=source.task,
    )


def _pair_problem(backend, precision: str, target, options: dict) -> EdgecError | None:
    if precision not in backend.precisions:
        return BadInput(
            f"backend {backend.name} has no precision {precision!r}: choose one of "
            f"{', '.join(backend.precisions)}"
        )
    settings = backend_settings(backend, target, options, {})
    reason = backend.compile_problem(target.device, settings)
    if reason:
        return BackendUnavailable(f"cannot build {backend.name} for target {target.name}: {reason}")
    return None


def requested_pairs(target, backends: str | None, precisions: str | None) -> list[tuple]:
    """`--backend a:int8,b --precision fp32,int8`: a spec with its own precision is one
    candidate; one without takes each --precision (default: the target's)."""
    from edgec.plugins import get_backend

    wanted = split_list(precisions) or [target.precision]
    specs = [parse_candidate(s) for s in split_list(backends)] or [(target.backend, None)]
    pairs = [(name, p) for name, own in specs for p in ([own] if own else wanted)]
    return [(get_backend(name), p) for name, p in dict.fromkeys(pairs)]


def candidate_pairs(
    target, backends: str | None, precisions: str | None, pick: str, options=None, ui=None
):
    """The (backend, precision) pairs to build.

    One pair must be buildable here, or the build stops (exit 2 or 3) before any work.
    Of several, pairs a backend cannot make or this machine cannot run are dropped
    with a note; the build stops only when none is left.
    """
    ui = ui or SilentUI()
    if pick not in PICK_RULES:
        raise BadInput(f"--pick {pick!r}: choose one of {', '.join(PICK_RULES)}")
    pairs = requested_pairs(target, backends, precisions)
    check_option_keys(target, pairs, options or {})
    if len(pairs) == 1:
        problem = _pair_problem(*pairs[0], target, options or {})
        if problem:
            raise problem
        return pairs
    kept, problems = [], []
    for backend, precision in pairs:
        problem = _pair_problem(backend, precision, target, options or {})
        if problem is None:
            kept.append((backend, precision))
        else:
            problems.append(problem)
            ui.note(f"skipping {backend.name}:{precision}: {problem}")
    if not kept:
        unavailable = any(isinstance(p, BackendUnavailable) for p in problems)
        error = BackendUnavailable if unavailable else BadInput
        raise error("no candidate can be built here: " + "; ".join(map(str, problems)))
    if pick == "target" and (target.backend, target.precision) not in {
        (b.name, p) for b, p in kept
    }:
        raise BadInput(
            f"target {target.name} asks for {target.backend}:{target.precision}, which is not "
            f"among the candidates ({', '.join(f'{b.name}:{p}' for b, p in kept)}): add it to "
            "--backend/--precision, or pass --pick fastest"
        )
    return kept


def search_wanted(pairs, request) -> bool:
    """Whether a candidate is int8-auto, or may become it (the target's fallback)."""
    return any(p == AUTO_INT8 for _, p in pairs) or falls_back_to_search(pairs, request)


def falls_back_to_search(pairs, request) -> bool:
    """Whether the target's fallback, should its own precision fail, is int8-auto."""
    return fallback_possible(pairs, request) and request.target.fallback == AUTO_INT8


def check_calibration(pairs, request: BuildRequest) -> None:
    """A precision that needs calibration texts says so as data; refuse before any work."""
    if request.calibration_data or request.eval_data:
        return
    for backend, precision in pairs:
        if backend.needs_calibration(precision):
            raise BadInput(
                f"{backend.name}:{precision} needs calibration texts: pass --calibration-data "
                "FILE (or --eval-data FILE, which calibrates too)"
            )


def build(request: BuildRequest, ui=None) -> dict:
    """Run the whole chain; return the manifest of the written package.

    The output is claimed before any work (edgec.outputs.claim_output): checked against
    the inputs it could destroy and what is there, locked against a second build, and
    cleared of what a killed build left.
    """
    from edgec.outputs import claim_output

    inputs = {
        "the model folder": request.model,
        "--eval-data": request.eval_data,
        "--calibration-data": request.calibration_data,
        "--train-data": request.train_data,
        "--validation-data": request.validation_data,
        "--unlabeled": request.unlabeled,
    }
    with claim_output(request.output, request.force, archive=request.archive, inputs=inputs):
        return _build(request, ui)


def load_sets(request: BuildRequest, task: str, label2id: dict, pairs=()):
    """The eval set, the calibration set (the eval set when none is given), and, when a
    candidate is int8-auto, the texts its search uses (edgec.candidates.search_texts)."""
    from edgec.candidates import search_texts

    def load(path):
        return request.data.load_for(task, path, label2id)

    eval_set = load(request.eval_data) if request.eval_data else None
    calib_set = load(request.calibration_data) if request.calibration_data else eval_set
    searched = any(precision == AUTO_INT8 for _, precision in pairs)
    # a target that falls back to int8-auto searches only if texts for it were given
    given = request.calibration_data or request.validation_data
    if searched or (given and falls_back_to_search(pairs, request)):
        return eval_set, calib_set, search_texts(request, load)
    return eval_set, calib_set, None


def fallback_possible(pairs, request: BuildRequest) -> bool:
    """Whether the target's `fallback` precision may replace its own: one candidate, the
    target's precision (not one the user chose), verified, and a backend that has it."""
    target = request.target
    if len(pairs) != 1 or request.precision or not request.verify or not target.fallback:
        return False
    backend, precision = pairs[0]
    return precision == target.precision and target.fallback in backend.precisions


def parity_only_failure(candidate) -> bool:
    """Failed on parity gates alone: what another int8 can fix (a tokenizer or label
    mismatch it cannot)."""
    failed = [c for c in candidate.verification.get("checks", []) if c["status"] == "failed"]
    return bool(failed) and all(c["name"].startswith("parity") for c in failed)


def fall_back(failed, make, target, search_sets, ui):
    """The target's fallback precision in place of its own, which failed only on parity;
    the failed one stays when no search texts were given (the note says how)."""
    if not parity_only_failure(failed):
        return failed
    fallback, name = target.fallback, failed.name
    if fallback == AUTO_INT8 and search_sets is None:
        ui.note(
            f"{name} failed its parity gates; target {target.name} falls back to {fallback}, "
            "which needs texts apart from --eval-data: pass --calibration-data or "
            "--validation-data to let it search"
        )
        return failed
    ui.note(f"{name} failed its parity gates: building {fallback}, target {target.name}'s fallback")
    candidate = make(failed.backend, fallback, f"{failed.stage.name}-{fallback}")
    candidate.manifest["fallback"] = {
        "from": failed.precision,
        "failures": failed.verification.get("failures", []),
    }
    return candidate


def _build(request: BuildRequest, ui) -> dict:
    from edgec.export import export_onnx
    from edgec.gates import resolve_gates
    from edgec.hub import resolve_model
    from edgec.model import load_source_model
    from edgec.model_files import model_folder, peek_label2id, peek_task
    from edgec.outputs import work_prefix
    from edgec.package import read_manifest, write_package
    from edgec.verify.reference import calibration_batches
    from edgec_runtime.iospec import SEQUENCE_CLASSIFICATION, task_spec

    ui = ui or SilentUI()
    started = time.perf_counter()
    target = request.target
    output = Path(request.output)
    pairs = candidate_pairs(
        target, request.backend, request.precision, request.pick, request.options, ui
    )
    if request.eval_data is None and request.verify:
        raise BadInput(
            "edgec build needs --eval-data FILE to verify the package (or --no-verify to skip it)"
        )
    check_calibration(pairs, request)
    if request.validation_data and not request.distill and not search_wanted(pairs, request):
        raise BadInput(
            "--validation-data is read by --distill and by precision int8-auto only: add "
            "one of them, or drop it"
        )
    thresholds = resolve_gates(target.verify, request.thresholds)
    model = resolve_model(request.model, request.revision)  # a hub id: its cached snapshot
    if model.repo:
        ui.info(f"{model.repo} at commit {model.revision[:12]} ({model.path})")
    request = replace(request, model=model.path)

    task = peek_task(request.model, request.task, request.trust_remote_code)
    if request.distill and not task_spec(task).distillable:
        raise BadInput(
            f"--distill has no recipe for {task} models ({request.model}): build it "
            "without --distill"
        )
    # data files are read before the weights load, so a bad row is exit 2 in a second
    label2id = peek_label2id(model_folder(request.model), task)
    if label2id is not None:
        eval_set, calib_set, search_sets = load_sets(request, task, label2id, pairs)
    with ui.step(f"loading {request.model}"):
        source = load_source_model(
            request.model,
            trust_remote_code=request.trust_remote_code,
            max_length=request.max_length,
            task=task,
        )
    if label2id is None:
        eval_set, calib_set, search_sets = load_sets(request, task, source.label2id, pairs)
    if eval_set is not None and request.verify:  # a set too small for the gates: exit 2 now
        from edgec.verify.resolution import check_eval_size

        check_eval_size(task, eval_set, thresholds, source.labels)
    # an embedding set's pairs are scored pairs to check against, never model inputs
    text_pair = task == SEQUENCE_CLASSIFICATION and bool(
        (eval_set or calib_set) and (eval_set or calib_set).pairs is not None
    )
    if search_sets is not None:
        search_sets.text_pair = text_pair

    with tempfile.TemporaryDirectory(prefix=work_prefix()) as tmp:
        work = Path(tmp)
        distillation = None
        if request.distill:  # from here on the student is the source: parity is against it
            from edgec.distill.build_step import describe_student, distill_source

            source, distillation = distill_source(request, eval_set, work / "student", ui)
        calibration = (
            calibration_batches(source, calib_set.texts, calib_set.pairs if text_pair else None)
            if calib_set
            else None
        )
        with ui.step("exporting to ONNX and checking it against PyTorch"):
            export = export_onnx(
                source, work / "export.onnx", calibration[:2] if calibration else None
            )
        source.tokenizer.save_pretrained(work / "tokenizer")
        common = {
            "source_model": {
                **(describe_student(source, request) if distillation else source.describe()),
                **model.record(),  # a hub model: hub_repo, hub_revision (the commit)
            },
            "task": source.task_record(),
            "labels": source.labels,
            "distillation": distillation,
            "target": target.describe(),
            "preprocessing": source.preprocessing(text_pair=text_pair),
            "io": {k: export[k] for k in ("input_names", "output_names", "dynamic_axes", "opset")},
            "export": export,
        }
        facts = model_facts(source)
        texts = (eval_set or calib_set).texts if (eval_set or calib_set) else []
        several = len(pairs) > 1
        candidates = []

        def make(backend, precision: str, name: str) -> Candidate:
            candidate = Candidate(backend, precision, work / name)
            settings = backend_settings(backend, target, request.options, thresholds, facts)
            if precision == AUTO_INT8:
                search_candidate(
                    candidate, work, settings, common, ui, texts, source, search_sets, thresholds
                )
            else:
                compile_candidate(candidate, work, calibration, settings, common, ui, texts)
            verify_candidate(candidate, source, eval_set, thresholds, request.verify, ui)
            return candidate

        for i, (backend, precision) in enumerate(pairs):
            try:
                candidate = make(backend, precision, f"candidate-{i}")
                if candidate.failed and fallback_possible(pairs, request):
                    candidate = fall_back(candidate, make, target, search_sets, ui)
            except EdgecError as e:
                if not several:
                    raise
                candidate = Candidate(backend, precision, work / f"candidate-{i}")
                candidate.error = e
                candidate.verification = {"status": "failed", "failures": [str(e)]}
                ui.note(f"{candidate.name} failed: {e}")
            candidates.append(candidate)
        if several:
            time_candidates(candidates, eval_set or calib_set, ui)
        chosen = pick_candidate(candidates, request.pick, target)
        manifest = {**chosen.manifest, "verification": chosen.verification}
        if several:
            manifest["selection"] = {
                "rule": request.pick,
                "candidates": [candidate_row(c, c is chosen) for c in candidates],
            }
        manifest["build_seconds"] = round(time.perf_counter() - started, 1)
        files = {name: chosen.stage / name for name in chosen.files}
        with ui.step(f"writing {output} ({chosen.name})"):
            write_package(output, files, manifest, force=request.force, archive=request.archive)
    return read_manifest(output)
