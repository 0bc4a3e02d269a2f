"""Entities from logits match transformers' token-classification pipeline exactly, and
the token-label alignment check catches a runtime tokenizer that splits words otherwise.

The logits come from the model's own forward pass on ids a `tokenizers` tokenizer
produced, as on a device; the pipeline runs the same model through transformers.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from tiny_models import NER_LABELS, make_tiny_token_classifier

from edgec.verify.tokenizer.alignment import alignment_report, read_back, training_labels
from edgec_runtime.entities import (
    MISSING_WORD,
    STRATEGIES,
    entities,
    first_subwords,
    from_encoding,
    from_words,
    probabilities,
    subword_flags,
    word_tags,
)
from edgec_runtime.tokenizer import runtime_tokenizer

NER_FAMILIES = ("bert", "roberta", "xlm-roberta", "distilbert", "electra")
MAX_LENGTH = 128
SCORE_TOLERANCE = 1e-5
SENTENCES = [
    "",
    " ",
    "the movie was good",
    "i love this film",
    "  leading and trailing spaces  ",
    "multiple   spaces\tand\ttabs\nand newlines",
    "Hello, World!",
    "UPPER lower MiXeD",
    "it's a don't-care, isn't it?",
    "witty;dull:plot.acting!story?",
    "café naïve résumé crème brûlée",
    "cafe\u0301 nai\u0308ve re\u0301sume\u0301",  # NFD: combining accents
    "Ångström in Straße",
    "numbers 3.14 and 1,000 and -42",
    "xyzzy plugh qwerty",  # out-of-vocabulary words: many subwords
    "a",
    "!!!???...",
    "(parenthesised) \"quoted\" 'single'",
    "emoji \U0001f600 here \u2764\ufe0f",
    "\u8fd9\u90e8\u7535\u5f71 \u6620\u753b",  # CJK
    "mail me@example.org or https://example.com/a?b=1",
    "literal [UNK] and <unk> tokens",
    "the the the the the the the the",
    "supercalifragilisticexpialidocious",
    "fun boring great awful very not",
    "they hate it, we love it; you?",
    "on-the-fly state-of-the-art",
    "tab\tseparated\tvalues",
    "end with space ",
    " start with space",
    "i was in the film with you and they were not",
]


def _forward(model, hf_tokenizer, encoding) -> np.ndarray:
    """The model's logits for one runtime encoding, fed as transformers feeds it."""
    import torch

    inputs = {
        "input_ids": torch.tensor([encoding.ids]),
        "attention_mask": torch.tensor([encoding.attention_mask]),
    }
    if "token_type_ids" in hf_tokenizer.model_input_names:
        inputs["token_type_ids"] = torch.tensor([encoding.type_ids])
    with torch.no_grad():
        return model(**inputs).logits[0].numpy()


class NerModel:
    """A tiny token classifier with both tokenizers and one pipeline per strategy."""

    def __init__(self, family: str, path):
        import transformers as t

        self.path = path
        self.model = t.AutoModelForTokenClassification.from_pretrained(path).eval()
        self.hf_tokenizer = t.AutoTokenizer.from_pretrained(path)
        self.tokenizer = runtime_tokenizer(
            path / "tokenizer.json", preprocessing(self.hf_tokenizer)
        )
        self.tokenizer.no_padding()
        self.labels = [self.model.config.id2label[i] for i in range(len(NER_LABELS))]
        self._logits: dict = {}  # the forward pass once per input, whatever the strategy
        self.pipelines = {
            strategy: t.pipeline(
                "token-classification",
                model=self.model,
                tokenizer=self.hf_tokenizer,
                aggregation_strategy=strategy,
                device="cpu",
            )
            for strategy in STRATEGIES
        }

    def logits(self, key, encoding) -> np.ndarray:
        if key not in self._logits:
            self._logits[key] = _forward(self.model, self.hf_tokenizer, encoding)
        return self._logits[key]

    def ours(self, text: str, strategy: str) -> list[dict]:
        encoding = self.tokenizer.encode(text)
        logits = self.logits(text, encoding)
        return from_encoding(
            text,
            logits,
            encoding,
            self.tokenizer,
            self.labels,
            strategy,
            unk_token_id=self.hf_tokenizer.unk_token_id,
        )

    def ours_from_words(self, words: list[str], strategy: str) -> list[dict]:
        encoding = self.tokenizer.encode(words, is_pretokenized=True)
        logits = self.logits(tuple(words), encoding)
        return from_words(
            words,
            logits,
            encoding,
            self.tokenizer,
            self.labels,
            strategy,
            unk_token_id=self.hf_tokenizer.unk_token_id,
        )


