"""The NER example's plumbing: label order, first-subword alignment both ways, the
WNUT-16 splits, and (slow) the quick teacher's saved scores."""

import json

import ner
import pytest

from edgec.data.tagged import load_tagged_set


def test_labels_are_o_then_b_i_per_type():
    assert ner.LABELS[0] == "O" and len(ner.LABELS) == 1 + 2 * len(ner.ENTITY_TYPES)
    assert ner.LABELS[1:3] == ("B-person", "I-person")
    assert ner.LABEL2ID["I-movie"] == len(ner.LABELS) - 1


def test_first_subword_alignment_round_trips():
    # [CLS] w0 w1 w1 w2 [SEP]: the second piece of w1 is ignored by the loss
    word_ids = [None, 0, 1, 1, 2, None]
    tags = [ner.LABEL2ID[t] for t in ("B-person", "I-person", "O")]
    labels = ner._first_subword_labels(word_ids, tags)
    assert labels == [ner.IGNORED, tags[0], tags[1], ner.IGNORED, tags[2], ner.IGNORED]
    predicted = [0, tags[0], tags[1], 0, tags[2], 0]
    assert ner.word_tags(predicted, word_ids, 4) == ["B-person", "I-person", "O", "O"]  # w3 cut


def test_entity_scores_are_strict_iob2():
    gold = [["B-person", "I-person", "O"]]
    assert ner.entity_scores(gold, gold)["f1"] == 1.0
    # an I- start is no entity in strict mode, and a wrong boundary is a miss
    assert ner.entity_scores(gold, [["I-person", "I-person", "O"]])["f1"] == 0.0
    assert ner.entity_scores(gold, [["B-person", "O", "O"]])["recall"] == 0.0


def test_splits_are_fixed_disjoint_and_tagged(ner_splits):
    data = {name: load_tagged_set(p, label2id=ner.LABEL2ID) for name, p in ner_splits.items()}
    assert {name: len(d) for name, d in data.items()} == {
        "train": 1794,
        "validation": 200,
        "test": 400,
    }
    sentences = {name: {tuple(w) for w in d.words} for name, d in data.items()}
    assert not sentences["test"] & (sentences["train"] | sentences["validation"])
    assert all(d.tags is not None and d.warnings == [] for d in data.values())


@pytest.mark.slow
def test_quick_teacher_scores(ner_teacher):
    metrics = ner.teacher_metrics(ner_teacher)
    config = json.loads((ner_teacher / "config.json").read_text())
    assert config["id2label"]["0"] == "O" and len(config["id2label"]) == len(ner.LABELS)
    assert metrics["metric"] == "seqeval entity-level, mode=strict, scheme=IOB2"
    assert metrics["test"]["f1"] >= 0.25  # see examples/ner/README.md for the measured value


@pytest.mark.slow
def test_saved_teacher_scores_what_its_metrics_say(ner_teacher, ner_splits):
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    model = AutoModelForTokenClassification.from_pretrained(ner_teacher)
    tokenizer = AutoTokenizer.from_pretrained(ner_teacher)
    assert tokenizer.model_max_length == ner.RECIPES["quick"]["max_length"]
    test = ner.read_split(ner_splits["test"])
    scores = ner.evaluate(model, tokenizer, test, tokenizer.model_max_length)
    assert scores == ner.teacher_metrics(ner_teacher)["test"]
