"""The verification suite: every check a build gate or `edgec verify` runs, in one report.

Each parity check goes through three stages: run (results.py: the reference's logits,
the package's logits, or what a build saved in the manifest), compare (compare.py: one
comparison over two results) and gate (gate.py: the gates, as named checks). This
module only chooses the results and assembles the report. Two modes:

- against the source model (a build, or `edgec verify --reference MODEL`): tokenizer
  consistency against the source tokenizer, and the package's logits compared with
  PyTorch FP32 logits on the same texts;
- against the manifest (`edgec verify` without --reference): integrity, the tokenizer
  against the package's own transformers config and the manifest's preprocessing, and
  the package compared with the reference the build saved (its predicted classes and
  accuracy) and with itself as the build recorded it. Without reference logits, logit
  deltas and KL cannot be re-checked, and the report says so.

Every gate is a named check (see checks.py), so the JSON report, the JUnit file, the
Markdown summary and the CLI's few lines all say the same thing.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from pathlib import Path

from edgec.gates import resolve_gates
from edgec.ui import SilentUI
from edgec.verify.assemble import ASSEMBLED, assemble
from edgec.verify.checks import check
from edgec.verify.compare import compare
from edgec.verify.gate import labels_problems, parity_checks, recorded_parity_checks
from edgec.verify.resolution import check_eval_size
from edgec.verify.results import (
    package_result,
    recorded_package,
    recorded_reference,
    recorded_summary,
    reference_result,
    same_data_as_build,
)
from edgec_runtime.iospec import SENTENCE_EMBEDDING, SEQUENCE_CLASSIFICATION, TOKEN_CLASSIFICATION
from edgec_runtime.recorded import encode_predictions


def verify_against_source(source, predictor, eval_set, thresholds, ui=None) -> dict:
    """Tokenizer consistency and parity of `predictor` against `source`, by task, and
    the fingerprints a device re-checks the package with (`edgec-run verify`)."""
    if source.task == TOKEN_CLASSIFICATION:
        from edgec.verify.tagger_suite import verify_tagger as verify_task
    elif source.task == SENTENCE_EMBEDDING:
        from edgec.verify.embedder_suite import verify_embedder as verify_task
    else:
        verify_task = verify_classifier
    report = verify_task(source, predictor, eval_set, thresholds, ui)
    report["device_record"] = record_for_devices(predictor, eval_set)
    return report


def record_for_devices(predictor, eval_set) -> dict:
    """Fingerprints of the eval data and of its tokens (edgec_runtime.recorded)."""
    from edgec_runtime.recorded import device_record

    words = getattr(eval_set, "words", None)  # a tagged set is checked on its words
    if words is not None:
        return device_record(predictor, words, None, pre_split=True)
    classifier = predictor.task["name"] == SEQUENCE_CLASSIFICATION
    return device_record(predictor, eval_set.texts, eval_set.pairs if classifier else None, False)


def classifier_headline(parity: dict) -> dict:
    return {
        "agreement": parity.get("agreement"),
        "quality_delta": (parity.get("delta") or {}).get("accuracy"),
        "quality_metric": "accuracy",
    }


def verify_classifier(source, predictor, eval_set, thresholds, ui=None) -> dict:
    """Tokenizer consistency and accuracy parity of a classifier package."""
    from edgec.verify.tokenizer import source_tokenizer_report, trained_max_length

    ui = ui or SilentUI()
    started = time.perf_counter()
    gates = resolve_gates(thresholds)
    with ui.step(f"tokenizer consistency on {len(eval_set)} texts and probes"):
        tok = source_tokenizer_report(
            source, predictor, eval_set.texts, eval_set.pairs, gates["max_unk_rate"]
        )
    # the reference truncates as training did, whatever max_length the package has
    trained = trained_max_length(source)
    reference = reference_result(source, eval_set, trained, ui)
    candidate = package_result(predictor, eval_set, ui)
    parity = compare(reference, candidate, source.labels, eval_set)
    parity["reference_predictions"] = encode_predictions(reference.logits)
    checks = [
        check("labels", labels_problems(source.labels, predictor.labels, "the source model")),
        *tok["checks"],
        *parity_checks(parity, gates),
    ]
    for w in tok["warnings"]:
        ui.note(w)
    return assemble(
        checks,
        list(tok["warnings"]),
        gates,
        eval_set,
        started,
        SEQUENCE_CLASSIFICATION,
        mode="reference",
        parity=parity,
        headline=classifier_headline(parity),
        tokenizer=tok,
    )


# ---------------------------------------------------------------- edgec verify


def verify_package(
    package,
    eval_data,
    *,
    reference=None,
    data=None,
    thresholds: dict | None = None,
    trust_remote_code: bool = False,
    ui=None,
    digest: str | None = None,
    tokenizer_only: bool = False,
) -> dict:
    """Everything `edgec verify` checks; returns the report (status passed, failed, or
    incomplete when no parity check could run: edgec.verify.assemble).

    An eval set too small for the gates is BadInput, before any model runs
    (edgec.verify.resolution). `tokenizer_only` checks integrity and the tokenizer and
    no parity (the backend need not be installed); the report says parity was not
    requested.

    Raises BadInput for unusable inputs (exit 2); failed checks are in the report. A
    package that does not match the pinned `digest` fails the `digest` check and, like
    one that fails its integrity check, is not run: it is not the package pinned.
    """
    from edgec.data import DataOptions
    from edgec.runtime import checking_predictor
    from edgec_runtime.archive import opened
    from edgec_runtime.manifest import (
        digest_problem,
        integrity_problems,
        package_digest,
        read_manifest,
    )
    from edgec_runtime.predictors import task_of

    ui = ui or SilentUI()
    started = time.perf_counter()
    data = data or DataOptions()
    with opened(package) as directory:
        manifest = read_manifest(directory)
        recorded = manifest.get("verification") or {}
        gates = resolve_gates((manifest.get("target") or {}).get("verify"), thresholds)
        labels = manifest["labels"]
        task = task_of(manifest)["name"]
        eval_set = data.load_for(task, eval_data, {name: i for i, name in enumerate(labels)})
        if len(eval_set) == 0:
            from edgec_runtime.errors import BadInput

            raise BadInput(f"{eval_data} holds no examples")
        if not tokenizer_only:
            check_eval_size(task, eval_set, gates, labels)
        pinned = [problem for problem in [digest_problem(manifest, digest)] if problem]
        integrity = integrity_problems(directory, manifest)
        checks = [
            check("integrity", integrity),
            *([check("digest", pinned)] if digest is not None else []),
            check(
                "manifest-labels",
                labels_problems(
                    manifest.get("source_model", {}).get("labels", labels),
                    labels,
                    "the manifest's source model",
                ),
            ),
        ]
        base = {
            "package": str(package),
            "built_verification_status": recorded.get("status", "unknown"),
            "digest": package_digest(manifest),
        }
        if integrity or pinned:
            checks.append(
                check(
                    "tokenizer-and-parity",
                    [],
                    skipped="the package failed its integrity or digest check, so it was not run",
                )
            )
            return assemble(checks, [], gates, eval_set, started, task, mode="integrity", **base)
        warn = []
        if recorded.get("status") == "unverified":
            warn.append("the package is UNVERIFIED: it was built with --no-verify")
        if tokenizer_only:
            report = _verify_tokenizer_only(
                directory, manifest, eval_set, gates, reference, trust_remote_code, ui
            )
            checks += report.pop("checks")
            warn += report.pop("warnings")
            base.update(report, mode="tokenizer-only", parity_requested=False)
            return assemble(checks, warn, gates, eval_set, started, task, **base)
        with ui.step("loading the package"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            predictor, checked_on = checking_predictor(directory, manifest)
        if checked_on:
            base["checked_on"] = checked_on
            warn.append(f"checked with {checked_on}")
        try:
            if reference is not None:
                report = _verify_with_reference(
                    predictor, manifest, eval_set, gates, reference, trust_remote_code, ui
                )
            else:
                report = _verify_with_manifest(predictor, manifest, eval_set, gates, ui)
        finally:
            predictor.close()
    checks += report.pop("checks")
    warn += report.pop("warnings")
    for key in (*ASSEMBLED, "mode"):
        report.pop(key, None)
    mode = "reference" if reference is not None else "recorded"
    return assemble(checks, warn, gates, eval_set, started, task, mode=mode, **base, **report)


def _reference_weight_problems(manifest, source, reference) -> list[str]:
    recorded_sha = manifest.get("source_model", {}).get("sha256")
    if recorded_sha and recorded_sha != source.weights_sha256:
        return [
            f"--reference {reference} is not the model this package was built from: its weights' "
            f"sha256 is {source.weights_sha256[:12]}..., the manifest records {recorded_sha[:12]}...; "
            "parity against it says nothing about this package"
        ]
    return []


def _verify_with_reference(predictor, manifest, eval_set, gates, reference, trust, ui) -> dict:
    from edgec.model import load_source_model
    from edgec_runtime.predictors import task_of

    with ui.step(f"loading the reference {reference}"):
        source = load_source_model(
            reference, trust_remote_code=trust, task=task_of(manifest)["name"]
        )
    sha_problems = _reference_weight_problems(manifest, source, reference)
    report = verify_against_source(source, predictor, eval_set, gates, ui)
    report["checks"].insert(0, check("reference-weights", sha_problems))
    report["reference"] = {"path": str(reference), "sha256": source.weights_sha256}
    return report


@dataclass(frozen=True)
class _PackageFiles:
    """What the tokenizer checks read of a package, without loading its backend."""

    directory: Path
    preprocessing: dict
    task: dict


def _verify_tokenizer_only(directory, manifest, eval_set, gates, reference, trust, ui) -> dict:
    """`edgec verify --tokenizer-only`: the tokenizer checks alone, against the source
    tokenizer with --reference (whose weights must still be the build's), else against
    the tokenizer saved in the package."""
    from edgec_runtime.predictors import task_of

    files = _PackageFiles(Path(directory), manifest["preprocessing"], task_of(manifest))
    not_run = check("parity", [], skipped="not requested (--tokenizer-only)")
    if reference is None:
        tok = _package_tokenizer_report(files, manifest, eval_set, ui, gates)
        return {"tokenizer": tok, "checks": [*tok["checks"], not_run], "warnings": tok["warnings"]}
    from edgec.model import load_source_model
    from edgec.verify.tokenizer import source_tokenizer_report

    with ui.step(f"loading the reference {reference}"):
        source = load_source_model(reference, trust_remote_code=trust, task=files.task["name"])
    pairs = eval_set.pairs if files.task["name"] == SEQUENCE_CLASSIFICATION else None
    with ui.step(f"tokenizer consistency on {len(eval_set)} texts and probes"):
        tok = source_tokenizer_report(source, files, eval_set.texts, pairs, gates["max_unk_rate"])
    weights = check("reference-weights", _reference_weight_problems(manifest, source, reference))
    return {
        "tokenizer": tok,
        "checks": [weights, *tok["checks"], not_run],
        "warnings": tok["warnings"],
        "reference": {"path": str(reference), "sha256": source.weights_sha256},
    }


def _verify_with_manifest(predictor, manifest, eval_set, gates, ui) -> dict:
    """The package compared with the results its build saved in the manifest."""
    started = time.perf_counter()
    verification = manifest.get("verification") or {}
    tok = _package_tokenizer_report(predictor, manifest, eval_set, ui, gates)
    task = predictor.task["name"]
    if task != SEQUENCE_CLASSIFICATION:
        return _verify_task_with_manifest(
            task, predictor, manifest, eval_set, gates, ui, tok, started
        )
    candidate = package_result(predictor, eval_set, ui)
    names = predictor.labels
    parity = compare(recorded_reference(verification, eval_set), candidate, names, eval_set)
    since_build = compare(recorded_package(verification, eval_set), candidate, names, eval_set)
    parity["same_data_as_build"] = same_data_as_build(verification, eval_set)
    if "agreement" in parity:  # the name reports of this mode have always used
        parity["agreement_with_recorded_reference"] = parity["agreement"]
    checks = [
        *tok["checks"],
        *recorded_parity_checks(verification),
        *parity_checks(parity, gates, since_build=since_build),
    ]
    return {
        "parity": parity,
        "recorded_parity": recorded_summary(verification),
        "tokenizer": tok,
        "checks": checks,
        "warnings": [*tok["warnings"], *_recorded_warnings(verification, parity)],
        "manifest_seconds": round(time.perf_counter() - started, 2),
    }


def _verify_task_with_manifest(task, predictor, manifest, eval_set, gates, ui, tok, started):
    """A tagger's or embedder's package against what its build recorded."""
    verification = manifest.get("verification") or {}
    same = same_data_as_build(verification, eval_set)
    if task == TOKEN_CLASSIFICATION:
        from edgec.verify.tagger_suite import verify_tagger_recorded as recorded
    else:
        from edgec.verify.embedder_suite import verify_embedder_recorded as recorded
    part = recorded(predictor, manifest, eval_set, gates, ui, same)
    part["parity"]["same_data_as_build"] = same
    warnings_ = [*tok["warnings"], *getattr(eval_set, "warnings", []), *part["warnings"]]
    return {
        **part,
        "tokenizer": tok,
        "checks": [*tok["checks"], *recorded_parity_checks(verification), *part["checks"]],
        "warnings": warnings_,
        "manifest_seconds": round(time.perf_counter() - started, 2),
    }


def _package_tokenizer_report(predictor, manifest, eval_set, ui, gates) -> dict:
    """The runtime tokenizer against the transformers tokenizer saved in the package;
    `predictor` is anything with the package's `directory`, `preprocessing` and `task`."""
    from transformers import AutoTokenizer

    from edgec.verify.tokenizer import tokenizer_report

    directory = predictor.directory
    with ui.step(f"tokenizer consistency on {len(eval_set)} texts and probes"):
        return tokenizer_report(
            AutoTokenizer.from_pretrained(directory),
            directory / "tokenizer.json",
            predictor.preprocessing,
            eval_set.texts,
            # an embedder's scored pairs are checked against, never encoded as pairs
            eval_set.pairs if predictor.task["name"] == SEQUENCE_CLASSIFICATION else None,
            model_type=manifest.get("source_model", {}).get("model_type"),
            expected_from="the package's tokenizer_config.json (no --reference given)",
            max_unk_rate=gates["max_unk_rate"],
        )


def _recorded_warnings(verification: dict, parity: dict) -> list[str]:
    """What the reader should know about the saved results this mode relied on."""
    recorded = verification.get("parity")
    out = []
    if recorded and not verification.get("eval_fingerprint"):
        out.append("this package's build recorded no fingerprint of its eval data (older edgec)")
    if recorded and recorded.get("labeled") and "candidate" in parity and "delta" not in parity:
        out.append(
            f"the eval data differs from the build's: accuracy is "
            f"{parity['candidate']['accuracy']:.2f}% here against "
            f"{recorded['reference']['accuracy']:.2f}% (source) and "
            f"{recorded['candidate']['accuracy']:.2f}% (package) recorded on the build's data; "
            "pass --reference MODEL for a like-for-like check"
        )
    return out
