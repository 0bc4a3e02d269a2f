"""Accuracy parity between a reference model and a compiled one, on the user's data.

Accuracy alone hides damage (two wrongs can swap places), so the report also gives
agreement, per-class scores, logit and probability drift and calibration, and lists
every example whose prediction flipped, worst first.
"""

from __future__ import annotations

import numpy as np

from edgec.runtime import softmax

ECE_BINS = 15


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


def flipped_examples(reference, candidate, texts, labels, names, limit=50) -> list[dict]:
    ref_pred, cand_pred = reference.argmax(axis=1), candidate.argmax(axis=1)
    flipped = np.flatnonzero(ref_pred != cand_pred)
    ref_margin, cand_margin = _margin(reference), _margin(candidate)
    worst_first = flipped[np.argsort(-(ref_margin[flipped] + cand_margin[flipped]))]
    return [
        {
            "index": int(i),
            "text": texts[i],
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
        "flipped": flipped_examples(reference, candidate, texts, labels, names),
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
    }
    return report


def parity_failures(report: dict, thresholds: dict) -> list[str]:
    """The gates, as sentences; empty means the candidate passes."""
    failures = []
    if report["agreement"] < thresholds["min_agreement"]:
        failures.append(
            f"agreement {report['agreement']:.4f} is below --min-agreement {thresholds['min_agreement']}"
        )
    if report["labeled"]:
        drop = -report["delta"]["accuracy"]
        if drop > thresholds["max_accuracy_drop"]:
            failures.append(
                f"accuracy fell {drop:.2f} points ({report['reference']['accuracy']:.2f} -> "
                f"{report['candidate']['accuracy']:.2f}), over --max-accuracy-drop {thresholds['max_accuracy_drop']}"
            )
        for name, d in report["delta"]["per_class_f1"].items():
            if -d > thresholds["max_class_drop"]:
                failures.append(
                    f"class {name!r} F1 fell {-d:.2f} points, over --max-class-drop {thresholds['max_class_drop']}"
                )
    return failures