def preprocessing(hf_tokenizer, max_length: int = MAX_LENGTH) -> dict:
    """The manifest fields runtime_tokenizer reads."""
    return {
        "max_length": max_length,
        "pad_token": hf_tokenizer.pad_token,
        "pad_token_id": hf_tokenizer.pad_token_id,
        "truncation_side": hf_tokenizer.truncation_side,
        "padding_side": hf_tokenizer.padding_side,
    }


@pytest.fixture(scope="module", params=NER_FAMILIES)
def ner(request, tmp_path_factory) -> NerModel:
    family = request.param
    path = make_tiny_token_classifier(family, tmp_path_factory.mktemp(f"ner-{family}"))
    return NerModel(family, path)


def _comparable(found: list[dict], key: str) -> list[tuple]:
    return [(e[key], e["start"], e["end"], e.get("index")) for e in found]


def assert_same(ours: list[dict], theirs: list[dict], text: str) -> None:
    key = "entity_group" if theirs and "entity_group" in theirs[0] else "entity"
    assert _comparable(ours, "label") == _comparable(theirs, key), text
    for mine, other in zip(ours, theirs, strict=True):
        assert mine["score"] == pytest.approx(float(other["score"]), abs=SCORE_TOLERANCE)
        assert mine["text"] == text[mine["start"] : mine["end"]]
        assert isinstance(mine["score"], float)


# ---------------------------------------------------------------- against the pipeline


@pytest.mark.filterwarnings("ignore:Tokenizer does not support real words")
@pytest.mark.parametrize("strategy", STRATEGIES)
def test_entities_match_the_pipeline(ner, strategy):
    for text in SENTENCES:
        assert_same(ner.ours(text, strategy), ner.pipelines[strategy](text), text)


@pytest.mark.filterwarnings("ignore:Tokenizer does not support real words")
@pytest.mark.parametrize("strategy", STRATEGIES)
def test_pre_split_words_match_the_pipeline(ner, strategy):
    for text in SENTENCES:
        words = text.split()
        if not words:
            continue
        (theirs,) = ner.pipelines[strategy](words, is_split_into_words=True)
        assert_same(ner.ours_from_words(words, strategy), theirs, " ".join(words))


@pytest.mark.filterwarnings("ignore:Tokenizer does not support real words")
def test_the_comparison_is_not_vacuous(ner):
    """Entities of every tag appear, and word strategies do change some answers, so the
    tests above exercise grouping and subword handling rather than empty lists."""
    found = {s: [ner.ours(text, s) for text in SENTENCES] for s in STRATEGIES}
    tags = {e["label"] for per_text in found["simple"] for e in per_text}
    assert {"PER", "LOC"} <= tags
    assert found["first"] != found["simple"]
    assert found["average"] != found["max"]


# ---------------------------------------------------------------- the pipeline's rules


def _one_hot(tags: list[int], confidence: float = 8.0) -> np.ndarray:
    logits = np.zeros((len(tags), len(NER_LABELS)), dtype=np.float32)
    logits[np.arange(len(tags)), tags] = confidence
    return logits


def _simple(tags: list[int], labels=NER_LABELS, **kwargs) -> list[tuple]:
    """Entities of a text of one-char words "a b c ..." tagged `tags`, (label, text)."""
    text = " ".join("abcdefghij"[: len(tags)])
    offsets = [(2 * i, 2 * i + 1) for i in range(len(tags))]
    found = entities(
        text, _one_hot(tags), offsets, [0] * len(tags), [False] * len(tags), list(labels), **kwargs
    )
    return [(e["label"], e["text"]) for e in found]


