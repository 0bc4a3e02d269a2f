"""Each foreseeable mistake gets one line, a documented exit code, no traceback and no
partial output; --verbose shows the traceback.

The commands run in this process (`invoke_edgec`, Click's CliRunner); the few tests
about what a new process imports, or how the console script exits, start one.
"""

import json
import subprocess
import sys

import pytest
from cli_helpers import assert_clean_error, invoke_edgec, run_edgec

HEAVY = ("torch", "transformers", "onnxruntime", "openvino", "tensorrt", "nncf")
COMMANDS = ("build", "predict", "backends", "targets", "inspect", "bench", "distill", "verify")


@pytest.fixture
def out(tmp_path):
    return tmp_path / "pkg"


def _no_output(out):
    assert not out.exists()
    leftovers = [p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}")]
    assert not leftovers, leftovers


def _build(model, data, out, *args):
    return invoke_edgec(
        "build", model, "--target", "x86-cpu", "--eval-data", data, "-o", out, *args
    )


def test_missing_model_path(tmp_path, tiny_eval_csv, out):
    assert_clean_error(_build(tmp_path / "nope", tiny_eval_csv, out), 2, "does not exist")
    _no_output(out)


def test_not_a_model_folder(tmp_path, tiny_eval_csv, out):
    (tmp_path / "empty").mkdir()
    assert_clean_error(_build(tmp_path / "empty", tiny_eval_csv, out), 2, "config.json")


def _copy_with_config(src, dst, **changes):
    import shutil

    shutil.copytree(src, dst)
    config = json.loads((dst / "config.json").read_text())
    config.update(changes)
    (dst / "config.json").write_text(json.dumps(config))
    return dst


def test_a_model_without_a_task_names_the_tasks(tmp_path, tiny_bert, tiny_eval_csv, out):
    base = _copy_with_config(tiny_bert, tmp_path / "base", architectures=["BertModel"])
    assert_clean_error(_build(base, tiny_eval_csv, out), 2, "with no task edgec builds")
    assert_clean_error(_build(base, tiny_eval_csv, out), 2, "token-classification")


def test_remote_code_needs_consent(tmp_path, tiny_bert, tiny_eval_csv, out):
    remote = _copy_with_config(
        tiny_bert,
        tmp_path / "remote",
        auto_map={"AutoModelForSequenceClassification": "modeling_x.Custom"},
    )
    assert_clean_error(_build(remote, tiny_eval_csv, out), 2, "--trust-remote-code")


def test_corrupt_weights(tmp_path, tiny_bert, tiny_eval_csv, out):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(tiny_bert, broken)
    (broken / "model.safetensors").write_bytes(b"\x00garbage" * 100)
    assert_clean_error(_build(broken, tiny_eval_csv, out), 2, "could not load the weights")
    _no_output(out)
    verbose = _build(broken, tiny_eval_csv, out, "--verbose")
    assert verbose.returncode == 2 and "Traceback" in verbose.stderr


def test_bad_data_file(tmp_path, tiny_bert, out):
    bad = tmp_path / "bad.csv"
    bad.write_text("text,label\nfine,class_0\nmeh,neutral\n")
    assert_clean_error(_build(tiny_bert, bad, out), 2, "row 2", "'label'", "neutral")
    _no_output(out)


def test_unknown_target_and_backend(tiny_bert, tiny_eval_csv, out):
    r = invoke_edgec(
        "build", tiny_bert, "--target", "toaster", "--eval-data", tiny_eval_csv, "-o", out
    )
    assert_clean_error(r, 2, "unknown target 'toaster'")
    r = invoke_edgec(
        "build", tiny_bert, "--backend", "nope", "--eval-data", tiny_eval_csv, "-o", out
    )
    assert_clean_error(r, 2, "unknown backend 'nope'")
    r = _build(tiny_bert, tiny_eval_csv, out, "--precision", "int3")
    assert_clean_error(r, 2, "no precision 'int3'")


