"""One candidate of a build: a backend x precision compiled into its own stage folder,
loaded as a device would load it, verified, timed, and picked or refused.

`edgec build --backend a,b --precision x,y` makes several; `int8-auto` compiles many
trials of one (edgec.int8_search), each through the same `compile_candidate` and
`verify_candidate`, so a trial is checked exactly as the package it may become.
"""

from __future__ import annotations

import json
import shutil
import sys
from contextlib import redirect_stdout
from dataclasses import dataclass, field
from pathlib import Path

from edgec_runtime.errors import EdgecError, VerificationFailed

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json")
LATENCY_RUNS = 20  # batch-1 calls per candidate when comparing several


@dataclass
class Candidate:
    """One backend x precision being built: its own stage folder, manifest and report."""

    backend: object
    precision: str
    stage: Path
    manifest: dict = field(default_factory=dict)
    model_files: list[str] = field(default_factory=list)  # what the backend compiled
    predictor: object = None
    checked_on: str | None = None  # set when verified somewhere other than the device
    error: EdgecError | None = None  # why it could not be built or checked at all
    verification: dict = field(default_factory=dict)
    p50_ms: float | None = None

    @property
    def name(self) -> str:
        return f"{self.backend.name}:{self.precision}"

    @property
    def files(self) -> list[str]:
        return [*self.model_files, *TOKENIZER_FILES]

    @property
    def failed(self) -> bool:
        return self.verification.get("status") == "failed"


def compile_candidate(
    candidate, work, calibration, settings, common, ui, texts=(), compile_as: str | None = None
) -> None:
    """Compile into the candidate's own stage folder and load it as a device would (or,
    for a device this machine lacks, as the backend's check on this machine). `texts`:
    what an in-graph tokenizer must tokenize as training did (-O tokenizer=graph).
    `compile_as`: the precision the backend compiles, when the candidate's is made from
    another (int8-auto's result is an int8-static or int8 graph)."""
    from edgec.runtime import checking_predictor

    backend, precision, stage = candidate.backend, candidate.precision, candidate.stage
    stage.mkdir()
    made = compile_as or precision
    # stdout is edgec's (--json reads it): whatever a backend's libraries print goes to
    # stderr (OpenVINO's converter prints its arguments under --verbose).
    with ui.step(f"compiling with {backend.name} ({made})"), redirect_stdout(sys.stderr):
        compiled = backend.compile(work / "export.onnx", made, calibration, settings, stage)
    if settings.options.get("tokenizer") == "graph":
        from edgec.strings_in import put_tokenizer_in_graph

        put_tokenizer_in_graph(candidate, compiled, work / "tokenizer", common, texts, ui)
    for name in TOKENIZER_FILES:
        shutil.copy2(work / "tokenizer" / name, stage / name)
    section = {
        "name": backend.name,
        "version": backend.version(),
        "precision": precision,
        **({"compiled_as": made} if made != precision else {}),
        "files": compiled.files,
        "settings": settings.record(),
        **compiled.metadata,
    }
    candidate.manifest = {**common, "backend": section}
    candidate.model_files = list(compiled.files)
    with redirect_stdout(sys.stderr):
        candidate.predictor, candidate.checked_on = checking_predictor(stage, candidate.manifest)
    if candidate.checked_on:
        ui.info(f"{candidate.name} is checked with {candidate.checked_on}")


def verify_candidate(candidate, source, eval_set, thresholds, verify: bool, ui) -> None:
    """Parity and tokenizer reports against the source; `failures` empty means pass."""
    if not verify:
        candidate.verification = {
            "status": "unverified",
            "failures": [],
            "note": "built with --no-verify: accuracy and tokenizer were not checked",
        }
        return
    from edgec.verify.suite import verify_against_source

    ui.info(f"verifying {candidate.name}")
    candidate.verification = verify_against_source(
        source, candidate.predictor, eval_set, thresholds, ui
    )
    from edgec.strings_in import tokenizer_warnings

    warnings_ = tokenizer_warnings(candidate.manifest["backend"])
    candidate.verification["warnings"] = [*candidate.verification.get("warnings", []), *warnings_]
    if candidate.checked_on:
        candidate.verification["checked_on"] = candidate.checked_on


