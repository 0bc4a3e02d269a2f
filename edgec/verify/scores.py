"""One model's logits against the gold labels: accuracy, per-class scores, calibration,
and whether its label names look permuted.

These are the one-sided measurements a comparison puts next to each other; a
permuted id2label is only visible here, since both models would share it.
"""

from __future__ import annotations

import numpy as np

from edgec_runtime.predictors import softmax

ECE_BINS = 15
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


def label_metrics(logits: np.ndarray, labels: np.ndarray, names: list[str]) -> dict:
    """Accuracy, macro-F1 and per-class precision/recall/F1 in points, and ECE."""
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
