"""Shared fixtures.

Tiny random models are for mechanics; every accuracy claim uses the real sentiment
teacher from examples/sentiment (MiniLM fine-tuned on the pang&lee sentences), which
is fetched and trained once and cached under $EDGEC_CACHE (default ~/.cache/edgec).
"""

from __future__ import annotations

import csv
import os
import random
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "examples" / "sentiment"))
sys.path.insert(0, str(ROOT / "examples" / "ner"))
sys.path.insert(0, str(ROOT / "examples" / "reviews"))
sys.path.insert(0, str(ROOT / "examples"))

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

from tiny_models import WORDS, make_tiny_classifier  # noqa: E402

FAMILIES = ("bert", "distilbert", "roberta", "xlm-roberta", "electra")


def write_csv(path: Path, rows: list[dict]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def random_sentences(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choices(WORDS, k=rng.randint(2, 24))) for _ in range(n)]


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("tiny")
    return {family: make_tiny_classifier(family, root / family) for family in FAMILIES}


@pytest.fixture(scope="session")
def tiny_bert(tiny_models) -> Path:
    return tiny_models["bert"]


@pytest.fixture(scope="session")
def tiny_eval_csv(tmp_path_factory) -> Path:
    """100 labeled sentences: the fewest the default 1-point accuracy gate resolves
    (edgec.gates.EVAL_SIZE_RULES; one flip in 100 moves accuracy by exactly 1 point)."""
    rng = random.Random(1)
    rows = [{"text": t, "label": rng.choice(["class_0", "class_1"])} for t in random_sentences(100)]
    return write_csv(tmp_path_factory.mktemp("data") / "eval.csv", rows)


@pytest.fixture(scope="session")
def sentiment_splits() -> dict[str, Path]:
    import sentiment

    return sentiment.prepare_splits()


@pytest.fixture(scope="session")
def sentiment_teacher() -> Path:
    """The test-suite teacher (the `quick` recipe; its accuracy is in its metrics file)."""
    import sentiment

    return sentiment.train_teacher("quick")


@pytest.fixture(scope="session")
def ner_splits() -> dict[str, Path]:
    """WNUT-16 as train / validation / test CoNLL files (1794 / 200 / 400 sentences)."""
    import ner

    return ner.prepare_splits()


@pytest.fixture(scope="session")
def ner_teacher() -> Path:
    """The test-suite NER teacher (the `quick` recipe; its scores are in its metrics file)."""
    import ner

    return ner.train_teacher("quick")


@pytest.fixture(scope="session")
def reviews_splits() -> dict[str, Path]:
    """Pang & Lee's whole reviews as train / validation / test CSVs (1000 / 200 / 300)."""
    import reviews

    return reviews.prepare_splits()


@pytest.fixture(scope="session")
def reviews_teacher() -> Path:
    """The long-input teacher (the `quick` recipe, max_length 256; its accuracy is in
    its metrics file)."""
    import reviews

    return reviews.train_teacher("quick")
