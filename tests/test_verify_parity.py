"""Parity metrics and gates on hand-made logits: what each number means, exactly.

Covers the three stages on their own: results (logits or saved predictions), their
comparison, and the gates applied to it.
"""

from __future__ import annotations

import numpy as np
import pytest

from edgec.data import TextSet
from edgec.gates import DEFAULT_GATES
from edgec.verify.checks import failure_lines, failure_messages
from edgec.verify.compare import compare
from edgec.verify.gate import parity_checks
from edgec.verify.results import (
    eval_fingerprint,
    logits_result,
    recorded_package,
    recorded_reference,
)
from edgec.verify.scores import expected_calibration_error
from edgec_runtime.recorded import decode_predictions, encode_predictions

NAMES = ["negative", "positive"]


def parity_report(reference, candidate, names, texts, labels=None):
    """Two logit matrices compared over the texts, as a build compares them."""
    return compare(
        logits_result("the reference", reference),
        logits_result("the package", candidate),
        names,
        TextSet("test", list(texts), labels=labels),
    )


def _logits(margins):
    """Two-class logits whose class-1 minus class-0 difference is `margins`."""
    m = np.asarray(margins, dtype=np.float64)
    return np.stack([-m / 2, m / 2], axis=1)


def test_identical_logits_are_perfect_parity():
    ref = _logits([3, -2, 1, -4])
    report = parity_report(ref, ref.copy(), NAMES, list("abcd"), [1, 0, 0, 0])
    assert report["agreement"] == 1.0
    assert report["max_abs_logit_delta"] == 0.0
    assert report["mean_kl"] == pytest.approx(0.0, abs=1e-12)
    assert report["flipped"] == [] and report["flipped_count"] == 0
    assert report["delta"]["accuracy"] == 0.0
    assert report["reference"]["accuracy"] == 75.0
    assert failure_messages(parity_checks(report, DEFAULT_GATES)) == []


def test_flips_are_listed_worst_first_with_both_labels_and_margins():
    ref = _logits([0.1, 5.0, -3.0, 2.0])
    cand = _logits([-0.1, -4.0, -3.0, -0.5])  # three flips: 0 (tiny), 1 (huge), 3 (medium)
    report = parity_report(ref, cand, NAMES, ["t0", "t1", "t2", "t3"], [1, 1, 0, 1])
    assert report["agreement"] == 0.25
    assert [f["text"] for f in report["flipped"]] == ["t1", "t3", "t0"]
    worst = report["flipped"][0]
    assert (worst["gold"], worst["reference"], worst["candidate"]) == (
        "positive",
        "positive",
        "negative",
    )
    assert worst["reference_margin"] == pytest.approx(5.0)
    assert worst["candidate_margin"] == pytest.approx(4.0)
    assert report["max_abs_logit_delta"] == pytest.approx(4.5)
    assert report["delta"]["accuracy"] == pytest.approx(-75.0)
    assert report["delta"]["per_class"]["positive"]["recall"] == pytest.approx(-100.0)


def test_kl_and_ece_match_hand_computation():
    ref = np.log(np.array([[0.8, 0.2], [0.5, 0.5]]))
    cand = np.log(np.array([[0.6, 0.4], [0.5, 0.5]]))
    report = parity_report(ref, cand, NAMES, ["a", "b"])
    kl = 0.8 * np.log(0.8 / 0.6) + 0.2 * np.log(0.2 / 0.4)
    assert report["mean_kl"] == pytest.approx(kl / 2)
    probs = np.array([[0.9, 0.1], [0.3, 0.7]])
    # bin (0.8667, 0.9333]: confidence 0.9, correct 1; bin (0.6667, 0.7333]: 0.7 vs 0
    assert expected_calibration_error(probs, np.array([0, 0])) == pytest.approx(
        0.5 * 0.1 + 0.5 * 0.7
    )


def test_without_labels_only_agreement_is_checked_and_the_report_says_so():
    ref = _logits([1, 2, 3])
    report = parity_report(ref, ref, NAMES, ["a", "b", "c"])
    assert "no labels" in report["note"]
    checks = {c["name"]: c for c in parity_checks(report, {})}
    assert checks["parity-agreement"]["status"] == "passed"
    for name in ("parity-accuracy", "parity-class-f1", "labels-permutation"):
        assert checks[name]["status"] == "skipped"
        assert "no labels" in checks[name]["message"]


def test_each_gate_fails_with_a_sentence_naming_its_option():
    gold = [1] * 50 + [0] * 50
    ref = _logits([2.0] * 50 + [-2.0] * 50)
    cand = _logits([2.0] * 40 + [-1.0] * 10 + [-2.0] * 50)  # 10 positives flipped
    report = parity_report(ref, cand, NAMES, [str(i) for i in range(100)], gold)
    lines = failure_lines(parity_checks(report, {}))
    gate = f"--min-agreement {DEFAULT_GATES['min_agreement']}"
    assert any(gate in line and "10 of 100" in line for line in lines)
    assert any("--max-accuracy-drop" in line for line in lines)
    assert any("'positive' F1" in line and "--max-class-drop" in line for line in lines)
    relaxed = {"min_agreement": 0.9, "max_accuracy_drop": 10, "max_class_drop": 12}
    assert failure_messages(parity_checks(report, relaxed)) == []


