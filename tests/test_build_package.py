"""The spine on a tiny model: build, package layout and manifest, inspect, predict,
archives, atomic replacement, and a runtime that never imports torch."""

import json
import subprocess
import sys
import tarfile

import pytest
from cli_helpers import invoke_edgec

from edgec.package import MANIFEST


@pytest.fixture(scope="module")
def package(tiny_bert, tiny_eval_csv, tmp_path_factory):
    out = tmp_path_factory.mktemp("build") / "pkg"
    r = invoke_edgec(
        "build",
        tiny_bert,
        "--target",
        "x86-cpu",
        "--eval-data",
        tiny_eval_csv,
        "-o",
        out,
        "--archive",
        "--json",
    )
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)
    assert summary["verification"] == "PASSED"
    return out


def test_manifest_records_everything(package):
    manifest = json.loads((package / MANIFEST).read_text())
    assert set(manifest["files"]) == {"model.onnx", "tokenizer.json", "tokenizer_config.json"}
    for record in manifest["files"].values():
        assert len(record["sha256"]) == 64 and record["size"] > 0
    pre = manifest["preprocessing"]
    assert pre["max_length"] == 128 and pre["truncation_side"] == "right"
    assert pre["input_names"] == ["input_ids", "attention_mask", "token_type_ids"]
    assert manifest["labels"] == ["class_0", "class_1"]
    assert (
        manifest["backend"]["name"] == "onnxruntime" and manifest["backend"]["precision"] == "int8"
    )
    assert manifest["io"]["output_names"] == ["logits"]
    assert manifest["source_model"]["sha256"]
    assert manifest["verification"]["status"] == "passed"


def test_archive_is_a_loadable_package(package):
    archive = package.with_name(package.name + ".tar.gz")
    with tarfile.open(archive) as tar:
        assert any(n.endswith(MANIFEST) for n in tar.getnames())
    from edgec_runtime import load

    with load(archive) as from_archive, load(package) as from_dir:
        texts = ["a witty movie", "bad plot and dull acting"]
        assert [p["label"] for p in from_archive.predict(texts)] == [
            p["label"] for p in from_dir.predict(texts)
        ]


def test_predict_cli_json(package):
    r = invoke_edgec("predict", package, "a witty movie", "bad plot", "--json")
    assert r.returncode == 0, r.stderr
    lines = [json.loads(line) for line in r.stdout.splitlines()]
    assert [x["text"] for x in lines] == ["a witty movie", "bad plot"]
    assert all(x["label"] in ("class_0", "class_1") and 0.5 <= x["score"] <= 1 for x in lines)


def test_inspect_detects_tampering(package, tmp_path):
    import shutil

    r = invoke_edgec("inspect", package)
    assert r.returncode == 0 and "every hash matches" in r.stdout
    copy = tmp_path / "copy"
    shutil.copytree(package, copy)
    with (copy / "model.onnx").open("ab") as f:
        f.write(b"\0")
    r = invoke_edgec("inspect", copy)
    assert r.returncode == 1 and "model.onnx" in r.stderr
    r = invoke_edgec("predict", copy, "hello")
    assert r.returncode == 1 and "integrity" in r.stderr


def test_runtime_imports_neither_torch_nor_transformers(package):
    code = (
        "import sys\n"
        "from edgec_runtime import load\n"
        f"p = load({str(package)!r})\n"
        "print(p.predict(['a witty movie'])[0]['label'])\n"
        "heavy = [m for m in ('torch', 'transformers', 'openvino', 'tensorrt') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_help_imports_no_heavy_library():
    code = (
        "import sys\nsys.argv = ['edgec', '--help']\nfrom edgec.cli import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('torch', 'transformers', 'onnxruntime', 'openvino', 'tensorrt', 'nncf') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_force_replaces_and_failed_build_leaves_nothing(tiny_bert, tiny_eval_csv, tmp_path):
    out = tmp_path / "pkg"
    assert (
        invoke_edgec(
            "build", tiny_bert, "-t", "x86-cpu", "--eval-data", tiny_eval_csv, "-o", out
        ).returncode
        == 0
    )
    first = json.loads((out / MANIFEST).read_text())["created"]
    r = invoke_edgec(
        "build",
        tiny_bert,
        "-t",
        "x86-cpu",
        "--precision",
        "fp32",
        "--eval-data",
        tiny_eval_csv,
        "-o",
        out,
        "--force",
    )
    assert r.returncode == 0, r.stderr
    manifest = json.loads((out / MANIFEST).read_text())
    assert manifest["backend"]["precision"] == "fp32" and manifest["created"] >= first
    # texts the vocabulary cannot read fail verification (tokenizer-unk-rate): exit 1,
    # the old package untouched, no staging left
    unreadable = tmp_path.parent / f"{tmp_path.name}-unk.csv"
    rows = "".join(f"日本語の文 {i},class_{i % 2}\n" for i in range(100))
    unreadable.write_text("text,label\n" + rows, encoding="utf-8")
    r = invoke_edgec(
        "build",
        tiny_bert,
        "-t",
        "x86-cpu",
        "--eval-data",
        unreadable,
        "-o",
        out,
        "--force",
    )
    assert r.returncode == 1 and "verification failed" in r.stderr
    assert json.loads((out / MANIFEST).read_text())["backend"]["precision"] == "fp32"
    assert [p.name for p in tmp_path.iterdir()] == ["pkg"]


def test_unverified_package_is_marked(tiny_bert, tmp_path):
    out = tmp_path / "unverified"
    r = invoke_edgec("build", tiny_bert, "-t", "x86-cpu", "-o", out, "--no-verify")
    assert r.returncode == 0, r.stderr
    assert json.loads((out / MANIFEST).read_text())["verification"]["status"] == "unverified"
    assert "UNVERIFIED" in invoke_edgec("inspect", out).stdout
    r = invoke_edgec("predict", out, "hello")
    assert r.returncode == 0 and "UNVERIFIED" in r.stderr


def test_user_targets_file(tiny_bert, tiny_eval_csv, tmp_path):
    targets = tmp_path / "mine.toml"
    targets.write_text(
        '[kiosk]\nbackend = "onnxruntime"\nprecision = "fp32"\nthreads = 1\n'
        "verify = { min_agreement = 0.99 }\n"
    )
    r = invoke_edgec("targets", "--targets", targets, "--json")
    kiosk = [t for t in json.loads(r.stdout)["targets"] if t["name"] == "kiosk"][0]
    assert kiosk["verify"]["min_agreement"] == 0.99 and kiosk["verify"]["max_accuracy_drop"] == 1.0
    out = tmp_path / "kiosk"
    r = invoke_edgec(
        "build",
        tiny_bert,
        "--target",
        "kiosk",
        "--targets",
        targets,
        "--eval-data",
        tiny_eval_csv,
        "-o",
        out,
    )
    assert r.returncode == 0, r.stderr
    manifest = json.loads((out / MANIFEST).read_text())
    assert manifest["target"]["name"] == "kiosk" and manifest["target"]["threads"] == 1
