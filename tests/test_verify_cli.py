"""`edgec verify` and the build gate on a tiny model: exit codes, reports, messages.

Accuracy claims live in test_verify_real.py; here the model is random and fp32, so
parity is exact and every failure is one this test provoked on purpose.
"""

from __future__ import annotations

import json
import shutil
from xml.etree import ElementTree as ET

import pytest
from click.testing import CliRunner
from conftest import random_sentences, write_csv
from tiny_models import make_tiny_classifier

from edgec.cli import cli
from edgec.pipeline import BuildRequest, build
from edgec.targets import get_target
from edgec_runtime.errors import VerificationFailed


@pytest.fixture(scope="module")
def package(tiny_bert, tiny_eval_csv, tmp_path_factory):
    out = tmp_path_factory.mktemp("verify") / "pkg"
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


def run(*args):
    result = CliRunner().invoke(cli, [str(a) for a in args])
    assert "Traceback" not in result.output, result.output
    return result


def test_a_good_package_passes_and_writes_three_reports(package, tiny_eval_csv, tmp_path):
    paths = [tmp_path / "r.json", tmp_path / "r.xml", tmp_path / "r.md"]
    result = run(
        "verify", package, "--eval-data", tiny_eval_csv,
        "--report", paths[0], "--junit", paths[1], "--summary", paths[2],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "verification PASSED" in result.output
    report = json.loads(paths[0].read_text())
    assert report["status"] == "passed" and report["mode"] == "recorded"
    checks = {c["name"]: c for c in report["checks"]}
    # same data as the build: the recorded reference predictions are re-checked
    assert checks["parity-agreement"]["status"] == "passed"
    assert checks["parity-accuracy"]["status"] == "passed"
    assert checks["parity-logit-deltas"]["status"] == "skipped"
    assert any("without reference logits" in line for line in report["not_checked"])
    suite = ET.parse(paths[1]).getroot().find("testsuite")
    cases = suite.findall("testcase")
    assert {c.get("name") for c in cases} == set(checks)
    assert suite.get("failures") == "0" and not suite.findall("testcase/failure")
    assert "edgec verify: PASSED" in paths[2].read_text()


def test_with_the_reference_every_parity_figure_is_recomputed(
    package, tiny_bert, tiny_eval_csv, tmp_path
):
    result = run(
        "verify", package, "--eval-data", tiny_eval_csv, "--reference", tiny_bert,
        "--report", tmp_path / "r.json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["mode"] == "reference"
    assert report["parity"]["agreement"] == 1.0
    assert report["parity"]["max_abs_logit_delta"] < 1e-4
    statuses = {c["name"]: c["status"] for c in report["checks"]}
    assert statuses["reference-weights"] == "passed"
    assert "skipped" not in statuses.values()


def test_a_different_reference_model_fails_clearly(package, tiny_eval_csv, tmp_path):
    other = make_tiny_classifier("bert", tmp_path / "other", seed=7)
    result = run("verify", package, "--eval-data", tiny_eval_csv, "--reference", other)
    assert result.exit_code == 1
    assert "not the model this package was built from" in result.output


def test_an_edited_model_file_fails_integrity_and_still_reports(package, tiny_eval_csv, tmp_path):
    broken = shutil.copytree(package, tmp_path / "broken")
    model = broken / "model.onnx"
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0xFF
    model.write_bytes(bytes(data))
    junit = tmp_path / "r.xml"
    result = run("verify", broken, "--eval-data", tiny_eval_csv, "--junit", junit)
    assert result.exit_code == 1
    assert "integrity: model.onnx was modified" in result.output
    failures = ET.parse(junit).getroot().findall(".//testcase/failure")
    assert [f.get("message") for f in failures] == [
        "model.onnx was modified (sha256 differs from the manifest)"
    ]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--eval-data", "missing.csv"], "does not exist"),
        (["--eval-data", "{eval}", "--report", "no/such/dir/r.json"], "does not exist"),
        (["--eval-data", "{eval}", "--label-column", "nope"], "no column 'nope'"),
    ],
)
def test_bad_input_exits_2_and_writes_nothing(package, tiny_eval_csv, tmp_path, args, message):
    args = [a.replace("{eval}", str(tiny_eval_csv)) for a in args]
    reports = ["--junit", tmp_path / "r.xml", "--summary", tmp_path / "r.md"]
    if "--report" not in args:
        reports += ["--report", tmp_path / "r.json"]
    result = run("verify", package, *args, *reports)
    assert result.exit_code == 2
    assert message in result.output
    assert not list(tmp_path.iterdir())  # none of the three reports was written


