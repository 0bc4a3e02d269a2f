"""Each way a deployed tokenizer can drift from the one training used, as a function
that returns its problems (sentences) or its measurements.

Settings are compared as data; `tokenizer.json`'s normalizer against the config's
casing flags; special tokens and vocabulary against the model's embeddings; and the
encodings themselves, id for id, against transformers (and, for WordPiece, against
transformers' pure-Python tokenizer as an independent second opinion). How well the
vocabulary fits the eval data is measured too: a high subword fertility or a UNK rate
over UNK_RATE_WARNING warns, and a UNK rate over the `max_unk_rate` gate fails.
"""

from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path

import numpy as np

from edgec.model import position_limit
from edgec_runtime.iospec import ENCODING_FIELDS, derive_max_length

# model_max_length of a tokenizer that never set one (transformers' VERY_LARGE_INTEGER).
UNSET_MAX_LENGTH = 10**6
UNK_RATE_WARNING = 0.01  # share of eval tokens that are UNK; the gate is max_unk_rate
FERTILITY_WARNING = 3.0  # subword tokens per whitespace word
EXAMPLES_KEPT = 10
PADDED_BATCH = 32  # texts in the one padded batch compared
WORDPIECE_FAMILIES = ("bert", "distilbert", "electra")
SETTING_KEYS = (
    "max_length",
    "truncation",
    "truncation_side",
    "padding_side",
    "pad_token",
    "pad_token_id",
    "pad_token_type_id",
    "do_lower_case",
    "strip_accents",
    "text_pair",
    "input_names",
)


# ---------------------------------------------------------------- settings


def declared_max_length(tokenizer) -> int | None:
    """The tokenizer's own model_max_length, or None when it never set one."""
    value = getattr(tokenizer, "model_max_length", None)
    if value is None or value >= UNSET_MAX_LENGTH:
        return None
    return int(value)


def training_max_length(tokenizer, fallback: int, limit: int | None = None) -> int:
    """The max_length training used: the tokenizer's model_max_length when it sets one,
    capped by the position embeddings (`limit`) when they are known; `fallback` when
    the tokenizer never set one."""
    declared = declared_max_length(tokenizer)
    if declared is None:
        return fallback
    return derive_max_length(declared, limit) if limit else declared


def settings_of(tokenizer, max_length: int, input_names, text_pair: bool) -> dict:
    """The preprocessing training used, in the manifest's own shape."""
    from edgec.model import preprocessing_of

    settings = preprocessing_of(tokenizer, max_length, input_names, text_pair)
    settings["truncation"] = tokenizer.init_kwargs.get("truncation_strategy") or "longest_first"
    return settings


def settings_problems(expected: dict, package: dict) -> list[str]:
    """Every setting and special-token id where the package differs from training."""
    problems = []
    for key in SETTING_KEYS:
        if key in expected and expected.get(key) != package.get(key):
            hint = (
                " (training's model_max_length; rebuild without --max-length, or re-save the "
                "tokenizer with the max_length you trained with)"
                if key == "max_length"
                else ""
            )
            problems.append(
                f"{key} is {package.get(key)!r} in the package but {expected.get(key)!r} in training{hint}"
            )
    want = {k: v["id"] for k, v in expected.get("special_tokens", {}).items()}
    have = {k: v["id"] for k, v in package.get("special_tokens", {}).items()}
    for name in sorted(set(want) | set(have)):
        if want.get(name) != have.get(name):
            problems.append(
                f"{name} id is {have.get(name)} in the package but {want.get(name)} in training"
            )
    return problems


def pair_problems(eval_has_pairs: bool, package_encodes_pairs: bool) -> list[str]:
    """The eval data and the package must agree on whether inputs are text pairs."""
    if eval_has_pairs == package_encodes_pairs:
        return []
    if eval_has_pairs:
        return ["the eval data has a text-pair column but the package encodes single texts"]
    return ["the package encodes text pairs but the eval data has no pair column"]


# ---------------------------------------------------------------- static facts


