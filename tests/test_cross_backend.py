"""`edgec build --backend a,b --precision x,y`: one candidate per pair, each verified
and timed on its own; only the picked candidate's files and report reach the package."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_helpers import assert_clean_error, invoke_edgec

from edgec.package import MANIFEST
from edgec.pipeline import Candidate, pick_candidate
from edgec.plugins import get_backend
from edgec.targets import get_target
from edgec_runtime.errors import VerificationFailed

pytest.importorskip("openvino")

BACKEND_FILES = {
    "onnxruntime": {"model.onnx"},
    "openvino": {"model.xml", "model.bin"},
}
TOKENIZER_FILES = {"tokenizer.json", "tokenizer_config.json"}


@pytest.fixture(scope="module")
def fastest(tiny_bert, tiny_eval_csv, tmp_path_factory):
    out = tmp_path_factory.mktemp("cross") / "fastest"
    r = invoke_edgec(
        "build", tiny_bert, "--target", "x86-cpu", "--eval-data", tiny_eval_csv,
        "--backend", "onnxruntime,openvino", "--precision", "int8,fp32",
        "--pick", "fastest", "-o", out,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    return out, r.stdout


def test_every_pair_is_built_verified_and_timed(fastest):
    out, stdout = fastest
    manifest = json.loads((out / MANIFEST).read_text())
    rows = manifest["selection"]["candidates"]
    assert manifest["selection"]["rule"] == "fastest"
    assert {(r["backend"], r["precision"]) for r in rows} == {
        ("onnxruntime", "int8"), ("onnxruntime", "fp32"), ("openvino", "int8"), ("openvino", "fp32"),
    }  # fmt: skip
    for row in rows:
        assert row["status"] == "passed", row
        assert row["size_mb"] > 0 and row["p50_ms"] > 0
        assert 0.0 <= row["agreement"] <= 1.0
    picked = [r for r in rows if r["picked"]]
    assert len(picked) == 1
    assert picked[0]["p50_ms"] == min(r["p50_ms"] for r in rows)
    for row in rows:  # the table on the terminal names every candidate
        assert f"{row['backend']}:{row['precision']}" in stdout


def test_the_package_holds_only_the_picked_candidate(fastest):
    out, _ = fastest
    manifest = json.loads((out / MANIFEST).read_text())
    picked = next(r for r in manifest["selection"]["candidates"] if r["picked"])
    backend = manifest["backend"]
    assert (backend["name"], backend["precision"]) == (picked["backend"], picked["precision"])
    expected = BACKEND_FILES[backend["name"]] | TOKENIZER_FILES
    assert set(manifest["files"]) == expected
    assert {p.name for p in out.iterdir()} == expected | {MANIFEST}
    # the package's own verification is the picked candidate's
    assert manifest["verification"]["parity"]["agreement"] == picked["agreement"]


def test_the_default_pick_is_the_targets_own(tiny_bert, tiny_eval_csv, tmp_path):
    out = tmp_path / "pkg"
    r = invoke_edgec(
        "build", tiny_bert, "--target", "x86-cpu", "--eval-data", tiny_eval_csv,
        "--backend", "openvino,onnxruntime", "--precision", "int8", "-o", out, "--json",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    manifest = json.loads(r.stdout)["manifest"]
    assert (manifest["backend"]["name"], manifest["backend"]["precision"]) == (
        "onnxruntime",
        "int8",
    )
    assert [r["picked"] for r in manifest["selection"]["candidates"]] == [False, True]


def test_a_pair_a_backend_cannot_make_is_skipped_with_a_note(tiny_bert, tiny_eval_csv, tmp_path):
    out = tmp_path / "pkg"
    r = invoke_edgec(
        "build", tiny_bert, "--target", "x86-cpu", "--eval-data", tiny_eval_csv,
        "--backend", "onnxruntime,openvino", "--precision", "int8,int8-static",
        "--pick", "fastest", "-o", out,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "skipping openvino:int8-static" in r.stdout
    manifest = json.loads((out / MANIFEST).read_text())
    assert len(manifest["selection"]["candidates"]) == 3


def test_a_target_choice_outside_the_candidates_is_refused(tiny_bert, tiny_eval_csv, tmp_path):
    out = tmp_path / "pkg"
    r = invoke_edgec(
        "build", tiny_bert, "--target", "x86-cpu", "--eval-data", tiny_eval_csv,
        "--backend", "onnxruntime,openvino", "--precision", "fp32", "-o", out,
    )  # fmt: skip
    assert_clean_error(r, 2, "onnxruntime:int8", "--pick fastest")
    assert not out.exists()


def _candidate(name: str, precision: str, status: str, p50: float | None) -> Candidate:
    c = Candidate(get_backend(name), precision, Path("/nonexistent"))
    c.verification = {
        "status": status,
        "failures": ["agreement too low"] if status == "failed" else [],
    }
    c.p50_ms = p50
    return c


def test_pick_rules():
    target = get_target("x86-cpu")  # onnxruntime:int8
    ort8 = _candidate("onnxruntime", "int8", "passed", 5.0)
    ort32 = _candidate("onnxruntime", "fp32", "passed", 9.0)
    ov8 = _candidate("openvino", "int8", "passed", 4.0)
    bad = _candidate("openvino", "fp32", "failed", 1.0)
    assert pick_candidate([ort32, ort8, ov8], "target", target) is ort8
    assert pick_candidate([ort32, ort8, ov8, bad], "fastest", target) is ov8  # bad is faster
    failing_target = _candidate("onnxruntime", "int8", "failed", 1.0)
    with pytest.raises(VerificationFailed, match="--pick fastest"):
        pick_candidate([failing_target, ov8], "target", target)
    with pytest.raises(VerificationFailed, match="no candidate passed"):
        pick_candidate([bad, failing_target], "fastest", target)
