"""Distilling taggers and embedders, on tiny random models (seconds each).

Their accuracy means nothing; these tests check the mechanics of the two recipes:
that the per-word KD reads the positions a tagger is trained at, that a student
trained through `edgec distill` ends up closer to its teacher than it started, that
the report and the retention gate of `edgec build --distill` speak in each task's
own metric (entity F1; the similarity Spearman, with neighbour overlap next to it),
and that the student folders load as the teacher's kind of model. Classifiers are
in test_distill.py.
"""

from __future__ import annotations

import json
import random

import pytest
from cli_helpers import assert_clean_error, invoke_edgec
from tiny_models import NER_LABELS, WORDS, make_tiny_sentence_embedder, make_tiny_token_classifier

from edgec.distill import DistillConfig, Hyperparameters, distill
from edgec.distill.report import summary_rows
from edgec.distill.students import build_student, parse_student_spec
from edgec.distill.tasks import recipe_for
from edgec.model import load_source_model, num_layers
from edgec_runtime.errors import BadInput

# Eight steps at 1e-3: long enough to move a tiny student, short enough for seconds.
RECIPE = ("--max-steps", "8", "--eval-steps", "4", "--batch-size", "16", "--lr", "1e-3")
FAST = Hyperparameters(max_steps=8, eval_steps=4, batch_size=16, learning_rate=1e-3)
# A tiny random encoder's last layer barely changes its outputs (measured: a copy of
# the tagger's bottom layer starts at a word KL of 0.0009 to it), so there is nothing to
# learn, and the optimizer's noise alone moves the student away. Scaling that layer's
# output projections makes it matter: the copy starts at KL 0.27 (embedder: MSE
# 2.3e-3) and training has a real gap to close.
LAST_LAYER_SCALE = 20.0


def strengthen_last_layer(folder, model_class) -> None:
    import torch

    model = model_class.from_pretrained(folder)
    layer = model.base_model.encoder.layer[-1]
    with torch.no_grad():
        layer.output.dense.weight.mul_(LAST_LAYER_SCALE)
        layer.attention.output.dense.weight.mul_(LAST_LAYER_SCALE)
    model.save_pretrained(folder)


def sentences(n: int, seed: int) -> list[list[str]]:
    rng = random.Random(seed)
    return [rng.choices(WORDS, k=rng.randint(3, 12)) for _ in range(n)]


@pytest.fixture(scope="module")
def tagger(tmp_path_factory):
    import transformers as t

    folder = make_tiny_token_classifier("bert", tmp_path_factory.mktemp("tagger") / "m")
    strengthen_last_layer(folder, t.AutoModelForTokenClassification)
    return folder


@pytest.fixture(scope="module")
def embedder(tmp_path_factory):
    import transformers as t

    folder = make_tiny_sentence_embedder(tmp_path_factory.mktemp("embedder") / "m")
    strengthen_last_layer(folder, t.AutoModel)
    return folder


@pytest.fixture(scope="module")
def tagged(tagger, tmp_path_factory):
    """CoNLL train / eval files whose gold tags are the teacher's own: its entity F1 is
    100, so the student's retention is its F1 share, below 1 until it tags alike."""
    from edgec.distill.predict import predict_word_logits

    teacher = load_source_model(tagger)
    folder = tmp_path_factory.mktemp("tagged")

    def write(name, words):
        logits = predict_word_logits(teacher.model, teacher.tokenizer, 128, words)
        lines = []
        for sentence, rows in zip(words, logits, strict=True):
            tags = (teacher.labels[int(row.argmax())] for row in rows)
            lines += [f"{word}\t{tag}" for word, tag in zip(sentence, tags, strict=True)] + [""]
        (folder / name).write_text("\n".join(lines) + "\n", encoding="utf-8")
        return folder / name

    return {
        "train": write("train.conll", sentences(64, 1)),
        "eval": write("eval.conll", sentences(60, 2)),
    }


