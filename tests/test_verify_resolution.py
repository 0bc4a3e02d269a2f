"""Verification that knows its own resolution: intervals on every parity figure, a
minimum eval-set size per gate, `incomplete` when no parity check ran, and the UNK-rate
gate. The intervals are checked against scipy itself; the CLI cases on a tiny fp32
package, where parity is exact and every failure is one a test provoked.
"""

from __future__ import annotations

import json
import random
from xml.etree import ElementTree as ET

import numpy as np
import pytest
from cli_helpers import assert_clean_error, invoke_edgec
from conftest import random_sentences, write_csv
from scipy.stats import binomtest

from edgec.data import TextSet
from edgec.data.tagged import TaggedSet
from edgec.gates import DEFAULT_GATES, TASK_GATES, minimum_eval_size
from edgec.pipeline import BuildRequest, build
from edgec.targets import get_target
from edgec.verify.assemble import PARITY_CHECKS, assemble
from edgec.verify.checks import check
from edgec.verify.compare import compare
from edgec.verify.gate import parity_checks
from edgec.verify.reports import summary_lines, to_junit, to_markdown
from edgec.verify.resolution import (
    check_eval_size,
    eval_size_problems,
    newcombe_paired,
    paired_accuracy,
    wilson_interval,
)
from edgec.verify.results import logits_result
from edgec.verify.tokens import compare_tags, token_checks
from edgec_runtime.errors import BadInput

NAMES = ["neg", "pos"]
# what the reports print for scipy's interval
CI = "95% CI {:.4f} to {:.4f}"


def _logits(margins) -> np.ndarray:
    m = np.asarray(margins, dtype=np.float64)
    return np.stack([-m / 2, m / 2], axis=1)


def _scipy_wilson(k: int, n: int):
    return binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")


def _comparison(n: int, lost: int, gained: int):
    """n labeled examples, all right under the reference but `gained` of them, which the
    package gets right; the package gets `lost` others wrong."""
    gold = np.ones(n, dtype=np.int64)
    ref_margin = np.full(n, 2.0)
    ref_margin[:gained] = -2.0  # the reference is wrong on the first `gained`
    cand_margin = ref_margin.copy()
    cand_margin[:gained] = 2.0  # the package gets them right
    cand_margin[gained : gained + lost] = -2.0  # and loses the next `lost`
    texts = [f"t{i}" for i in range(n)]
    return compare(
        logits_result("the reference", _logits(ref_margin)),
        logits_result("the package", _logits(cand_margin)),
        NAMES,
        TextSet("test", texts, labels=gold.tolist()),
    )


# ---------------------------------------------------------------- intervals


def test_agreement_carries_scipys_wilson_interval():
    report = _comparison(40, lost=3, gained=1)
    ci = _scipy_wilson(36, 40)  # 4 of 40 predictions flipped
    interval = report["agreement_interval"]
    assert report["agreement"] == pytest.approx(36 / 40)
    assert (interval["low"], interval["high"]) == pytest.approx((ci.low, ci.high))
    assert interval["method"] == "Wilson score" and interval["confidence"] == 0.95
    (agreement,) = [
        c for c in parity_checks(report, DEFAULT_GATES) if c["name"] == "parity-agreement"
    ]
    assert CI.format(ci.low, ci.high) in agreement["message"]


def test_one_example_passes_with_an_interval_that_shows_how_little_it_proves():
    ci = _scipy_wilson(1, 1)
    assert wilson_interval(1, 1)["low"] == pytest.approx(ci.low) and ci.low < 0.21
    assert wilson_interval(0, 0) is None


def test_the_accuracy_delta_has_mcnemars_exact_test_and_a_paired_interval():
    report = _comparison(200, lost=9, gained=2)
    test = report["accuracy_delta_interval"]
    assert (test["lost"], test["gained"]) == (9, 2)
    assert test["mcnemar_p"] == pytest.approx(binomtest(9, 11, 0.5).pvalue)
    assert test["delta"] == pytest.approx(-3.5)
    assert report["delta"]["accuracy"] == pytest.approx(-3.5)
    assert test["low"] < test["delta"] < test["high"]
    accuracy = {c["name"]: c for c in parity_checks(report, DEFAULT_GATES)}["parity-accuracy"]
    assert accuracy["status"] == "failed"  # 3.5 points, over the 1-point gate
    assert f"McNemar p {test['mcnemar_p']:.3g} (9 examples lost, 2 gained)" in accuracy["message"]


