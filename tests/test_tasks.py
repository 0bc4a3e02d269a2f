"""Token classification and sentence embeddings through the whole chain, on tiny
random models (mechanics only; accuracy claims are in test_tasks_real.py).

Each task is detected from the model folder, recorded in the manifest, exported with
its own output (per-token logits; a pooled, normalized vector), compiled by every
backend, verified with its own metrics, and served by the runtime: entity spans equal
transformers' pipeline, vectors equal sentence-transformers' `encode`.
"""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
from cli_helpers import assert_clean_error, invoke_edgec
from task_helpers import assert_same_entities
from tiny_models import (
    NER_LABELS,
    WORDS,
    make_tiny_sentence_embedder,
    make_tiny_token_classifier,
)

from edgec.gates import TASK_GATES
from edgec.model import load_source_model
from edgec.model_files import detect_task, read_config
from edgec_runtime.entities import STRATEGIES


@pytest.fixture(scope="module")
def tagger(tmp_path_factory):
    return make_tiny_token_classifier("bert", tmp_path_factory.mktemp("tagger") / "m")


@pytest.fixture(scope="module")
def embedder(tmp_path_factory):
    return make_tiny_sentence_embedder(tmp_path_factory.mktemp("embedder") / "m")


def _sentences(n: int, seed: int) -> list[list[str]]:
    rng = random.Random(seed)
    return [rng.choices(WORDS, k=rng.randint(2, 14)) for _ in range(n)]


@pytest.fixture(scope="module")
def conll(tmp_path_factory):
    """48 tagged sentences in IOB2 (random tags: the model is random too)."""
    rng = random.Random(5)
    lines = []
    for words in _sentences(48, 5):
        previous = "O"
        for word in words:
            kind = rng.choice(["O", "O", "PER", "LOC"])
            if kind == "O":
                tag = "O"
            else:
                tag = ("I-" if previous[2:] == kind and rng.random() < 0.5 else "B-") + kind
            lines.append(f"{word}\t{tag}")
            previous = tag
        lines.append("")
    path = tmp_path_factory.mktemp("ner") / "eval.conll"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """Scored text pairs: the first texts are the corpus, the scores a Spearman check."""
    rng = random.Random(6)
    path = tmp_path_factory.mktemp("emb") / "pairs.csv"
    rows = ["sentence1,sentence2,score"]
    for a, b in zip(_sentences(48, 6), _sentences(48, 7), strict=True):
        rows.append(f"{' '.join(a)},{' '.join(b)},{rng.random() * 5:.2f}")
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


# A random tiny model's int8 tags are noisy: builds over every precision check
# mechanics with these gates; the real teacher's gates are in test_tasks_real.py.
LOOSE = (
    "--gate", "min_tag_agreement=0.9", "--gate", "max_entity_f1_drop=10",
    "--gate", "max_type_f1_drop=20",
)  # fmt: skip


def _build(model, data, out, *extra):
    result = invoke_edgec("build", model, "--eval-data", data, "-o", out, "--json", *extra)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def tagger_package(tagger, conll, tmp_path_factory):
    out = tmp_path_factory.mktemp("pkg") / "ner"
    _build(tagger, conll, out, "--backend", "onnxruntime:fp32")
    return out


