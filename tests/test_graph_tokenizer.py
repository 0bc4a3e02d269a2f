"""In-graph tokenizers (edgec.graph_tokenizer) against transformers, on real tokenizers.

The MiniLM tokenizer is uncased with strip_accents=None, the case onnxruntime-extensions
gets wrong out of the box; the sentiment teacher gives a real classifier to merge with,
and its test split real sentences to batch.
"""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from edgec.graph_tokenizer import (
    OFFSETS_OUTPUT,
    check,
    load_hf_tokenizer,
)
from edgec.graph_tokenizer import onnxruntime as gt_ort
from edgec.graph_tokenizer import openvino as gt_ov
from edgec_runtime.iospec import STRING_INPUT

MAX_LENGTH = 64
PRE = {"max_length": MAX_LENGTH, "pad_token_id": 0}
ACCENTS = "Café naïve résumé"
LONG = " ".join(["wonderful", "movie", "and", "story"] * 25)  # 100 words
NAMES = ("input_ids", "attention_mask", "token_type_ids")


@pytest.fixture(scope="module")
def minilm():
    import common

    return common.fetch_base_model()


@pytest.fixture(scope="module")
def sentences(sentiment_splits) -> list[str]:
    with open(sentiment_splits["test"], newline="", encoding="utf-8") as f:
        return [row["text"] for row in csv.DictReader(f)]


@pytest.fixture(scope="module")
def ort_tokenizer(sentiment_teacher):
    return gt_ort.tokenizer_graph(sentiment_teacher, PRE)


@pytest.fixture(scope="module")
def ov_tokenizer(sentiment_teacher):
    return gt_ov.tokenizer_model(sentiment_teacher, PRE)