def time_candidates(candidates: list[Candidate], text_set, ui) -> None:
    """Median batch-1 latency (tokenize + infer) of every loaded candidate, interleaved."""
    from edgec.export import PROBE_TEXTS
    from edgec.timing import sentence_latency

    texts = [t for t in (text_set.texts if text_set else []) if t] or PROBE_TEXTS
    loaded = {c.name: c.predictor.predict for c in candidates if c.predictor is not None}
    with ui.step(f"timing {len(loaded)} candidates (batch 1, real texts)"):
        medians = sentence_latency(loaded, texts, runs=LATENCY_RUNS)
    for c in candidates:
        c.p50_ms = medians.get(c.name)


def pick_candidate(candidates: list[Candidate], rule: str, target) -> Candidate:
    """The target's own candidate, or the fastest that passed; refuse when it cannot."""
    from edgec.verify.reports import failure_message

    if len(candidates) == 1 or rule == "target":
        chosen = next(
            (
                c
                for c in candidates
                if (c.backend.name, c.precision) == (target.backend, target.precision)
            ),
            candidates[0],
        )
        if chosen.error is not None and not isinstance(chosen.error, VerificationFailed):
            raise chosen.error  # it could not be built here: its own message and exit code
        if chosen.failed:
            others = [c.name for c in candidates if not c.failed]
            hint = f" (passed: {', '.join(others)}; --pick fastest packages one)" if others else ""
            raise VerificationFailed(
                failure_message(
                    chosen.verification,
                    f"verification failed for {chosen.name}, no package written{hint}",
                ),
                report=chosen.verification,
            )
        return chosen
    passed = [c for c in candidates if not c.failed and c.p50_ms is not None]
    if not passed:
        lines = [f"  - {c.name}: {(c.verification['failures'] or ['?'])[0]}" for c in candidates]
        raise VerificationFailed(
            "no candidate passed verification, no package written:\n" + "\n".join(lines)
        )
    return min(passed, key=lambda c: c.p50_ms)


def candidate_row(candidate: Candidate, picked: bool) -> dict:
    """One line of the comparison table, as the manifest and the CLI show it."""
    headline = candidate.verification.get("headline") or {}
    size = sum((candidate.stage / f).stat().st_size for f in candidate.model_files)
    return {
        "backend": candidate.backend.name,
        "precision": candidate.precision,
        "status": candidate.verification.get("status"),
        "picked": picked,
        "size_mb": round(size / 1e6, 2) if size else None,
        "agreement": headline.get("agreement"),
        "accuracy_delta": headline.get("quality_delta"),
        "quality_metric": headline.get("quality_metric"),
        "p50_ms": round(candidate.p50_ms, 3) if candidate.p50_ms is not None else None,
        "failures": candidate.verification.get("failures", []),
    }


# ---------------------------------------------------------------- int8-auto


@dataclass
class SearchTexts:
    """The texts int8-auto searches on, both held apart from the eval set."""

    calibration: object  # a data set: activation ranges and group scores
    validation: object  # a data set: the gates each trial must pass
    record: dict  # which texts each step used, for the manifest
    text_pair: bool = False


def graph_options(options: dict) -> dict:
    """The options that shape a trial's graph (smoothing, per-channel weights, the
    symmetric form...), which scores are of too; not those the search sets itself."""
    from edgec.backends.settings import SEARCH_OPTIONS, TOKENIZER_OPTION

    own = {o.name for o in SEARCH_OPTIONS} | {TOKENIZER_OPTION.name}
    return {k: v for k, v in sorted(options.items()) if k not in own}


