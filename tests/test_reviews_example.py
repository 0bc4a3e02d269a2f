"""The long-input example: Pang & Lee's whole reviews, split and (slow) the teacher
trained on them at max_length 256."""

import pytest
import reviews
import sentiment


def test_splits_are_fixed_balanced_and_disjoint(reviews_splits):
    data = {name: sentiment.read_split(path) for name, path in reviews_splits.items()}
    assert {name: len(rows) for name, rows in data.items()} == {
        "train": 1000,
        "validation": 200,
        "test": 300,
    }
    for rows in data.values():
        labels = [label for _, label in rows]
        assert labels.count("negative") == labels.count("positive")
    texts = {name: {text for text, _ in rows} for name, rows in data.items()}
    assert not texts["test"] & (texts["train"] | texts["validation"])
    assert all("\n" not in text for rows in data.values() for text, _ in rows)


@pytest.mark.slow
def test_quick_teacher_accuracy_and_max_length(reviews_teacher):
    from transformers import AutoTokenizer

    metrics = reviews.teacher_metrics(reviews_teacher)
    assert metrics["test_size"] == 300
    # measured 81.0 %; 300 test reviews put one standard error at about 2.3 points
    assert metrics["test_accuracy"] >= 0.78  # see examples/reviews/README.md
    tokenizer = AutoTokenizer.from_pretrained(reviews_teacher)
    assert tokenizer.model_max_length == 256
    assert tokenizer.truncation_side == "left"  # a review's verdict is at its end
    assert metrics["hyperparameters"]["max_length"] == 256
