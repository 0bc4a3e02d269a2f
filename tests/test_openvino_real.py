"""OpenVINO on the real sentiment teacher: fp32, fp16 and int8 packages are built,
verified, and run through `edgec predict` and `edgec verify`, like a user would.

fp32 must agree with PyTorch on at least 99.9 % of the sentences; fp16 and int8 must
pass the target's gates. 200 test sentences keep this to about a minute.
"""

from __future__ import annotations

import json

import pytest
from cli_helpers import invoke_edgec
from conftest import write_csv

pytest.importorskip("openvino")
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def eval200(sentiment_splits, tmp_path_factory):
    import sentiment

    rows = [{"text": t, "label": y} for t, y in sentiment.read_split(sentiment_splits["test"])]
    return write_csv(tmp_path_factory.mktemp("ov-real") / "eval200.csv", rows[:200])


@pytest.mark.parametrize("precision", ["fp32", "fp16", "int8"])
def test_openvino_package_on_the_real_teacher(
    precision, sentiment_teacher, sentiment_splits, eval200, tmp_path
):
    out = tmp_path / f"ov-{precision}"
    built = invoke_edgec(
        "build", sentiment_teacher, "--target", "intel-cpu", "--precision", precision,
        "--eval-data", eval200, "--calibration-data", sentiment_splits["validation"],
        "-o", out, "--json",
    )  # fmt: skip
    assert built.returncode == 0, built.stderr
    manifest = json.loads(built.stdout)["manifest"]
    assert manifest["backend"]["name"] == "openvino"
    assert {"model.xml", "model.bin"} <= set(manifest["files"])
    parity = manifest["verification"]["parity"]
    print(
        f"\nopenvino {precision}: agreement {parity['agreement']:.4f}, accuracy "
        f"{parity['reference']['accuracy']:.2f} -> {parity['candidate']['accuracy']:.2f}"
    )
    if precision == "fp32":
        assert parity["agreement"] >= 0.999
        assert parity["max_abs_logit_delta"] < 1e-3

    predicted = invoke_edgec("predict", out, "a gorgeous, witty, seductive movie", "--json")
    assert predicted.returncode == 0, predicted.stderr
    assert json.loads(predicted.stdout.splitlines()[0])["label"] == "positive"

    verified = invoke_edgec(
        "verify", out, "--eval-data", eval200, "--reference", sentiment_teacher,
        "--report", tmp_path / "report.json",
    )  # fmt: skip
    assert verified.returncode == 0, verified.stdout + verified.stderr
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["status"] == "passed" and report["mode"] == "reference"
    assert report["parity"]["agreement"] == pytest.approx(parity["agreement"])