def search_texts(request, load) -> SearchTexts:
    """Calibration and validation texts for int8-auto from --calibration-data and
    --validation-data; when only one is given it is split, even rows calibrating and
    odd rows validating. `load(path)` reads a data file for the model's task."""
    from edgec_runtime.errors import BadInput

    calibration = load(request.calibration_data) if request.calibration_data else None
    validation = load(request.validation_data) if request.validation_data else None
    names = {"calibration": "--calibration-data", "validation": "--validation-data"}
    if calibration is None and validation is None:
        raise BadInput(
            "int8-auto searches on texts held apart from --eval-data, which stays the test "
            "set: pass --calibration-data FILE (split into calibration and validation "
            "halves) or --validation-data FILE"
        )
    if calibration is None or validation is None:
        whole = calibration if calibration is not None else validation
        flag = names["calibration" if calibration is not None else "validation"]
        calibration = whole.subset(range(0, len(whole), 2))
        validation = whole.subset(range(1, len(whole), 2))
        names = {"calibration": f"{flag}, even rows", "validation": f"{flag}, odd rows"}
    record = {
        "calibration": {"source": names["calibration"], "texts": len(calibration)},
        "validation": {"source": names["validation"], "texts": len(validation)},
        "eval": "not read by the search: the build's verification gates on it afterwards",
    }
    return SearchTexts(calibration, validation, record)


def search_candidate(candidate, work, settings, common, ui, texts, source, sets, gates) -> None:
    """Precision int8-auto: the sensitivity search (edgec.int8_search) over the backend's
    `searched` precisions, every trial compiled and verified here as a candidate is;
    the winner is compiled into the candidate's own stage with the options it chose."""
    import dataclasses
    import itertools

    from edgec.int8_search import Trials, search_gates, search_int8
    from edgec.ui import SilentUI
    from edgec.verify.reference import calibration_batches
    from edgec.verify.resolution import eval_size_problems
    from edgec_runtime.runners.onnxruntime import OrtRunner

    backend, quiet = candidate.backend, SilentUI()
    memo_source = dataclasses.replace(source, outputs_memo={})
    tightened = search_gates(gates, settings.options["search_margin"])
    pairs = {
        s: getattr(sets, s).pairs if sets.text_pair else None for s in ("calibration", "validation")
    }
    batches = {
        "calibration": calibration_batches(source, sets.calibration.texts, pairs["calibration"]),
        "validation": calibration_batches(
            source, sets.validation.texts, pairs["validation"], limit=len(sets.validation)
        ),
    }
    used = sum(len(b["input_ids"]) for b in batches["calibration"])  # batches' limit
    texts_read = {**sets.record, "calibration": {**sets.record["calibration"], "texts_used": used}}
    problems = eval_size_problems(source.task, sets.validation, tightened, source.labels)
    for problem in problems:
        ui.note(f"int8-auto's validation texts: {problem}")
    if problems:
        texts_read["validation_problems"] = problems
    float_model = OrtRunner(work / "export.onnx")
    root = work / f"{candidate.stage.name}-trials"
    root.mkdir()
    serial = itertools.count()
    python_tokenizer = {"tokenizer": "python"} if "tokenizer" in settings.options else {}

    def compile_trial(precision: str, options: dict, name: str):
        trial = Candidate(backend, precision, root / f"{next(serial):03d}-{precision}-{name}")
        trial_settings = settings.with_options(**options, **python_tokenizer)
        compile_candidate(trial, work, batches["calibration"], trial_settings, common, quiet)
        for file in trial.model_files:  # loaded: read again only the tokenizer files
            (trial.stage / file).unlink(missing_ok=True)
        return trial

    def verify_trial(trial) -> dict:
        verify_candidate(trial, memo_source, sets.validation, tightened, True, quiet)
        return trial.verification

    trials = Trials(
        compile=compile_trial,
        verify=verify_trial,
        float_outputs=lambda chunks: [float_model.run(b) for b in chunks],
        calibration=batches["calibration"],
        validation=batches["validation"],
        texts=list(sets.validation.texts),
        task=source.task,
        model_key=json.dumps(
            [
                source.weights_sha256,
                source.max_length,
                source.task,
                backend.version(),
                graph_options(settings.options),
            ]
        ),  # fmt: skip
        max_trials=settings.options["search_trials"],
        max_seconds=settings.options["search_seconds"],
    )
    precision, options, record = search_int8(trials, backend, ui)
    record.update(texts=texts_read, gates=tightened, margin=settings.options["search_margin"])
    shutil.rmtree(root, ignore_errors=True)
    chosen = settings.with_options(**options)
    compile_candidate(
        candidate, work, batches["calibration"], chosen, common, ui, texts, compile_as=precision
    )
    candidate.manifest["backend"]["search"] = record