def test_unknown_backend_option_names_the_valid_keys(tiny_bert, tiny_eval_csv, out):
    """A typo in -O is refused before any work, with the keys the backend declares.
    (Needs the pipeline to check -O keys against the chosen backends' options.)"""
    from edgec.plugins import get_backend

    r = _build(tiny_bert, tiny_eval_csv, out, "--backend", "onnxruntime", "-O", "nosuchkey=1")
    assert_clean_error(r, 2, "nosuchkey", "valid keys")
    for option in get_backend("onnxruntime").options:
        assert option.name in r.stderr
    _no_output(out)


def test_option_that_is_not_key_value(tiny_bert, tiny_eval_csv, out):
    r = _build(tiny_bert, tiny_eval_csv, out, "-O", "symmetric")
    assert_clean_error(r, 2, "'symmetric' is not KEY=VALUE")
    _no_output(out)


def test_options_of_an_unknown_backend():
    r = invoke_edgec("backends", "--options", "nosuch")
    assert_clean_error(r, 2, "unknown backend 'nosuch'", "onnxruntime")


def test_unavailable_backend_exits_3(tiny_bert, tiny_eval_csv, out):
    from edgec.backends.tensorrt import BACKEND

    if BACKEND.available("cuda") is None:
        pytest.skip("TensorRT and a CUDA GPU are on this machine: nothing is unavailable")
    r = invoke_edgec(
        "build", tiny_bert, "--target", "nvidia-gpu", "--eval-data", tiny_eval_csv, "-o", out
    )
    assert_clean_error(r, 3, "tensorrt")
    _no_output(out)


def test_target_whose_extra_is_missing_exits_3(monkeypatch, tiny_bert, tiny_eval_csv, out):
    """A target naming a backend whose package is not installed names the extra to install."""
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setitem(sys.modules, "openvino", None)
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name.split(".")[0] in ("openvino", "nncf") else real(name, *a),
    )
    r = invoke_edgec(
        "build", tiny_bert, "--target", "intel-cpu", "--eval-data", tiny_eval_csv, "-o", out
    )
    assert_clean_error(r, 3, "edgec[openvino]")


def test_existing_output_needs_force(tiny_bert, tiny_eval_csv, out):
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    assert_clean_error(_build(tiny_bert, tiny_eval_csv, out), 2, "already exists", "--force")
    assert (out / "keep.txt").read_text() == "mine"


def test_eval_data_required_unless_no_verify(tiny_bert, out):
    r = invoke_edgec("build", tiny_bert, "--target", "x86-cpu", "-o", out)
    assert_clean_error(r, 2, "--eval-data")


def test_predict_on_non_package(tmp_path):
    assert_clean_error(invoke_edgec("predict", tmp_path, "hello"), 2, "not an edgec package")
    assert_clean_error(invoke_edgec("predict", tmp_path / "missing", "hello"), 2, "does not exist")


def test_console_script_exits_with_the_documented_code(tmp_path):
    """The installed `edgec` passes the CLI's exit code on to the shell."""
    assert_clean_error(run_edgec("predict", tmp_path, "hello"), 2, "not an edgec package")


def test_report_folder_must_exist(tmp_path):
    r = invoke_edgec(
        "verify", tmp_path, "--eval-data", tmp_path / "x.csv", "--junit", tmp_path / "no" / "r.xml"
    )
    assert_clean_error(r, 2, "--junit", "does not exist; create it first")


def test_interrupt_exits_130_and_a_bug_exits_4(monkeypatch, tiny_bert, tiny_eval_csv, out):
    import edgec.pipeline

    def interrupted(*_a, **_k):
        raise KeyboardInterrupt

    monkeypatch.setattr(edgec.pipeline, "build", interrupted)
    r = _build(tiny_bert, tiny_eval_csv, out)
    assert r.returncode == 130 and "interrupted" in r.stderr and "Traceback" not in r.stderr

    def bug(*_a, **_k):
        raise ZeroDivisionError("oops")

    monkeypatch.setattr(edgec.pipeline, "build", bug)
    r = _build(tiny_bert, tiny_eval_csv, out)
    assert r.returncode == 4 and "internal error: ZeroDivisionError: oops" in r.stderr
    assert "Traceback" not in r.stderr
    r = _build(tiny_bert, tiny_eval_csv, out, "--verbose")
    assert r.returncode == 4 and "Traceback" in r.stderr


