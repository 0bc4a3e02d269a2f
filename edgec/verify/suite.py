"""The verification suite: every check a build gate or `edgec verify` runs, in one report.

Two modes:

- against the source model (a build, or `edgec verify --reference MODEL`): tokenizer
  consistency against the source tokenizer, and parity of the package's logits against
  PyTorch FP32 logits on the same texts;
- against the manifest (`edgec verify` without --reference): integrity, the tokenizer
  against the package's own transformers config and the manifest's preprocessing, and
  the package's accuracy and predictions against what the build recorded. Without
  reference logits, logit deltas and KL cannot be re-checked, and the report says so.

Every gate is a named check (see checks.py), so the JSON report, the JUnit file, the
Markdown summary and the CLI's few lines all say the same thing.
"""

from __future__ import annotations

import hashlib
import json
import time
import warnings

import numpy as np

from edgec.ui import SilentUI
from edgec.verify.checks import check, failure_lines

PREDICTION_DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"
# Re-running the same package on the same data should reproduce the recorded accuracy;
# another CPU's int8 kernels can move a near-tie, so allow this many points of noise.
RECORDED_ACCURACY_NOISE = 0.5


def eval_fingerprint(eval_set) -> str:
    """sha256 of the texts, pairs and labels: tells whether two runs used the same data."""
    blob = json.dumps([eval_set.texts, eval_set.pairs, eval_set.labels], ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def encode_predictions(logits: np.ndarray) -> str | None:
    """The reference's predicted class per example, one base-36 digit each (compact
    enough for the manifest; lets `edgec verify` re-check agreement without the model)."""
    if logits.shape[1] > len(PREDICTION_DIGITS):
        return None
    return "".join(PREDICTION_DIGITS[i] for i in logits.argmax(axis=1))


def decode_predictions(encoded: str) -> np.ndarray:
    return np.array([PREDICTION_DIGITS.index(c) for c in encoded], dtype=np.int64)


ASSEMBLED = (
    "status",
    "failures",
    "not_checked",
    "thresholds",
    "eval_data",
    "eval_examples",
    "eval_fingerprint",
    "seconds",
)


def _assemble(checks, warnings_, thresholds, eval_set, started, **sections) -> dict:
    failures = failure_lines(checks)
    return {
        "status": "failed" if failures else "passed",
        "failures": failures,
        "checks": checks,
        "warnings": warnings_,
        "not_checked": [f"{c['name']}: {c['message']}" for c in checks if c["status"] == "skipped"],
        "thresholds": thresholds,
        "eval_data": eval_set.source if eval_set is not None else None,
        "eval_examples": len(eval_set) if eval_set is not None else 0,
        "eval_fingerprint": eval_fingerprint(eval_set) if eval_set is not None else None,
        **sections,
        "seconds": round(time.perf_counter() - started, 2),
    }


def labels_problems(expected: list[str], package: list[str], what: str) -> list[str]:
    if list(expected) == list(package):
        return []
    if sorted(expected) == sorted(package):
        return [
            f"the package's labels {package} are {what}'s {expected} in another order: "
            "its outputs would be named wrongly; rebuild the package"
        ]
    return [f"the package's labels {package} differ from {what}'s {expected}"]


def verify_against_source(source, predictor, eval_set, thresholds, ui=None) -> dict:
    """Tokenizer consistency and accuracy parity of `predictor` against `source`."""
    from edgec.gates import resolve_gates
    from edgec.verify.parity import parity_checks, parity_report
    from edgec.verify.reference import reference_logits
    from edgec.verify.tokenizer import tokenizer_report, training_max_length

    ui = ui or SilentUI()
    started = time.perf_counter()
    thresholds = resolve_gates(thresholds)
    with ui.step(f"tokenizer consistency on {len(eval_set)} texts and probes"):
        tok = tokenizer_report(
            source.tokenizer,
            predictor.directory / "tokenizer.json",
            predictor.preprocessing,
            eval_set.texts,
            eval_set.pairs,
            config=source.config,
        )
    from edgec.model import position_limit

    trained = training_max_length(
        source.tokenizer, source.max_length, position_limit(source.config)
    )
    reference = reference_logits(
        source, eval_set.texts, eval_set.pairs, track=ui.track, max_length=trained
    )
    with ui.step(f"running the package on {len(eval_set)} texts"):
        candidate = predictor.logits(eval_set.texts, eval_set.pairs)
    parity = parity_report(
        reference, candidate, source.labels, eval_set.texts, eval_set.labels, eval_set.pairs
    )
    parity["reference_predictions"] = encode_predictions(reference)
    checks = [
        check("labels", labels_problems(source.labels, predictor.labels, "the source model")),
        *tok["checks"],
        *parity_checks(parity, thresholds),
    ]
    for w in tok["warnings"]:
        ui.note(w)
    return _assemble(
        checks,
        list(tok["warnings"]),
        thresholds,
        eval_set,
        started,
        mode="reference",
        parity=parity,
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
) -> dict:
    """Everything `edgec verify` checks; returns the report (status passed or failed).

    Raises BadInput for unusable inputs (exit 2); failed checks are in the report.
    """
    from edgec.data import DataOptions
    from edgec.gates import resolve_gates
    from edgec.package import integrity_problems, opened, read_manifest
    from edgec.runtime import checking_predictor

    ui = ui or SilentUI()
    started = time.perf_counter()
    data = data or DataOptions()
    with opened(package) as directory:
        manifest = read_manifest(directory)
        recorded = manifest.get("verification") or {}
        gates = resolve_gates((manifest.get("target") or {}).get("verify"), thresholds)
        labels = manifest["labels"]
        eval_set = data.load(eval_data, {name: i for i, name in enumerate(labels)})
        if len(eval_set) == 0:
            from edgec.errors import BadInput

            raise BadInput(f"{eval_data} holds no examples")
        integrity = integrity_problems(directory, manifest)
        checks = [
            check("integrity", integrity),
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
        }
        if integrity:
            checks.append(
                check(
                    "tokenizer-and-parity",
                    [],
                    skipped="the package failed its integrity check, so it was not run",
                )
            )
            return _assemble(checks, [], gates, eval_set, started, mode="integrity", **base)
        warn = []
        if recorded.get("status") == "unverified":
            warn.append("the package is UNVERIFIED: it was built with --no-verify")
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
    return _assemble(checks, warn, gates, eval_set, started, mode=mode, **base, **report)


def _verify_with_reference(predictor, manifest, eval_set, gates, reference, trust, ui) -> dict:
    from edgec.model import load_source_model

    with ui.step(f"loading the reference {reference}"):
        source = load_source_model(reference, trust_remote_code=trust)
    recorded_sha = manifest.get("source_model", {}).get("sha256")
    sha_problems = []
    if recorded_sha and recorded_sha != source.weights_sha256:
        sha_problems.append(
            f"--reference {reference} is not the model this package was built from: its weights' "
            f"sha256 is {source.weights_sha256[:12]}..., the manifest records {recorded_sha[:12]}...; "
            "parity against it says nothing about this package"
        )
    report = verify_against_source(source, predictor, eval_set, gates, ui)
    report["checks"].insert(0, check("reference-weights", sha_problems))
    report["reference"] = {"path": str(reference), "sha256": source.weights_sha256}
    return report


def _verify_with_manifest(predictor, manifest, eval_set, gates, ui) -> dict:
    from transformers import AutoTokenizer

    from edgec.verify.parity import label_metrics, label_permutation, permutation_problems
    from edgec.verify.tokenizer import tokenizer_report

    started = time.perf_counter()
    directory = predictor.directory
    with ui.step(f"tokenizer consistency on {len(eval_set)} texts and probes"):
        tokenizer = AutoTokenizer.from_pretrained(directory)
        tok = tokenizer_report(
            tokenizer,
            directory / "tokenizer.json",
            predictor.preprocessing,
            eval_set.texts,
            eval_set.pairs,
            model_type=manifest.get("source_model", {}).get("model_type"),
            expected_from="the package's tokenizer_config.json (no --reference given)",
        )
    with ui.step(f"running the package on {len(eval_set)} texts"):
        logits = predictor.logits(eval_set.texts, eval_set.pairs)
    names = predictor.labels
    checks = list(tok["checks"])
    warn = list(tok["warnings"])
    recorded = (manifest.get("verification") or {}).get("parity")
    built_fingerprint = (manifest.get("verification") or {}).get("eval_fingerprint")
    same_data = bool(recorded and built_fingerprint == eval_fingerprint(eval_set))
    if recorded and not built_fingerprint:
        warn.append("this package's build recorded no fingerprint of its eval data (older edgec)")
    current: dict = {
        "examples": len(eval_set),
        "labeled": eval_set.labels is not None,
        "same_data_as_build": same_data,
    }
    no_logits = (
        "no --reference: without reference logits, max/mean |dlogit| and KL were not re-checked"
    )
    checks.append(check("parity-logit-deltas", [], skipped=no_logits))
    if not recorded:
        checks.append(
            check(
                "parity-recorded",
                [
                    "the package records no parity (built with --no-verify) and no --reference "
                    "was given: nothing to check its accuracy against; pass --reference MODEL"
                ],
            )
        )
    encoded = (recorded or {}).get("reference_predictions")
    if same_data and encoded and len(encoded) == len(eval_set):
        agreement = float((decode_predictions(encoded) == logits.argmax(axis=1)).mean())
        current["agreement_with_recorded_reference"] = agreement
        problems = (
            [
                f"agreement with the reference predictions recorded at build time is "
                f"{agreement:.4f}, below --min-agreement {gates['min_agreement']}"
            ]
            if agreement < gates["min_agreement"]
            else []
        )
        checks.append(
            check("parity-agreement", problems, info=f"agreement {agreement:.4f} (recorded)")
        )
    else:
        why = (
            "no --reference and the eval data differs from the build's, so there are no "
            "reference predictions for it: agreement was not re-checked"
            if recorded
            else "no --reference and nothing recorded: agreement was not checked"
        )
        checks.append(check("parity-agreement", [], skipped=why))
    if eval_set.labels is None:
        why = "the eval data has no labels: accuracy was not checked"
        checks += [check(n, [], skipped=why) for n in ("parity-accuracy", "parity-class-f1")]
    else:
        gold = np.asarray(eval_set.labels)
        metrics = label_metrics(logits, gold, names)
        current["candidate"] = metrics
        current["label_permutation"] = label_permutation(logits, gold, names)
        checks.append(check("labels-permutation", permutation_problems(current)))
        checks += _recorded_accuracy_checks(recorded, metrics, same_data, gates, warn)
    return {
        "parity": current,
        "recorded_parity": _recorded_summary(recorded),
        "tokenizer": tok,
        "checks": checks,
        "warnings": warn,
        "manifest_seconds": round(time.perf_counter() - started, 2),
    }


def _recorded_summary(recorded: dict | None) -> dict | None:
    if not recorded:
        return None
    keep = ("examples", "agreement", "max_abs_logit_delta", "mean_abs_logit_delta", "mean_kl")
    out = {k: recorded.get(k) for k in keep}
    if recorded.get("labeled"):
        out["reference_accuracy"] = recorded["reference"]["accuracy"]
        out["candidate_accuracy"] = recorded["candidate"]["accuracy"]
    return out


def metrics_examples(metrics: dict) -> int:
    return sum(c["support"] for c in metrics["per_class"].values())


def _recorded_accuracy_checks(recorded, metrics, same_data, gates, warn) -> list[dict]:
    """Accuracy now against the accuracy recorded at build time, on the same data."""
    if not (recorded and recorded.get("labeled")):
        why = "the build recorded no labeled parity: accuracy could not be compared"
        return [check(n, [], skipped=why) for n in ("parity-accuracy", "parity-class-f1")]
    ref_acc = recorded["reference"]["accuracy"]
    built_acc = recorded["candidate"]["accuracy"]
    now = metrics["accuracy"]
    if not same_data:
        warn.append(
            f"the eval data differs from the build's: accuracy is {now:.2f}% here against "
            f"{ref_acc:.2f}% (source) and {built_acc:.2f}% (package) recorded on the build's "
            "data; pass --reference MODEL for a like-for-like check"
        )
        why = "no --reference and the eval data differs from the build's: not comparable"
        return [check(n, [], skipped=why) for n in ("parity-accuracy", "parity-class-f1")]
    problems = []
    if ref_acc - now > gates["max_accuracy_drop"]:
        problems.append(
            f"accuracy is {now:.2f}%, {ref_acc - now:.2f} points under the source model's "
            f"{ref_acc:.2f}% recorded at build time (over --max-accuracy-drop {gates['max_accuracy_drop']})"
        )
    # a different CPU can move a few near-ties: allow 0.5 points or 3 examples
    noise = max(RECORDED_ACCURACY_NOISE, 300 / max(metrics_examples(metrics), 1))
    if abs(now - built_acc) > noise:
        problems.append(
            f"the package now scores {now:.2f}% on the build's eval data but scored {built_acc:.2f}% "
            "when it was built: something in it changed"
        )
    classes = []
    for name, ref in recorded["reference"]["per_class"].items():
        now_f1 = metrics["per_class"].get(name, {}).get("f1", 0.0)
        if ref["f1"] - now_f1 > gates["max_class_drop"]:
            classes.append(
                f"class {name!r} F1 is {now_f1:.2f}, {ref['f1'] - now_f1:.2f} points under the "
                f"recorded {ref['f1']:.2f} (over --max-class-drop {gates['max_class_drop']})"
            )
    return [
        check(
            "parity-accuracy",
            problems,
            info=f"accuracy {now:.2f}% (recorded: source {ref_acc:.2f}%, package {built_acc:.2f}%)",
        ),
        check("parity-class-f1", classes),
    ]
