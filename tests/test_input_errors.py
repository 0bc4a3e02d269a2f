"""Every foreseeable input mistake is one line and exit 2, before any work: model
configs, targets files, options, sizes, data files and paths.

Each case was an internal error (exit 4), silently accepted, or blamed on the wrong
thing before; the message names the real cause and the fix.
"""

from __future__ import annotations

import json
import shutil
import tarfile

import pytest
from cli_helpers import assert_clean_error, invoke_edgec

from edgec.machine import cores

GOOD_TARGET = '[mine]\nbackend = "onnxruntime"\nprecision = "fp32"\n'


@pytest.fixture(scope="module")
def tiny_package(tiny_bert, tmp_path_factory):
    out = tmp_path_factory.mktemp("input-errors") / "pkg"
    r = invoke_edgec(
        "build", tiny_bert, "-t", "x86-cpu", "--precision", "fp32", "-o", out, "--no-verify"
    )
    assert r.returncode == 0, r.stderr
    return out


def _build(model, data, tmp_path, *args, env=None):
    out = tmp_path / "out"
    result = invoke_edgec(
        "build", model, "--target", "x86-cpu", "--eval-data", data, "-o", out, *args, env=env
    )
    assert not out.exists()
    return result


def _model_with_config(src, dst, config):
    shutil.copytree(src, dst)
    (dst / "config.json").write_text(config if isinstance(config, str) else json.dumps(config))
    return dst


def _changed(src, dst, **changes):
    config = json.loads((src / "config.json").read_text())
    config.update(changes)
    return _model_with_config(src, dst, config)


# ---------------------------------------------------------------- the model's config.json


@pytest.mark.parametrize("text, kind", [("[]", "a JSON list"), ("null", "null")])
def test_config_json_that_is_not_an_object(tiny_bert, tiny_eval_csv, tmp_path, text, kind):
    model = _model_with_config(tiny_bert, tmp_path / "m", text)
    assert_clean_error(
        _build(model, tiny_eval_csv, tmp_path), 2, f"config.json holds {kind}", "save_pretrained"
    )


@pytest.mark.parametrize(
    "changes, why",
    [
        ({"problem_type": "regression"}, "problem_type regression"),
        ({"id2label": {"0": "score"}, "label2id": {"score": 0}}, "num_labels 1"),
    ],
)
def test_a_regression_head_is_not_a_classifier(tiny_bert, tiny_eval_csv, tmp_path, changes, why):
    model = _changed(tiny_bert, tmp_path / "m", **changes)
    assert_clean_error(
        _build(model, tiny_eval_csv, tmp_path), 2, "a regression head is not a classifier", why
    )


@pytest.mark.parametrize(
    "id2label, fragments",
    [
        ({"0": "same", "1": "same"}, ("id2label names ids 0 and 1 both 'same'",)),
        ({"x": "a", "y": "b"}, ("id2label key 'x' is not an integer id", "config.json id2label")),
        ({"0": "a", "2": "b"}, ("id2label has the ids 0, 2", "0..1")),
    ],
)
def test_id2label_mistakes_name_config_json(
    tiny_bert, tiny_eval_csv, tmp_path, id2label, fragments
):
    label2id = {v: int(k) if k.isdigit() else 0 for k, v in id2label.items()}
    model = _changed(tiny_bert, tmp_path / "m", id2label=id2label, label2id=label2id)
    result = _build(model, tiny_eval_csv, tmp_path)
    assert_clean_error(result, 2, "config.json", *fragments)
    assert "weights" not in result.stderr


# ---------------------------------------------------------------- targets files

TARGET_MISTAKES = {
    "verify-not-a-table": (
        GOOD_TARGET + 'verify = "strict"\n',
        ("target 'mine'", "verify = 'strict' is not a table of gates"),
    ),
    "top-level-value": ("foo = 1\n" + GOOD_TARGET, ("top-level key 'foo' = 1 is not a target",)),
    "not-utf8": (
        GOOD_TARGET.encode() + b'description = "caf\xe9"\n',
        ("line 4 is not valid UTF-8", "re-save it as UTF-8"),
    ),
    "threads-text": (GOOD_TARGET + 'threads = "many"\n', ("threads = 'many'", "0 for every core")),
    "threads-negative": (GOOD_TARGET + "threads = -2\n", ("threads = -2", "whole number")),
    "gate-text": (
        GOOD_TARGET + 'verify = { min_agreement = "high" }\n',
        ("verify.min_agreement = 'high' is not a number",),
    ),
    "gate-typo": (
        GOOD_TARGET + "verify = { min_agrement = 0.9 }\n",
        ("verify.min_agrement is not a gate", "did you mean 'min_agreement'?"),
    ),
    "key-thread": (
        GOOD_TARGET + "thread = 2\n",
        ("unknown key 'thread'", "did you mean 'threads'?", "the keys are backend, precision"),
    ),
    "key-verfy": (
        GOOD_TARGET + "verfy = { min_agreement = 0.9 }\n",
        ("unknown key 'verfy'", "did you mean 'verify'?", "performance_hint"),
    ),
    "shapes-number": (GOOD_TARGET + "shapes = 5\n", ("shapes = 5 is not a table",)),
    "shapes-unordered": (
        GOOD_TARGET + "shapes = { batch = [1, 8, 2] }\n",
        ("shapes.batch = [1, 8, 2] is not [min, opt, max]",),
    ),
    "shapes-huge-batch": (
        GOOD_TARGET + "shapes = { batch = [1, 1, 100000] }\n",
        ("shapes.batch max 100000 is over 4096",),
    ),
    "backend-option-type": (
        GOOD_TARGET + "performance_hint = 5\n",
        ("target 'mine'", "openvino option performance_hint=5: give text"),
    ),
    "device-not-text": (GOOD_TARGET + "device = 1\n", ("device = 1 is not text",)),
}