def test_b_tags_always_open_an_entity_and_o_separates():
    o, b_per, i_per, b_loc = 0, 1, 2, 3
    assert _simple([b_per, i_per, b_per, o, i_per, b_loc]) == [
        ("PER", "a b"),
        ("PER", "c"),
        ("PER", "e"),
        ("LOC", "f"),
    ]


def test_group_names_and_ignore_labels_follow_the_pipeline():
    """A label without B-/I- continues its like; the group is named after the first '-'
    (so BIOES's S-PER is 'PER'); O groups appear when nothing is ignored."""
    labels = ("O", "S-PER", "E-PER", "LOC", "X")
    assert _simple([3, 3, 1, 2, 0], labels) == [("LOC", "a b"), ("PER", "c"), ("PER", "d")]
    assert _simple([0, 0, 4], labels, ignore_labels=()) == [("O", "a b"), ("X", "c")]


def test_word_strategies_pick_the_word_tag():
    """One word of three subwords: first takes the first token's tag, max the most
    confident token's, average the best mean score."""
    text = "abc"
    offsets = [(0, 0), (0, 1), (1, 2), (2, 3), (0, 0)]
    logits = np.array(
        [[0, 0, 0, 0, 0], [0, 3, 0, 2.9, 0], [0, 0, 0, 2.9, 0], [0, 0, 0, 0, 9], [0, 0, 0, 0, 0]],
        dtype=np.float32,
    )
    special = [1, 0, 0, 0, 1]
    subword = [False, False, True, True, False]

    def tag(strategy):
        found = entities(text, logits, offsets, special, subword, list(NER_LABELS), strategy)
        return [(e["label"], e["start"], e["end"]) for e in found]

    assert tag("first") == [("PER", 0, 3)]
    assert tag("max") == [("LOC", 0, 3)]
    assert tag("average") == [("LOC", 0, 3)]
    assert tag("simple") == [("PER", 0, 1), ("LOC", 1, 3)]
    assert [
        e["index"]
        for e in entities(text, logits, offsets, special, subword, list(NER_LABELS), "none")
    ] == [1, 2, 3]


def test_subword_flags_use_token_lengths_or_the_space_heuristic():
    text = "ab c"
    offsets = [(0, 1), (1, 2), (3, 4)]
    known = [False] * 3
    assert subword_flags(text, offsets, ["a", "##b", "c"], known, word_aware=True) == [
        False,
        True,
        False,
    ]
    assert subword_flags(text, offsets, ["a", "b", "c"], known, word_aware=False) == [
        False,
        True,
        False,
    ]
    unknown = [False, True, False]
    assert subword_flags(text, offsets, ["a", "[UNK]", "c"], unknown, word_aware=True) == known
    # a span that starts on the space itself (offsets not trimmed) still starts a word
    assert subword_flags("a b", [(0, 1), (1, 3)], ["a", "▁b"], [False] * 2, word_aware=False) == [
        False,
        False,
    ]


def test_unknown_strategy_is_refused():
    with pytest.raises(ValueError, match="aggregation strategy"):
        entities("a", _one_hot([1]), [(0, 1)], [0], [False], list(NER_LABELS), "longest")


def test_probabilities_are_a_float32_softmax():
    probs = probabilities(np.array([[1.0, 2.0, 3.0]]))
    assert probs.dtype == np.float32
    assert probs.sum() == pytest.approx(1.0)
    assert probs.argmax() == 2