def test_the_paired_interval_is_newcombes_method_10():
    """The worked example of Fagerland, Lydersen & Laake (Cavo et al. 2012), whose
    published Newcombe square-and-add interval is -0.1186 to -0.0046; the interval is
    built from the two marginal Wilson intervals, here scipy's."""
    delta, low, high = newcombe_paired(59, 6, 16, 80)
    assert delta == pytest.approx(-10 / 161)
    assert (round(low, 4), round(high, 4)) == (-0.1186, -0.0046)
    # no discordant pair: the two Wilson half-widths, square-added through the
    # outcomes' correlation: symmetric around 0, and narrow
    d0, l0, h0 = newcombe_paired(90, 0, 0, 10)
    assert d0 == 0 and l0 == pytest.approx(-h0) and 0 < h0 < 0.05


def test_identical_models_have_mcnemar_p_one():
    test = paired_accuracy([True, False, True], [True, False, True])
    assert test["mcnemar_p"] == 1.0 and test["lost"] == test["gained"] == 0
    assert paired_accuracy([], []) == {}


def test_every_report_shows_the_intervals():
    parity = _comparison(120, lost=1, gained=0)
    checks = [*parity_checks(parity, DEFAULT_GATES)]
    report = assemble(checks, [], DEFAULT_GATES, TextSet("e", ["x"] * 120), 0.0, parity=parity)
    ci = _scipy_wilson(119, 120)
    expected = CI.format(ci.low, ci.high)
    lines = "\n".join(summary_lines(report))
    assert f"agreement: {119 / 120:.4f} on 120 examples ({expected}, Wilson)" in lines
    assert "McNemar p 1 (1 examples lost, 0 gained)" in lines
    assert expected in to_markdown(report)
    props = ET.fromstring(to_junit(report)).find("testsuite/properties")
    assert expected in {p.get("name"): p.get("value") for p in props}["agreement"]
    dumped = json.loads(json.dumps(report))["parity"]
    assert dumped["agreement_interval"]["low"] == pytest.approx(ci.low)
    assert dumped["accuracy_delta_interval"]["mcnemar_p"] == 1.0


def test_a_taggers_word_agreement_has_a_wilson_interval():
    words = [["a", "b", "c", "d"]] * 25
    ref = [["B-PER", "I-PER", "O", "O"]] * 25
    cand = [list(r) for r in ref]
    cand[0][2] = cand[1][2] = "B-LOC"  # 2 of 100 words
    report = compare_tags(words, ref, cand, ref)
    ci = _scipy_wilson(98, 100)
    interval = report["tag_agreement_interval"]
    assert (interval["low"], interval["high"]) == pytest.approx((ci.low, ci.high))
    (agreement,) = [c for c in token_checks(report, {}) if c["name"] == "ner-tag-agreement"]
    assert CI.format(ci.low, ci.high) + " over words" in agreement["message"]


# ---------------------------------------------------------------- minimum size


def test_the_minimum_sizes_are_declared_per_task():
    minimums = {
        task: {rule["gate"]: rule["minimum"] for rule in minimum_eval_size(task)}
        for task in TASK_GATES
    }
    assert minimums == {
        "sequence-classification": {"min_agreement": 17, "max_accuracy_drop": 100},
        "token-classification": {"min_tag_agreement": 200, "max_entity_f1_drop": 67},
        "sentence-embedding": {"min_neighbour_overlap": 14},
    }
    # a gate that tolerates nothing is exact at any size
    exact = minimum_eval_size(
        "sequence-classification", {"min_agreement": 1.0, "max_accuracy_drop": 0}
    )
    assert [rule["minimum"] for rule in exact] == [1, 1]


