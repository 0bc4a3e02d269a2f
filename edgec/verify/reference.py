"""Reference logits from the PyTorch source model, the yardstick for parity.

The eval set is tokenized by the source (transformers) tokenizer with dynamic padding,
in length-sorted batches: the same preprocessing training used, at a fraction of the
cost of padding every sentence to max_length.
"""

from __future__ import annotations

import numpy as np

from edgec.batching import length_sorted_batches
from edgec.export import reference_inputs, torch_logits


def reference_logits(source, texts, pairs=None, batch_size: int = 32, track=None) -> np.ndarray:
    lengths = [len(t) + (len(pairs[i]) if pairs is not None else 0) for i, t in enumerate(texts)]
    out = np.zeros((len(texts), len(source.labels)), dtype=np.float32)
    batches = list(length_sorted_batches(lengths, batch_size))
    for idx in track(batches, "PyTorch reference") if track else batches:
        chunk_pairs = [pairs[i] for i in idx] if pairs is not None else None
        inputs = reference_inputs(source, [texts[i] for i in idx], chunk_pairs)
        out[idx] = torch_logits(source.model, inputs)
    return out


def calibration_batches(
    source, texts, pairs=None, batch_size: int = 8, limit: int = 256
) -> list[dict]:
    """Tokenized batches of the user's own texts for static quantization."""
    texts = list(texts)[:limit]
    pairs = list(pairs)[:limit] if pairs is not None else None
    return [
        reference_inputs(
            source,
            texts[i : i + batch_size],
            pairs[i : i + batch_size] if pairs is not None else None,
        )
        for i in range(0, len(texts), batch_size)
    ]
