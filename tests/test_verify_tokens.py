"""NER comparison and gates on hand-made tags: each figure checked against seqeval itself."""

from __future__ import annotations

import pytest
from seqeval.metrics import f1_score
from seqeval.scheme import IOB2

from edgec.verify.checks import failed
from edgec.verify.tokens import (
    CHANGED_KEPT,
    MIN_TYPE_SUPPORT,
    NO_GOLD,
    TOKEN_GATES,
    compare_tags,
    token_checks,
)

WORDS = ["John", "Smith", "flew", "to", "Paris", "with", "Acme"]
TAGS = ["B-PER", "I-PER", "O", "O", "B-LOC", "O", "B-ORG"]


def corpus(n: int = 60) -> tuple[list[list[str]], list[list[str]]]:
    return [list(WORDS) for _ in range(n)], [list(TAGS) for _ in range(n)]


def strict_f1(truth, predicted) -> float:
    return f1_score(truth, predicted, mode="strict", scheme=IOB2) * 100


def edited(tags, edits: dict[tuple[int, int], str]):
    out = [list(t) for t in tags]
    for (i, j), tag in edits.items():
        out[i][j] = tag
    return out


def by_name(checks) -> dict[str, dict]:
    return {c["name"]: c for c in checks}


def _wilson(successes: int, n: int) -> str:
    """scipy's own Wilson score interval, as the reports print it."""
    from scipy.stats import binomtest

    ci = binomtest(successes, n).proportion_ci(method="wilson")
    return f"{ci.low:.4f} to {ci.high:.4f}"


def test_identical_taggers_pass_every_check_with_perfect_figures():
    words, tags = corpus()
    report = compare_tags(words, tags, tags, tags)
    assert report["examples"] == 60 and report["labeled"] and report["words"] == 60 * 7
    assert report["reference"]["f1"] == report["candidate"]["f1"] == 100.0
    assert report["vs_reference"]["f1"] == 100.0
    assert report["delta"]["f1"] == 0.0
    assert report["type_f1"] == {
        "basis": "gold",
        "delta": {"LOC": 0.0, "ORG": 0.0, "PER": 0.0},
        "support": {"LOC": 60, "ORG": 60, "PER": 60},
    }
    assert report["tag_agreement"] == 1.0 and report["differing_tags"] == 0
    assert report["changed_count"] == 0 and report["changed"] == []
    checks = token_checks(report, {})
    assert [c["name"] for c in checks] == [
        "ner-entity-f1",
        "ner-type-f1",
        "ner-tag-agreement",
        "ner-entity-f1-vs-reference",
    ]
    assert all(c["status"] == "passed" for c in checks)
    assert by_name(checks)["ner-entity-f1"]["message"] == "entity F1 100.00 -> 100.00 (+0.00 pts)"


def test_one_lost_entity_moves_f1_by_what_seqeval_computes():
    words, gold = corpus()
    candidate = edited(gold, {(3, 4): "O"})  # sentence 3 loses Paris
    report = compare_tags(words, gold, candidate, gold)
    expected = strict_f1(gold, candidate)
    assert report["candidate"]["f1"] == pytest.approx(expected)
    assert report["delta"]["f1"] == pytest.approx(expected - 100.0)
    assert report["candidate"]["recall"] == pytest.approx(179 / 180 * 100)
    assert report["candidate"]["precision"] == 100.0
    assert report["type_f1"]["delta"]["LOC"] == pytest.approx(2 * 59 / 119 * 100 - 100)
    assert report["type_f1"]["delta"]["PER"] == 0.0
    assert report["vs_reference"]["f1"] == pytest.approx(strict_f1(gold, candidate))
    assert report["tag_agreement"] == pytest.approx(1 - 1 / 420)
    assert report["changed"] == [
        {
            "index": 3,
            "text": "John Smith flew to Paris with Acme",
            "reference": [
                ("PER", 0, 1, "John Smith"),
                ("LOC", 4, 4, "Paris"),
                ("ORG", 6, 6, "Acme"),
            ],
            "candidate": [("PER", 0, 1, "John Smith"), ("ORG", 6, 6, "Acme")],
            "differing_entities": 1,
            "confidence": None,
            "gold": [("PER", 0, 1, "John Smith"), ("LOC", 4, 4, "Paris"), ("ORG", 6, 6, "Acme")],
        }
    ]
    checks = by_name(token_checks(report, {}))
    assert checks["ner-entity-f1"]["status"] == "passed"
    assert (
        checks["ner-entity-f1"]["message"]
        == f"entity F1 100.00 -> {expected:.2f} ({expected - 100:+.2f} pts)"
    )
    assert not failed(list(checks.values()))