@pytest.fixture(scope="module")
def embedder_package(embedder, corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("pkg") / "emb"
    _build(embedder, corpus, out, "--backend", "onnxruntime:fp32")
    return out


# ---------------------------------------------------------------- the task is detected


def test_the_task_is_read_from_the_model_folder(tagger, embedder, tiny_bert):
    assert detect_task(tagger, read_config(tagger, False)) == "token-classification"
    assert detect_task(embedder, read_config(embedder, False)) == "sentence-embedding"
    assert detect_task(tiny_bert, read_config(tiny_bert, False)) == "sequence-classification"
    facts = load_source_model(embedder).task_record()
    assert facts == {
        "name": "sentence-embedding",
        "pooling": "mean",
        "normalize": True,
        "dimension": 32,
    }
    assert load_source_model(tagger).task_record()["scheme"] == "IOB2"


def test_an_unknown_task_is_exit_2_with_the_list(tagger, conll, tmp_path):
    result = invoke_edgec(
        "build", tagger, "--eval-data", conll, "-o", tmp_path / "o", "--task", "qa"
    )
    assert result.returncode == 2
    assert "sequence-classification" in result.stderr and "sentence-embedding" in result.stderr


def test_tags_that_are_not_iob2_are_exit_2(tmp_path, conll):
    model = make_tiny_token_classifier("bert", tmp_path / "m", labels=("O", "PER", "LOC"))
    result = invoke_edgec("build", model, "--eval-data", conll, "-o", tmp_path / "o")
    assert_clean_error(result, 2, "not IOB2")


def test_an_eval_tag_the_model_lacks_names_file_and_line(tagger, tmp_path):
    data = tmp_path / "bad.conll"
    data.write_text("a\tO\nfilm\tB-ORG\n\n", encoding="utf-8")
    result = invoke_edgec("build", tagger, "--eval-data", data, "-o", tmp_path / "o")
    assert_clean_error(result, 2, "line 2", "B-ORG")


def test_unsupported_pooling_is_exit_2(tmp_path, corpus):
    model = make_tiny_sentence_embedder(tmp_path / "m")
    config = model / "1_Pooling" / "config.json"
    pooling = json.loads(config.read_text())
    pooling["pooling_mode_mean_sqrt_len_tokens"] = True
    config.write_text(json.dumps(pooling))
    result = invoke_edgec("build", model, "--eval-data", corpus, "-o", tmp_path / "o")
    assert_clean_error(result, 2, "pooling_mode_mean_sqrt_len_tokens")


# ---------------------------------------------------------------- token classification


def test_tagger_manifest_records_the_task_and_its_output(tagger_package):
    manifest = json.loads((tagger_package / "edgec.json").read_text())
    assert manifest["task"]["name"] == "token-classification"
    assert manifest["task"]["entity_types"] == ["LOC", "PER"]
    assert manifest["labels"] == list(NER_LABELS)
    assert manifest["io"]["output_names"] == ["logits"]
    assert manifest["io"]["dynamic_axes"]["logits"] == {"0": "batch", "1": "sequence"}
    names = {c["name"]: c for c in manifest["verification"]["checks"]}
    for name in ("ner-alignment", "ner-entity-f1", "ner-type-f1", "ner-tag-agreement"):
        assert names[name]["status"] == "passed", names[name]
    parity = manifest["verification"]["parity"]
    assert parity["tag_agreement"] == 1.0  # fp32: the same tags as PyTorch
    assert parity["delta"]["f1"] == pytest.approx(0.0, abs=1e-9)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_entities_equal_the_transformers_pipeline(tagger, tagger_package, strategy):
    from transformers import AutoModelForTokenClassification, AutoTokenizer, pipeline

    from edgec_runtime import load

    texts = [" ".join(w) for w in _sentences(24, 9)] + ["", "a  film,the PLOT!"]
    reference = pipeline(
        "token-classification",
        model=AutoModelForTokenClassification.from_pretrained(tagger),
        tokenizer=AutoTokenizer.from_pretrained(tagger),
        aggregation_strategy=strategy,
        device="cpu",
    )
    with load(tagger_package) as predictor:
        got = predictor.predict(texts, aggregation=strategy)
    assert sum(map(len, got)) > 20  # the random tagger finds plenty of entities
    for text, entities in zip(texts, got, strict=True):
        assert_same_entities(text, entities, reference(text) if text else [], strategy, 1e-5)


def test_pre_split_words_get_one_tag_each(tagger, tagger_package):
    import torch
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    from edgec_runtime import load

    sentences = _sentences(10, 11)
    tokenizer = AutoTokenizer.from_pretrained(tagger)
    model = AutoModelForTokenClassification.from_pretrained(tagger).eval()
    with load(tagger_package) as predictor:
        tags = predictor.predict_tokens(sentences)
    for words, got in zip(sentences, tags, strict=True):
        enc = tokenizer(words, is_split_into_words=True, return_tensors="pt")
        with torch.inference_mode():
            ids = model(**enc).logits[0].argmax(-1).tolist()
        first = {}
        for token, word in enumerate(enc.word_ids()):
            if word is not None:
                first.setdefault(word, ids[token])
        assert got == [NER_LABELS[first[i]] for i in range(len(words))]


def test_predict_prints_spans_and_json_lines(tagger_package):
    table = invoke_edgec("predict", tagger_package, "the movie was good and the plot awful")
    assert table.returncode == 0 and "chars" in table.stdout
    lines = invoke_edgec("predict", tagger_package, "a film", "the plot", "--json").stdout
    records = [json.loads(line) for line in lines.splitlines()]
    assert [r["text"] for r in records] == ["a film", "the plot"]
    for record in records:
        for e in record["entities"]:
            assert set(e) >= {"label", "score", "start", "end", "text"}
            assert record["text"][e["start"] : e["end"]] == e["text"]


def test_aggregation_is_only_for_taggers(embedder_package):
    result = invoke_edgec("predict", embedder_package, "a film", "--aggregation", "first")
    assert_clean_error(result, 2, "--aggregation is for token-classification")


def test_tagger_verify_with_the_record_and_with_the_reference(tagger, tagger_package, conll):
    recorded = invoke_edgec("verify", tagger_package, "--eval-data", conll, "--json")
    assert recorded.returncode == 0, recorded.stdout[-2000:]
    report = json.loads(recorded.stdout)
    assert report["task"] == "token-classification"
    assert report["parity"]["tag_agreement"] == 1.0
    assert report["thresholds"] == TASK_GATES["token-classification"]  # the tagger's only
    full = invoke_edgec("verify", tagger_package, "--eval-data", conll, "--reference", tagger)
    assert full.returncode == 0 and "ner-alignment" in full.stdout


def test_a_tagger_gate_can_fail_the_build(tagger, conll, tmp_path):
    """int8 moves a few of the random tagger's tags; a gate of 1.0 agreement refuses it."""
    out = tmp_path / "o"
    result = invoke_edgec(
        "build", tagger, "--eval-data", conll, "-o", out, "--backend", "onnxruntime:int8",
        "--gate", "min_tag_agreement=1.0", "--gate", "max_entity_f1_drop=0",
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    assert "ner-" in result.stderr and not out.exists()


def test_an_unknown_gate_is_exit_2_naming_the_gates(tagger, conll, tmp_path):
    result = invoke_edgec(
        "build", tagger, "--eval-data", conll, "-o", tmp_path / "o", "--gate", "min_f1=1"
    )
    assert_clean_error(result, 2, "min_tag_agreement")


# ---------------------------------------------------------------- sentence embeddings


def test_embedder_manifest_and_checks(embedder_package):
    manifest = json.loads((embedder_package / "edgec.json").read_text())
    assert manifest["task"] == {
        "name": "sentence-embedding", "pooling": "mean", "normalize": True, "dimension": 32,
    }  # fmt: skip
    assert manifest["labels"] == []
    assert manifest["io"]["output_names"] == ["sentence_embedding"]
    checks = {c["name"]: c["status"] for c in manifest["verification"]["checks"]}
    for name in (
        "embedding-cosine",
        "embedding-neighbours",
        "embedding-similarity-rank",
        "embedding-pair-scores",
    ):
        assert checks[name] == "passed", name
    parity = manifest["verification"]["parity"]
    assert parity["cosine"]["min"] > 0.99999
    assert parity["pair_scores"]["pairs"] == 48


@pytest.mark.parametrize(("pooling", "normalize"), [("mean", True), ("cls", False), ("max", True)])
def test_embeddings_equal_sentence_transformers_encode(tmp_path, corpus, pooling, normalize):
    from sentence_transformers import SentenceTransformer

    from edgec_runtime import load

    model = make_tiny_sentence_embedder(tmp_path / "m", pooling=pooling, normalize=normalize)
    out = tmp_path / "pkg"
    _build(model, corpus, out, "--backend", "onnxruntime:fp32")
    texts = [" ".join(w) for w in _sentences(30, 12)] + ["a", "the movie " * 80]
    expected = SentenceTransformer(str(model), device="cpu").encode(texts, batch_size=8)
    with load(out) as predictor:
        got = predictor.embed(texts)
    assert got.dtype == np.float32 and got.shape == expected.shape
    np.testing.assert_allclose(got, expected, atol=1e-5)
    norms = np.linalg.norm(got, axis=1)
    assert np.allclose(norms, 1.0, atol=1e-5) == normalize


def test_predict_writes_vectors_and_json(embedder_package, corpus, tmp_path):
    vectors = tmp_path / "v.npy"
    result = invoke_edgec("predict", embedder_package, "--input", corpus, "--output", vectors)
    assert result.returncode == 0, result.stderr
    array = np.load(vectors)
    assert array.shape == (48, 32) and array.dtype == np.float32
    line = invoke_edgec("predict", embedder_package, "a film", "--json").stdout
    assert len(json.loads(line)["embedding"]) == 32
    wrong = invoke_edgec("predict", embedder_package, "a film", "--output", tmp_path / "v.txt")
    assert_clean_error(wrong, 2, ".npy")


def test_embedder_verify_recorded_neighbours(embedder_package, corpus):
    result = invoke_edgec("verify", embedder_package, "--eval-data", corpus, "--json")
    assert result.returncode == 0, result.stdout[-2000:]
    report = json.loads(result.stdout)
    checks = {c["name"]: c["status"] for c in report["checks"]}
    assert checks["embedding-neighbours"] == "passed"
    assert checks["embedding-cosine"] == "skipped"  # the reference vectors are not shipped
    assert report["parity"]["neighbours"]["mean_overlap"] == 1.0


# ---------------------------------------------------------------- every backend


@pytest.mark.parametrize("task", ["tagger", "embedder"])
def test_every_backend_and_precision_builds_and_verifies(request, task, tmp_path):
    model = request.getfixturevalue(task)
    data = request.getfixturevalue("conll" if task == "tagger" else "corpus")
    candidates = (
        "onnxruntime:fp32,onnxruntime:int8,onnxruntime:int8-static,"
        "openvino:fp32,openvino:fp16,openvino:int8,openvino:int8-accuracy-control"
    )
    payload = _build(
        model, data, tmp_path / "o", "--backend", candidates, "--pick", "fastest", *LOOSE
    )
    rows = payload["manifest"]["selection"]["candidates"]
    assert len(rows) == 7
    assert all(row["status"] == "passed" for row in rows), [
        (r["backend"], r["failures"]) for r in rows
    ]
    record = next(
        r for r in rows if r["precision"] == "int8-accuracy-control"
    )  # the task's own metric drove NNCF
    assert record["agreement"] is not None


@pytest.mark.parametrize("task", ["tagger", "embedder"])
def test_tensorrt_jetson_packages_build_here_and_are_checked_with_onnx_runtime(
    request, task, tmp_path
):
    """The TensorRT code path without TensorRT: the graph and recipe a Jetson compiles,
    checked here on the CPU (int8 Q/DQ as-is)."""
    model = request.getfixturevalue(task)
    data = request.getfixturevalue("conll" if task == "tagger" else "corpus")
    payload = _build(model, data, tmp_path / "o", "--target", "jetson-orin", *LOOSE)
    manifest = payload["manifest"]
    assert manifest["backend"]["name"] == "tensorrt"
    assert manifest["verification"]["status"] == "passed"
    assert "ONNX Runtime" in manifest["verification"]["checked_on"]


def test_bench_times_tagger_and_embedder_packages(tagger_package, embedder_package, conll):
    result = invoke_edgec(
        "bench", tagger_package, embedder_package, "--lengths-from", conll,
        "--batch", "1", "--runs", "2", "--warmup", "0", "--cold-runs", "0",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "onnxruntime fp32" in result.stdout