def normalizer_flags(tokenizer_json: dict) -> dict:
    """Lowercasing and accent stripping as `tokenizer.json` really does them."""
    norm = tokenizer_json.get("normalizer") or {}
    parts = norm.get("normalizers", [norm]) if norm.get("type") == "Sequence" else [norm]
    lower, strip = False, False
    for part in parts:
        kind = part.get("type")
        if kind == "BertNormalizer":
            lower = bool(part.get("lowercase"))
            accents = part.get("strip_accents")
            strip = lower if accents is None else bool(accents)
        elif kind == "Lowercase":
            lower = True
        elif kind == "StripAccents":
            strip = True
    return {"lowercase": lower, "strip_accents": strip}


def normalizer_problems(tokenizer_json: dict, do_lower_case, strip_accents) -> list[str]:
    """The config's casing flags must be what the runtime's normalizer does."""
    if do_lower_case is None:
        return []
    flags = normalizer_flags(tokenizer_json)
    problems = []
    if flags["lowercase"] != bool(do_lower_case):
        problems.append(
            f"tokenizer.json {'lowercases' if flags['lowercase'] else 'keeps case'} but the "
            f"tokenizer config says do_lower_case={do_lower_case}: the runtime would see "
            f"{'lowercased' if flags['lowercase'] else 'cased'} text that training never saw"
        )
    want_strip = bool(do_lower_case) if strip_accents is None else bool(strip_accents)
    if flags["strip_accents"] != want_strip:
        problems.append(
            f"tokenizer.json {'strips' if flags['strip_accents'] else 'keeps'} accents but the "
            f"tokenizer config says strip_accents={strip_accents} (do_lower_case={do_lower_case})"
        )
    return problems


def model_problems(tokenizer, config, max_length: int) -> list[str]:
    """Facts the tokenizer and the model's embeddings must agree on."""
    problems = []
    limit = position_limit(config)
    if max_length > limit:
        problems.append(f"max_length {max_length} exceeds the model's {limit} position embeddings")
    if len(tokenizer) > config.vocab_size:
        problems.append(
            f"the tokenizer has {len(tokenizer)} tokens but the embedding has {config.vocab_size} "
            "rows: ids past the end would crash or read garbage"
        )
    for name in ("pad_token_id", "bos_token_id", "eos_token_id", "sep_token_id", "cls_token_id"):
        want = getattr(config, name, None)
        have = getattr(tokenizer, name, None)
        if want is not None and have is not None and want != have:
            problems.append(f"{name} is {have} in the tokenizer but {want} in the model config")
    return problems


def runtime_vocab_problems(runtime, preprocessing: dict, vocab_rows: int | None) -> list[str]:
    """The runtime tokenizer maps the manifest's special tokens to the manifest's ids."""
    problems = []
    for name, spec in preprocessing.get("special_tokens", {}).items():
        got = runtime.token_to_id(spec["token"])
        if got != spec["id"]:
            problems.append(
                f"tokenizer.json maps {name} {spec['token']!r} to {got}, the manifest says {spec['id']}"
            )
    size = runtime.get_vocab_size(with_added_tokens=True)
    if vocab_rows is not None and size > vocab_rows:
        problems.append(f"tokenizer.json has {size} tokens but the embedding has {vocab_rows} rows")
    return problems


# ---------------------------------------------------------------- encodings


def _batch(texts, pairs):
    return list(zip(texts, pairs, strict=True)) if pairs is not None else list(texts)


def expected_encodings(tokenizer, texts, pairs, max_length, fields) -> list[dict]:
    """What transformers gives, unpadded, truncated as training truncated."""
    if not texts:
        return []
    enc = tokenizer(
        list(texts),
        list(pairs) if pairs is not None else None,
        truncation="longest_first",
        max_length=max_length,
        return_token_type_ids=True,
        return_attention_mask=True,
    )
    return [{f: list(enc[f][i]) for f in fields} for i in range(len(texts))]


def runtime_encodings(runtime, texts, pairs, fields) -> list[dict]:
    """What the package's `tokenizers` tokenizer gives for the same inputs, unpadded."""
    runtime.no_padding()
    encodings = runtime.encode_batch(_batch(texts, pairs)) if texts else []
    return [{f: list(getattr(e, ENCODING_FIELDS[f])) for f in fields} for e in encodings]


