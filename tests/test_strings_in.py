"""Strings-in packages (`-O tokenizer=graph`) on tiny models: the build's check and
merge, the runtime's path, a plain engine binding with no Python tokenizer, and the
fall-backs, said. What the converters do with the real MiniLM tokenizer is in
test_graph_tokenizer.py.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from cli_helpers import invoke_edgec
from conftest import random_sentences, write_csv
from tiny_models import make_tiny_sentence_embedder, make_tiny_token_classifier

from edgec_runtime import load

TEXTS = ["a gorgeous , witty movie", "boring", "we love it !", *random_sentences(20, seed=9)]
BACKENDS = ["onnxruntime:fp32", "openvino:fp32", "onnxruntime:int8"]

# What a C++/C#/Java/JS app does, in Python with the engine's binding alone: register the
# tokenizer operators, feed strings, read logits; no edgec. (onnxruntime_extensions
# imports transformers where it is installed, as here; tests/test_runtime_dist.py runs
# a strings-in package where neither it nor torch is installed.)
BINDINGS = {
    "onnxruntime": """
import json, sys
import numpy as np, onnxruntime as ort
from onnxruntime_extensions import get_library_path
options = ort.SessionOptions()
options.register_custom_ops_library(get_library_path())
session = ort.InferenceSession(sys.argv[1], options, providers=["CPUExecutionProvider"])
logits = session.run(None, {"text": np.array(json.loads(sys.argv[2]), dtype=object)})[0]
""",
    "openvino": """
import json, sys
import numpy as np, openvino as ov, openvino_tokenizers
model = ov.Core().compile_model(sys.argv[1], "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
logits = model({"text": np.array(json.loads(sys.argv[2]))})[model.output(0)]
""",
}
CHECK = """
assert "edgec_runtime" not in sys.modules
print(json.dumps(np.asarray(logits).tolist()))
"""


def _build(model, data, out, *extra) -> dict:
    result = invoke_edgec("build", model, "--eval-data", data, "-o", out, "--json", *extra)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)["manifest"]


@pytest.fixture(scope="module", params=BACKENDS)
def packages(request, tiny_bert, tiny_eval_csv, tmp_path_factory):
    root = tmp_path_factory.mktemp("strings-in")
    backend = ("--backend", request.param)
    regular = root / "regular"
    strings = root / "strings"
    _build(tiny_bert, tiny_eval_csv, regular, *backend)
    manifest = _build(tiny_bert, tiny_eval_csv, strings, *backend, "-O", "tokenizer=graph")
    return request.param.split(":")[0], regular, strings, manifest


def test_the_build_checks_the_graph_tokenizer_then_merges_it(packages):
    _, _, _, manifest = packages
    record = manifest["backend"]["tokenizer"]
    assert record["status"] == "in-graph" and record["input"] == "text"
    assert record["checked"]["eval"] == {**record["checked"]["eval"], "texts": 100, "mismatches": 0}
    assert {"eval", "probes", "generated"} <= set(record["checked"])
    assert manifest["verification"]["status"] == "passed"


def test_a_strings_in_package_answers_like_the_regular_one(packages):
    _, regular, strings, _ = packages
    with load(regular) as a, load(strings) as b:
        assert b.strings_in and not a.strings_in
        np.testing.assert_allclose(b.logits(TEXTS), a.logits(TEXTS), atol=1e-5)
        assert [p["label"] for p in b.predict(TEXTS)] == [p["label"] for p in a.predict(TEXTS)]


def test_the_engine_binding_alone_runs_it(packages):
    backend, regular, strings, manifest = packages
    model_file = strings / manifest["backend"]["files"][0]
    code = BINDINGS[backend] + CHECK
    result = subprocess.run(
        [sys.executable, "-c", code, str(model_file), json.dumps(TEXTS)],
        capture_output=True, text=True, cwd=strings,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    with load(regular) as package:
        np.testing.assert_allclose(np.array(json.loads(result.stdout)), package.logits(TEXTS), atol=1e-4)


@pytest.mark.parametrize("backend", ["onnxruntime:fp32", "openvino:fp32"])
def test_an_embedder_in_graph_gives_the_regular_vectors(backend, tmp_path):
    """Pooling and normalization stay inside the graph, behind the tokenizer."""
    embedder = make_tiny_sentence_embedder(tmp_path / "m")
    data = write_csv(tmp_path / "texts.csv", [{"text": t} for t in TEXTS])
    regular, strings = tmp_path / "regular", tmp_path / "strings"
    _build(embedder, data, regular, "--backend", backend)
    manifest = _build(embedder, data, strings, "--backend", backend, "-O", "tokenizer=graph")
    assert manifest["backend"]["tokenizer"]["status"] == "in-graph"
    with load(regular) as a, load(strings) as b:
        np.testing.assert_allclose(b.embed(TEXTS), a.embed(TEXTS), atol=1e-5)


def test_a_tokenizer_the_graph_cannot_hold_falls_back_and_says_so(tiny_models, tiny_eval_csv, tmp_path):
    """RoBERTa's byte-level BPE is not WordPiece: the package keeps tokenizer.json."""
    out = tmp_path / "pkg"
    result = invoke_edgec(
        "build", tiny_models["roberta"], "--backend", "onnxruntime:fp32", "-O", "tokenizer=graph",
        "--eval-data", tiny_eval_csv, "-o", out,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "warning: -O tokenizer=graph: the tokenizer stays in Python" in result.stderr
    manifest = json.loads((out / "edgec.json").read_text())
    record = manifest["backend"]["tokenizer"]
    assert record["status"] == "fell back" and "onnxruntime-extensions" in record["why"]
    assert any("tokenizer stays in Python" in w for w in manifest["verification"]["warnings"])
    with load(out) as package:
        assert not package.strings_in and len(package.predict(TEXTS)) == len(TEXTS)


def test_a_tagger_keeps_its_python_tokenizer(tmp_path):
    tagger = make_tiny_token_classifier("bert", tmp_path / "tagger")
    conll = tmp_path / "eval.conll"
    conll.write_text("".join(f"{w}\tO\n" for w in ["we", "love", "it"]) + "\n" * 2, encoding="utf-8")
    out = tmp_path / "pkg"
    result = invoke_edgec(
        "build", tagger, "--backend", "openvino:fp32", "-O", "tokenizer=graph",
        "--eval-data", conll, "--no-verify", "-o", out,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    record = json.loads((out / "edgec.json").read_text())["backend"]["tokenizer"]
    assert record["status"] == "fell back" and "offsets" in record["why"]


def test_a_backend_that_cannot_hold_a_tokenizer_refuses_the_option(tiny_bert, tiny_eval_csv, tmp_path):
    result = invoke_edgec(
        "build", tiny_bert, "--backend", "tensorrt:fp16", "-O", "tokenizer=graph",
        "-O", "build_on_device=true", "--eval-data", tiny_eval_csv, "-o", tmp_path / "p",
    )  # fmt: skip
    assert result.returncode == 2 and "unknown option 'tokenizer'" in result.stderr
