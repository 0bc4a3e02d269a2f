"""Distillation mechanics on tiny random models (seconds each).

Their accuracy means nothing; these tests check the recipe (which layers, which head,
which tokenizer), the loss, the Trainer plumbing (resume, early stopping, reports),
the `edgec build --distill` gate and every bad-input error. The real-teacher check is
in test_distill_real.py.
"""

from __future__ import annotations

import json
import random

import pytest
from click.testing import CliRunner
from conftest import random_sentences, write_csv

from edgec.cli import cli
from edgec.distill import DistillConfig, Hyperparameters, distill
from edgec.distill.processes import cores
from edgec.distill.students import (
    build_student,
    expected_speedup,
    parse_student_spec,
    spread_layers,
)
from edgec.model import load_source_model, num_layers
from edgec_runtime.errors import BadInput

FAST = Hyperparameters(epochs=1, batch_size=16, logging_steps=2)


def run_cli(*args):
    result = CliRunner().invoke(cli, [str(a) for a in args])
    return result


@pytest.fixture(scope="module")
def train_csv(tmp_path_factory):
    rng = random.Random(3)
    rows = [
        {"text": t, "label": rng.choice(["class_0", "class_1"])} for t in random_sentences(48, 5)
    ]
    return write_csv(tmp_path_factory.mktemp("distill") / "train.csv", rows)


@pytest.fixture(scope="module")
def six_layer_bert(tmp_path_factory, tiny_bert):
    """A tiny BERT with 6 layers, so `layers:3` has the reference run's shape."""
    import torch
    import transformers as t

    torch.manual_seed(0)
    config = t.AutoConfig.from_pretrained(tiny_bert)
    config.num_hidden_layers = 6
    model = t.BertForSequenceClassification(config)
    out = tmp_path_factory.mktemp("six") / "bert6"
    model.save_pretrained(out)
    t.AutoTokenizer.from_pretrained(tiny_bert).save_pretrained(out)
    return out


# ---------------------------------------------------------------- students


def test_layers_are_spread_evenly_down_from_the_last_or_up_from_the_first():
    assert spread_layers(6, 3) == [1, 3, 5]
    assert spread_layers(12, 6) == [1, 3, 5, 7, 9, 11]
    assert spread_layers(6, 4) == [1, 2, 4, 5]
    assert spread_layers(6, 1) == [5]
    assert spread_layers(4, 3) == [1, 2, 3]
    assert spread_layers(6, 3, from_top=False) == [0, 2, 4]  # taggers, embedders
    assert spread_layers(6, 4, from_top=False) == [0, 1, 3, 4]
    assert spread_layers(6, 1, from_top=False) == [0]
    assert spread_layers(4, 3, from_top=False) == [0, 1, 2]


def test_layer_student_copies_the_kept_layers(six_layer_bert):
    import torch

    teacher = load_source_model(six_layer_bert)
    student = build_student(parse_student_spec("layers:3"), teacher)
    assert student.kept_layers == [1, 3, 5]
    assert num_layers(student.model.config) == 3
    assert num_layers(teacher.config) == 6  # the teacher is untouched
    t_layers = teacher.model.bert.encoder.layer
    s_layers = student.model.bert.encoder.layer
    for s_index, t_index in enumerate([1, 3, 5]):
        for (name, s_param), (_, t_param) in zip(
            s_layers[s_index].named_parameters(), t_layers[t_index].named_parameters(), strict=True
        ):
            assert torch.equal(s_param, t_param), name
    assert torch.equal(student.model.classifier.weight, teacher.model.classifier.weight)
    assert student.tokenizer is teacher.tokenizer and student.shares_tokenizer
    assert expected_speedup(teacher.config, student.model.config) == pytest.approx(2.0)