def test_entities_import_neither_torch_nor_transformers():
    code = (
        "import sys, edgec_runtime.entities\n"
        "heavy = [m for m in ('torch', 'transformers') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# ---------------------------------------------------------------- word tags


def test_word_tags_read_each_words_first_subword():
    word_ids = [None, 0, 0, 1, 2, 2, 2, None]
    logits = _one_hot([0, 1, 2, 3, 4, 0, 0, 0])
    assert word_tags(logits, word_ids, 4).tolist() == [1, 3, 4, MISSING_WORD]
    assert first_subwords(word_ids, 4).tolist() == [1, 3, 4, MISSING_WORD]


def test_training_labels_round_trip_through_the_first_subword():
    word_ids = [None, 0, 0, 1, 2, 2, None]
    labels = training_labels([7, 8, 9], word_ids)
    assert labels == [-100, 7, -100, 8, 9, -100, -100]
    assert read_back(labels, word_ids, 4) == [7, 8, 9, MISSING_WORD]


# ---------------------------------------------------------------- alignment report

ALIGNMENT_SENTENCES = [text.split() for text in SENTENCES if text.split()]
LONG_SENTENCE = ("the movie was good and the plot was witty " * 8).split()


def test_a_matching_runtime_tokenizer_aligns(ner):
    report = alignment_report(
        ner.hf_tokenizer, ner.tokenizer, [*ALIGNMENT_SENTENCES, LONG_SENTENCE], MAX_LENGTH
    )
    assert report["problems"] == []
    assert report["mismatched"] == 0
    assert report["sentences"] == len(ALIGNMENT_SENTENCES) + 1


def test_truncation_dropped_words_are_counted_not_failed(ner):
    runtime = runtime_tokenizer(ner.path / "tokenizer.json", preprocessing(ner.hf_tokenizer, 16))
    report = alignment_report(ner.hf_tokenizer, runtime, [LONG_SENTENCE], 16)
    assert report["problems"] == []
    assert 0 < report["truncated_words"] < len(LONG_SENTENCE)


@pytest.fixture(scope="module")
def bert_ner(tmp_path_factory) -> NerModel:
    return NerModel("bert", make_tiny_token_classifier("bert", tmp_path_factory.mktemp("bert-ner")))


def test_a_cased_runtime_for_an_uncased_model_is_named(bert_ner):
    from tokenizers import normalizers

    runtime = runtime_tokenizer(
        bert_ner.path / "tokenizer.json", preprocessing(bert_ner.hf_tokenizer)
    )
    runtime.normalizer = normalizers.BertNormalizer(lowercase=False)
    report = alignment_report(bert_ner.hf_tokenizer, runtime, ALIGNMENT_SENTENCES, MAX_LENGTH)
    assert report["mismatched"] > 0
    assert any(p.startswith("joined word_ids:") for p in report["problems"])
    assert any(p.startswith("pre-split word_ids:") for p in report["problems"])
    example = report["examples"][0]
    assert example["expected"] != example["runtime"]
    assert example["text"] in {" ".join(words) for words in ALIGNMENT_SENTENCES}


def test_another_pre_tokenizer_is_named(bert_ner):
    from tokenizers import pre_tokenizers

    runtime = runtime_tokenizer(
        bert_ner.path / "tokenizer.json", preprocessing(bert_ner.hf_tokenizer)
    )
    runtime.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    report = alignment_report(bert_ner.hf_tokenizer, runtime, ALIGNMENT_SENTENCES, MAX_LENGTH)
    assert any(p.startswith("joined word_ids:") for p in report["problems"])
    assert len(report["examples"]) <= 10


def test_shorter_runtime_truncation_breaks_the_round_trip(bert_ner):
    runtime = runtime_tokenizer(
        bert_ner.path / "tokenizer.json", preprocessing(bert_ner.hf_tokenizer, 12)
    )
    report = alignment_report(bert_ner.hf_tokenizer, runtime, [LONG_SENTENCE], 32)
    assert any(p.startswith("round trip:") for p in report["problems"])
    assert report["mismatched"] == 1


# ---------------------------------------------------------------- tiny sentence embedder


@pytest.mark.parametrize(("pooling", "normalize"), [("mean", True), ("cls", False), ("max", True)])
def test_the_tiny_sentence_embedder_loads_in_sentence_transformers(tmp_path, pooling, normalize):
    """tiny_models' hand-written sentence-transformers folder is one the library reads."""
    from sentence_transformers import SentenceTransformer
    from tiny_models import make_tiny_sentence_embedder

    model = SentenceTransformer(
        str(make_tiny_sentence_embedder(tmp_path, pooling, normalize)), device="cpu"
    )
    vectors = model.encode(["the movie was good", "bad"])
    assert vectors.shape == (2, 32)
    assert model.max_seq_length == 128
    norms = np.linalg.norm(vectors, axis=1)
    assert np.allclose(norms, 1.0, atol=1e-5) == normalize
    assert model[1].get_config_dict()["pooling_mode"] == pooling
