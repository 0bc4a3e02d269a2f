"""Tokenizer consistency on tiny models of every family: what passes, and each way a
deployed tokenizer can drift from training that must be caught."""

from __future__ import annotations

import copy
import json
import shutil

import pytest
from conftest import FAMILIES, random_sentences

from edgec.model import load_source_model
from edgec.verify.checks import failure_messages
from edgec.verify.tokenizer import (
    PROBES,
    generated_texts,
    normalizer_flags,
    tokenizer_report,
)


@pytest.fixture(scope="module")
def sources(tiny_models):
    return {family: load_source_model(path) for family, path in tiny_models.items()}


def _report(source, path=None, preprocessing=None, texts=None, pairs=None, **kw):
    return tokenizer_report(
        source.tokenizer,
        path or source.path / "tokenizer.json",
        preprocessing or source.preprocessing(text_pair=pairs is not None),
        texts if texts is not None else random_sentences(40),
        pairs,
        config=source.config,
        generated=kw.pop("generated", 40),
        **kw,
    )


@pytest.mark.parametrize("family", FAMILIES)
def test_a_faithful_package_tokenizer_passes_every_check(sources, family):
    report = _report(sources[family])
    assert failure_messages(report["checks"]) == [], report["checks"]
    assert report["comparisons"]["probes"]["compared"] == len(PROBES)
    assert report["comparisons"]["generated"]["compared"] == 40
    slow = report["slow_variant"]
    if family in ("bert", "distilbert", "electra"):
        assert slow["available"]
        assert slow["comparisons"]["eval"]["mismatches"] == 0
    else:
        assert not slow["available"]
        assert "no slow (Python) tokenizer" in slow["note"]


@pytest.mark.parametrize("family", ["bert", "roberta"])
def test_text_pairs_are_compared_with_their_truncation(sources, family):
    texts = random_sentences(20, seed=3)
    report = _report(sources[family], texts=texts, pairs=random_sentences(20, seed=4))
    assert failure_messages(report["checks"]) == []
    missing = _report(
        sources[family], texts=texts, preprocessing=sources[family].preprocessing(True)
    )
    assert any("no pair column" in f for f in failure_messages(missing["checks"]))


def test_a_cased_tokenizer_json_is_caught(sources, tmp_path):
    source = sources["bert"]
    data = json.loads((source.path / "tokenizer.json").read_text())
    data["normalizer"]["lowercase"] = False
    cased = tmp_path / "tokenizer.json"
    cased.write_text(json.dumps(data))
    assert normalizer_flags(data) == {"lowercase": False, "strip_accents": False}
    report = _report(source, path=cased, texts=["The MOVIE was GOOD", "a film"])
    failed = {c["name"] for c in report["checks"] if c["status"] == "failed"}
    assert {"tokenizer-static", "tokenizer-eval-texts", "tokenizer-probes"} <= failed
    assert any("do_lower_case=True" in f for f in failure_messages(report["checks"]))


def test_a_max_length_other_than_trainings_is_caught(sources):
    source = sources["bert"]
    preprocessing = {**source.preprocessing(), "max_length": 32}  # trained with 128
    report = _report(source, preprocessing=preprocessing)
    failures = failure_messages(report["checks"])
    assert any("max_length is 32 in the package but 128 in training" in f for f in failures)
    assert report["comparisons"]["probes"]["mismatches"] > 0  # the far-too-long probes


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("truncation_side", "left", "truncation_side"),
        ("padding_side", "left", "padding_side"),
        ("pad_token_id", 3, "pad_token_id"),
    ],
)
def test_other_setting_drift_is_caught(sources, key, value, expected):
    source = sources["bert"]
    preprocessing = {**source.preprocessing(), key: value}
    failures = failure_messages(_report(source, preprocessing=preprocessing)["checks"])
    assert any(expected in f for f in failures)


def test_special_token_ids_must_match_the_runtime_vocabulary(sources):
    source = sources["bert"]
    preprocessing = copy.deepcopy(source.preprocessing())
    preprocessing["special_tokens"]["cls_token"]["id"] = 4
    failures = failure_messages(_report(source, preprocessing=preprocessing)["checks"])
    assert any("cls_token" in f and "'[CLS]' to 2" in f for f in failures)


def test_embeddings_smaller_than_the_vocabulary_are_caught(tiny_models, tmp_path):
    model = shutil.copytree(tiny_models["bert"], tmp_path / "m")
    source = load_source_model(model)
    source.config.vocab_size = 10  # as if the embedding had 10 rows
    source.config.pad_token_id = 1
    failures = failure_messages(_report(source)["checks"])
    assert any("embedding has 10 rows" in f for f in failures)
    assert any(
        "pad_token_id is 0 in the tokenizer but 1 in the model config" in f for f in failures
    )


def test_a_unk_rate_over_the_gate_fails_and_under_it_warns(sources):
    texts = ["这部电影非常好看", "映画はとても良かった", "good film"]
    report = _report(sources["bert"], texts=texts)
    assert report["unk_rate"] > 0.5
    (line,) = failure_messages(report["checks"])  # over max_unk_rate (0.05): a failure
    assert "over max_unk_rate 0.05" in line
    assert not any(w.startswith("HIGH UNK RATE") for w in report["warnings"])
    lenient = _report(sources["bert"], texts=texts, max_unk_rate=1.0)
    assert failure_messages(lenient["checks"]) == []  # within the gate: a visible warning
    assert any(w.startswith("HIGH UNK RATE") for w in lenient["warnings"])
    plain = _report(sources["bert"])
    assert plain["unk_rate"] == 0.0 and plain["warnings"] == []
    assert plain["fertility"] == pytest.approx(1.0)


def test_generated_strings_are_deterministic_and_adversarial():
    first, second = generated_texts(60), generated_texts(60)
    assert first == second and len(first) == 60
    assert any(any(ord(c) > 127 for c in t) for t in first)
    pairs = generated_texts(10, pairs=True)
    assert all(isinstance(p, tuple) and len(p) == 2 for p in pairs)


def test_without_hypothesis_the_generated_check_is_skipped_not_failed(sources, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "hypothesis", None)  # import hypothesis -> ImportError
    report = _report(sources["bert"])
    (generated,) = [c for c in report["checks"] if c["name"] == "tokenizer-generated"]
    assert generated["status"] == "skipped" and "pip install hypothesis" in generated["message"]
    assert failure_messages(report["checks"]) == []
