"""Accuracy parity between a reference model and a compiled one, on the user's data.

Accuracy alone hides damage (two wrongs can swap places), so the report also gives
agreement, per-class scores, logit and probability drift and calibration, and lists
every example whose prediction flipped, worst first.
"""

from __future__ import annotations

import numpy as np

from edgec.gates import resolve_gates
from edgec.runtime import softmax
from edgec.verify.checks import check

ECE_BINS = 15
FLIPS_KEPT = 50
# When some other assignment of label names to the model's outputs beats the one in
# id2label by this many points, the labels are almost certainly permuted.
PERMUTATION_GAIN = 10.0


def expected_calibration_error(
    probs: np.ndarray, labels: np.ndarray, bins: int = ECE_BINS
) -> float:
    confidence = probs.max(axis=1)
    correct = probs.argmax(axis=1) == labels
    edges = np.linspace(0.0, 1.0, bins + 1)
    ece = 0.0
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        in_bin = (confidence > lo) & (confidence <= hi)
        if in_bin.any():
            ece += in_bin.mean() * abs(correct[in_bin].mean() - confidence[in_bin].mean())
    return float(ece)


def _margin(logits: np.ndarray) -> np.ndarray:
    """Top-1 minus top-2 logit: how sure the model was of its choice."""
    top2 = np.sort(logits, axis=1)[:, -2:]
    return top2[:, 1] - top2[:, 0]


def label_metrics(logits: np.ndarray, labels: np.ndarray, names: list[str]) -> dict:
    from sklearn.metrics import accuracy_score, f1_score, precision_recall_fscore_support

    pred = logits.argmax(axis=1)
    ids = list(range(len(names)))
    precision, recall, f1, support = precision_recall_fscore_support(
        labels, pred, labels=ids, zero_division=0
    )
    return {
        "accuracy": float(accuracy_score(labels, pred)) * 100,
        "macro_f1": float(f1_score(labels, pred, labels=ids, average="macro", zero_division=0))
        * 100,
        "per_class": {
            name: {
                "precision": float(precision[i]) * 100,
                "recall": float(recall[i]) * 100,
                "f1": float(f1[i]) * 100,
                "support": int(support[i]),
            }
            for i, name in enumerate(names)
        },
        "ece": expected_calibration_error(softmax(logits), labels),
    }


def flipped_examples(
    reference, candidate, texts, labels, names, limit=FLIPS_KEPT, pairs=None
) -> list[dict]:
    """Examples whose prediction changed, worst first: the flips both models were most
    sure of (largest sum of margins) are the ones a user will notice."""
    ref_pred, cand_pred = reference.argmax(axis=1), candidate.argmax(axis=1)
    flipped = np.flatnonzero(ref_pred != cand_pred)
    ref_margin, cand_margin = _margin(reference), _margin(candidate)
    worst_first = flipped[np.argsort(-(ref_margin[flipped] + cand_margin[flipped]), kind="stable")]
    return [
        {
            "index": int(i),
            "text": texts[i],
            **({"text_pair": pairs[i]} if pairs is not None else {}),
            "gold": names[labels[i]] if labels is not None else None,
            "reference": names[ref_pred[i]],
            "candidate": names[cand_pred[i]],
            "reference_margin": float(ref_margin[i]),
            "candidate_margin": float(cand_margin[i]),
        }
        for i in worst_first[:limit]
    ]


def parity_report(
    reference: np.ndarray,
    candidate: np.ndarray,
    names: list[str],
    texts: list[str],
    labels: list[int] | None = None,
    pairs: list[str] | None = None,
) -> dict:
    """Compare two logit matrices over the same examples (rows in the same order)."""
    reference = np.asarray(reference, dtype=np.float64)
    candidate = np.asarray(candidate, dtype=np.float64)
    p, q = softmax(reference), softmax(candidate)
    eps = 1e-12
    kl = np.sum(p * (np.log(p + eps) - np.log(q + eps)), axis=1)
    delta = np.abs(reference - candidate)
    report = {
        "examples": len(texts),
        "labeled": labels is not None,
        "agreement": float((reference.argmax(1) == candidate.argmax(1)).mean()),
        "max_abs_logit_delta": float(delta.max()),
        "mean_abs_logit_delta": float(delta.mean()),
        "mean_kl": float(kl.mean()),
        "flipped_count": int((reference.argmax(1) != candidate.argmax(1)).sum()),
        "flipped": flipped_examples(reference, candidate, texts, labels, names, pairs=pairs),
    }
    if labels is None:
        report["note"] = "no labels: only agreement and logit deltas were checked"
        return report
    gold = np.asarray(labels)
    ref, cand = label_metrics(reference, gold, names), label_metrics(candidate, gold, names)
    report["reference"], report["candidate"] = ref, cand
    report["delta"] = {
        "accuracy": cand["accuracy"] - ref["accuracy"],
        "macro_f1": cand["macro_f1"] - ref["macro_f1"],
        "ece": cand["ece"] - ref["ece"],
        "per_class_f1": {n: cand["per_class"][n]["f1"] - ref["per_class"][n]["f1"] for n in names},
        "per_class": {
            n: {
                k: cand["per_class"][n][k] - ref["per_class"][n][k]
                for k in ("precision", "recall", "f1")
            }
            for n in names
        },
    }
    report["label_permutation"] = label_permutation(candidate, gold, names)
    return report


