"""Packages for devices this machine lacks: built and verified here, refused at run time.

An OpenVINO IR for an Intel NPU is checked with OpenVINO's CPU plugin (with the NPU's
fixed shapes); a Jetson package (engine built on the device) ships its graph, which is
checked with ONNX Runtime. Running either here exits 3 and says why.
"""

from __future__ import annotations

import json

import pytest
from cli_helpers import assert_clean_error, invoke_edgec

from edgec.package import MANIFEST


def build(model, eval_csv, out, *args):
    result = invoke_edgec("build", model, "--eval-data", eval_csv, "-o", out, "--json", *args)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)["manifest"]


def test_an_npu_package_is_built_and_checked_on_the_cpu(tiny_bert, tiny_eval_csv, tmp_path):
    pytest.importorskip("openvino")
    targets = tmp_path / "targets.toml"  # intel-npu with a profile longer than the model
    targets.write_text(
        '[my-npu]\nbackend = "openvino"\nprecision = "fp32"\ndevice = "NPU"\n'
        "shapes = { batch = [1, 1, 2], sequence = [256, 256, 256] }\n"
    )
    out = tmp_path / "npu"
    manifest = build(tiny_bert, tiny_eval_csv, out, "--target", "my-npu", "--targets", targets)
    verification = manifest["verification"]
    assert verification["status"] == "passed"
    assert "CPU plugin" in verification["checked_on"] and "NPU" in verification["checked_on"]
    # the fixed shape stops at the model's max_length (128), not the profile's 256
    assert manifest["backend"]["static_shape"] == [2, 128]
    predicted = invoke_edgec("predict", out, "a witty movie")
    assert_clean_error(predicted, 3, "no NPU device")
    verified = invoke_edgec(
        "verify", out, "--eval-data", tiny_eval_csv, "--report", tmp_path / "r.json"
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "CPU plugin" in json.loads((tmp_path / "r.json").read_text())["checked_on"]


@pytest.mark.parametrize("precision", ["int8", "fp16"])
def test_a_jetson_package_ships_its_graph_checked_with_onnx_runtime(
    tiny_bert, tiny_eval_csv, tmp_path, precision
):
    out = tmp_path / "jetson"
    manifest = build(
        tiny_bert, tiny_eval_csv, out, "--target", "jetson-orin", "--precision", precision
    )
    assert set(manifest["files"]) == {
        "model.onnx", "trt_recipe.json", "tokenizer.json", "tokenizer_config.json"
    }  # fmt: skip
    assert manifest["backend"]["build_on_device"] is True
    # jetson-orin's sequence profile [1, 128, 256] stops at the model's max_length
    assert manifest["backend"]["recipe"]["shapes"]["sequence"] == [1, 128, 128]
    checked_on = manifest["verification"]["checked_on"]
    assert "ONNX Runtime" in checked_on and "built on the device" in checked_on
    assert ("Q/DQ" in checked_on) == (precision == "int8")
    if precision == "int8":
        assert manifest["backend"]["quantization"]["activations"] == "int8-symmetric"
    recipe = json.loads((out / "trt_recipe.json").read_text())
    assert recipe["precision"] == precision
    assert_clean_error(invoke_edgec("predict", out, "a witty movie"), 3, "tensorrt")
    assert json.loads((out / MANIFEST).read_text())["verification"]["status"] == "passed"
