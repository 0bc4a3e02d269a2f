"""Logits of a classifier for raw texts: how the teacher labels the training data and
how both models are scored on the same texts.

Each model is fed its own tokenization of the raw text, so a student with a different
tokenizer is judged exactly as it will be deployed.
"""

from __future__ import annotations

import numpy as np

from edgec_runtime.batching import length_sorted_batches


def encode(tokenizer, texts, pairs, max_length):
    """One padded batch of PyTorch tensors."""
    return tokenizer(
        list(texts),
        list(pairs) if pairs is not None else None,
        truncation=True,
        max_length=max_length,
        padding="longest",
        return_tensors="pt",
    )


def model_inputs(model, encoded) -> dict:
    """Only the inputs the model's forward takes (DistilBERT has no token_type_ids)."""
    import inspect

    accepted = inspect.signature(model.forward).parameters
    return {k: v for k, v in encoded.items() if k in accepted}


def predict_logits(model, tokenizer, max_length, texts, pairs=None, batch_size=64, device="cpu"):
    """Logits for raw texts, length-sorted batches with dynamic padding, eval mode."""
    import torch

    model.eval()
    lengths = [len(t) + (len(pairs[i]) if pairs is not None else 0) for i, t in enumerate(texts)]
    out = np.zeros((len(texts), model.config.num_labels), dtype=np.float32)
    with torch.no_grad():
        for idx in length_sorted_batches(lengths, batch_size):
            encoded = encode(
                tokenizer,
                [texts[i] for i in idx],
                [pairs[i] for i in idx] if pairs is not None else None,
                max_length,
            )
            inputs = {k: v.to(device) for k, v in model_inputs(model, encoded).items()}
            out[idx] = model(**inputs).logits.float().cpu().numpy()
    return out