@pytest.mark.parametrize("gate", [0.94, 0.99, 0.995, 0.9])
def test_at_the_minimum_one_flip_passes_the_agreement_gate_and_below_it_fails(gate):
    """The rule is exact: at n it lets one flip through, at n - 1 it cannot."""
    (rule,) = [
        r for r in minimum_eval_size("sequence-classification", {"min_agreement": gate})
        if r["gate"] == "min_agreement"
    ]  # fmt: skip
    n = rule["minimum"]
    for size, status in ((n, "passed"), (n - 1, "failed")):
        ref = _logits(np.full(size, 2.0))
        cand = ref.copy()
        cand[0] = -cand[0]
        report = compare(
            logits_result("r", ref), logits_result("p", cand), NAMES, TextSet("t", ["x"] * size)
        )
        gates = {**DEFAULT_GATES, "min_agreement": gate}
        assert {c["name"]: c for c in parity_checks(report, gates)}["parity-agreement"][
            "status"
        ] == status, size


@pytest.mark.parametrize("gate", [1.0, 1.5, 2.0, 0.5])
def test_at_the_minimum_one_lost_example_passes_the_accuracy_gate_and_below_it_fails(gate):
    (rule,) = [
        r for r in minimum_eval_size("sequence-classification", {"max_accuracy_drop": gate})
        if r["gate"] == "max_accuracy_drop"
    ]  # fmt: skip
    n = rule["minimum"]
    gates = {**DEFAULT_GATES, "max_accuracy_drop": gate, "min_agreement": 0.0}
    for size, status in ((n, "passed"), (n - 1, "failed")):
        report = _comparison(size, lost=1, gained=0)
        checks = {c["name"]: c for c in parity_checks(report, gates)}
        assert checks["parity-accuracy"]["status"] == status, size


def test_too_small_sets_are_named_with_their_minimum_for_every_task():
    one = TextSet("one.csv", ["a b"], labels=[0])
    (agreement, accuracy) = eval_size_problems("sequence-classification", one, {}, NAMES)
    assert "min_agreement 0.94 needs at least 17 examples, it has 1" in agreement
    assert "max_accuracy_drop 1.0 needs at least 100 labeled examples, it has 1" in accuracy
    unlabeled = TextSet("u.csv", ["a b"] * 20)  # only agreement applies without labels
    assert eval_size_problems("sequence-classification", unlabeled, {}, NAMES) == []
    tagged = TaggedSet("t.conll", [["Ann", "went", "home"]] * 10, [[1, 0, 0]] * 10)
    problems = eval_size_problems("token-classification", tagged, {}, ["O", "B-PER", "I-PER"])
    assert problems == [
        "min_tag_agreement 0.995 needs at least 200 words, it has 30 (it resolves "
        "min_tag_agreement <= 0.9666)",
        "max_entity_f1_drop 1.5 needs at least 67 gold entities, it has 10 (it resolves "
        "max_entity_f1_drop >= 10)",
    ]
    texts = [f"text {i}" for i in range(13)]
    (neighbours,) = eval_size_problems("sentence-embedding", TextSet("e", texts), {}, [])
    assert "min_neighbour_overlap 0.8 needs at least 14 texts, it has 13" in neighbours
    assert eval_size_problems("sentence-embedding", TextSet("e", [*texts, "x"]), {}, []) == []
    with pytest.raises(BadInput, match="one.csv is too small"):
        check_eval_size("sequence-classification", one, {}, NAMES)


# ---------------------------------------------------------------- through the CLI


@pytest.fixture(scope="module")
def package(tiny_bert, tiny_eval_csv, tmp_path_factory):
    out = tmp_path_factory.mktemp("resolution") / "pkg"
    build(
        BuildRequest(
            model=tiny_bert,
            target=get_target("x86-cpu", ()),
            output=out,
            eval_data=tiny_eval_csv,
            precision="fp32",
        )
    )
    return out


@pytest.fixture(scope="module")
def one_example(tmp_path_factory):
    path = tmp_path_factory.mktemp("one") / "one.csv"
    return write_csv(path, [{"text": "a good movie", "label": "class_1"}])


