"""Each foreseeable mistake gets one line, a documented exit code, no traceback and no
partial output; --verbose shows the traceback."""

import json

import pytest
from cli_helpers import assert_clean_error, run_edgec


@pytest.fixture
def out(tmp_path):
    return tmp_path / "pkg"


def _no_output(out):
    assert not out.exists()
    leftovers = [p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}")]
    assert not leftovers, leftovers


def test_missing_model_path(tmp_path, tiny_eval_csv, out):
    r = run_edgec(
        "build", tmp_path / "nope", "--target", "x86-cpu", "--eval-data", tiny_eval_csv, "-o", out
    )
    assert_clean_error(r, 2, "does not exist")
    _no_output(out)


def test_not_a_model_folder(tmp_path, tiny_eval_csv, out):
    (tmp_path / "empty").mkdir()
    r = run_edgec(
        "build", tmp_path / "empty", "--target", "x86-cpu", "--eval-data", tiny_eval_csv, "-o", out
    )
    assert_clean_error(r, 2, "config.json")


def test_not_a_classifier(tmp_path, tiny_bert, tiny_eval_csv, out):
    import shutil

    base = tmp_path / "base"
    shutil.copytree(tiny_bert, base)
    config = json.loads((base / "config.json").read_text())
    config["architectures"] = ["BertModel"]
    (base / "config.json").write_text(json.dumps(config))
    r = run_edgec("build", base, "--target", "x86-cpu", "--eval-data", tiny_eval_csv, "-o", out)
    assert_clean_error(r, 2, "not a sequence classifier")


def test_remote_code_needs_consent(tmp_path, tiny_bert, tiny_eval_csv, out):
    import shutil

    remote = tmp_path / "remote"
    shutil.copytree(tiny_bert, remote)
    config = json.loads((remote / "config.json").read_text())
    config["auto_map"] = {"AutoModelForSequenceClassification": "modeling_x.Custom"}
    (remote / "config.json").write_text(json.dumps(config))
    r = run_edgec("build", remote, "--target", "x86-cpu", "--eval-data", tiny_eval_csv, "-o", out)
    assert_clean_error(r, 2, "--trust-remote-code")


def test_corrupt_weights(tmp_path, tiny_bert, tiny_eval_csv, out):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(tiny_bert, broken)
    (broken / "model.safetensors").write_bytes(b"\x00garbage" * 100)
    r = run_edgec("build", broken, "--target", "x86-cpu", "--eval-data", tiny_eval_csv, "-o", out)
    assert_clean_error(r, 2, "could not load the weights")
    _no_output(out)
    verbose = run_edgec(
        "build", broken, "--target", "x86-cpu", "--eval-data", tiny_eval_csv, "-o", out, "--verbose"
    )
    assert verbose.returncode == 2 and "Traceback" in verbose.stderr


def test_bad_data_file(tmp_path, tiny_bert, out):
    bad = tmp_path / "bad.csv"
    bad.write_text("text,label\nfine,class_0\nmeh,neutral\n")
    r = run_edgec("build", tiny_bert, "--target", "x86-cpu", "--eval-data", bad, "-o", out)
    assert_clean_error(r, 2, "row 2", "'label'", "neutral")
    _no_output(out)


def test_unknown_target_and_backend(tiny_bert, tiny_eval_csv, out):
    r = run_edgec(
        "build", tiny_bert, "--target", "toaster", "--eval-data", tiny_eval_csv, "-o", out
    )
    assert_clean_error(r, 2, "unknown target 'toaster'")
    r = run_edgec("build", tiny_bert, "--backend", "nope", "--eval-data", tiny_eval_csv, "-o", out)
    assert_clean_error(r, 2, "unknown backend 'nope'")
    r = run_edgec(
        "build",
        tiny_bert,
        "--target",
        "x86-cpu",
        "--precision",
        "int3",
        "--eval-data",
        tiny_eval_csv,
        "-o",
        out,
    )
    assert_clean_error(r, 2, "no precision 'int3'")


def test_unavailable_backend_exits_3(tiny_bert, tiny_eval_csv, out):
    from edgec.backends.tensorrt import BACKEND

    if BACKEND.available("cuda") is None:
        pytest.skip("TensorRT and a CUDA GPU are on this machine: nothing is unavailable")
    r = run_edgec(
        "build", tiny_bert, "--target", "nvidia-gpu", "--eval-data", tiny_eval_csv, "-o", out
    )
    assert_clean_error(r, 3, "tensorrt")
    _no_output(out)


def test_target_whose_extra_is_missing_exits_3(tmp_path, tiny_bert, tiny_eval_csv, out):
    """A target naming a backend whose package is not installed names the extra to install."""
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['openvino'] = None; sys.argv = ['edgec'] + sys.argv[1:];"
        "import importlib.util as u; real = u.find_spec;"
        "u.find_spec = lambda name, *a: None if name.split('.')[0] in ('openvino', 'nncf') else real(name, *a);"
        "from edgec.cli import main; main()"
    )
    r = subprocess.run(
        [
            sys.executable,
            "-c",
            code,
            "build",
            str(tiny_bert),
            "--target",
            "intel-cpu",
            "--eval-data",
            str(tiny_eval_csv),
            "-o",
            str(out),
        ],
        capture_output=True,
        text=True,
    )
    assert_clean_error(r, 3, "edgec[openvino]")


def test_existing_output_needs_force(tmp_path, tiny_bert, tiny_eval_csv, out):
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    r = run_edgec(
        "build", tiny_bert, "--target", "x86-cpu", "--eval-data", tiny_eval_csv, "-o", out
    )
    assert_clean_error(r, 2, "already exists", "--force")
    assert (out / "keep.txt").read_text() == "mine"


def test_eval_data_required_unless_no_verify(tiny_bert, out):
    r = run_edgec("build", tiny_bert, "--target", "x86-cpu", "-o", out)
    assert_clean_error(r, 2, "--eval-data")


def test_predict_on_non_package(tmp_path):
    r = run_edgec("predict", tmp_path, "hello")
    assert_clean_error(r, 2, "not an edgec package")
    r = run_edgec("predict", tmp_path / "missing", "hello")
    assert_clean_error(r, 2, "does not exist")


def test_help_teaches():
    r = run_edgec("--help")
    assert r.returncode == 0 and "Exit codes" in r.stdout and "edgec build" in r.stdout
    r = run_edgec("build", "--help")
    assert r.returncode == 0 and "--eval-data" in r.stdout and "Example" in r.stdout


def test_pair_and_single_text_packages_refuse_the_other(tmp_path, tiny_bert, tiny_eval_csv):
    """A model fed the wrong kind of input would answer, wrongly: it is refused."""
    from conftest import write_csv

    pairs = write_csv(
        tmp_path / "pairs.csv",
        [{"text": "a witty movie", "text_pair": "is it good?", "label": "class_1"}] * 4,
    )
    single, paired = tmp_path / "single", tmp_path / "paired"
    for data, out in ((tiny_eval_csv, single), (pairs, paired)):
        built = run_edgec("build", tiny_bert, "--eval-data", data, "-o", out, "--precision", "fp32")
        assert built.returncode == 0, built.stderr
    assert json.loads((paired / "edgec.json").read_text())["preprocessing"]["text_pair"]
    assert_clean_error(run_edgec("predict", paired, "a witty movie"), 2, "classifies text pairs")
    assert_clean_error(
        run_edgec("predict", single, "--input", pairs), 2, "classifies single texts, not pairs"
    )
    ok = run_edgec("predict", paired, "--input", pairs, "--json")
    assert ok.returncode == 0 and len(ok.stdout.splitlines()) == 4
