"""Targets are data; `host` follows the ISA; backends arrive through entry points,
including a third-party distribution installed from its own pyproject."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from cli_helpers import invoke_edgec, run_edgec

from edgec.targets import host_target, load_targets

ROOT = Path(__file__).resolve().parents[1]


def test_shipped_targets():
    targets = load_targets()
    for name in ("x86-cpu", "arm64-cpu", "intel-cpu", "nvidia-gpu", "jetson-orin", "host"):
        assert name in targets
    assert targets["intel-cpu"].backend == "openvino"
    assert targets["jetson-orin"].backend == "tensorrt"


@pytest.mark.parametrize(
    "isa, backend, why",
    [
        (
            {
                "machine": "x86_64",
                "avx2": True,
                "avx512": False,
                "vnni": False,
                "amx": False,
                "dotprod": False,
            },
            "onnxruntime",
            "no VNNI",
        ),
        (
            {
                "machine": "x86_64",
                "avx2": True,
                "avx512": True,
                "vnni": True,
                "amx": False,
                "dotprod": False,
            },
            "openvino",
            "VNNI",
        ),
        (
            {
                "machine": "aarch64",
                "avx2": False,
                "avx512": False,
                "vnni": False,
                "amx": False,
                "dotprod": True,
            },
            "onnxruntime",
            "dotprod",
        ),
    ],
)
def test_host_follows_isa(isa, backend, why):
    target = host_target(isa, openvino_installed=True)
    assert target.backend == backend and target.precision == "int8" and why in target.reason


@pytest.mark.parametrize("bf16, fallback", [(True, "bf16"), (False, "")])
def test_host_falls_back_to_bf16_where_the_cpu_computes_it(bf16, fallback):
    isa = {"machine": "x86_64", "avx2": True, "avx512": True, "vnni": True, "amx": True}
    target = host_target({**isa, "dotprod": False, "bf16": bf16}, openvino_installed=True)
    assert (target.backend, target.precision, target.fallback) == ("openvino", "int8", fallback)
    assert ("bf16 compute if int8 fails" in target.reason) is bf16


def test_host_on_onnxruntime_falls_back_to_the_int8_search():
    isa = {"machine": "x86_64", "avx2": True, "avx512": False, "vnni": False, "amx": False}
    target = host_target({**isa, "dotprod": False}, openvino_installed=True)
    assert target.fallback == "int8-auto"


def test_host_without_openvino_stays_on_onnxruntime():
    isa = {
        "machine": "x86_64",
        "avx2": True,
        "avx512": True,
        "vnni": True,
        "amx": True,
        "dotprod": False,
    }
    assert host_target(isa, openvino_installed=False).backend == "onnxruntime"


def test_backends_lists_reasons():
    rows = {r["name"]: r for r in json.loads(invoke_edgec("backends", "--json").stdout)}
    assert rows["onnxruntime"]["available"]
    assert not rows["tensorrt"]["available"] and "tensorrt" in rows["tensorrt"]["reason"]
    for row in rows.values():
        assert "\n" not in row["reason"]
    # the table shows the fix as typed: rich must not eat "[tensorrt]" as a style tag
    table = invoke_edgec("backends", env={"COLUMNS": "200"}).stdout
    assert "pip install 'edgec[tensorrt]'" in table


def test_backends_lists_a_backends_options():
    """`edgec backends --options NAME` shows what -O accepts, as the backend declares it."""
    from edgec.plugins import get_backend

    declared = get_backend("onnxruntime").options
    assert declared, "onnxruntime declares its -O options"
    listed = json.loads(invoke_edgec("backends", "--options", "onnxruntime", "--json").stdout)
    assert listed == json.loads(json.dumps([o.describe() for o in declared]))
    for row in listed:
        assert {"name", "type", "default", "help"} <= set(row)
    table = invoke_edgec("backends", "--options", "onnxruntime", env={"COLUMNS": "200"})
    assert table.returncode == 0
    for option in declared:
        assert option.name in table.stdout


def test_third_party_backend_distribution(tmp_path, tiny_bert, tiny_eval_csv):
    """Install plugins/edgec-onnx-reference (its own pyproject + entry point) and build with it."""
    site = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            str(site),
            str(ROOT / "plugins" / "edgec-onnx-reference"),
        ],
        check=True,
    )
    env = {"PYTHONPATH": str(site)}
    rows = {r["name"]: r for r in json.loads(run_edgec("backends", "--json", env=env).stdout)}
    assert rows["onnx-reference"]["available"]
    out = tmp_path / "pkg"
    r = run_edgec(
        "build",
        tiny_bert,
        "--backend",
        "onnx-reference",
        "--precision",
        "fp32",
        "--target",
        "x86-cpu",
        "--eval-data",
        tiny_eval_csv,
        "-o",
        out,
        "--json",
        env=env,
    )
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)
    manifest = summary["manifest"]
    assert manifest["backend"]["name"] == "onnx-reference"
    assert manifest["verification"]["parity"]["agreement"] == 1.0
    # --json carries the summary as data, not as the table's strings
    assert summary["backend"]["name"] == "onnx-reference"
    assert summary["backend"]["precision"] == "fp32"
    assert summary["agreement"]["agreement"] == 1.0
    low, high = summary["agreement"]["interval"]  # Wilson: all agree, yet not certain
    assert 0.9 < low < 1.0 and high == pytest.approx(1.0)
    assert summary["model size"] == sum(
        manifest["files"][f]["size"] for f in manifest["backend"]["files"]
    )
    assert summary["verification"] == "PASSED"
    r = run_edgec("predict", out, "a witty movie", env=env)
    assert r.returncode == 0, r.stderr
    # without the plugin installed, the package names the missing backend
    r = run_edgec("predict", out, "a witty movie")
    assert r.returncode == 3 and "no runner for 'onnx-reference' packages" in r.stderr


def test_device_names_are_case_insensitive():
    """host on a VNNI CPU is OpenVINO's "CPU"; overriding its backend with onnxruntime
    ("cpu") must not read as an unserved device."""
    from edgec.plugins import get_backend

    ort = get_backend("onnxruntime")
    assert ort.available("CPU") is None and ort.available("cpu") is None
    assert "not served" in ort.available("cuda")
    assert "not served" in get_backend("tensorrt").available("CPU")