def test_entities_are_read_strictly_so_a_bad_start_tag_loses_the_entity():
    """I-PER after O is no entity under strict IOB2: F1 and the changed list agree."""
    words, gold = corpus(1)
    candidate = edited(gold, {(0, 0): "I-PER"})
    report = compare_tags(words, gold, candidate, gold)
    assert report["candidate"]["f1"] == pytest.approx(strict_f1(gold, candidate))
    assert report["candidate"]["found"] == 2
    assert [e[0] for e in report["changed"][0]["candidate"]] == ["LOC", "ORG"]


def test_changed_sentences_are_worst_first():
    words, gold = corpus(6)
    candidate = edited(
        gold,
        {
            (1, 4): "O",  # 1 entity lost
            (2, 4): "B-ORG",  # LOC becomes ORG: 2 differing entities
            (4, 6): "O",  # 1 entity lost, more confident than sentence 1
        },
    )
    ref_scores = [[0.9] * 7 for _ in range(6)]
    cand_scores = [[0.5] * 7 for _ in range(6)]
    cand_scores[4][6] = 0.99
    report = compare_tags(words, gold, candidate, None, ref_scores, cand_scores)
    assert [r["index"] for r in report["changed"]] == [2, 4, 1]
    assert [r["differing_entities"] for r in report["changed"]] == [2, 1, 1]
    assert report["changed"][1]["confidence"] == pytest.approx(0.9 + 0.99)
    assert report["changed_count"] == 3
    assert "confidence ranking" not in report["not_compared"]


def test_changed_list_is_capped_but_counted():
    words, gold = corpus(CHANGED_KEPT + 10)
    candidate = [["O"] * 7 for _ in gold]
    report = compare_tags(words, gold, candidate, gold)
    assert report["changed_count"] == CHANGED_KEPT + 10
    assert len(report["changed"]) == CHANGED_KEPT
    assert report["candidate"]["f1"] == 0.0


def test_without_gold_entity_f1_is_skipped_and_types_are_judged_against_the_reference():
    words, ref = corpus(20)
    candidate = edited(ref, {(i, 6): "O" for i in range(4)})  # 4 of 20 ORG lost
    report = compare_tags(words, ref, candidate, None)
    assert not report["labeled"] and "reference" not in report
    assert report["not_compared"]["entity F1"] == NO_GOLD
    assert report["type_f1"]["basis"] == "reference"
    assert report["type_f1"]["delta"]["ORG"] == pytest.approx(2 * 16 / 36 * 100 - 100)
    checks = by_name(token_checks(report, {}))
    assert checks["ner-entity-f1"]["status"] == "skipped"
    assert checks["ner-entity-f1"]["message"].startswith(NO_GOLD)
    assert checks["ner-type-f1"]["status"] == "failed"
    assert (
        "type 'ORG' F1 fell 11.11 points against the reference" in checks["ner-type-f1"]["message"]
    )


def test_entity_f1_check_fails_over_the_gate():
    words, gold = corpus(20)
    candidate = edited(gold, {(0, 4): "O"})  # 1 of 60 entities lost: -0.84 pts
    report = compare_tags(words, gold, candidate, gold)
    drop = 100.0 - strict_f1(gold, candidate)
    assert by_name(token_checks(report, {}))["ner-entity-f1"]["status"] == "passed"
    tight = by_name(token_checks(report, {"max_entity_f1_drop": 0.5}))["ner-entity-f1"]
    assert tight["status"] == "failed"
    assert tight["message"] == (
        f"entity F1 fell {drop:.2f} points (100.00 -> {100 - drop:.2f}), over max_entity_f1_drop 0.5"
    )


