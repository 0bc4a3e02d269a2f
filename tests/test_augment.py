"""Teacher-labelled augmentation (edgec.distill.augment): which words are swapped, for
what, and that the copies reach training as KD-only rows."""

from __future__ import annotations

import pytest
from conftest import random_sentences, write_csv

from edgec.distill import DistillConfig, Hyperparameters, distill
from edgec.distill.augment import augment_texts, neighbour_table, vocabulary_spelling

VOCAB = {"[CLS]": 0, "good": 1, "great": 2, "bad": 3, "##ly": 4, "film": 5, "7": 6, "movie": 7}


@pytest.fixture
def embeddings():
    import torch

    rows = {
        "[CLS]": [1.0, 1.0, 1.0],
        "good": [1.0, 0.0, 0.0],
        "great": [0.9, 0.1, 0.0],  # good's nearest swappable word
        "bad": [-1.0, 0.2, 0.0],
        "##ly": [1.0, 0.01, 0.0],  # nearer still, but a continuation piece
        "film": [0.0, 0.0, 1.0],
        "7": [1.0, 0.0, 0.01],  # not alphabetic
        "movie": [0.0, 0.1, 1.0],
    }
    return torch.tensor([rows[t] for t, _ in sorted(VOCAB.items(), key=lambda kv: kv[1])])


def test_neighbours_are_whole_alphabetic_words(embeddings):
    table = neighbour_table(embeddings, VOCAB, {"good", "film", "unknown", "##ly"}, k=2)
    assert set(table) == {"good", "film"}  # out-of-vocabulary and pieces have none
    assert table["good"][0] == "great" and len(table["good"]) == 2
    assert table["film"][0] == "movie"
    assert all(w not in ("[CLS]", "##ly", "7") for near in table.values() for w in near)
    assert all(word not in near for word, near in table.items())


def test_copies_swap_words_and_keep_the_rest():
    table = {"good": ["great"], "film": ["movie"]}
    copies = augment_texts(["A good film , 7 / 10 ."], 3, 1.0, 0, lambda words: table)
    # every swappable word swapped at rate 1; identical copies are dropped
    assert copies == [(0, "A great movie , 7 / 10 .")]
    assert augment_texts(["no known words"], 3, 1.0, 0, lambda words: table) == []


def test_copies_are_seeded_and_distinct():
    table = {w: [f"{w}{i}" for i in "abcdefgh"] for w in ("one", "two", "three", "four")}
    texts = ["one two three four", "four three"]
    first = augment_texts(texts, 5, 0.5, 7, lambda words: table)
    assert first == augment_texts(texts, 5, 0.5, 7, lambda words: table)
    assert first != augment_texts(texts, 5, 0.5, 8, lambda words: table)
    for index in (0, 1):
        made = [t for i, t in first if i == index]
        assert len(made) == len(set(made)) and texts[index] not in made
        assert all(len(t.split()) == len(texts[index].split()) for t in made)


def test_vocabulary_spelling(tiny_bert):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_bert)
    assert vocabulary_spelling(tokenizer)("Good Café") == "good cafe"  # the tiny BERT is uncased


def test_augmented_copies_train_as_kd_only_rows(tiny_bert, tmp_path):
    rows = [{"text": t, "label": f"class_{i % 2}"} for i, t in enumerate(random_sentences(24, 4))]
    train = write_csv(tmp_path / "train.csv", rows)
    from edgec.ui import SilentUI

    said = []

    class UI(SilentUI):
        def info(self, message):
            said.append(message)

    hp = Hyperparameters(epochs=1, batch_size=8, augment=3)
    report = distill(DistillConfig(tiny_bert, "layers:1", train, tmp_path / "s", hp=hp), UI())
    augmented = report["recipe"]["augmented_rows"]
    assert f"--augment 3: {augmented} copies of the 22 training texts" in " ".join(said)
    assert 0 < augmented <= 3 * 22  # 22 training rows after the 10 % held out
    assert report["training"]["steps"] == -(-(22 + augmented) // 8)
    assert report["recipe"]["hyperparameters"]["augment"] == 3