@pytest.mark.parametrize("via", ["--targets", "EDGEC_TARGETS"])
@pytest.mark.parametrize("case", list(TARGET_MISTAKES))
def test_targets_file_mistakes(tmp_path, case, via):
    text, fragments = TARGET_MISTAKES[case]
    path = tmp_path / "mine.toml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    if via == "--targets":
        result = invoke_edgec("targets", "--targets", path)
    else:
        result = invoke_edgec("targets", env={"EDGEC_TARGETS": str(path)})
    assert_clean_error(result, 2, str(path), *fragments)


def test_a_targets_file_mistake_stops_a_build_before_any_work(tiny_bert, tiny_eval_csv, tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text(GOOD_TARGET + 'threads = "many"\n')
    result = _build(tiny_bert, tiny_eval_csv, tmp_path, "--targets", path)
    assert_clean_error(result, 2, "threads = 'many'")
    assert "loading" not in result.stdout


@pytest.mark.parametrize("via", ["--targets", "EDGEC_TARGETS"])
def test_targets_pointing_at_a_folder(tmp_path, via):
    if via == "--targets":
        result = invoke_edgec("targets", "--targets", tmp_path)
    else:
        result = invoke_edgec("targets", env={"EDGEC_TARGETS": str(tmp_path)})
    source = "$EDGEC_TARGETS" if via == "EDGEC_TARGETS" else "--targets"
    assert_clean_error(result, 2, f"{source} {tmp_path} is a folder", "TOML file")


# ---------------------------------------------------------------- -O backend options


@pytest.mark.parametrize(
    "target, pair, fragments",
    [
        ("x86-cpu", "threads=lots", ("unknown option 'threads'", "valid keys for onnxruntime")),
        ("intel-cpu", "sequence_bucket=lots", ("option sequence_bucket='lots': give an integer",)),
        ("nvidia-gpu", "workspace_mb=1.5", ("option workspace_mb='1.5': give an integer",)),
        ("intel-cpu", "max_accuracy_drop=NaN", ("option max_accuracy_drop='NaN': give a number",)),
        ("intel-cpu", "sequence_bucket=-3", ("option sequence_bucket='-3': give 1 or more",)),
        ("nvidia-gpu", "workspace_mb=0", ("option workspace_mb='0': give 1 or more",)),
    ],
)
def test_option_of_the_wrong_type(tiny_bert, tiny_eval_csv, tmp_path, target, pair, fragments):
    out = tmp_path / "out"
    result = invoke_edgec(
        "build", tiny_bert, "-t", target, "--eval-data", tiny_eval_csv, "-o", out, "-O", pair
    )
    assert_clean_error(result, 2, *fragments)
    assert not out.exists() and "loading" not in result.stdout


# ---------------------------------------------------------------- sizes and threads

BENCH_QUICK = ("--no-baseline", "--runs", "1", "--warmup", "0", "--cold-runs", "0")


def test_bench_seq_len_beyond_a_models_position_embeddings(tiny_bert):
    result = invoke_edgec("bench", tiny_bert, "--seq-len", "100000", *BENCH_QUICK)
    assert_clean_error(
        result, 2, "--seq-len 100000 is beyond", "position embeddings' limit of 128", "up to 128"
    )
    assert "compiling" not in result.stdout


def test_bench_seq_len_beyond_a_packages_max_length(tiny_package):
    result = invoke_edgec("bench", tiny_package, "--seq-len", "8,4096", *BENCH_QUICK)
    assert_clean_error(result, 2, "--seq-len 4096 is beyond", "max_length of 128")


@pytest.mark.parametrize(
    "args, fragments",
    [
        (("--batch", "100000"), ("--batch 100000 is over 4096",)),
        (("--batch", "1,x"), ("--batch '1,x' is not a comma-separated list",)),
        (("--seq-len", "0"), ("--seq-len '0': give positive whole numbers",)),
        (("--runs", "10000000"), ("--runs 10000000 is out of range: give 1..100000",)),
        (("--runs", "0"), ("--runs 0 is out of range",)),
        (("--warmup", "-1"), ("--warmup -1 is out of range: give 0..100000",)),
        (("--cold-runs", "5000"), ("--cold-runs 5000 is out of range: give 0..1000",)),
        (("--threads", "0"), ("--threads 0 is out of range: give 1 or more",)),
        (("--threads", "lots"), ("--threads 'lots' is not a whole number",)),
    ],
)
def test_bench_sizes_out_of_range(tiny_package, args, fragments):
    result = invoke_edgec("bench", tiny_package, "--no-baseline", *args)
    assert_clean_error(result, 2, *fragments)


@pytest.mark.parametrize("value", ["-1", "many"])
def test_predict_threads_below_zero(tiny_package, value):
    result = invoke_edgec("predict", tiny_package, "hello", "--threads", value)
    shown = value if value == "-1" else repr(value)
    assert_clean_error(result, 2, f"--threads {shown}", "(0: every core)")


def test_threads_beyond_the_machines_cores_are_clamped_with_a_note(tiny_package):
    result = invoke_edgec("predict", tiny_package, "hello", "--threads", "100000")
    assert result.returncode == 0, result.stderr
    n = cores()
    assert f"--threads 100000: this machine has {n} core" in result.stderr
    assert f"using {n}" in result.stderr
    zero = invoke_edgec("predict", tiny_package, "hello", "--threads", "0")  # 0: every core
    assert zero.returncode == 0 and "note:" not in zero.stderr, zero.stderr


# ---------------------------------------------------------------- data files


@pytest.mark.parametrize(
    "name, content, fragments",
    [
        (
            "list.jsonl",
            '{"text": "fine", "label": "class_0"}\n{"text": ["a", "b"], "label": "class_1"}\n',
            ("row 2, column 'text': holds a list, not a text",),
        ),
        (
            "dict.jsonl",
            '{"text": {"a": 1}, "label": "class_0"}\n',
            ("row 1, column 'text': holds an object, not a text",),
        ),
        (
            "broken.jsonl",
            '{"text": "fine", "label": "class_0"}\n{"text": "bad, "label": "class_1"}\n',
            ("line 2 is not valid JSON", "one JSON object per line"),
        ),
        (
            "array-line.jsonl",
            '{"text": "fine", "label": "class_0"}\n[1, 2]\n',
            ("line 2 is a JSON list, not an object",),
        ),
        (
            "quote.csv",
            'text,label\nfine,class_0\n"never closed,class_1\nmore,class_0\n',
            ("line 3 opens a quoted field", "never closed"),
        ),
        (
            "fields.csv",
            "text,label\nfine,class_0\na,b,class_1\n",
            ("line 3 has 3 fields but the header has 2",),
        ),
    ],
)
def test_bad_data_files_name_the_row(tiny_bert, tmp_path, name, content, fragments):
    data = tmp_path / name
    data.write_text(content)
    result = _build(tiny_bert, data, tmp_path)
    assert_clean_error(result, 2, str(data), *fragments)
    assert "An error occurred" not in result.stderr
    assert "Failed to" not in result.stderr, result.stderr  # no `datasets` log line first


def test_nan_na_and_null_are_texts_not_empty_cells(tmp_path):
    from edgec.data import load_text_set

    data = tmp_path / "words.csv"
    data.write_text("text,label\nNaN,class_0\nNA,class_1\nnull,class_0\nN/A,class_1\n")
    texts = load_text_set(data, label2id={"class_0": 0, "class_1": 1})
    assert texts.texts == ["NaN", "NA", "null", "N/A"] and texts.labels == [0, 1, 0, 1]
    tsv = tmp_path / "words.tsv"
    tsv.write_text("text\tlabel\nNaN\tclass_0\nnone\tclass_1\n")
    assert load_text_set(tsv).texts == ["NaN", "none"]


def test_a_really_empty_cell_is_still_refused(tiny_bert, tmp_path):
    data = tmp_path / "empty.csv"
    data.write_text("text,label\nfine,class_0\n,class_1\n")
    assert_clean_error(_build(tiny_bert, data, tmp_path), 2, "row 2, column 'text': empty cell")


# ---------------------------------------------------------------- paths


@pytest.mark.parametrize("command", ["predict", "inspect"])
def test_an_existing_file_that_is_not_a_package(tmp_path, command):
    path = tmp_path / "notes.txt"
    path.write_text("not a package")
    args = (command, path, "hello") if command == "predict" else (command, path)
    result = invoke_edgec(*args)
    assert_clean_error(result, 2, f"{path} is not an edgec package")
    assert "does not exist" not in result.stderr


@pytest.mark.parametrize(
    "command, flag",
    [("verify", "--junit"), ("verify", "--report"), ("bench", "--json"), ("bench", "--plot")],
)
def test_a_folder_where_a_report_file_belongs(tiny_package, tiny_eval_csv, tmp_path, command, flag):
    extra = ("--eval-data", tiny_eval_csv) if command == "verify" else ("--no-baseline",)
    result = invoke_edgec(command, tiny_package, *extra, flag, tmp_path)
    assert_clean_error(result, 2, f"{flag} {tmp_path} is a folder", "give a file to write")


def test_bench_takes_a_tgz_package_like_the_other_commands(tiny_package, tmp_path):
    archive = tmp_path / "pkg.tgz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(tiny_package, arcname="pkg")
    assert invoke_edgec("inspect", archive).returncode == 0
    report = tmp_path / "b.json"
    quick = ("--batch", "1", "--seq-len", "8", "--json", report, *BENCH_QUICK)
    result = invoke_edgec("bench", archive, *quick)
    assert result.returncode == 0, result.stderr
    assert json.loads(report.read_text())["subjects"]


def test_a_profiles_threads_beyond_this_machines_cores_are_cut_at_run_time():
    """A target written for a bigger device keeps its threads in the manifest; the
    runner on this machine uses at most its cores."""
    from edgec_runtime.threads import intra_op_threads as _threads

    assert _threads(100_000) == cores()
    assert _threads(0) == cores()
    assert _threads(1) == 1


def test_a_bad_eval_row_is_refused_before_the_weights_load(tiny_bert, tmp_path):
    data = tmp_path / "eval.csv"
    data.write_text("text,label\na fine film,class_0\na film,nope\n", encoding="utf-8")
    result = invoke_edgec("build", tiny_bert, "--eval-data", data, "-o", tmp_path / "out")
    assert_clean_error(result, 2, "row 2", "unknown label 'nope'")
    assert "loading" not in result.stdout + result.stderr


def test_a_model_without_a_tokenizer_is_exit_2(tiny_bert, tiny_eval_csv, tmp_path):
    """transformers would invent a 5-token vocabulary and build a package that turns
    every text into [UNK]."""
    model = tmp_path / "m"
    model.mkdir()
    for name in ("config.json", "model.safetensors"):
        shutil.copy(tiny_bert / name, model / name)
    result = invoke_edgec("build", model, "--eval-data", tiny_eval_csv, "-o", tmp_path / "o")
    assert_clean_error(result, 2, "has no tokenizer", "save_pretrained")


def test_a_tokenizer_larger_than_the_embeddings_is_exit_2(tiny_bert, tiny_eval_csv, tmp_path):
    """Ids past the embedding rows made the export fail with an IndexError (exit 4)."""
    model = tmp_path / "m"
    shutil.copytree(tiny_bert, model)
    config = json.loads((model / "config.json").read_text())
    tokenizer = json.loads((model / "tokenizer.json").read_text())
    vocab = tokenizer["model"]["vocab"]
    for i in range(config["vocab_size"] - len(vocab) + 5):
        vocab[f"extra{i}"] = len(vocab)
    (model / "tokenizer.json").write_text(json.dumps(tokenizer))
    (model / "vocab.txt").write_text("\n".join(sorted(vocab, key=vocab.get)) + "\n")
    result = invoke_edgec("build", model, "--eval-data", tiny_eval_csv, "-o", tmp_path / "o")
    assert_clean_error(result, 2, "embedding rows", "not the model's")


@pytest.mark.parametrize(
    "flags, fragment",
    [
        (("--min-agreement", "nan"), "gate min_agreement = nan is not a number"),
        (("--min-agreement", "5"), "gate min_agreement = 5 is outside 0..1"),
        (("--max-accuracy-drop", "-5"), "gate max_accuracy_drop = -5 is outside 0..100"),
        (("--gate", "max_unk_rate=inf"), "gate max_unk_rate = inf is not a number"),
    ],
)
def test_a_gate_that_checks_nothing_is_exit_2(tiny_bert, tiny_eval_csv, tmp_path, flags, fragment):
    """NaN passes every comparison (the gate is off); a share above 1 fails everything."""
    out = tmp_path / "out"
    result = invoke_edgec("build", tiny_bert, "--eval-data", tiny_eval_csv, "-o", out, *flags)
    assert_clean_error(result, 2, fragment)
    assert not out.exists()


def test_an_impossible_gate_in_a_targets_file_is_exit_2(tmp_path):
    targets = tmp_path / "t.toml"
    targets.write_text(
        '[t]\nbackend = "onnxruntime"\nprecision = "fp32"\nverify = { min_agreement = 5.0 }\n'
    )
    assert_clean_error(invoke_edgec("targets", "--targets", targets), 2, "outside 0..1")