def test_a_one_example_build_is_exit_2_before_anything_is_compiled(
    tiny_bert, one_example, tmp_path, monkeypatch
):
    import edgec.export

    def never(*_args, **_kwargs):
        raise AssertionError("the eval set's size must be refused before the export")

    monkeypatch.setattr(edgec.export, "export_onnx", never)
    r = invoke_edgec("build", tiny_bert, "--eval-data", one_example, "-o", tmp_path / "p")
    assert_clean_error(r, 2, "too small", "at least 100 labeled examples", "at least 17")
    assert not (tmp_path / "p").exists()


def test_a_one_example_verify_is_exit_2_and_a_coarse_enough_gate_is_not(package, one_example):
    r = invoke_edgec("verify", package, "--eval-data", one_example)
    assert_clean_error(r, 2, "too small", "at least 100 labeled examples", "at least 17")
    # a gate finer than the set, from the command line, is refused the same way
    r = invoke_edgec("verify", package, "--eval-data", one_example, "--min-agreement", 0.5)
    assert_clean_error(r, 2, "at least 100 labeled examples")


def test_a_gate_finer_than_the_build_data_is_refused(package, tiny_eval_csv):
    r = invoke_edgec("verify", package, "--eval-data", tiny_eval_csv, "--min-agreement", 0.999)
    assert_clean_error(r, 2, "min_agreement 0.999 needs at least 1000 examples, it has 100")


@pytest.fixture(scope="module")
def unlabeled_other_texts(tmp_path_factory):
    """Texts unlike the build's and without labels (the vocabulary still covers them)."""
    path = tmp_path_factory.mktemp("other") / "other.csv"
    return write_csv(path, [{"text": t} for t in random_sentences(30, seed=11)])


def test_no_parity_check_ran_is_incomplete_not_passed(package, unlabeled_other_texts, tmp_path):
    report_path, junit = tmp_path / "r.json", tmp_path / "r.xml"
    r = invoke_edgec(
        "verify", package, "--eval-data", unlabeled_other_texts,
        "--report", report_path, "--junit", junit,
    )  # fmt: skip
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert "verification INCOMPLETE" in r.stdout and "PASSED" not in r.stdout
    assert "verification incomplete" in r.stderr and "--reference MODEL" in r.stderr
    report = json.loads(report_path.read_text())
    assert report["status"] == "incomplete" and report["failures"] == []
    for name in PARITY_CHECKS["sequence-classification"]:
        assert name in report["incomplete"]
    assert "the eval data the build verified on" in report["incomplete"]
    cases = {c.get("name"): c for c in ET.parse(junit).getroot().iter("testcase")}
    assert cases["parity-ran"].find("failure") is not None


def test_labeled_data_unlike_the_builds_is_incomplete_too(package, tiny_bert, tmp_path):
    labels = random.Random(3).choices(["class_0", "class_1"], k=100)
    rows = [{"text": t, "label": y} for t, y in zip(random_sentences(100, 3), labels, strict=True)]
    other = write_csv(tmp_path / "o.csv", rows)
    r = invoke_edgec("verify", package, "--eval-data", other, "--json")
    assert r.returncode == 1
    report = json.loads(r.stdout)
    assert report["status"] == "incomplete"
    # with the reference the same data is a real check, and it passes
    ok = invoke_edgec("verify", package, "--eval-data", other, "--reference", tiny_bert)
    assert ok.returncode == 0, ok.stdout + ok.stderr


