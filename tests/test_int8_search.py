"""Precision int8-auto (edgec.int8_search): the measures it ranks by, the greedy search
over node groups, and a whole build of a tiny model. Its accuracy claims are tested on
the real teachers in test_int8_search_real.py."""

from __future__ import annotations

import json

import numpy as np
import pytest
from cli_helpers import assert_clean_error, invoke_edgec
from conftest import random_sentences, write_csv

from edgec.gates import resolve_gates
from edgec.int8_search import Trials, damage, fewest_float, pick_result, search_gates
from edgec.package import MANIFEST
from edgec.views import search_fact
from edgec_runtime.iospec import (
    SENTENCE_EMBEDDING,
    SEQUENCE_CLASSIFICATION,
    TOKEN_CLASSIFICATION,
)


@pytest.fixture(scope="module")
def search_csv(tmp_path_factory):
    """120 labelled texts apart from the eval set: 60 calibrate, 60 validate."""
    rng = np.random.default_rng(3)
    rows = [{"text": t, "label": f"class_{rng.integers(2)}"} for t in random_sentences(120, seed=9)]
    return write_csv(tmp_path_factory.mktemp("search") / "search.csv", rows)


# ---------------------------------------------------------------- what ranks groups


def test_damage_is_zero_on_identical_outputs_and_grows_with_a_flip():
    ref = [np.array([[2.0, -1.0], [0.5, 0.4]])]
    batch = [{"attention_mask": np.ones((2, 3), np.int64)}]
    same = damage(ref, ref, batch, SEQUENCE_CLASSIFICATION)
    assert same == {"damage": 0.0, "agreement": 1.0}
    flipped = damage(ref, [np.array([[2.0, -1.0], [0.4, 0.5]])], batch, SEQUENCE_CLASSIFICATION)
    assert flipped["agreement"] == 0.5 and flipped["damage"] > 0


def test_a_taggers_damage_reads_real_tokens_only():
    ref = np.zeros((1, 3, 2))
    ref[0, :, 0] = 3.0
    out = ref.copy()
    out[0, 2] = [0.0, 3.0]  # the padded position flips: it must not count
    batch = [{"attention_mask": np.array([[1, 1, 0]])}]
    assert damage([ref], [out], batch, TOKEN_CLASSIFICATION) == {"damage": 0.0, "agreement": 1.0}
    out[0, 1] = [0.0, 3.0]  # a real token flips
    assert damage([ref], [out], batch, TOKEN_CLASSIFICATION)["agreement"] == 0.5


def test_an_embedders_damage_is_one_minus_cosine():
    ref = [np.array([[1.0, 0.0], [0.0, 2.0]])]
    out = [np.array([[1.0, 0.0], [2.0, 2.0]])]
    scored = damage(ref, out, [{}], SENTENCE_EMBEDDING)
    assert scored["damage"] == pytest.approx((1 - 2**-0.5) / 2, abs=1e-6)
    assert scored["agreement"] == pytest.approx((1 + 2**-0.5) / 2, abs=1e-6)


def test_the_search_gates_keep_part_of_each_allowance_for_the_eval_set():
    gates = search_gates({"max_accuracy_drop": 1.0, "min_agreement": 0.94}, 0.5)
    assert gates["max_accuracy_drop"] == 0.5 and gates["min_agreement"] == 0.97
    assert gates["max_unk_rate"] == resolve_gates({})["max_unk_rate"]  # not the quantizer's
    assert search_gates({"min_agreement": 0.94}, 1.0)["min_agreement"] == 0.94


# ---------------------------------------------------------------- the greedy search


def trials_needing(needed: set[str], max_trials: int = 50) -> tuple[Trials, list]:
    """Trials whose gates pass exactly when every group of `needed` is float: the
    search's order logic, apart from any model (what quantization does to accuracy is
    measured on the real teachers)."""
    seen = []

    def compile_trial(precision, options, name):
        seen.append(list(options["keep_float"]))
        return set(options["keep_float"])

    def verify(kept) -> dict:
        ok = needed <= kept
        return {"status": "passed" if ok else "failed", "failures": [] if ok else ["x"]}

    trials = Trials(
        compile=compile_trial,
        verify=verify,
        float_outputs=list,
        calibration=[],
        validation=[],
        texts=[],
        task=SEQUENCE_CLASSIFICATION,
        model_key="synthetic",
        max_trials=max_trials,
        max_seconds=60,
    )
    return trials, seen


def test_the_search_keeps_float_only_the_groups_the_gates_need():
    ranked = ["layer1.ffn-down", "layer0.qkv", "layer2.ffn-up", "head", "layer0.ffn-down"]
    weights = {"layer1.ffn-down": 4, "layer0.qkv": 3, "layer2.ffn-up": 4, "head": 1}
    trials, seen = trials_needing({"layer1.ffn-down", "head"})
    kept, summary, steps = fewest_float(trials, "int8-static", {}, ranked, weights, _Quiet())
    assert kept == ["layer1.ffn-down", "head"] and summary["passed"]
    # greedy until it passed (4 trials), then the others tried back in int8, largest first
    assert seen[:4] == [ranked[:i] for i in range(1, 5)]
    assert seen[4:] == [
        ["layer0.qkv", "layer2.ffn-up", "head"],  # layer1.ffn-down (4) back: fails, stays
        ["layer1.ffn-down", "layer0.qkv", "head"],  # layer2.ffn-up (4) back: passes
        ["layer1.ffn-down", "head"],  # layer0.qkv (3) back: passes
    ]
    assert [s["passed"] for s in steps] == [False, False, False, True, False, True, True]


