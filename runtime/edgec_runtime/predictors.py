"""A loaded package per task: tokenizing as the manifest says, batching, running the
backend's runner and turning its output into answers.

Preprocessing comes from the manifest, never from defaults: the package carries the
exact max_length, truncation side, padding and special tokens training used.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgec_runtime.batching import length_sorted_batches
from edgec_runtime.iospec import (
    AGGREGATION_STRATEGIES,
    DEFAULT_AGGREGATION,
    ENCODING_FIELDS,
    SENTENCE_EMBEDDING,
    SEQUENCE_CLASSIFICATION,
    STRING_INPUT,
    TOKEN_CLASSIFICATION,
    strings_in,
)
from edgec_runtime.tokenizer import TOKENIZER_FILE, runtime_tokenizer


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=-1, keepdims=True)


def task_of(manifest: dict) -> dict:
    """The manifest's task section; packages from before tasks were recorded classify."""
    return manifest.get("task") or {"name": SEQUENCE_CLASSIFICATION}


class Predictor:
    """A loaded package: tokenizing as the manifest says, batching and running the
    backend. Each task's subclass turns the graph's output into answers."""

    def __init__(self, directory: Path, manifest: dict, runner, keep_alive=None):
        self.directory = directory
        self.manifest = manifest
        self.runner = runner
        self.task: dict = task_of(manifest)
        self.preprocessing = manifest["preprocessing"]
        self.labels: list[str] = manifest["labels"]
        self.input_names: list[str] = self.preprocessing["input_names"]
        self.tokenizer = runtime_tokenizer(directory / TOKENIZER_FILE, self.preprocessing)
        self.tokenizer.no_padding()  # `pad` pads each batch; tokenizing stays once per text
        self.strings_in = strings_in(manifest["backend"])  # the graph tokenizes
        self._keep_alive = keep_alive

    def close(self) -> None:
        if self._keep_alive is not None:
            self._keep_alive.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    @property
    def verified(self) -> bool:
        return self.manifest.get("verification", {}).get("status") == "passed"

    def _check_pairs(self, pairs) -> None:
        """A pair model fed single texts (or the reverse) answers, wrongly: refuse."""
        from edgec_runtime.errors import BadInput

        if self.preprocessing.get("text_pair") and pairs is None:
            raise BadInput(
                "this package classifies text pairs: give the second texts too "
                "(--input FILE with a text_pair column, or --text-pair-column)"
            )
        if not self.preprocessing.get("text_pair") and pairs is not None:
            raise BadInput("this package classifies single texts, not pairs: drop the second texts")

    def encode(self, texts: list[str], pairs: list[str] | None = None) -> list:
        """Tokenize once, unpadded: batches are padded later, each to its own longest."""
        batch = list(zip(texts, pairs, strict=True)) if pairs is not None else list(texts)
        return self.tokenizer.encode_batch(batch)

    def encode_words(self, sentences: list[list[str]]) -> list:
        """Tokenize pre-split words (each word's subwords keep its index in word_ids)."""
        return self.tokenizer.encode_batch(
            [list(words) for words in sentences], is_pretokenized=True
        )

    def pad(self, encodings: list) -> dict[str, np.ndarray]:
        """Model inputs for one batch, padded as the manifest says (side, ids, type ids)."""
        length = max(len(e.ids) for e in encodings)
        fill = {
            "input_ids": self.preprocessing["pad_token_id"],
            "attention_mask": 0,
            "token_type_ids": self.preprocessing.get("pad_token_type_id", 0),
        }
        out = {}
        for name in self.input_names:
            array = np.full((len(encodings), length), fill[name], dtype=np.int64)
            for row, e in enumerate(encodings):
                values = getattr(e, ENCODING_FIELDS[name])
                array[row, self._columns(len(values), length)] = values
            out[name] = array
        return out

    def _columns(self, n: int, length: int) -> slice:
        """Where a row of n tokens sits in a batch padded to `length`."""
        if self.preprocessing.get("padding_side", "right") == "left":
            return slice(length - n, length)
        return slice(0, n)

    def outputs(self, texts: list[str], pairs: list[str] | None = None, batch_size: int = 32):
        """The graph's output per batch of texts, as (indices, output): tokenized here,
        or, for a strings-in package, the texts themselves (its graph tokenizes)."""
        if not self.strings_in:
            yield from self.run(self.encode(texts, pairs), batch_size)
            return
        for start in range(0, len(texts), batch_size):
            idx = list(range(start, min(start + batch_size, len(texts))))
            yield idx, self.runner.run({STRING_INPUT: np.array([texts[i] for i in idx], dtype=object)})

    def run(self, encodings: list, batch_size: int = 32):
        """The graph's output for each encoding, in input order; batches are
        length-sorted so padding stays small. Yields (indices, output) per batch."""
        for idx in length_sorted_batches([len(e.ids) for e in encodings], batch_size):
            yield idx, self.runner.run(self.pad([encodings[i] for i in idx]))


