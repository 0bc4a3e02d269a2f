"""Tokenizers inside the graph: strings-in models for `-O tokenizer=graph`.

A strings-in package runs the tokenizer as graph operators (onnxruntime-extensions for
ONNX Runtime, openvino-tokenizers for OpenVINO) so the device needs no Python tokenizer.
Neither converter reproduces transformers exactly out of the box (accents are kept for
an uncased vocabulary, nothing truncates at the model's max_length), so each converter
module corrects what it can, and `check.compare` proves the result on real texts before
anything ships.

This package is build-time code (it imports transformers); running a strings-in model
is edgec_runtime's, whose sessions it uses. Problems are raised as ValueError (the
tokenizer cannot be expressed in the graph) or RuntimeError (a converter misbehaved),
with one-line messages: edgec.strings_in turns them into a fall-back, said.
"""

from __future__ import annotations

import json
from pathlib import Path

ENCODING_OUTPUTS = ("input_ids", "attention_mask", "token_type_ids")
"""The tokenizer graph's int64 outputs, shape [batch, sequence], padded to the batch's
longest row (right side) with the pad id / 0 / 0: what transformers gives with
padding="longest"."""

OFFSETS_OUTPUT = "offset_mapping"
"""int64 [batch, sequence, 2]: character (start, end) of each token; (0, 0) for special
tokens and padding. Only the onnxruntime converter has it (see OFFSETS)."""

OFFSETS = {"onnxruntime": True, "openvino": False}
"""Which converters can output offsets at all. openvino-tokenizers has no offsets output:
its string pieces are addressed in bytes of the normalized text, with no map back."""

TOKENIZER_FILE = "tokenizer.json"
CONVERTER_PACKAGES = {"onnxruntime": "onnxruntime-extensions", "openvino": "openvino-tokenizers"}


def load_hf_tokenizer(tokenizer_dir: str | Path):
    """The folder's fast transformers tokenizer, offline: the reference both converters
    start from and are checked against."""
    import os

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir), local_files_only=True)
    if not getattr(tokenizer, "is_fast", False):
        raise ValueError(f"{tokenizer_dir} has no fast tokenizer (tokenizer.json)")
    return tokenizer


def read_tokenizer_json(tokenizer_dir: str | Path) -> dict:
    path = Path(tokenizer_dir) / TOKENIZER_FILE
    if not path.is_file():
        raise ValueError(f"{tokenizer_dir} has no {TOKENIZER_FILE}: a graph tokenizer needs one")
    return json.loads(path.read_text(encoding="utf-8"))


def check_preprocessing(preprocessing: dict) -> int:
    """The max_length the graph must truncate at; refuse what neither converter does.

    Pairs are refused: the onnxruntime op does not truncate pairs at all, and one text
    per row keeps both converters' inputs the same."""
    if preprocessing.get("text_pair"):
        raise ValueError("a graph tokenizer takes single texts; this model takes text pairs")
    if preprocessing.get("truncation_side", "right") != "right":
        raise ValueError("a graph tokenizer truncates on the right only; this one truncates left")
    if preprocessing.get("padding_side", "right") != "right":
        raise ValueError("a graph tokenizer pads on the right only; this one pads left")
    max_length = int(preprocessing["max_length"])
    if max_length < 3:
        raise ValueError(f"max_length {max_length} leaves no room for [CLS] text [SEP]")
    return max_length


def bert_spec(tokenizer_dir: str | Path) -> dict:
    """What a BertTokenizer op must be told, read from tokenizer.json's normalizer: the
    pipeline transformers really runs (tokenizer_config.json's strip_accents=None means
    "follow lowercase", which onnxruntime-extensions reads as "keep accents")."""
    spec = read_tokenizer_json(tokenizer_dir)
    model = spec.get("model") or {}
    if model.get("type") != "WordPiece":
        raise ValueError(f"not a WordPiece tokenizer ({model.get('type')}): no BertTokenizer op")
    normalizer = spec.get("normalizer") or {}
    if normalizer.get("type") != "BertNormalizer":
        raise ValueError(f"normalizer {normalizer.get('type')} is not BertNormalizer")
    pre = (spec.get("pre_tokenizer") or {}).get("type")
    if pre != "BertPreTokenizer":
        raise ValueError(f"pre-tokenizer {pre} is not BertPreTokenizer")
    lowercase = bool(normalizer.get("lowercase", True))
    strip = normalizer.get("strip_accents")
    if model.get("continuing_subword_prefix", "##") != "##":
        raise ValueError("the WordPiece suffix indicator is not '##'")
    return {
        "do_lower_case": int(lowercase),
        "strip_accents": int(lowercase if strip is None else bool(strip)),
        "tokenize_chinese_chars": int(bool(normalizer.get("handle_chinese_chars", True))),
        "max_input_chars_per_word": int(model.get("max_input_chars_per_word", 100)),
    }


def converter_versions() -> dict:
    """Installed converter versions, for the manifest (a strings-in model needs the same
    custom-op library, or a compatible one, on the device)."""
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in CONVERTER_PACKAGES.values():
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    return out
