"""edgec-runtime as a device installs it: a fresh virtualenv holding only the runtime
distribution from this checkout and one backend extra, running packages the full
toolchain built. What is *installed* there is asserted, not only what is imported.

The site-packages size of each virtualenv is printed and attached to the test report
(`record_property`); the [onnxruntime] one must stay within 250 MB.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cli_helpers import run_edgec

from edgec_runtime import load

ROOT = Path(__file__).resolve().parent.parent
MB = 1 << 20
ONNXRUNTIME_BUDGET_MB = 250
NOT_ON_A_DEVICE = ("torch", "transformers", "datasets", "scikit-learn", "accelerate", "edgec")
TEXTS = ["a gorgeous, witty, seductive movie", "dull", "the plot never quite holds together"]

pytestmark = pytest.mark.slow  # two virtualenvs from the package index: a minute or two


def _venv(path: Path, extra: str) -> Path:
    subprocess.run([sys.executable, "-m", "venv", str(path)], check=True)
    python = path / "bin" / "python"
    subprocess.run(
        [
            str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
            "-c", str(ROOT / "constraints.txt"), f"{ROOT / 'runtime'}[{extra}]",
        ],
        check=True,
        env={**os.environ, "PIP_NO_INPUT": "1"},
    )
    return python


def _installed(python: Path) -> set[str]:
    code = "import importlib.metadata as m, json; print(json.dumps(sorted({d.metadata['Name'].lower() for d in m.distributions()})))"
    # run outside the checkout: its edgec.egg-info would count as installed
    out = subprocess.run(
        [str(python), "-c", code], capture_output=True, text=True, check=True, cwd=python.parent
    )
    return set(json.loads(out.stdout))


def _site_packages_mb(python: Path) -> float:
    code = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    site = Path(subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=True).stdout.strip())
    return sum(f.stat().st_size for f in site.rglob("*") if f.is_file() and not f.is_symlink()) / MB


def _package(tiny_bert, tiny_eval_csv, out: Path, backend: str, precision: str, *extra) -> Path:
    r = run_edgec(
        "build", tiny_bert, "--backend", backend, "--precision", precision,
        "--eval-data", tiny_eval_csv, "-o", out, *extra,
    )
    assert r.returncode == 0, r.stderr
    return out


@pytest.mark.parametrize(
    ("extra", "backend", "precision"),
    [("onnxruntime", "onnxruntime", "int8"), ("openvino", "openvino", "fp32")],
)
def test_runtime_alone_runs_a_package_the_toolchain_built(
    tmp_path, tiny_bert, tiny_eval_csv, record_property, extra, backend, precision
):
    package = _package(tiny_bert, tiny_eval_csv, tmp_path / "pkg", backend, precision)
    python = _venv(tmp_path / "venv", extra)
    bin_dir = python.parent

    installed = _installed(python)
    assert "edgec-runtime" in installed
    assert not installed & set(NOT_ON_A_DEVICE), installed & set(NOT_ON_A_DEVICE)
    size = _site_packages_mb(python)
    record_property(f"site_packages_mb[{extra}]", round(size, 1))
    print(f"\nedgec-runtime[{extra}] site-packages: {size:.1f} MB")
    if extra == "onnxruntime":
        assert size <= ONNXRUNTIME_BUDGET_MB

    # the device's answers are the compiler's answers
    r = subprocess.run(
        [str(bin_dir / "edgec-run"), "predict", str(package), *TEXTS, "--json"],
        capture_output=True, text=True, cwd=tmp_path,
    )
    assert r.returncode == 0, r.stderr
    device = [row["prediction"] for row in json.loads(r.stdout)]
    with load(package) as model:
        here = model.predict(TEXTS)
    assert [d["label"] for d in device] == [h["label"] for h in here]
    for d, h in zip(device, here, strict=True):
        assert d["score"] == pytest.approx(h["score"], abs=1e-6)

    # a strings-in package: the tokenizer runs inside the graph, here without transformers
    strings = _package(
        tiny_bert, tiny_eval_csv, tmp_path / "strings", backend, precision, "-O", "tokenizer=graph"
    )
    assert json.loads((strings / "edgec.json").read_text())["backend"]["tokenizer"]["status"] == "in-graph"
    r = subprocess.run(
        [str(bin_dir / "edgec-run"), "predict", str(strings), *TEXTS, "--json"],
        capture_output=True, text=True, cwd=tmp_path,
    )
    assert r.returncode == 0, r.stderr
    in_graph = [row["prediction"] for row in json.loads(r.stdout)]
    assert [d["label"] for d in in_graph] == [h["label"] for h in here]
    for d, h in zip(in_graph, here, strict=True):
        assert d["score"] == pytest.approx(h["score"], abs=1e-4)

    # the light CI job: the package against its build's record, no torch
    r = subprocess.run(
        [str(bin_dir / "edgec-run"), "verify", str(package), "--eval-data", str(tiny_eval_csv), "--json"],
        capture_output=True, text=True, cwd=tmp_path,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    report = json.loads(r.stdout)
    assert report["status"] == "passed"
    assert {c["name"]: c["status"] for c in report["checks"]} == {
        "integrity": "passed", "same-data": "passed", "tokenizer": "passed",
        "predictions": "passed", "accuracy": "passed",
    }
    assert report["figures"]["agreement"] == 1.0

    # a package whose file changed is refused before it runs, in one line
    model_file = package / json.loads((package / "edgec.json").read_text())["backend"]["files"][0]
    model_file.write_bytes(model_file.read_bytes() + b"\0")
    r = subprocess.run(
        [str(bin_dir / "edgec-run"), "predict", str(package), "x"],
        capture_output=True, text=True, cwd=tmp_path,
    )
    assert r.returncode == 1 and "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1