def test_tokenizer_only_passes_and_says_parity_was_not_requested(
    package, tiny_bert, unlabeled_other_texts, tmp_path
):
    summary = tmp_path / "r.md"
    r = invoke_edgec(
        "verify", package, "--eval-data", unlabeled_other_texts, "--tokenizer-only",
        "--json", "--summary", summary,
    )  # fmt: skip
    assert r.returncode == 0, r.stdout + r.stderr
    report = json.loads(r.stdout)
    assert report["status"] == "passed" and report["parity_requested"] is False
    assert report["mode"] == "tokenizer-only"
    statuses = {c["name"]: c["status"] for c in report["checks"]}
    assert statuses["integrity"] == statuses["tokenizer-eval-texts"] == "passed"
    assert statuses["parity"] == "skipped"
    assert not set(statuses) & set(PARITY_CHECKS["sequence-classification"])
    assert any("parity was not requested" in w for w in report["warnings"])
    assert "parity was not requested" in summary.read_text()
    # against the source tokenizer too; the size rule does not apply without parity
    one = write_csv(tmp_path / "one.csv", [{"text": "a film"}])
    r = invoke_edgec(
        "verify", package, "--eval-data", one, "--tokenizer-only", "--reference", tiny_bert
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert "[ok  ] reference-weights" in r.stdout
    assert "tokenizer-vs-model-config" not in r.stdout  # the source's config was there to check


@pytest.fixture(scope="module")
def foreign_script(tmp_path_factory):
    """Thai, Amharic and emoji: the tiny vocabulary (ASCII letters) covers none of it."""
    texts = ["ภาพยนตร์เรื่องนี้ดีมาก", "ፊልሙ በጣም ጥሩ ነበር", "🍿🎬 😀😀", "ฉันไม่ชอบมัน"] * 6
    path = tmp_path_factory.mktemp("foreign") / "foreign.csv"
    return write_csv(path, [{"text": t} for t in texts])


def test_a_high_unk_rate_fails_its_named_check(package, tiny_bert, foreign_script, tmp_path):
    for extra in ((), ("--reference", tiny_bert), ("--tokenizer-only",)):
        r = invoke_edgec("verify", package, "--eval-data", foreign_script, "--json", *extra)
        assert r.returncode == 1, (extra, r.stderr)
        report = json.loads(r.stdout)
        assert report["status"] == "failed"
        (unk,) = [c for c in report["checks"] if c["name"] == "tokenizer-unk-rate"]
        assert unk["status"] == "failed" and "over max_unk_rate 0.05" in unk["message"]
        assert report["tokenizer"]["unk_rate"] > 0.5
        assert not any("HIGH UNK RATE" in w for w in report["warnings"])  # a failure, once
    loose = invoke_edgec(
        "verify", package, "--eval-data", foreign_script, "--reference", tiny_bert,
        "--gate", "max_unk_rate=1",
    )  # fmt: skip
    assert loose.returncode == 0, loose.stdout + loose.stderr
    assert "[ok  ] tokenizer-unk-rate" in loose.stdout


def test_a_build_on_data_its_vocabulary_does_not_cover_writes_nothing(
    tiny_bert, foreign_script, tmp_path
):
    out = tmp_path / "pkg"
    r = invoke_edgec(
        "build", tiny_bert, "--eval-data", foreign_script, "--precision", "fp32", "-o", out
    )
    assert r.returncode == 1 and "tokenizer-unk-rate" in r.stderr
    assert not out.exists()


def test_every_task_reads_the_unk_gate():
    for task, gates in TASK_GATES.items():
        assert gates["max_unk_rate"] == DEFAULT_GATES["max_unk_rate"] == 0.05, task
    skipped = check("parity-agreement", [], skipped="no reference")
    report = assemble([skipped], [], DEFAULT_GATES, TextSet("e", ["x"]), 0.0)
    assert report["status"] == "incomplete"
    assert report["thresholds"]["max_unk_rate"] == 0.05
    assert assemble([skipped], [], {}, None, 0.0, parity_requested=False)["status"] == "passed"


@pytest.mark.parametrize("task", sorted(PARITY_CHECKS))
def test_a_report_is_incomplete_exactly_when_no_parity_check_of_its_task_ran(task):
    eval_set = TextSet("e", ["x"] * 20)
    tokenizer = check("tokenizer-eval-texts", [])
    skipped = [check(name, [], skipped="no reference") for name in PARITY_CHECKS[task]]
    info_only = check("ner-entity-f1-vs-reference", [], info="information, not a gate")
    report = assemble([tokenizer, *skipped, info_only], [], DEFAULT_GATES, eval_set, 0.0, task)
    assert report["status"] == "incomplete"
    assert all(name in report["incomplete"] for name in PARITY_CHECKS[task])
    ran = [check(PARITY_CHECKS[task][0], []), *skipped[1:]]
    assert assemble([tokenizer, *ran], [], DEFAULT_GATES, eval_set, 0.0, task)["status"] == (
        "passed"
    )
    failed = [check("tokenizer-eval-texts", ["differs"]), *skipped]
    assert assemble(failed, [], DEFAULT_GATES, eval_set, 0.0, task)["status"] == "failed"
