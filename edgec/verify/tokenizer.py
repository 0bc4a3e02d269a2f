"""Tokenizer consistency: the package's runtime tokenizer against the source one.

A deployed tokenizer that differs from training (max_length, casing, special tokens)
degrades accuracy silently, so every id the runtime produces is compared with what
transformers produced for the same text.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgec.runtime import runtime_tokenizer


def _source_encode(source, texts, pairs, max_length):
    return source.tokenizer(
        list(texts),
        list(pairs) if pairs is not None else None,
        truncation=True,
        max_length=max_length,
    )


def compare_encodings(
    source, tokenizer_path: Path, preprocessing: dict, texts, pairs=None
) -> list[dict]:
    """Every text whose input_ids, attention_mask or token_type_ids differ."""
    runtime = runtime_tokenizer(tokenizer_path, preprocessing)
    runtime.no_padding()
    expected = _source_encode(source, texts, pairs, preprocessing["max_length"])
    batch = list(zip(texts, pairs, strict=True)) if pairs is not None else list(texts)
    mismatches = []
    for i, enc in enumerate(runtime.encode_batch(batch)):
        got = {
            "input_ids": enc.ids,
            "attention_mask": enc.attention_mask,
            "token_type_ids": enc.type_ids,
        }
        for field in preprocessing["input_names"]:
            if list(expected[field][i]) != list(got[field]):
                mismatches.append(
                    {
                        "index": i,
                        "text": texts[i],
                        "field": field,
                        "expected": list(expected[field][i])[:24],
                        "got": list(got[field])[:24],
                    }
                )
                break
    return mismatches


def static_problems(source, preprocessing: dict) -> list[str]:
    config, tokenizer = source.config, source.tokenizer
    problems = []
    from edgec.model import position_limit

    if preprocessing["max_length"] > position_limit(config):
        problems.append(
            f"max_length {preprocessing['max_length']} exceeds the position embeddings ({position_limit(config)})"
        )
    if len(tokenizer) > config.vocab_size:
        problems.append(
            f"the tokenizer has {len(tokenizer)} tokens but the embedding has {config.vocab_size} rows"
        )
    if config.pad_token_id is not None and tokenizer.pad_token_id != config.pad_token_id:
        problems.append(
            f"pad token id {tokenizer.pad_token_id} differs from the model config's {config.pad_token_id}"
        )
    return problems


def tokenizer_report(source, tokenizer_path: Path, preprocessing: dict, texts, pairs=None) -> dict:
    mismatches = compare_encodings(source, tokenizer_path, preprocessing, texts, pairs)
    problems = static_problems(source, preprocessing)
    unk = source.tokenizer.unk_token_id
    ids = _source_encode(source, texts, pairs, preprocessing["max_length"])["input_ids"]
    tokens = sum(len(x) for x in ids)
    words = sum(len(t.split()) for t in texts) or 1
    return {
        "texts_compared": len(texts),
        "mismatches": len(mismatches),
        "mismatch_examples": mismatches[:20],
        "static_problems": problems,
        "unk_rate": float(np.mean([sum(1 for t in x if t == unk) / max(len(x), 1) for x in ids]))
        if unk is not None
        else 0.0,
        "fertility": tokens / words,
        "passed": not mismatches and not problems,
    }


def tokenizer_failures(report: dict) -> list[str]:
    failures = list(report["static_problems"])
    if report["mismatches"]:
        first = report["mismatch_examples"][0]
        failures.append(
            f"the package tokenizer differs from the source on {report['mismatches']} of "
            f"{report['texts_compared']} texts (first: {first['field']} of {first['text'][:60]!r})"
        )
    return failures