@pytest.fixture(scope="module")
def onnx_model(sentiment_teacher, tmp_path_factory):
    """The teacher exported as facts.md says (legacy exporter, opset 17)."""
    import torch
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(sentiment_teacher).eval()

    class Logits(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.inner(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).logits

    sample = load_hf_tokenizer(sentiment_teacher)(
        ["a fine film", "ok"], padding=True, return_tensors="pt"
    )
    path = tmp_path_factory.mktemp("graph_tokenizer") / "model.onnx"
    torch.onnx.export(
        Logits(model).eval(),
        tuple(sample[n] for n in NAMES),
        str(path),
        input_names=list(NAMES),
        output_names=["logits"],
        dynamic_axes={n: {0: "batch", 1: "sequence"} for n in NAMES} | {"logits": {0: "batch"}},
        opset_version=17,
        dynamo=False,
    )
    return path


def reference_logits(onnx_model, hf, texts):
    """The regular ONNX model on transformers' ids: what the strings-in model must equal."""
    import onnxruntime as ort

    enc = hf(texts, truncation=True, max_length=MAX_LENGTH, padding="longest", return_tensors="np")
    sess = ort.InferenceSession(str(onnx_model), providers=["CPUExecutionProvider"])
    return sess.run(None, {n: enc[n].astype(np.int64) for n in NAMES})[0]


@pytest.mark.parametrize("converter", ["onnxruntime", "openvino"])
def test_accents_and_truncation_match_transformers(minilm, converter):
    hf = load_hf_tokenizer(minilm)
    build = gt_ort.tokenizer_graph if converter == "onnxruntime" else gt_ov.tokenizer_model
    module = gt_ort if converter == "onnxruntime" else gt_ov
    encode = module.encoder(build(minilm, PRE))

    def real(out):  # OpenVINO pads every text to max_length (one shape to specialise for)
        return out["input_ids"][out["attention_mask"] == 1].tolist()

    assert real(encode(ACCENTS)) == [101, 7668, 15743, 13746, 102]
    ids = real(encode(LONG))
    assert len(ids) == MAX_LENGTH and ids[-1] == hf.sep_token_id
    assert ids == hf(LONG, truncation=True, max_length=MAX_LENGTH)["input_ids"]


def test_check_reports_the_unpatched_converter(minilm):
    """gen_processing_models as it comes keeps the accents: compare must say so."""
    from onnxruntime_extensions import gen_processing_models

    hf = load_hf_tokenizer(minilm)
    raw, _ = gen_processing_models(hf, pre_kwargs={})
    sess = gt_ort.session(raw, 1)
    names = [o.name for o in sess.get_outputs()]

    def encode(text):
        return dict(zip(names, sess.run(None, {"text": np.array([text])}), strict=True))

    report = check.compare(encode, hf, [ACCENTS, "hello world", LONG], MAX_LENGTH, False)
    json.dumps(report)
    assert report["texts"] == 3 and report["mismatches"] == 2 and not report["ok"]
    assert report["by_field"]["input_ids"] == 2
    first = report["examples"][0]
    assert first["text"] == ACCENTS and first["field"] == "input_ids"
    assert first["expected"] == [101, 7668, 15743, 13746, 102]
    assert first["got"][:3] == [101, 24689, 100]


@pytest.mark.parametrize("converter", ["onnxruntime", "openvino"])
def test_real_sentences_one_by_one_and_batched(
    sentiment_teacher, sentences, ort_tokenizer, ov_tokenizer, converter
):
    hf = load_hf_tokenizer(sentiment_teacher)
    if converter == "onnxruntime":
        encode = gt_ort.encoder(ort_tokenizer)
        sess = gt_ort.session(ort_tokenizer, 1)
        names = [o.name for o in sess.get_outputs()]
        got = dict(zip(names, sess.run(None, {STRING_INPUT: np.array(sentences[:48])}), strict=True))
    else:
        encode = gt_ov.encoder(ov_tokenizer)
        compiled = gt_ov.compile(ov_tokenizer, 1)
        out = compiled({STRING_INPUT: np.array(sentences[:48])})
        got = {o.get_any_name(): out[o] for o in compiled.outputs}
    report = check.compare(encode, hf, sentences, MAX_LENGTH, want_offsets=False)
    assert report["ok"], report["examples"]
    assert report["texts"] == len(sentences) >= 500
    want = hf(
        sentences[:48],
        truncation=True,
        max_length=MAX_LENGTH,
        padding="longest" if converter == "onnxruntime" else "max_length",
        return_tensors="np",
    )
    for name in NAMES:
        assert got[name].dtype == np.int64
        np.testing.assert_array_equal(got[name], want[name])


def test_offsets_where_normalization_keeps_positions(sentiment_teacher, ort_tokenizer):
    """Offsets are positions in the op's normalized text (stripped, punctuation spaced
    apart): equal to transformers' when that keeps every character in place. A truncated
    text's [SEP] gets (0, 0), not the first cut piece's span."""
    hf = load_hf_tokenizer(sentiment_teacher)
    texts = [ACCENTS, "UPPER lower MiXeD", "emoji 😀 here", "hello , world !", LONG]
    report = check.compare(gt_ort.encoder(ort_tokenizer), hf, texts, MAX_LENGTH, True)
    assert report["ok"], report["examples"]
    ov_report = check.compare(
        gt_ov.encoder(gt_ov.tokenizer_model(sentiment_teacher, PRE)),
        hf,
        texts[:1],
        MAX_LENGTH,
        True,
    )
    assert ov_report["missing_fields"] == [OFFSETS_OUTPUT]


def test_strings_in_onnx_equals_the_regular_model(
    sentiment_teacher, sentences, onnx_model, ort_tokenizer, tmp_path
):
    hf = load_hf_tokenizer(sentiment_teacher)
    texts = [*sentences[:15], ACCENTS, LONG]
    merged = gt_ort.merge(
        ort_tokenizer,
        onnx_model,
        tmp_path / "strings.onnx",
        extra_outputs=("attention_mask", OFFSETS_OUTPUT),
    )
    sess = gt_ort.session(merged, 2)
    assert [i.name for i in sess.get_inputs()] == [STRING_INPUT]
    assert [o.name for o in sess.get_outputs()] == ["logits", "attention_mask", OFFSETS_OUTPUT]
    logits, mask, offsets = sess.run(None, {STRING_INPUT: np.array(texts)})
    want = reference_logits(onnx_model, hf, texts)
    np.testing.assert_allclose(logits, want, atol=1e-4)
    assert mask.shape == offsets.shape[:2] == (len(texts), MAX_LENGTH)
    one = sess.run(["logits"], {STRING_INPUT: np.array(texts[:1])})[0]  # batch 1, unpadded
    np.testing.assert_allclose(one[0], want[0], atol=1e-4)


def test_strings_in_openvino_equals_the_regular_model(
    sentiment_teacher, sentences, onnx_model, ov_tokenizer
):
    import openvino as ov

    hf = load_hf_tokenizer(sentiment_teacher)
    texts = [*sentences[15:30], ACCENTS, LONG]
    merged = gt_ov.merge(
        ov_tokenizer, ov.convert_model(str(onnx_model)), extra_outputs=("attention_mask",)
    )
    assert [i.get_any_name() for i in merged.inputs] == [STRING_INPUT]
    compiled = gt_ov.compile(merged, 2)
    out = compiled({STRING_INPUT: np.array(texts)})
    np.testing.assert_allclose(out[0], reference_logits(onnx_model, hf, texts), atol=1e-4)
    assert out[1].shape == (len(texts), MAX_LENGTH)


def test_refuses_what_the_graph_cannot_do(sentiment_teacher):
    with pytest.raises(ValueError, match="text pairs"):
        gt_ort.tokenizer_graph(sentiment_teacher, {**PRE, "text_pair": True})
    with pytest.raises(ValueError, match="left"):
        gt_ov.tokenizer_model(sentiment_teacher, {**PRE, "truncation_side": "left"})