def label_permutation(logits: np.ndarray, labels: np.ndarray, names: list[str]) -> dict | None:
    """The assignment of names to outputs that fits the gold labels best, when it is not
    the identity and beats it by PERMUTATION_GAIN points: a permuted id2label (or eval
    labels written with another mapping) shows up as exactly this."""
    from scipy.optimize import linear_sum_assignment
    from sklearn.metrics import confusion_matrix

    k = len(names)
    pred = logits.argmax(axis=1)
    # by_output[o, g]: examples the model put in output o whose gold label is g
    by_output = confusion_matrix(labels, pred, labels=list(range(k))).T
    outputs, golds = linear_sum_assignment(-by_output)
    mapping = dict(zip(outputs.tolist(), golds.tolist(), strict=True))
    best_correct = int(by_output[outputs, golds].sum())
    now_correct = int(np.trace(by_output))
    gain = (best_correct - now_correct) / max(len(labels), 1) * 100
    if all(mapping[o] == o for o in mapping) or gain < PERMUTATION_GAIN:
        return None
    return {
        "mapping": {names[o]: names[g] for o, g in mapping.items() if o != g},
        "accuracy": now_correct / len(labels) * 100,
        "permuted_accuracy": best_correct / len(labels) * 100,
    }


def permutation_problems(report: dict) -> list[str]:
    found = report.get("label_permutation")
    if not found:
        return []
    swap = ", ".join(f"{a} -> {b}" for a, b in found["mapping"].items())
    return [
        f"the labels look permuted: reading the outputs as {swap} would raise accuracy from "
        f"{found['accuracy']:.1f}% to {found['permuted_accuracy']:.1f}%; check id2label in "
        "config.json and the label column of the eval data"
    ]


def parity_checks(report: dict, thresholds: dict) -> list[dict]:
    """The parity gates as named checks (see edgec.verify.checks)."""
    t = resolve_gates(thresholds)
    agreement = []
    if report["agreement"] < t["min_agreement"]:
        agreement.append(
            f"agreement {report['agreement']:.4f} is below --min-agreement {t['min_agreement']} "
            f"({report['flipped_count']} of {report['examples']} predictions flipped)"
        )
    checks = [
        check(
            "parity-agreement",
            agreement,
            info=f"agreement {report['agreement']:.4f}, max |dlogit| {report['max_abs_logit_delta']:.4f}",
        )
    ]
    if not report["labeled"]:
        why = "the eval data has no labels: only agreement and logit deltas were checked"
        return checks + [
            check(name, [], skipped=why)
            for name in ("parity-accuracy", "parity-class-f1", "labels-permutation")
        ]
    drop = -report["delta"]["accuracy"]
    accuracy = []
    if drop > t["max_accuracy_drop"]:
        accuracy.append(
            f"accuracy fell {drop:.2f} points ({report['reference']['accuracy']:.2f}% -> "
            f"{report['candidate']['accuracy']:.2f}%), over --max-accuracy-drop {t['max_accuracy_drop']}"
        )
    classes = [
        f"class {name!r} F1 fell {-d:.2f} points, over --max-class-drop {t['max_class_drop']}"
        for name, d in report["delta"]["per_class_f1"].items()
        if -d > t["max_class_drop"]
    ]
    return checks + [
        check(
            "parity-accuracy",
            accuracy,
            info=f"accuracy {report['reference']['accuracy']:.2f}% -> "
            f"{report['candidate']['accuracy']:.2f}% ({report['delta']['accuracy']:+.2f} pts)",
        ),
        check("parity-class-f1", classes),
        check("labels-permutation", permutation_problems(report)),
    ]