def test_unset_thresholds_fall_back_to_the_defaults():
    ref = _logits([1.0] * 10)
    cand = _logits([1.0] * 9 + [-1.0])
    report = parity_report(ref, cand, NAMES, list("abcdefghij"))
    assert failure_messages(parity_checks(report, {"min_agreement": None})) != []  # default applies
    assert failure_messages(parity_checks(report, {"min_agreement": 0.85})) == []


def test_a_permuted_id2label_is_named_as_such():
    gold = [0] * 40 + [1] * 40
    swapped = _logits([3.0] * 36 + [-3.0] * 4 + [-3.0] * 36 + [3.0] * 4)  # 10 % accuracy
    report = parity_report(swapped, swapped, NAMES, [str(i) for i in range(80)], gold)
    assert report["label_permutation"]["mapping"] == {
        "negative": "positive",
        "positive": "negative",
    }
    (line,) = failure_messages(parity_checks(report, DEFAULT_GATES))
    assert "labels look permuted" in line and "90.0%" in line
    honest = parity_report(-swapped, -swapped, NAMES, [str(i) for i in range(80)], gold)
    assert honest["label_permutation"] is None


def test_reference_predictions_round_trip_compactly():
    logits = np.eye(3)[[2, 0, 1, 1]]
    encoded = encode_predictions(logits)
    assert encoded == "2011"
    assert decode_predictions(encoded).tolist() == [2, 0, 1, 1]
    assert encode_predictions(np.zeros((2, 40))) is None


def _saved_build(reference_logits, candidate_logits, eval_set):
    """The `verification` section a build writes, for these logits on `eval_set`."""
    parity = parity_report(
        reference_logits, candidate_logits, NAMES, eval_set.texts, eval_set.labels
    )
    parity["reference_predictions"] = encode_predictions(reference_logits)
    return {"parity": parity, "eval_fingerprint": eval_fingerprint(eval_set)}


def test_recorded_predictions_go_through_the_same_comparison_and_gates():
    eval_set = TextSet("test", ["t0", "t1", "t2", "t3"], labels=[1, 1, 0, 1])
    built = _logits([0.1, 5.0, -3.0, 2.0])
    verification = _saved_build(built, built, eval_set)
    now = logits_result("the package", _logits([-0.1, -4.0, -3.0, -0.5]))
    report = compare(recorded_reference(verification, eval_set), now, NAMES, eval_set)
    assert report["agreement"] == 0.25
    # no reference margins were saved: flips rank by the package's margin alone
    assert [f["text"] for f in report["flipped"]] == ["t1", "t3", "t0"]
    assert all(f["reference_margin"] is None for f in report["flipped"])
    assert "max_abs_logit_delta" not in report
    assert "without reference logits" in report["not_compared"]["logit deltas"]
    assert report["delta"]["accuracy"] == pytest.approx(-75.0)  # the recorded accuracy: 100 %
    checks = {c["name"]: c for c in parity_checks(report, DEFAULT_GATES)}
    assert checks["parity-logit-deltas"]["status"] == "skipped"
    assert "without reference logits" in checks["parity-logit-deltas"]["message"]
    assert checks["parity-agreement"]["status"] == "failed"
    assert checks["parity-accuracy"]["status"] == "failed"


def test_a_saved_result_applies_only_to_the_data_it_was_recorded_on():
    eval_set = TextSet("test", ["a", "b", "c"], labels=[0, 1, 1])
    ref = _logits([-1.0, 2.0, 3.0])
    verification = _saved_build(ref, ref, eval_set)
    same = recorded_reference(verification, eval_set)
    assert same.predictions.tolist() == [0, 1, 1] and same.metrics["accuracy"] == 100.0
    other = recorded_reference(verification, TextSet("test", ["a", "b", "x"], labels=[0, 1, 1]))
    assert other.predictions is None and other.metrics is None
    assert "differs from the build's" in other.note
    nothing = recorded_reference({}, eval_set)
    assert nothing.predictions is None and "recorded no parity" in nothing.note
    report = compare(other, logits_result("the package", ref), NAMES, eval_set)
    checks = {c["name"]: c for c in parity_checks(report, DEFAULT_GATES)}
    for name in ("parity-agreement", "parity-accuracy", "parity-class-f1"):
        assert checks[name]["status"] == "skipped"
        assert "differs from the build's" in checks[name]["message"]
    assert checks["labels-permutation"]["status"] == "passed"  # needs no reference


def test_a_package_that_scores_otherwise_than_at_build_time_fails():
    gold = [1] * 50 + [0] * 50
    eval_set = TextSet("test", [str(i) for i in range(100)], labels=gold)
    ref = _logits([2.0] * 50 + [-2.0] * 50)
    verification = _saved_build(ref, ref, eval_set)
    drifted = _logits([2.0] * 46 + [-1.0] * 4 + [-2.0] * 50)  # 4 examples: over 3
    for logits, fails in ((ref, False), (drifted, True)):
        now = logits_result("the package", logits)
        report = compare(recorded_reference(verification, eval_set), now, NAMES, eval_set)
        since_build = compare(recorded_package(verification, eval_set), now, NAMES, eval_set)
        relaxed = {"min_agreement": 0.5, "max_accuracy_drop": 10, "max_class_drop": 10}
        lines = failure_lines(parity_checks(report, relaxed, since_build=since_build))
        changed = [line for line in lines if "something in it changed" in line]
        assert bool(changed) == fails, lines