class Classifier(Predictor):
    """sequence-classification: `predict` returns a label and scores per text."""

    def logits(
        self, texts: list[str], pairs: list[str] | None = None, batch_size: int = 32
    ) -> np.ndarray:
        """Logits in input order."""
        self._check_pairs(pairs)
        texts = list(texts)
        out = np.zeros((len(texts), len(self.labels)), dtype=np.float32)
        if texts:
            for idx, batch in self.outputs(texts, pairs, batch_size):
                out[idx] = batch
        return out

    def predict(
        self, texts: list[str], pairs: list[str] | None = None, batch_size: int = 32
    ) -> list[dict]:
        probs = softmax(self.logits(texts, pairs, batch_size))
        return [
            {
                "label": self.labels[int(p.argmax())],
                "score": float(p.max()),
                "scores": {label: float(v) for label, v in zip(self.labels, p, strict=True)},
            }
            for p in probs
        ]


class Tagger(Predictor):
    """token-classification: `predict` returns entity spans per text (character
    offsets into the text), `predict_tokens` one tag per pre-split word."""

    def token_logits(self, encodings: list, batch_size: int = 32) -> list[np.ndarray]:
        """Per encoding, its tokens' logits [tokens, labels] with the padding cut off
        (a runner may pad the sequence further, at the end: it is cut too)."""
        out: list = [None] * len(encodings)
        for idx, batch in self.run(encodings, batch_size):
            length = max(len(encodings[i].ids) for i in idx)
            for row, i in enumerate(idx):
                out[i] = batch[row, :length][self._columns(len(encodings[i].ids), length)]
        return out

    def predict(
        self,
        texts: list[str],
        pairs: list[str] | None = None,
        batch_size: int = 32,
        aggregation: str | None = None,
    ) -> list[list[dict]]:
        """Entities per text: label, score, start, end, text (transformers' pipeline
        semantics for each aggregation strategy; default the manifest's)."""
        from edgec_runtime.entities import from_encoding

        self._check_pairs(pairs)
        strategy = aggregation or self.task.get("aggregation", DEFAULT_AGGREGATION)
        check_aggregation(strategy)
        texts = list(texts)
        encodings = self.encode(texts, pairs)
        logits = self.token_logits(encodings, batch_size)
        unk = (self.preprocessing.get("special_tokens", {}).get("unk_token") or {}).get("id")
        return [
            from_encoding(text, lg, enc, self.tokenizer, self.labels, strategy, unk_token_id=unk)
            for text, lg, enc in zip(texts, logits, encodings, strict=True)
        ]

    def word_logits(self, sentences: list[list[str]], batch_size: int = 32) -> list[np.ndarray]:
        """Per sentence, the logits of each word's first subword [words, labels]; a word
        truncation cut off gets a row of NaN (it has no prediction)."""
        encodings = self.encode_words(sentences)
        logits = self.token_logits(encodings, batch_size)
        out = []
        for words, enc, lg in zip(sentences, encodings, logits, strict=True):
            rows = np.full((len(words), len(self.labels)), np.nan, dtype=np.float32)
            seen = set()
            for token, word in enumerate(enc.word_ids):
                if word is not None and word not in seen:
                    seen.add(word)
                    rows[word] = lg[token]
            out.append(rows)
        return out

    def predict_tokens(self, sentences: list[list[str]], batch_size: int = 32) -> list[list[str]]:
        """One tag per word (from its first subword, as training labelled); a word past
        max_length is tagged "O"."""
        outside = "O" if "O" in self.labels else self.labels[0]
        return [
            [outside if np.isnan(row).any() else self.labels[int(row.argmax())] for row in rows]
            for rows in self.word_logits(sentences, batch_size)
        ]


class Embedder(Predictor):
    """sentence-embedding: `embed` (and `predict`) return a float32 [n, dim] array,
    pooled and normalized inside the graph as the model's modules say."""

    def embed(self, texts: list[str], pairs=None, batch_size: int = 32) -> np.ndarray:
        self._check_pairs(pairs)
        texts = list(texts)
        out = np.zeros((len(texts), int(self.task["dimension"])), dtype=np.float32)
        if texts:
            for idx, batch in self.outputs(texts, pairs, batch_size):
                out[idx] = batch
        return out

    def predict(self, texts: list[str], pairs=None, batch_size: int = 32) -> np.ndarray:
        return self.embed(texts, pairs, batch_size)


PREDICTORS = {
    SEQUENCE_CLASSIFICATION: Classifier,
    TOKEN_CLASSIFICATION: Tagger,
    SENTENCE_EMBEDDING: Embedder,
}


def check_aggregation(strategy: str) -> None:
    if strategy not in AGGREGATION_STRATEGIES:
        from edgec_runtime.errors import BadInput

        raise BadInput(
            f"aggregation {strategy!r} is not one of {', '.join(AGGREGATION_STRATEGIES)}"
        )


def make_predictor(directory: Path, manifest: dict, runner, keep_alive=None) -> Predictor:
    """The predictor of the package's task (the manifest says which; never guessed)."""
    name = task_of(manifest)["name"]
    if name == TOKEN_CLASSIFICATION and strings_in(manifest["backend"]):
        from edgec_runtime.errors import BadInput

        raise BadInput(  # edgec builds none: no in-graph converter gives training's offsets
            f"{directory} is a strings-in tagger, which this edgec cannot run: rebuild it "
            "without -O tokenizer=graph"
        )
    if name not in PREDICTORS:
        from edgec_runtime.errors import BadInput

        raise BadInput(
            f"{directory} is a {name!r} package; this edgec runs "
            f"{', '.join(PREDICTORS)}: upgrade edgec"
        )
    return PREDICTORS[name](directory, manifest, runner, keep_alive)
