"""The device's tokenizer: Hugging Face `tokenizers` (Rust, no transformers), set up
from the manifest's preprocessing record and nothing else."""

from __future__ import annotations

from pathlib import Path

TOKENIZER_FILE = "tokenizer.json"


def runtime_tokenizer(path: Path, preprocessing: dict):
    """The `tokenizers` tokenizer configured exactly as the manifest says."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(path))
    tokenizer.no_padding()
    tokenizer.no_truncation()
    tokenizer.enable_truncation(
        max_length=preprocessing["max_length"],
        strategy=preprocessing.get("truncation", "longest_first"),
        direction=preprocessing.get("truncation_side", "right"),
    )
    tokenizer.enable_padding(
        direction=preprocessing.get("padding_side", "right"),
        pad_id=preprocessing["pad_token_id"],
        pad_type_id=preprocessing.get("pad_token_type_id", 0),
        pad_token=preprocessing["pad_token"],
    )
    return tokenizer