def test_type_f1_check_fails_for_a_type_and_ignores_rare_types():
    words, gold = corpus(10)
    gold = edited(gold, {(i, 6): "O" for i in range(MIN_TYPE_SUPPORT, 10)})  # ORG: 5 -> 4 gold
    gold = edited(gold, {(0, 6): "O"})
    candidate = edited(gold, {(1, 4): "O", (2, 6): "O"})  # LOC -1 of 10, ORG -1 of 4
    report = compare_tags(words, gold, candidate, gold)
    assert report["type_f1"]["support"]["ORG"] == MIN_TYPE_SUPPORT - 1
    check = by_name(token_checks(report, {}))["ner-type-f1"]
    assert check["status"] == "failed"
    assert check["message"] == (
        "type 'LOC' F1 fell 5.26 points against the gold, over max_type_f1_drop 5.0"
        f"; not gated, under {MIN_TYPE_SUPPORT} gold entities: ORG"
    )
    loose = by_name(token_checks(report, {"max_type_f1_drop": 6.0}))["ner-type-f1"]
    assert loose["status"] == "passed" and "not gated" in loose["message"]


def test_type_f1_is_skipped_when_no_type_has_enough_entities():
    words, gold = corpus(MIN_TYPE_SUPPORT - 1)
    report = compare_tags(words, gold, gold, gold)
    check = by_name(token_checks(report, {}))["ner-type-f1"]
    assert check["status"] == "skipped" and str(MIN_TYPE_SUPPORT) in check["message"]


def test_tag_agreement_check_fails_below_the_gate():
    words, gold = corpus(10)
    candidate = edited(gold, {(i, 2): "B-MISC" for i in range(3)})  # 3 of 70 words
    report = compare_tags(words, gold, candidate, gold)
    assert report["tag_agreement"] == pytest.approx(67 / 70)
    check = by_name(token_checks(report, {}))["ner-tag-agreement"]
    assert check["status"] == "failed"
    assert check["message"] == (
        f"tag agreement {67 / 70:.4f} is below min_tag_agreement 0.995 "
        "(3 of 70 words tagged differently, 3 of 10 sentences' entities changed; "
        f"95% CI {_wilson(67, 70)} over words)"
    )
    passing = token_checks(report, {"min_tag_agreement": 0.9})
    assert by_name(passing)["ner-tag-agreement"]["status"] == "passed"


def test_f1_against_the_reference_is_information_not_a_gate():
    """A candidate that disagrees everywhere still passes it: the gates above judge."""
    words, ref = corpus(10)
    report = compare_tags(words, ref, [["O"] * 7 for _ in ref], None)
    check = by_name(token_checks(report, {}))["ner-entity-f1-vs-reference"]
    assert check["status"] == "passed"
    assert check["message"] == (
        "entity F1 against the reference 0.00 (P 0.00, R 0.00; 30 reference entities)"
    )


def test_text_without_entities_scores_perfect_not_zero():
    words = [["a", "b"], ["c"]]
    tags = [["O", "O"], ["O"]]
    report = compare_tags(words, tags, tags, tags)
    assert report["candidate"]["f1"] == report["vs_reference"]["f1"] == 100.0
    checks = by_name(token_checks(report, None))
    assert checks["ner-entity-f1"]["status"] == "passed"
    assert checks["ner-type-f1"]["status"] == "skipped"


def test_misaligned_tags_are_refused():
    words, tags = corpus(2)
    with pytest.raises(ValueError, match="sentence 1: candidate has 6 items for 7 words"):
        compare_tags(words, tags, [tags[0], tags[1][:-1]], None)
    with pytest.raises(ValueError, match="gold has 1 sentences"):
        compare_tags(words, tags, tags, tags[:1])


def test_the_checks_read_the_declared_gates():
    from edgec.gates import TASK_GATES

    assert TOKEN_GATES is TASK_GATES["token-classification"]  # declared once, in edgec.gates
