"""Every supported family loads, exports with the real input names, and matches PyTorch."""

import numpy as np
import onnx
import pytest

from edgec.export import EXPORT_TOLERANCE, OPSET, export_onnx, reference_inputs, torch_logits
from edgec.model import load_source_model

EXPECTED_INPUTS = {
    "bert": ["input_ids", "attention_mask", "token_type_ids"],
    "distilbert": ["input_ids", "attention_mask"],
    "roberta": ["input_ids", "attention_mask"],
    "xlm-roberta": ["input_ids", "attention_mask"],
    "electra": ["input_ids", "attention_mask", "token_type_ids"],
}


@pytest.mark.parametrize("family", sorted(EXPECTED_INPUTS))
def test_export_matches_pytorch(family, tiny_models, tmp_path):
    source = load_source_model(tiny_models[family])
    facts = export_onnx(source, tmp_path / "model.onnx")
    graph = onnx.load(str(tmp_path / "model.onnx")).graph
    assert [i.name for i in graph.input] == EXPECTED_INPUTS[family]
    assert [o.name for o in graph.output] == ["logits"]
    assert facts["opset"] >= OPSET
    assert facts["max_abs_logit_difference"] <= EXPORT_TOLERANCE
    # dynamic axes: a batch/sequence shape never seen at export time still matches
    from edgec.backends.onnxruntime import OrtRunner

    inputs = reference_inputs(source, ["the movie", "a very witty and great story " * 5, "ok"])
    runner = OrtRunner(tmp_path / "model.onnx", {})
    np.testing.assert_allclose(
        runner.run(inputs), torch_logits(source.model, inputs), atol=EXPORT_TOLERANCE
    )


def test_source_model_facts(tiny_models):
    source = load_source_model(tiny_models["roberta"])
    assert source.labels == ["class_0", "class_1"]
    assert source.max_length == 128  # tokenizer limit; RoBERTa positions allow 130 - 2
    assert len(source.weights_sha256) == 64
    capped = load_source_model(tiny_models["bert"], max_length=32)
    assert capped.max_length == 32
