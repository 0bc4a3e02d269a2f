"""Stage 2 of verification, compare: two results on the same eval set, side by side.

Accuracy alone hides damage (two wrongs can swap places), so a comparison also gives
agreement, per-class scores, logit and probability drift and calibration, and lists
every example whose prediction flipped, worst first. Agreement carries its Wilson
interval and the accuracy delta its paired interval and McNemar test (resolution.py):
a figure on a few examples is not a measurement. It is the same comparison
whether both sides were run here or one is what a build saved: each figure is
computed when both results hold what it needs, and `not_compared` says, for each one
that is not, which side lacked what and why. Nothing here applies a gate.
"""

from __future__ import annotations

import numpy as np

from edgec.verify.resolution import paired_accuracy, wilson_interval
from edgec.verify.results import Result
from edgec.verify.scores import label_metrics, label_permutation
from edgec_runtime.predictors import softmax

FLIPS_KEPT = 50
NO_LABELS = "the eval data has no labels"


def compare(reference: Result, candidate: Result, names: list[str], eval_set) -> dict:
    """Compare `candidate` with `reference` over `eval_set` (rows in the same order)."""
    report: dict = {
        "examples": len(eval_set),
        "labeled": eval_set.labels is not None,
        "reference_origin": reference.origin,
    }
    missing = {}
    if _has_predictions(reference) and _has_predictions(candidate):
        report.update(_agreement(reference, candidate, names, eval_set))
    else:
        missing["agreement"] = _lacking("predictions", _has_predictions, reference, candidate)
    if _has_logits(reference) and _has_logits(candidate):
        report.update(_logit_drift(reference.logits, candidate.logits))
    else:
        missing["logit deltas"] = _lacking("logits", _has_logits, reference, candidate)
    if eval_set.labels is None:
        report["note"] = "no labels: accuracy and per-class scores were not computed"
        missing["accuracy"] = NO_LABELS
    else:
        gold = np.asarray(eval_set.labels)
        report.update(_label_scores(reference, candidate, gold, names))
        if "delta" not in report:
            missing["accuracy"] = _lacking("label metrics", _has_scores, reference, candidate)
        elif _has_predictions(reference) and _has_predictions(candidate):
            report["accuracy_delta_interval"] = paired_accuracy(
                reference.predictions == gold, candidate.predictions == gold
            )
        else:
            missing["accuracy interval"] = _lacking(
                "per-example predictions", _has_predictions, reference, candidate
            )
    if missing:
        report["not_compared"] = missing
    return report


def _lacking(what: str, holds, reference: Result, candidate: Result) -> str:
    """Which side lacks `what` (the reference when both do), and why, in its own note."""
    role, result = ("reference", reference) if not holds(reference) else ("candidate", candidate)
    return f"without {role} {what}" + (f" ({result.note})" if result.note else "")


def _has_predictions(result: Result) -> bool:
    return result.predictions is not None


def _has_logits(result: Result) -> bool:
    return result.logits is not None


def _has_scores(result: Result) -> bool:
    return result.logits is not None or result.metrics is not None


def _margin(logits: np.ndarray) -> np.ndarray:
    """Top-1 minus top-2 logit: how sure the model was of its choice."""
    top2 = np.sort(logits, axis=1)[:, -2:]
    return top2[:, 1] - top2[:, 0]


def _agreement(reference: Result, candidate: Result, names, eval_set) -> dict:
    same = reference.predictions == candidate.predictions
    return {
        "agreement": float(same.mean()) if len(same) else 1.0,
        "agreement_interval": wilson_interval(int(same.sum()), len(same)),
        "flipped_count": int((~same).sum()),
        "flipped": flipped_examples(reference, candidate, names, eval_set),
    }


def flipped_examples(reference: Result, candidate: Result, names, eval_set, limit=FLIPS_KEPT):
    """Examples whose prediction changed, worst first: the flips both models were most
    sure of (largest sum of margins) are the ones a user will notice. A side without
    logits has no margin (None) and ranks by the other side's alone."""
    ref_pred, cand_pred = reference.predictions, candidate.predictions
    n = len(ref_pred)
    ref_margin = _margin(reference.logits) if reference.logits is not None else None
    cand_margin = _margin(candidate.logits) if candidate.logits is not None else None
    flipped = np.flatnonzero(ref_pred != cand_pred)
    sure = (ref_margin if ref_margin is not None else np.zeros(n)) + (
        cand_margin if cand_margin is not None else np.zeros(n)
    )
    worst_first = flipped[np.argsort(-sure[flipped], kind="stable")]
    labels, pairs = eval_set.labels, eval_set.pairs
    return [
        {
            "index": int(i),
            "text": eval_set.texts[i],
            **({"text_pair": pairs[i]} if pairs is not None else {}),
            "gold": names[labels[i]] if labels is not None else None,
            "reference": names[ref_pred[i]],
            "candidate": names[cand_pred[i]],
            "reference_margin": float(ref_margin[i]) if ref_margin is not None else None,
            "candidate_margin": float(cand_margin[i]) if cand_margin is not None else None,
        }
        for i in worst_first[:limit]
    ]


def _logit_drift(reference: np.ndarray, candidate: np.ndarray) -> dict:
    """max/mean |dlogit| and mean KL(reference || candidate) between the softmaxes."""
    reference = np.asarray(reference, dtype=np.float64)
    candidate = np.asarray(candidate, dtype=np.float64)
    p, q = softmax(reference), softmax(candidate)
    eps = 1e-12
    kl = np.sum(p * (np.log(p + eps) - np.log(q + eps)), axis=1)
    delta = np.abs(reference - candidate)
    return {
        "max_abs_logit_delta": float(delta.max()) if delta.size else 0.0,
        "mean_abs_logit_delta": float(delta.mean()) if delta.size else 0.0,
        "mean_kl": float(kl.mean()) if kl.size else 0.0,
    }


def _scores(result: Result, gold: np.ndarray, names) -> dict | None:
    """Label metrics computed from the logits, else those the result saved."""
    if result.logits is not None:
        return label_metrics(result.logits, gold, names)
    return result.metrics


def _label_scores(reference: Result, candidate: Result, gold, names) -> dict:
    out: dict = {}
    ref, cand = _scores(reference, gold, names), _scores(candidate, gold, names)
    if ref is not None:
        out["reference"] = ref
    if cand is not None:
        out["candidate"] = cand
    if ref is not None and cand is not None:
        out["delta"] = metric_deltas(ref, cand)
    out["label_permutation"] = (
        label_permutation(candidate.logits, gold, names) if candidate.logits is not None else None
    )
    return out


def metric_deltas(ref: dict, cand: dict) -> dict:
    """Candidate minus reference, in points, overall and for each class both scored."""
    classes = [n for n in ref["per_class"] if n in cand["per_class"]]
    return {
        "accuracy": cand["accuracy"] - ref["accuracy"],
        "macro_f1": cand["macro_f1"] - ref["macro_f1"],
        "ece": cand["ece"] - ref["ece"],
        "per_class_f1": {
            n: cand["per_class"][n]["f1"] - ref["per_class"][n]["f1"] for n in classes
        },
        "per_class": {
            n: {
                k: cand["per_class"][n][k] - ref["per_class"][n][k]
                for k in ("precision", "recall", "f1")
            }
            for n in classes
        },
    }
