"""Every supported family loads, exports with the real input names, and matches PyTorch."""

import numpy as np
import onnx
import pytest

from edgec.export import OPSET, export_onnx
from edgec.model import load_source_model
from edgec_runtime.iospec import family_spec

EXPECTED_INPUTS = {
    "bert": ["input_ids", "attention_mask", "token_type_ids"],
    "distilbert": ["input_ids", "attention_mask"],
    "roberta": ["input_ids", "attention_mask"],
    "xlm-roberta": ["input_ids", "attention_mask"],
    "electra": ["input_ids", "attention_mask", "token_type_ids"],
}


def _onnx_logits(path, feeds: dict) -> np.ndarray:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(["logits"], feeds)[0]


def _pytorch_logits(model, feeds: dict) -> np.ndarray:
    import torch

    with torch.inference_mode():
        return model(**{k: torch.from_numpy(v) for k, v in feeds.items()}).logits.numpy()


@pytest.mark.parametrize("family", sorted(EXPECTED_INPUTS))
def test_export_matches_pytorch(family, tiny_models, tmp_path):
    source = load_source_model(tiny_models[family])
    path = tmp_path / "model.onnx"
    facts = export_onnx(source, path)
    graph = onnx.load(str(path)).graph
    assert [i.name for i in graph.input] == EXPECTED_INPUTS[family]
    assert [o.name for o in graph.output] == ["logits"]
    assert facts["opset"] >= OPSET and facts["max_abs_logit_difference"] >= 0
    # Checked here, not taken from the export's own check: onnxruntime on the graph
    # against the PyTorch model, on a batch and sequence length the export never saw
    # (the axes are dynamic), within the family's declared tolerance.
    texts = ["the movie", "a very witty and great story " * 5, "ok"]
    encoded = source.tokenizer(texts, padding="longest", truncation=True, return_tensors="np")
    feeds = {name: encoded[name].astype(np.int64) for name in EXPECTED_INPUTS[family]}
    expected = _pytorch_logits(source.model, feeds)
    assert np.abs(expected).max() > 0  # a graph that outputs zeros must not pass
    np.testing.assert_allclose(
        _onnx_logits(path, feeds),
        expected,
        rtol=0,
        atol=family_spec(source.model_type).export_tolerance,
    )


def test_source_model_facts(tiny_models):
    source = load_source_model(tiny_models["roberta"])
    assert source.labels == ["class_0", "class_1"]
    assert source.max_length == 128  # tokenizer limit; RoBERTa positions allow 130 - 2
    assert len(source.weights_sha256) == 64
    capped = load_source_model(tiny_models["bert"], max_length=32)
    assert capped.max_length == 32