def test_each_precision_gets_a_share_of_the_trials_left():
    trials, _ = trials_needing({"never"}, max_trials=10)
    trials.share_among(2)
    assert trials.share == 5
    trials.count = 7  # the first precision ended early or late: the rest is shared again
    trials.share_among(1)
    assert trials.share == 10 and trials.left()


def test_the_search_stops_at_its_trial_budget():
    trials, seen = trials_needing({"never"}, max_trials=3)
    kept, summary, steps = fewest_float(trials, "int8", {}, ["a", "b", "c", "d"], {}, _Quiet())
    assert kept is None and not summary["passed"]
    assert len(seen) == 3 and trials.count == 3


def _result(precision: str, quality_delta: float, agreement: float = 0.99) -> dict:
    return {
        "precision": precision,
        "validation": {"quality_delta": quality_delta, "agreement": agreement},
    }


def test_a_speed_difference_inside_the_noise_goes_to_the_more_accurate_result():
    dynamic, static = _result("int8", +1.2), _result("int8-static", -0.6)
    best, why = pick_result([dynamic, static], {"int8": 4.58, "int8-static": 4.42})
    assert best is dynamic and why.startswith("within 5% of the fastest")
    best, why = pick_result([dynamic, static], {"int8": 5.00, "int8-static": 4.42})
    assert best is static and why == "the fastest that passed"  # 13 % faster: real
    level = [_result("int8", 0.0, 0.990), _result("int8-static", 0.0, 0.995)]
    assert pick_result(level, {"int8": 3.51, "int8-static": 3.52})[0] is level[1]
    assert pick_result([dynamic], {}) == (dynamic, "the only result that passed")


class _Quiet:
    def info(self, message):
        pass


# ---------------------------------------------------------------- a whole build


def test_int8_auto_builds_and_records_its_search(tiny_bert, tiny_eval_csv, search_csv, tmp_path):
    out = tmp_path / "auto"
    result = invoke_edgec(
        "build", tiny_bert, "-t", "x86-cpu", "--precision", "int8-auto",
        "--eval-data", tiny_eval_csv, "--calibration-data", search_csv, "-o", out, "--json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    # stdout is one JSON document: ORT's histogram calibrations print their progress
    assert json.loads(result.stdout)["manifest"]["backend"]["precision"] == "int8-auto"
    manifest = json.loads((out / MANIFEST).read_text())
    backend = manifest["backend"]
    search = backend["search"]
    assert backend["precision"] == "int8-auto"
    assert backend["compiled_as"] == search["picked"] in ("int8-static", "int8")
    assert [r["precision"] for r in search["results"]] == ["int8", "int8-static"]
    assert search["picked_because"].startswith(("the fastest", "within 5%", "the only"))
    assert f"({search['picked_because']})" in search_fact(search)  # edgec inspect's line
    static = search["results"][1]
    assert [m["method"] for m in static["calibration_methods"]] == [
        "minmax",
        "entropy",
        "percentile",
    ]
    assert (
        static["calibration"]
        == min(static["calibration_methods"], key=lambda m: m["damage"])["method"]
    )
    assert search["texts"]["calibration"] == {
        "source": "--calibration-data, even rows",
        "texts": 60,
        "texts_used": 60,
    }
    assert search["texts"]["validation"] == {"source": "--calibration-data, odd rows", "texts": 60}
    assert search["gates"]["min_agreement"] == 0.97  # 0.94 with half its allowance
    assert 0 < search["trials"] <= search["budget"]["max_trials"]
    assert backend["quantization"]["kept_float"]["groups"] == search["options"]["keep_float"]
    shown = invoke_edgec("inspect", out)
    assert shown.returncode == 0, shown.stderr
    assert "int8 search" in shown.stdout and f"int8-auto: {search['trials']} trials" in shown.stdout


def test_int8_auto_needs_texts_apart_from_the_eval_set(tiny_bert, tiny_eval_csv, tmp_path):
    result = invoke_edgec(
        "build", tiny_bert, "-t", "x86-cpu", "--precision", "int8-auto",
        "--eval-data", tiny_eval_csv, "-o", tmp_path / "out",
    )  # fmt: skip
    assert_clean_error(result, 2, "int8-auto searches on texts held apart from --eval-data")
    assert not (tmp_path / "out").exists()


def test_validation_data_alone_is_refused_where_nothing_reads_it(
    tiny_bert, tiny_eval_csv, search_csv, tmp_path
):
    """fp32 by choice: no int8-auto, and no target fallback to one (x86-cpu's own int8
    would fall back to int8-auto, which reads them)."""
    result = invoke_edgec(
        "build", tiny_bert, "-t", "x86-cpu", "--precision", "fp32", "--eval-data",
        tiny_eval_csv, "--validation-data", search_csv, "-o", tmp_path / "out",
    )  # fmt: skip
    assert_clean_error(
        result, 2, "--validation-data is read by --distill and by precision int8-auto"
    )


def test_an_unknown_group_to_keep_float_names_the_models_groups(tiny_bert, tiny_eval_csv, tmp_path):
    result = invoke_edgec(
        "build", tiny_bert, "-t", "x86-cpu", "--precision", "int8-static",
        "-O", 'keep_float=["layer9.ffn-down"]', "--eval-data", tiny_eval_csv, "-o", tmp_path / "o",
    )  # fmt: skip
    assert_clean_error(result, 2, "'layer9.ffn-down' names no node group", "layer0.ffn-down")