def _mismatch(index, want: dict, have: dict, texts, pairs) -> dict | None:
    """Where one text's encodings first differ (field, position, ids around it)."""
    for field, ids in want.items():
        got = have[field]
        if ids == got:
            continue
        first = next(
            (k for k, (a, b) in enumerate(zip(ids, got, strict=False)) if a != b),
            min(len(ids), len(got)),
        )
        return {
            "index": index,
            "text": texts[index][:200],
            "text_pair": pairs[index][:200] if pairs is not None else None,
            "field": field,
            "position": first,
            "expected": ids[max(0, first - 4) : first + 8],
            "got": got[max(0, first - 4) : first + 8],
            "expected_length": len(ids),
            "got_length": len(got),
        }
    return None


def encoding_mismatches(expected, got, texts, pairs=None) -> dict:
    """Texts whose ids, mask or type ids differ; the first few kept as examples."""
    found = [
        m
        for i, (want, have) in enumerate(zip(expected, got, strict=True))
        if (m := _mismatch(i, want, have, texts, pairs)) is not None
    ]
    return {"compared": len(expected), "mismatches": len(found), "examples": found[:EXAMPLES_KEPT]}


def compare_encodings(expected_tokenizer, runtime, inputs: dict, max_length, fields) -> dict:
    """`encoding_mismatches` for each named (texts, pairs) input."""
    return {
        name: encoding_mismatches(
            expected_encodings(expected_tokenizer, texts, pairs, max_length, fields),
            runtime_encodings(runtime, texts, pairs, fields),
            texts,
            pairs,
        )
        for name, (texts, pairs) in inputs.items()
    }


def padded_batch_problems(tokenizer, runtime, preprocessing, texts, pairs, max_length) -> list:
    """The runtime pads a batch exactly as transformers does (pad id, mask, type ids)."""
    texts = list(texts)[:PADDED_BATCH]
    pairs = list(pairs)[:PADDED_BATCH] if pairs is not None else None
    if len(texts) < 2:
        return []
    fields = preprocessing["input_names"]
    want = tokenizer(
        texts,
        pairs,
        truncation="longest_first",
        max_length=max_length,
        padding="longest",
        return_token_type_ids=True,
        return_attention_mask=True,
    )
    runtime.enable_padding(
        direction=preprocessing.get("padding_side", "right"),
        pad_id=preprocessing["pad_token_id"],
        pad_type_id=preprocessing.get("pad_token_type_id", 0),
        pad_token=preprocessing["pad_token"],
    )
    got = runtime.encode_batch(_batch(texts, pairs))
    runtime.no_padding()
    return [
        f"a padded batch differs in {f}: the runtime pads differently from training"
        for f in fields
        if [list(x) for x in want[f]] != [list(getattr(e, ENCODING_FIELDS[f])) for e in got]
    ]


# ---------------------------------------------------------------- slow variant


def slow_variant(tokenizer, model_type: str | None):
    """(pure-Python tokenizer or None, note) for a second, independent opinion."""
    import transformers

    model = json.loads(tokenizer.backend_tokenizer.to_str()).get("model", {})
    if model_type not in WORDPIECE_FAMILIES or model.get("type") != "WordPiece":
        return None, (
            f"transformers {transformers.__version__} has no slow (Python) tokenizer for "
            f"{model_type or 'this'} models (use_fast=False is ignored); only the "
            "tokenizers-backed one was compared"
        )
    from transformers.models.bert.tokenization_bert_legacy import BertTokenizerLegacy

    vocab = sorted(tokenizer.get_vocab().items(), key=lambda kv: kv[1])
    if [i for _, i in vocab] != list(range(len(vocab))):
        return None, "the vocabulary has gaps, so no slow BertTokenizerLegacy could be built"
    init = tokenizer.init_kwargs
    with tempfile.TemporaryDirectory(prefix="edgec-vocab-") as tmp:
        path = Path(tmp) / "vocab.txt"
        path.write_text("".join(token + "\n" for token, _ in vocab), encoding="utf-8")
        slow = BertTokenizerLegacy(
            str(path),
            do_lower_case=init.get("do_lower_case", True),
            tokenize_chinese_chars=init.get("tokenize_chinese_chars", True),
            strip_accents=init.get("strip_accents"),
            unk_token=str(tokenizer.unk_token),
            sep_token=str(tokenizer.sep_token),
            pad_token=str(tokenizer.pad_token),
            cls_token=str(tokenizer.cls_token),
            mask_token=str(tokenizer.mask_token),
            model_max_length=tokenizer.model_max_length,
            truncation_side=tokenizer.truncation_side,
            padding_side=tokenizer.padding_side,
        )
    return slow, (
        f"slow variant: transformers {transformers.__version__} BertTokenizerLegacy (pure Python), "
        "compared as a second opinion; training used the fast tokenizer, so its differences "
        "are warnings, not failures"
    )