def test_unlabeled_data_checks_only_agreement_and_says_so(package, tiny_bert, tmp_path):
    texts = write_csv(tmp_path / "t.csv", [{"text": t} for t in random_sentences(20, seed=5)])
    result = run("verify", package, "--eval-data", texts, "--reference", tiny_bert, "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    skipped = {c["name"]: c["message"] for c in report["checks"] if c["status"] == "skipped"}
    assert set(skipped) == {"parity-accuracy", "parity-class-f1", "labels-permutation"}
    assert all("no labels" in m for m in skipped.values())


def test_an_unverified_package_needs_a_reference(tiny_bert, tiny_eval_csv, tmp_path):
    out = tmp_path / "unverified"
    build_result = run("build", tiny_bert, "-o", out, "--precision", "fp32", "--no-verify")
    assert build_result.exit_code == 0, build_result.output
    result = run("verify", out, "--eval-data", tiny_eval_csv)
    assert result.exit_code == 1
    assert "pass --reference MODEL" in result.output
    assert "UNVERIFIED" in result.output
    ok = run("verify", out, "--eval-data", tiny_eval_csv, "--reference", tiny_bert)
    assert ok.exit_code == 0, ok.output


def test_the_build_gate_refuses_a_tokenizer_that_truncates_differently(
    tiny_bert, tiny_eval_csv, tmp_path
):
    request = BuildRequest(
        model=tiny_bert,
        target=get_target("x86-cpu", ()),
        output=tmp_path / "api",
        eval_data=tiny_eval_csv,
        precision="fp32",
        max_length=32,  # the tokenizer was trained with 128
    )
    with pytest.raises(VerificationFailed) as caught:
        build(request)
    assert caught.value.report["status"] == "failed"
    assert "tokenizer-settings" in str(caught.value)
    assert not (tmp_path / "api").exists()
    result = run(
        "build", tiny_bert, "--eval-data", tiny_eval_csv, "-o", tmp_path / "cli",
        "--precision", "fp32", "--max-length", "32",
    )  # fmt: skip
    assert result.exit_code == 1
    assert "no package written" in result.output
    assert "max_length is 32 in the package but 128 in training" in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_the_targets_own_gates_apply_unless_the_command_line_sets_one(
    tiny_bert, tiny_eval_csv, tmp_path
):
    targets = tmp_path / "targets.toml"
    targets.write_text(
        '[strict]\nbackend = "onnxruntime"\nprecision = "fp32"\n'
        "verify = { min_agreement = 0.99, max_accuracy_drop = 1.5, max_class_drop = 2.0 }\n"
    )
    out = tmp_path / "pkg"
    build(
        BuildRequest(
            model=tiny_bert,
            target=get_target("strict", [targets]),
            output=out,
            eval_data=tiny_eval_csv,
        )
    )
    report_path = tmp_path / "r.json"
    assert run("verify", out, "--eval-data", tiny_eval_csv, "--report", report_path).exit_code == 0
    gates = json.loads(report_path.read_text())["thresholds"]
    assert gates == {
        "min_agreement": 0.99,
        "max_accuracy_drop": 1.5,
        "max_class_drop": 2.0,
        "max_unk_rate": 0.05,
    }
    run(
        "verify", out, "--eval-data", tiny_eval_csv, "--min-agreement", 0.5, "--report", report_path
    )
    gates = json.loads(report_path.read_text())["thresholds"]
    assert gates["min_agreement"] == 0.5 and gates["max_accuracy_drop"] == 1.5