@pytest.fixture(scope="module")
def texts(tmp_path_factory):
    """Training texts as scored pairs (both sides are learnt from) and 40 eval texts."""
    folder = tmp_path_factory.mktemp("texts")
    rng = random.Random(3)
    pairs = zip(sentences(40, 3), sentences(40, 4), strict=True)
    rows = [f"{' '.join(a)},{' '.join(b)},{rng.random() * 5:.2f}" for a, b in pairs]
    (folder / "train.csv").write_text("sentence1,sentence2,score\n" + "\n".join(rows) + "\n")
    corpus = "\n".join(" ".join(s) for s in sentences(40, 5))
    (folder / "eval.csv").write_text("text\n" + corpus + "\n")
    return {"train": folder / "train.csv", "eval": folder / "eval.csv"}


# Taggers and embedders spread layers:N up from the first layer: layers:1 copies the
# teacher's bottom layer, which starts far from the teacher, so training has something
# to show (the last layer's copy starts where the head already reads).
STUDENT = "layers:1"


def distill_cli(teacher, train, eval_data, out):
    result = invoke_edgec(
        "distill", teacher, "--student", STUDENT, "--train-data", train,
        "--eval-data", eval_data, *RECIPE, "-o", out, "--json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def untrained_score(teacher_path, eval_set):
    """The recipe's figures for the STUDENT copy before any training step."""
    teacher = load_source_model(teacher_path)
    recipe = recipe_for(teacher)
    student = build_student(parse_student_spec(STUDENT), teacher, None, recipe.layers_from_top)
    assert student.kept_layers == [0]
    return recipe.score(teacher, student, eval_set, "cpu")


@pytest.fixture(scope="module")
def tagger_run(tagger, tagged, tmp_path_factory):
    out = tmp_path_factory.mktemp("tagger-student") / "s"
    return distill_cli(tagger, tagged["train"], tagged["eval"], out), out


@pytest.fixture(scope="module")
def embedder_run(embedder, texts, tmp_path_factory):
    out = tmp_path_factory.mktemp("embedder-student") / "s"
    return distill_cli(embedder, texts["train"], texts["eval"], out), out


# ---------------------------------------------------------------- the pieces


def test_the_tag_targets_sit_on_each_words_first_subword(tagger):
    """A word the vocabulary splits ("obama": o ##b ##a ##m ##a) is learnt at its first
    subword only: no label, no teacher logits and no KD weight on the others, nor on
    [CLS], [SEP] or padding."""
    import numpy as np

    from edgec.distill.tagging import TaggingCollator, encode_tagged

    teacher = load_source_model(tagger)
    words = [["obama", "is", "good"], ["a", "film"]]
    logits = [np.arange(len(w) * 5, dtype=np.float32).reshape(len(w), 5) + 1 for w in words]
    rows = encode_tagged(teacher.tokenizer, 128, words, [[1, 0, 0], [0, 3]], logits)
    first = rows[0]
    assert len(first["input_ids"]) == 1 + 5 + 1 + 1 + 1  # [CLS] o ##b ##a ##m ##a is good [SEP]
    assert first["kd_mask"] == [0, 1, 0, 0, 0, 0, 1, 1, 0]
    assert first["labels"] == [-100, 1, -100, -100, -100, -100, 0, 0, -100]
    assert np.array_equal(first["teacher_logits"][[1, 6, 7]], logits[0])
    assert not first["teacher_logits"][[0, 2, 3, 4, 5, 8]].any()
    batch = TaggingCollator(teacher.tokenizer, 5)(rows)
    assert batch["kd_mask"].shape == batch["labels"].shape == batch["input_ids"].shape
    assert batch["kd_mask"][1].tolist() == [False, True, True, False] + [False] * 5
    assert (batch["labels"][1, 4:] == -100).all()  # padding carries no label


def test_token_kd_ignores_unlabelled_positions():
    import torch

    from edgec.distill.losses import token_kd_loss

    teacher = torch.randn(2, 4, 5)
    mask = torch.tensor([[0, 1, 1, 0], [0, 1, 0, 0]], dtype=torch.bool)
    student = teacher.clone()
    assert float(token_kd_loss(student, teacher, mask, 2.0)) == pytest.approx(0.0, abs=1e-6)
    student[~mask] = torch.randn(int((~mask).sum()), 5) * 10  # only where nothing is learnt
    assert float(token_kd_loss(student, teacher, mask, 2.0)) == pytest.approx(0.0, abs=1e-6)
    student[0, 1] = -teacher[0, 1]
    assert float(token_kd_loss(student, teacher, mask, 2.0)) > 0


def test_embedding_loss_is_mse_plus_cosine_distance():
    import torch

    from edgec.distill.losses import LossWeights, embedding_loss

    teacher = torch.nn.functional.normalize(torch.randn(4, 8), dim=1)
    assert float(embedding_loss(LossWeights(), teacher, teacher)[0]) == pytest.approx(0, abs=1e-6)
    total, parts = embedding_loss(LossWeights(cosine_weight=2.0), -teacher, teacher)
    assert parts["cosine_distance"] == pytest.approx(2.0)  # opposite vectors: 1 - (-1)
    assert parts["mse"] == pytest.approx(float((2 * teacher).pow(2).mean()))
    assert float(total) == pytest.approx(parts["mse"] + 2.0 * parts["cosine_distance"])


# ---------------------------------------------------------------- edgec distill


def test_a_distilled_tagger_moves_toward_its_teacher(tagger, tagged, tagger_run):
    from edgec.data.tagged import load_tagged_set

    report, out = tagger_run
    teacher = load_source_model(tagger)
    before = untrained_score(tagger, load_tagged_set(tagged["eval"], label2id=teacher.label2id))
    t, s = report["teacher"], report["student"]
    assert report["task"] == "token-classification" and report["metric"]["name"] == "entity F1"
    # the word KL to the teacher fell in training (measured: 0.272 -> 0.190; 0.196
    # with --hidden-weight 0)
    assert s["kl_to_teacher"] < 0.8 * before["student"]["kl_to_teacher"]
    assert t["entity_f1"] == pytest.approx(100.0)  # the gold tags are the teacher's
    assert report["retention"] == pytest.approx(s["entity_f1"] / t["entity_f1"])
    assert 0 < report["retention"] < 1
    student = load_source_model(out)  # a standard token-classification folder
    assert student.task == "token-classification" and student.labels == list(NER_LABELS)
    assert num_layers(student.config) == 1
    logged = [e for e in report["training"]["log"] if "loss" in e]
    assert {"kd", "ce"} <= set(logged[0])
    # a tagger's defaults: layers:N spread up from layer 0, hidden-state term on, and
    # the gold tags' CE beside the KD (alpha 0.5, what its figures were measured with)
    assert report["student"]["kept_teacher_layers"] == [0]
    assert report["recipe"]["hyperparameters"]["alpha"] == 0.5
    assert not report["recipe"]["kd_only"]
    assert report["recipe"]["hyperparameters"]["hidden_weight"] == 1.0
    assert "hidden_mse" in logged[0]
    assert [e["step"] for e in report["training"]["log"] if "eval_entity_f1" in e] == [4, 8]
    rows = dict(summary_rows(report))
    assert "student entity F1" in rows and "of the teacher's entity F1" in rows["retention"]


def test_a_distilled_embedder_moves_toward_its_teacher(embedder, texts, embedder_run):
    from edgec.data import DataOptions

    report, out = embedder_run
    eval_set = DataOptions().load_for("sentence-embedding", texts["eval"], None)
    before = untrained_score(embedder, eval_set)
    s = report["student"]
    assert report["task"] == "sentence-embedding"
    assert report["metric"]["name"] == "similarity Spearman"
    # the student's vectors came closer to the teacher's (measured: MSE 2.3e-3 -> 4.0e-4;
    # 3.8e-4 with --hidden-weight 1, which an embedder must ask for)
    assert s["mse_to_teacher"] < 0.5 * before["student"]["mse_to_teacher"]
    assert report["student"]["kept_teacher_layers"] == [0]  # spread up from layer 0
    assert report["recipe"]["hyperparameters"]["hidden_weight"] == 0.0  # not measured: opt-in
    assert report["agreement"] > before["agreement"]  # mean cosine to the teacher's vectors
    # the teacher against itself is 1.0: the student's Spearman is its retention
    assert report["teacher"]["similarity_spearman"] == 1.0
    assert report["retention"] == s["similarity_spearman"]
    assert s["neighbours"] == 10 and 0 <= s["neighbour_overlap"] <= 1
    assert report["recipe"]["kd_only"] and report["recipe"]["data"]["train"]["rows"] == 72
    student = load_source_model(out)  # a sentence-transformers folder, pooled as the teacher
    assert student.task_record() == load_source_model(embedder).task_record()
    assert num_layers(student.config) == 1
    assert json.loads((out / "sentence_bert_config.json").read_text())["max_seq_length"] == 128
    rows = dict(summary_rows(report))
    assert {"student similarity Spearman", "neighbour overlap"} <= set(rows)
    assert "the teacher's is 1.0" in rows["retention"]


def test_the_embedder_student_is_a_sentence_transformers_folder(embedder_run):
    """sentence-transformers loads the student and embeds as edgec's own reading does."""
    import numpy as np

    st = pytest.importorskip("sentence_transformers")
    from edgec.distill.predict import predict_embeddings

    _, out = embedder_run
    model = st.SentenceTransformer(str(out), device="cpu")
    student = load_source_model(out)
    batch = [" ".join(s) for s in sentences(4, 9)]
    ours = predict_embeddings(
        student.model, student.tokenizer, student.max_length, batch, student.task_facts
    )
    assert np.allclose(model.encode(batch), ours, atol=1e-5)


def test_a_normalize_module_without_a_folder_is_kept(tmp_path):
    """all-MiniLM-L6-v2 ships modules.json naming 2_Normalize but no such folder (a
    Normalize module has no settings); the student keeps the module, and loads."""
    import shutil

    st = pytest.importorskip("sentence_transformers")
    from edgec.distill.embedding import write_sentence_transformer

    teacher = make_tiny_sentence_embedder(tmp_path / "teacher")
    shutil.rmtree(teacher / "2_Normalize")
    out = tmp_path / "student"
    shutil.copytree(teacher, out, ignore=shutil.ignore_patterns("*_Pooling", "modules.json"))
    write_sentence_transformer(teacher, out, max_length=64)
    kinds = [m["type"].rsplit(".", 1)[1] for m in json.loads((out / "modules.json").read_text())]
    assert kinds == ["Transformer", "Pooling", "Normalize"] and not (out / "2_Normalize").exists()
    vectors = st.SentenceTransformer(str(out), device="cpu").encode(["a good film", "dull"])
    assert vectors.shape[0] == 2
    assert abs(float((vectors**2).sum(axis=1).max()) - 1) < 1e-5  # Normalize took effect


def test_an_interrupted_tagger_run_resumes(tagger, tagged, tmp_path):
    from edgec.distill.trainer import InterruptAt

    hp = Hyperparameters(max_steps=4, eval_steps=2, batch_size=16, learning_rate=1e-3)
    config = DistillConfig(tagger, "layers:1", tagged["train"], tmp_path / "s", hp=hp)
    with pytest.raises(KeyboardInterrupt):
        distill(config, callbacks=[InterruptAt(2)])
    config.resume = True
    report = distill(config)
    assert report["training"]["steps"] == 4 and report["training"]["resumed_from"] == "checkpoint-2"
    steps = [e["step"] for e in report["training"]["log"] if "eval_entity_f1" in e]
    assert steps == [2, 4]


def test_untagged_training_words_need_the_kd_term(tagger, tmp_path):
    words = tmp_path / "words.conll"
    words.write_text("a\nfilm\n\nthe\nplot\n", encoding="utf-8")
    result = invoke_edgec(
        "distill", tagger, "--student", "layers:1", "--train-data", words, "--alpha", "0",
        "-o", tmp_path / "s",
    )  # fmt: skip
    assert_clean_error(result, 2, "has no tags and --alpha 0")


def test_a_pretrained_base_becomes_a_tagger_with_the_teachers_tags(tagger, tagged, tmp_path):
    import transformers as t

    base = tmp_path / "base"
    t.BertModel(t.AutoConfig.from_pretrained(tagger)).save_pretrained(base)
    t.AutoTokenizer.from_pretrained(tagger).save_pretrained(base)
    hp = Hyperparameters(
        max_steps=2, batch_size=16, hidden_weight=1.0, attention_weight=1.0, logging_steps=1
    )
    report = distill(DistillConfig(tagger, str(base), tagged["train"], tmp_path / "s", hp=hp))
    assert report["student"]["shares_tokenizer"] is True  # so both transfers may run
    logged = [e for e in report["training"]["log"] if "loss" in e]
    assert {"kd", "ce", "hidden_mse", "attention_kl"} <= set(logged[0])
    student = load_source_model(tmp_path / "s")
    assert student.task == "token-classification" and student.labels == list(NER_LABELS)


def test_a_pretrained_embedder_student_needs_the_teachers_width(embedder, tmp_path):
    import transformers as t

    config = t.AutoConfig.from_pretrained(embedder)
    config.hidden_size, config.intermediate_size = 16, 32
    base = tmp_path / "narrow"
    t.BertModel(config).save_pretrained(base)
    t.AutoTokenizer.from_pretrained(embedder).save_pretrained(base)
    teacher = load_source_model(embedder)
    with pytest.raises(BadInput, match="16-dimensional token vectors but the teacher embeds in 32"):
        build_student(parse_student_spec(str(base)), teacher)


def test_an_embedder_trains_on_two_processes(embedder, texts, tmp_path):
    """Data parallel without unused-parameter search: the encoder's own pooler, which
    the Pooling module never reads, must not be a trained parameter (it was: DDP
    stopped at the second step with "parameters that were not used in producing loss")."""
    import subprocess
    import sys

    from edgec.distill.processes import cores

    if cores() < 2:
        pytest.skip("needs 2 CPU cores")
    result = subprocess.run(
        [sys.executable, "-m", "edgec", "distill", str(embedder), "--student", "layers:1",
         "--train-data", str(texts["train"]), "--max-steps", "2", "--batch-size", "8",
         "--processes", "2", "-o", str(tmp_path / "s"), "--json"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["training"]["processes"] == 2 and report["training"]["steps"] == 2


# ---------------------------------------------------------------- edgec build --distill


def build_distilled(teacher, data, out, *extra):
    return invoke_edgec(
        "build", teacher, "--distill", "layers:1", "--train-data", data["train"],
        "--eval-data", data["eval"], "--backend", "onnxruntime:fp32",
        *(f"--distill-option={o}" for o in ("max_steps=8", "eval_steps=4", "learning_rate=1e-3")),
        "-o", out, *extra,
    )  # fmt: skip


@pytest.mark.parametrize(
    "task, metric, summary",
    [
        ("tagger", "entity F1", "student entity F1"),
        ("embedder", "similarity Spearman", "student similarity Spearman"),
    ],
)
def test_build_distill_packages_the_student_and_gates_its_retention(
    request, tmp_path, task, metric, summary
):
    """The package is the student, verified against it, with the teacher's figures in
    the manifest; above the achieved retention the same build writes nothing."""
    teacher = request.getfixturevalue(task)
    data = request.getfixturevalue("tagged" if task == "tagger" else "texts")
    out = tmp_path / "pkg"
    result = build_distilled(teacher, data, out, "--min-retention", "0", "--json")
    assert result.returncode == 0, result.stderr
    manifest = json.loads((out / "edgec.json").read_text())
    record = manifest["distillation"]
    assert record["metric"] == metric and record["recipe"]["student"] == "layers:1"
    assert record["teacher"]["sha256"] == load_source_model(teacher).weights_sha256
    assert manifest["source_model"]["num_layers"] == 1  # parity was against the student
    assert manifest["verification"]["status"] == "passed"
    assert summary in json.loads(result.stdout)
    retention = record["retention"]
    assert retention < 1

    refused = build_distilled(teacher, data, tmp_path / "refused", "--min-retention", "1")
    if task == "tagger":
        achieved = f"keeps {retention * 100:.1f}% of the teacher's entity F1"
    else:
        achieved = f"rank-correlate {retention:.4f} with the teacher's (similarity Spearman"
    assert_clean_error(refused, 1, achieved, "below --min-retention 1.0", "no package written")
    assert not (tmp_path / "refused").exists()


@pytest.mark.parametrize("task", ["tagger", "embedder"])
def test_augmented_copies_reach_every_task(task, tagger, tagged, embedder, texts, tmp_path):
    """--augment adds teacher-labelled copies for taggers (as words, one per source
    word) and embedders (as texts), as it does for classifiers (test_augment.py)."""
    teacher, data = (tagger, tagged) if task == "tagger" else (embedder, texts)
    hp = Hyperparameters(max_steps=2, batch_size=16, learning_rate=1e-3, augment=2)
    report = distill(DistillConfig(teacher, "layers:1", data["train"], tmp_path / "s", hp=hp))
    assert report["recipe"]["augmented_rows"] > 0