def test_verbose_counts_before_and_after_the_command(monkeypatch):
    """`edgec build --verbose` shows library logs as `edgec --verbose build` does."""
    import edgec.quiet
    from edgec.cli import cli

    for command in cli.commands.values():  # its callback is what quiets the libraries
        assert "verbose" in [p.name for p in command.params], command.name
    for args in (["targets", "--verbose"], ["--verbose", "targets"]):
        monkeypatch.setattr(edgec.quiet, "QUIET", False)
        assert invoke_edgec(*args).returncode == 0 and not edgec.quiet.QUIET, args
    assert invoke_edgec("targets").returncode == 0 and edgec.quiet.QUIET


def test_help_teaches():
    r = invoke_edgec("--help")
    assert r.returncode == 0 and "Exit codes" in r.stdout and "edgec build" in r.stdout
    r = invoke_edgec("build", "--help")
    assert r.returncode == 0 and "--eval-data" in r.stdout and "Example" in r.stdout
    for command in COMMANDS:
        r = invoke_edgec(command, "--help")
        assert r.returncode == 0 and "Usage: edgec " + command in r.stdout, r.stdout


def test_distill_options_come_from_the_hyperparameters():
    """Each Hyperparameters field is one `edgec distill` option, with its default,
    help and extra flags: declared once, in the library."""
    import dataclasses

    import click

    from edgec.cli import cli
    from edgec.distill import Hyperparameters

    command = cli.commands["distill"]
    with click.Context(command) as ctx:
        params = {p.name: p for p in command.get_params(ctx)}
    for field in dataclasses.fields(Hyperparameters):
        option = params[field.name]
        assert "--" + field.name.replace("_", "-") in option.opts
        assert set(field.metadata.get("flags", ())) <= set(option.opts)
        assert option.default == field.default and option.help == field.metadata.get("help")


def test_no_help_imports_a_heavy_library():
    """`edgec COMMAND --help`, for every command, in one fresh process."""
    code = (
        "import sys\nfrom edgec.cli import cli\n"
        f"for command in {list(COMMANDS)!r}:\n"
        "    try:\n        cli([command, '--help'], prog_name='edgec')\n"
        "    except SystemExit as e:\n        assert e.code == 0, (command, e.code)\n"
        f"heavy = [m for m in {HEAVY!r} if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_pair_and_single_text_packages_refuse_the_other(tmp_path, tiny_bert, tiny_eval_csv):
    """A model fed the wrong kind of input would answer, wrongly: it is refused."""
    from conftest import write_csv

    pairs = write_csv(
        tmp_path / "pairs.csv",
        [{"text": "a witty movie", "text_pair": "is it good?", "label": "class_1"}] * 4,
    )
    single, paired = tmp_path / "single", tmp_path / "paired"
    # four pairs resolve only gates this coarse (edgec.gates.EVAL_SIZE_RULES)
    coarse = ["--min-agreement", "0.75", "--max-accuracy-drop", "25"]
    for data, out, gates in ((tiny_eval_csv, single, []), (pairs, paired, coarse)):
        built = invoke_edgec(
            "build", tiny_bert, "--eval-data", data, "-o", out, "--precision", "fp32", *gates
        )
        assert built.returncode == 0, built.stderr
    assert json.loads((paired / "edgec.json").read_text())["preprocessing"]["text_pair"]
    assert_clean_error(invoke_edgec("predict", paired, "a witty movie"), 2, "classifies text pairs")
    assert_clean_error(
        invoke_edgec("predict", single, "--input", pairs), 2, "classifies single texts, not pairs"
    )
    ok = invoke_edgec("predict", paired, "--input", pairs, "--json")
    assert ok.returncode == 0 and len(ok.stdout.splitlines()) == 4