def test_layer_student_keeps_the_named_layers(six_layer_bert):
    import torch

    teacher = load_source_model(six_layer_bert)
    student = build_student(parse_student_spec("layers:0,2,4"), teacher)
    assert student.kept_layers == [0, 2, 4] and num_layers(student.model.config) == 3
    top = student.model.bert.encoder.layer[2].output.dense.weight
    assert torch.equal(top, teacher.model.bert.encoder.layer[4].output.dense.weight)
    one = build_student(parse_student_spec("layers:0,"), teacher)  # the comma names it
    assert one.kept_layers == [0] and num_layers(one.model.config) == 1


@pytest.mark.parametrize("spec", ["layers:3,1", "layers:1,1", "layers:4,6", "layers:-1,2"])
def test_bad_named_layers(six_layer_bert, spec):
    teacher = load_source_model(six_layer_bert)
    with pytest.raises(BadInput, match="increasing order, each 0..5"):
        build_student(parse_student_spec(spec), teacher)


@pytest.mark.parametrize("family", ["bert", "distilbert", "roberta", "xlm-roberta", "electra"])
def test_layer_student_of_every_family_runs(tiny_models, family):
    teacher = load_source_model(tiny_models[family])
    student = build_student(parse_student_spec("layers:1"), teacher)
    assert num_layers(student.model.config) == 1
    enc = teacher.tokenizer(["a good movie"], return_tensors="pt")
    student.model.eval()
    inputs = {k: v for k, v in enc.items() if k in teacher.input_names}
    assert student.model(**inputs).logits.shape == (1, 2)


@pytest.mark.parametrize(
    "spec", ["layers:0", "layers:2", "layers:7", "layers:-1", "layers:x", "layers:,"]
)
def test_bad_layer_counts(tiny_bert, spec):
    teacher = load_source_model(tiny_bert)
    with pytest.raises(BadInput, match="layers"):
        build_student(parse_student_spec(spec), teacher)


def test_pretrained_student_with_wrong_labels_is_refused(tiny_models, tiny_bert):
    from tiny_models import make_tiny_classifier

    teacher = load_source_model(tiny_bert)
    three = make_tiny_classifier("distilbert", tiny_models["bert"].parent / "three", num_labels=3)
    with pytest.raises(BadInput, match="3 labels"):
        build_student(parse_student_spec(str(three)), teacher)


def test_missing_student_folder(tiny_bert, tmp_path):
    teacher = load_source_model(tiny_bert)
    with pytest.raises(BadInput, match="no such folder"):
        build_student(parse_student_spec(str(tmp_path / "nope")), teacher)


# ---------------------------------------------------------------- losses


def test_losses():
    import torch

    from edgec.distill.losses import ce_loss, kd_loss

    logits = torch.tensor([[2.0, -1.0], [0.5, 0.3]])
    assert float(kd_loss(logits, logits, 2.0)) == pytest.approx(0.0, abs=1e-6)
    other = torch.tensor([[0.0, 1.0], [1.0, 0.0]])
    kd1 = float(kd_loss(logits, other, 1.0))
    assert kd1 > 0
    # T^2 scaling: at large T the KL shrinks like 1/T^2, so the product stays bounded
    assert float(kd_loss(logits, other, 4.0)) < kd1 * 1.5
    labels = torch.tensor([0, -100])
    assert float(ce_loss(logits, labels)) == pytest.approx(
        float(torch.nn.functional.cross_entropy(logits[:1], labels[:1]))
    )
    assert float(ce_loss(logits, torch.tensor([-100, -100]))) == 0.0


# ---------------------------------------------------------------- training


