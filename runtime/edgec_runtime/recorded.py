"""What a build records in the manifest so a device can re-check the package without
the source model, torch or transformers: the reference's answers in a compact form,
and fingerprints of the eval texts and of their tokens.

Formats live here, once: the compiler writes them (edgec.verify), `edgec-run verify`
reads them.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np

PREDICTION_DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"
TOKEN_FIELDS = ("ids", "type_ids", "attention_mask")


def encode_predictions(logits: np.ndarray) -> str | None:
    """The reference's predicted class per example, one base-36 digit each (compact
    enough for the manifest; lets verify re-check agreement without the model)."""
    if logits.shape[1] > len(PREDICTION_DIGITS):
        return None
    return "".join(PREDICTION_DIGITS[i] for i in logits.argmax(axis=1))


def decode_predictions(encoded: str) -> np.ndarray:
    return np.array([PREDICTION_DIGITS.index(c) for c in encoded], dtype=np.int64)


def encode_tags(tags: list[list[str]], labels: list[str]) -> list[str] | None:
    """The reference's tags, one base-36 digit per word and a string per sentence."""
    if len(labels) > len(PREDICTION_DIGITS):
        return None
    index = {name: i for i, name in enumerate(labels)}
    return ["".join(PREDICTION_DIGITS[index[t]] for t in sentence) for sentence in tags]


def decode_tags(encoded: list[str], labels: list[str]) -> list[list[str]]:
    return [[labels[PREDICTION_DIGITS.index(c)] for c in sentence] for sentence in encoded]


def _sha256(value) -> str:
    return hashlib.sha256(json.dumps(value, ensure_ascii=False).encode("utf-8")).hexdigest()


def texts_fingerprint(units: list, pairs: list | None = None) -> str:
    """sha256 of the texts (or of the word lists of a tagged set) and their pairs: tells
    whether a device checks the very data the build verified on. Labels stay out, so
    a reader that parses them differently still finds the same texts."""
    return _sha256([list(units), list(pairs) if pairs is not None else None])


def tokens_fingerprint(encodings: list) -> str:
    """sha256 of every encoding's ids, type ids and attention mask: the runtime
    tokenizer's exact output on the eval data, as the build saw it."""
    return _sha256([[list(getattr(e, f)) for f in TOKEN_FIELDS] for e in encodings])


def device_record(predictor, units: list, pairs: list | None, pre_split: bool) -> dict:
    """The fingerprints `edgec-run verify` compares: texts and the runtime tokenizer's
    tokens, on the eval data (`pre_split`: word lists of a tagged set)."""
    from importlib.metadata import version

    encodings = predictor.encode_words(units) if pre_split else predictor.encode(units, pairs)
    return {
        "tokenizers_version": version("tokenizers"),
        "texts_sha256": texts_fingerprint(units, pairs),
        "tokens_sha256": tokens_fingerprint(encodings),
        "examples": len(units),
        "pre_split": pre_split,
    }


def nearest(vectors: np.ndarray, k: int) -> list[list[int]]:
    """Each text's k nearest others by cosine (self excluded), nearest first: how a build
    records the reference's neighbours and how a device re-checks them (numpy: the
    device has no scikit-learn)."""
    v = np.asarray(vectors, dtype=np.float64)
    v = v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)
    sims = v @ v.T
    np.fill_diagonal(sims, -np.inf)
    k = min(k, len(v) - 1)
    return np.argsort(-sims, axis=1, kind="stable")[:, :k].tolist() if k > 0 else [[] for _ in v]
