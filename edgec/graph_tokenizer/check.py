"""Prove an in-graph tokenizer against transformers before a strings-in package ships.

The graph tokenizer is a second implementation of the tokenizer, so a mismatch changes
the model's input silently: one different id on a text can flip its prediction. Every
text (eval texts, probes, generated strings) is encoded both ways and compared field by
field; the report is JSON-able, so the build can record it and print the first
differences. It depends on nothing else in edgec (the verify package has its own,
Python-tokenizer checks).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np

from edgec.graph_tokenizer import ENCODING_OUTPUTS, OFFSETS_OUTPUT

MAX_EXAMPLES = 10
TEXT_CHARS = 300  # how much of a text an example keeps


def _unpadded(got: dict) -> dict[str, np.ndarray]:
    """One text's values, a leading batch axis of 1 dropped and padding cut off by the
    attention mask, so a padded batch row compares as the bare encoding."""
    rows = {}
    for name, value in got.items():
        array = np.asarray(value)
        rank = 2 if name == OFFSETS_OUTPUT else 1
        rows[name] = array[0] if array.ndim == rank + 1 and array.shape[0] == 1 else array
    mask = rows.get("attention_mask")
    if mask is None or mask.ndim != 1:
        return rows
    length = int(mask.sum())
    return {k: v[:length] if v.ndim and v.shape[0] == mask.shape[0] else v for k, v in rows.items()}


def _as_list(value) -> list:
    return np.asarray(value).astype(np.int64).tolist()


def compare(
    encode: Callable[[str], dict],
    hf_tokenizer,
    texts: Iterable[str],
    max_length: int,
    want_offsets: bool,
) -> dict:
    """Compare `encode(text)` (the in-graph tokenizer alone, one text) with
    `hf_tokenizer(text, truncation=True, max_length=max_length)` on every text.

    Fields: input_ids and attention_mask always, token_type_ids when transformers gives
    them, offset_mapping when `want_offsets`. A field the graph does not output counts as
    a mismatch of that field on every text ("missing"); an exception from `encode` is a
    mismatch of field "error". Returns {"texts", "mismatches" (texts with any difference),
    "by_field" (texts per field), "missing_fields", "examples" (up to 10: text, field,
    expected, got), "ok"}."""
    texts = list(texts)
    fields = list(ENCODING_OUTPUTS) + ([OFFSETS_OUTPUT] if want_offsets else [])
    by_field = dict.fromkeys(fields, 0)
    by_field["error"] = 0
    missing: set[str] = set()
    examples: list[dict] = []
    mismatched = 0
    for text in texts:
        expected = hf_tokenizer(
            text, truncation=True, max_length=max_length, return_offsets_mapping=want_offsets
        )
        differences = []
        try:
            got = _unpadded(encode(text))
        except Exception as error:  # the graph refused the text: that is a finding too
            got, differences = None, [("error", None, f"{type(error).__name__}: {error}")]
        for field in fields if got is not None else ():
            if field not in expected:
                continue
            want = (
                [list(p) for p in expected[field]]
                if field == OFFSETS_OUTPUT
                else list(expected[field])
            )
            if field not in got:
                missing.add(field)
                differences.append((field, want, None))
                continue
            have = _as_list(got[field])
            if have != want:
                differences.append((field, want, have))
        if not differences:
            continue
        mismatched += 1
        for field, want, have in differences:
            by_field[field] += 1
            if len(examples) < MAX_EXAMPLES:
                examples.append(
                    {
                        "text": text[:TEXT_CHARS],
                        "field": field,
                        "expected": want,
                        "got": have,
                    }
                )
    return {
        "texts": len(texts),
        "mismatches": mismatched,
        "by_field": {k: v for k, v in by_field.items() if v or k != "error"},
        "missing_fields": sorted(missing),
        "examples": examples,
        "ok": mismatched == 0,
    }