# ---------------------------------------------------------------- domain gap


def domain_gap(tokenizer, texts) -> dict:
    """UNK rate and subword fertility of the eval texts: how well the vocabulary fits."""
    ids = tokenizer(list(texts), add_special_tokens=False)["input_ids"] if texts else []
    unk = tokenizer.unk_token_id
    tokens = sum(len(x) for x in ids)
    unks = sum(sum(1 for t in x if t == unk) for x in ids) if unk is not None else 0
    words = sum(len(t.split()) for t in texts)
    lengths = [len(x) for x in ids]
    return {
        "unk_rate": unks / tokens if tokens else 0.0,
        "texts_with_unk": sum(1 for x in ids if unk is not None and unk in x),
        "fertility": tokens / words if words else 0.0,
        "median_tokens": float(np.median(lengths)) if lengths else 0.0,
    }


def _unk_share(gap: dict, texts_count: int, unk_token) -> str:
    return (
        f"{gap['unk_rate']:.1%} of eval tokens are {unk_token} "
        f"({gap['texts_with_unk']} of {texts_count} texts)"
    )


def unk_rate_problems(gap: dict, texts_count: int, unk_token, max_unk_rate: float) -> list[str]:
    """Over `max_unk_rate` the model reads mostly UNK: whatever parity says, the
    package cannot do on this data what it was trained to do."""
    if gap["unk_rate"] <= max_unk_rate:
        return []
    return [
        f"{_unk_share(gap, texts_count, unk_token)}, over max_unk_rate {max_unk_rate}: the "
        "vocabulary does not cover this data (another language or script?), so the model "
        "sees little of it; verify on data like what it will serve, or raise the gate "
        f"(--gate max_unk_rate={math.ceil(gap['unk_rate'] * 100) / 100:g}) if this is that data"
    ]


def domain_warnings(
    gap: dict, texts_count: int, unk_token, max_unk_rate: float | None = None
) -> list[str]:
    """A vocabulary that fits the data poorly costs accuracy without any id differing;
    a UNK rate over `max_unk_rate` is a failed check (`unk_rate_problems`), not a warning."""
    warnings = []
    if UNK_RATE_WARNING < gap["unk_rate"] <= (1.0 if max_unk_rate is None else max_unk_rate):
        warnings.append(
            f"HIGH UNK RATE: {_unk_share(gap, texts_count, unk_token)}: the vocabulary does "
            "not cover this data well (another language or script?); expect lower accuracy "
            "than training"
        )
    if gap["fertility"] > FERTILITY_WARNING:
        warnings.append(
            f"high subword fertility: {gap['fertility']:.2f} tokens per word: the vocabulary "
            "fits this data poorly and long texts will be truncated early"
        )
    return warnings


def max_length_warnings(tokenizer, limit: int | None) -> list[str]:
    """A model_max_length past the position embeddings was capped: say so."""
    declared = declared_max_length(tokenizer)
    if limit and declared and declared > limit:
        return [
            f"the tokenizer's model_max_length {declared} exceeds the model's {limit} position "
            f"embeddings; {limit} was taken as the training max_length"
        ]
    return []