def test_distill_cli_writes_a_model_build_accepts(tiny_bert, train_csv, tiny_eval_csv, tmp_path):
    out = tmp_path / "student"
    result = run_cli(
        "distill", tiny_bert, "--student", "layers:1", "--train-data", train_csv,
        "--eval-data", tiny_eval_csv, "--epochs", "2", "--batch-size", "16", "-o", out, "--json",
        "--augment", "0",  # the step count below is of the file's rows (test_augment.py adds)
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert json.loads((out / "distill-report.json").read_text()) == json.loads(
        json.dumps(report, default=str)
    )
    student = load_source_model(out)  # a standard HF classifier folder
    assert num_layers(student.config) == 1 and student.labels == ["class_0", "class_1"]
    assert not (out / "checkpoints").exists()
    t, s = report["teacher"], report["student"]
    assert report["retention"] == pytest.approx(s["accuracy"] / t["accuracy"])
    assert s["parameters"] < t["parameters"] and s["size_mb"] <= t["size_mb"]
    assert report["examples"] == 100 and report["speed"]["ratio"] > 0
    assert report["training"]["steps"] == 6  # 43 training rows / 16 per step, 2 epochs
    assert report["training"]["best_checkpoint"] is not None
    logged = [e for e in report["training"]["log"] if "loss" in e]
    assert logged and {"learning_rate", "grad_norm", "kd", "ce"} <= set(logged[0])
    assert report["recipe"]["data"]["train"]["sha256"]


def test_distill_progress_is_edgecs_own(tiny_bert, train_csv, tmp_path):
    """On the terminal the Trainer speaks through edgec's progress: a line per log and
    per validation, never its raw `{'loss': ...}` dicts or tqdm bars."""
    result = run_cli(
        "distill", tiny_bert, "--student", "layers:1", "--train-data", train_csv,
        "--epochs", "1", "--batch-size", "16", "--logging-steps", "1", "-o", tmp_path / "s",
        "--augment", "0",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "step 1/3  loss " in result.stdout and "validation step 3: accuracy" in result.stdout
    assert "{'" not in result.output and "it/s" not in result.output


def test_hyperparameters_carry_their_cli_help():
    """`edgec distill` builds its options from these fields: each needs a help line."""
    from dataclasses import fields

    helps = {f.name: f.metadata.get("help") for f in fields(Hyperparameters)}
    assert all(h and "\n" not in h for h in helps.values()), helps
    flags = {f.name: f.metadata["flags"] for f in fields(Hyperparameters) if "flags" in f.metadata}
    assert flags == {"learning_rate": ("--lr",), "temperature": ("-T",)}


def test_the_task_defaults_the_help_states_are_the_recipes():
    """--alpha and --hidden-weight default to each task recipe's value; their help lines
    spell those values out, so a recipe change must change the help with it."""
    from dataclasses import fields

    from edgec.distill.tagging import TaggingRecipe
    from edgec.distill.tasks import ClassificationRecipe

    helps = {f.name: f.metadata["help"] for f in fields(Hyperparameters)}
    for knob, attribute, spoken in (
        ("alpha", "default_alpha", ("{} (KD only) for classifiers", "{} for taggers")),
        ("hidden_weight", "default_hidden_weight", ("{} for classifiers", "{} for taggers")),
    ):
        for recipe, phrase in zip((ClassificationRecipe, TaggingRecipe), spoken, strict=True):
            value = f"{getattr(recipe, attribute):g}"
            assert phrase.format(value) in helps[knob], (knob, recipe.__name__, helps[knob])


def test_hidden_and_attention_transfer(tiny_bert, train_csv, tmp_path):
    hp = Hyperparameters(
        epochs=1, batch_size=16, hidden_weight=1.0, attention_weight=1.0, logging_steps=1
    )
    report = distill(DistillConfig(tiny_bert, "layers:1", train_csv, tmp_path / "s", hp=hp))
    logged = [e for e in report["training"]["log"] if "loss" in e]
    assert "hidden_mse" in logged[0] and "attention_kl" in logged[0]
    # the student's only layer learns the teacher's last one (2 layers: hidden state 2)
    assert [tuple(pair) for pair in report["recipe"]["layer_map"]] == [(1, 2)]


def test_a_layer_student_learns_the_teachers_hidden_states_by_default(
    tiny_bert, train_csv, tmp_path
):
    report = distill(DistillConfig(tiny_bert, "layers:1", train_csv, tmp_path / "s", hp=FAST))
    assert report["recipe"]["hyperparameters"]["hidden_weight"] == 3.0
    # a classifier's --alpha defaults to 1: its gold labels train nothing, and say so
    assert report["recipe"]["hyperparameters"]["alpha"] == 1.0 and report["recipe"]["kd_only"]
    logged = [e for e in report["training"]["log"] if "loss" in e]
    assert "hidden_mse" in logged[0] and "attention_kl" not in logged[0]
    # layers:1 keeps the teacher's last layer (of 2), so it learns that layer's output
    assert report["student"]["kept_teacher_layers"] == [1]
    assert [tuple(pair) for pair in report["recipe"]["layer_map"]] == [(1, 2)]


def test_a_narrower_student_trains_without_hidden_transfer_unless_asked(
    tiny_bert, train_csv, tmp_path
):
    """Same tokenizer, another width: hidden states cannot be compared, so the default
    leaves the term out, and asking for it is a clear error."""
    import transformers as t

    config = t.AutoConfig.from_pretrained(tiny_bert)
    config.hidden_size, config.intermediate_size = 16, 32
    base = tmp_path / "narrow"
    t.BertModel(config).save_pretrained(base)
    t.AutoTokenizer.from_pretrained(tiny_bert).save_pretrained(base)
    report = distill(DistillConfig(tiny_bert, str(base), train_csv, tmp_path / "s", hp=FAST))
    assert report["student"]["shares_tokenizer"] is True
    assert report["recipe"]["hyperparameters"]["hidden_weight"] == 0.0
    assert report["recipe"]["layer_map"] is None
    asked = Hyperparameters(epochs=1, hidden_weight=1.0)
    with pytest.raises(BadInput, match="equal hidden sizes .teacher 32, student 16"):
        distill(DistillConfig(tiny_bert, str(base), train_csv, tmp_path / "s2", hp=asked))


def test_pretrained_student_with_its_own_tokenizer(tiny_models, train_csv, tmp_path):
    """A base model (no head) with another vocabulary: new head, each model tokenizes."""
    import transformers as t

    base = tmp_path / "base"
    t.RobertaModel(t.AutoConfig.from_pretrained(tiny_models["roberta"])).save_pretrained(base)
    t.AutoTokenizer.from_pretrained(tiny_models["roberta"]).save_pretrained(base)
    report = distill(
        DistillConfig(tiny_models["bert"], str(base), train_csv, tmp_path / "s", hp=FAST)
    )
    assert report["student"]["shares_tokenizer"] is False
    assert report["recipe"]["hyperparameters"]["hidden_weight"] == 0.0  # positions differ
    student = load_source_model(tmp_path / "s")
    assert student.labels == ["class_0", "class_1"] and student.model_type == "roberta"
    with pytest.raises(BadInput, match="tokenizer"):
        distill(
            DistillConfig(
                tiny_models["bert"], str(base), train_csv, tmp_path / "s2",
                hp=Hyperparameters(epochs=1, hidden_weight=1.0),
            )
        )  # fmt: skip


def test_unlabeled_train_data_trains_kd_only(tiny_bert, tmp_path):
    texts = write_csv(tmp_path / "texts.csv", [{"text": t} for t in random_sentences(20, 9)])
    extra = write_csv(tmp_path / "extra.csv", [{"text": t} for t in random_sentences(12, 8)])
    notes = []

    from edgec.ui import SilentUI

    class UI(SilentUI):
        def note(self, message):
            notes.append(message)

    report = distill(
        DistillConfig(tiny_bert, "layers:1", texts, tmp_path / "s", unlabeled=extra, hp=FAST),
        UI(),
    )
    assert report["recipe"]["kd_only"] and any("no labels" in n for n in notes)
    assert report["teacher"]["accuracy"] is None and report["retention"] is None
    assert report["training"]["validation_metric"] == "agreement with the teacher"
    result = run_cli(
        "distill", tiny_bert, "--student", "layers:1", "--train-data", texts,
        "--alpha", "0", "-o", tmp_path / "s2",
    )  # fmt: skip
    assert result.exit_code == 2 and "no label column" in result.output


def test_resume_continues_an_interrupted_run(tiny_bert, train_csv, tmp_path):
    from edgec.distill.trainer import InterruptAt

    hp = Hyperparameters(epochs=1, batch_size=4, max_steps=6, eval_steps=2)
    config = DistillConfig(tiny_bert, "layers:1", train_csv, tmp_path / "s", hp=hp)
    with pytest.raises(KeyboardInterrupt):
        distill(config, callbacks=[InterruptAt(4)])
    assert (tmp_path / "s" / "checkpoints" / "checkpoint-4").is_dir()
    result = run_cli(
        "distill", tiny_bert, "--student", "layers:1", "--train-data", train_csv, "-o", tmp_path / "s"
    )  # fmt: skip
    assert result.exit_code == 2 and "--resume" in result.output
    config.resume = True
    report = distill(config)
    assert report["training"]["steps"] == 6 and report["training"]["resumed"]
    steps = [e["step"] for e in report["training"]["log"] if "eval_accuracy" in e]
    assert steps == [2, 4, 6]  # evaluations before the interruption came back with the state


@pytest.mark.parametrize(
    "args, code, message",
    [
        (["--student", "layers:2"], 2, "N must be 1..1"),
        (["--student", "layers:0"], 2, "N must be 1..1"),
        (["--student", "layers:1", "--device", "cuda"], 3, "no CUDA device"),
        (["--student", "layers:1", "--alpha", "1.5"], 2, "--alpha"),
        (["--student", "layers:1", "--logging-steps", "0"], 2, "--logging-steps must be >= 1"),
        (["--student", "layers:1", "--eval-steps", "-1"], 2, "--eval-steps must be >= 1"),
        (["--student", "layers:1", "--patience", "0"], 2, "--patience must be >= 1"),
        (["--student", "layers:1", "--processes", "0"], 2, "--processes 0: give 1 or more"),
        (["--student", "layers:1", "--processes", "two"], 2, "'two' is not a whole number"),
        (
            ["--student", "layers:1", "--processes", str(cores() + 1)],
            2,
            f"CPU cores to edgec; use at most --processes {cores()}",
        ),
        (["--student", "layers:1", "--processes", "2", "--device", "cuda"], 2, "CPU processes"),
        (["--student", "layers:1", "--resume"], 2, "holds no checkpoint to resume from"),
        (["--student", "layers:1", "--augment", "-1"], 2, "--augment must be >= 0"),
        (["--student", "layers:1", "--augment-rate", "0"], 2, "--augment-rate must be in"),
    ],
)
def test_bad_input_cli(tiny_bert, train_csv, tmp_path, args, code, message):
    import torch

    if "cuda" in args and "--processes" not in args and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    result = run_cli("distill", tiny_bert, "--train-data", train_csv, "-o", tmp_path / "s", *args)
    assert result.exit_code == code, result.output
    assert message in result.output and "Traceback" not in result.output


def test_empty_training_set(tiny_bert, tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("text,label\n")
    result = run_cli(
        "distill", tiny_bert, "--student", "layers:1", "--train-data", empty, "-o", tmp_path / "s"
    )
    assert result.exit_code == 2 and "no rows" in result.output


# ---------------------------------------------------------------- edgec build --distill


def test_build_distill_packages_the_student(tiny_bert, train_csv, tiny_eval_csv, tmp_path):
    out = tmp_path / "pkg"
    result = run_cli(
        "build", tiny_bert, "--distill", "layers:1", "--train-data", train_csv,
        "--eval-data", tiny_eval_csv, "--target", "x86-cpu", "--precision", "fp32",
        "--min-retention", "0", "-o", out, "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "edgec.json").read_text())
    record = manifest["distillation"]
    assert record["recipe"]["student"] == "layers:1"
    assert record["recipe"]["seed"] == 42 and record["recipe"]["data"]["train"]["sha256"]
    assert record["teacher"]["sha256"] == load_source_model(tiny_bert).weights_sha256
    assert record["retention"] == pytest.approx(
        record["student"]["accuracy"] / record["teacher"]["accuracy"]
    )
    assert manifest["source_model"]["num_layers"] == 1  # parity was against the student
    assert manifest["source_model"]["sha256"] != record["teacher"]["sha256"]
    parity = manifest["verification"]["parity"]
    assert parity["reference"]["accuracy"] == pytest.approx(record["student"]["accuracy"])
    assert "student accuracy" in json.loads(result.stdout)


def test_build_refuses_a_student_below_min_retention(
    tiny_bert, train_csv, tiny_eval_csv, tmp_path, monkeypatch
):
    import edgec.distill.build_step as step

    real = step.distill

    def weak(config, ui):
        report = real(config, ui)
        report["teacher"]["accuracy"], report["student"]["accuracy"] = 80.0, 70.0
        report["retention"] = 70.0 / 80.0
        return report

    monkeypatch.setattr(step, "distill", weak)
    out = tmp_path / "pkg"
    result = run_cli(
        "build", tiny_bert, "--distill", "layers:1", "--train-data", train_csv,
        "--eval-data", tiny_eval_csv, "--precision", "fp32", "-o", out,
    )  # fmt: skip
    assert result.exit_code == 1, result.output
    assert "87.5%" in result.output and "--min-retention 0.97" in result.output
    assert not out.exists()


def test_build_distill_needs_train_data(tiny_bert, tiny_eval_csv, tmp_path):
    result = run_cli(
        "build", tiny_bert, "--distill", "layers:1", "--eval-data", tiny_eval_csv,
        "--precision", "fp32", "-o", tmp_path / "pkg",
    )  # fmt: skip
    assert result.exit_code == 2 and "--train-data" in result.output


def test_default_layer_map_mirrors_depth_or_the_kept_layers():
    from edgec.distill.config import parse_layer_map

    assert parse_layer_map(None, 6, 3) == [(1, 2), (2, 4), (3, 6)]
    # a layers:0,2,4 student's layers learn the outputs of the teacher layers they were
    assert parse_layer_map(None, 6, 3, [0, 2, 4]) == [(1, 1), (2, 3), (3, 5)]
    assert parse_layer_map("1:2", 6, 3, [0, 2, 4]) == [(1, 2)]  # the user's map wins
    assert parse_layer_map(None, 12, 4) == [(1, 3), (2, 6), (3, 9), (4, 12)]
    assert parse_layer_map("1:1,3:5", 6, 3) == [(1, 1), (3, 5)]
    with pytest.raises(BadInput, match="teacher layers 1..6"):
        parse_layer_map("1:7", 6, 3)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--distill-option", "epochs=abc"], "--distill-option epochs='abc': give float value"),
        (["--distill-option", "max_steps=2.5"], "give int value"),
        (["--distill-option", "lr=1"], "'lr' is not a distillation hyperparameter"),
        (["--distill-option", "epochs"], "is not KEY=VALUE"),
    ],
)
def test_build_distill_options_are_checked(
    tiny_bert, train_csv, tiny_eval_csv, tmp_path, args, message
):
    result = run_cli(
        "build", tiny_bert, "--distill", "layers:1", "--train-data", train_csv,
        "--eval-data", tiny_eval_csv, "-o", tmp_path / "pkg", *args,
    )  # fmt: skip
    assert result.exit_code == 2 and message in result.output, result.output
    assert not (tmp_path / "pkg").exists()


@pytest.mark.parametrize("option", [["--min-retention", "0.5"], ["--distill-device", "cpu"]])
def test_distill_options_without_distill_are_refused(tiny_bert, tiny_eval_csv, tmp_path, option):
    result = run_cli(
        "build", tiny_bert, "--eval-data", tiny_eval_csv, "-o", tmp_path / "pkg", *option
    )
    assert result.exit_code == 2
    assert f"{option[0]} only apply with --distill STUDENT" in result.output
