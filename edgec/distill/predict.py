"""A model's outputs for raw texts: logits per text (classifiers), logits per word
(taggers), a pooled vector per text (embedders); how the teacher labels the training
data and how both models are scored on the same texts.

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


def predict_word_logits(model, tokenizer, max_length, sentences, batch_size=64, device="cpu"):
    """Per sentence of pre-split words, each word's logits from its first subword (the
    position a tagger is trained and read at); a word truncation cut off gets a row of
    NaN, so it is never mistaken for a prediction."""
    import torch

    model.eval()
    sentences = [list(words) for words in sentences]
    out = [np.full((len(w), model.config.num_labels), np.nan, np.float32) for w in sentences]
    lengths = [sum(len(w) + 1 for w in words) for words in sentences]
    with torch.no_grad():
        for idx in length_sorted_batches(lengths, batch_size):
            encoded = tokenizer(
                [sentences[i] for i in idx],
                is_split_into_words=True,
                truncation=True,
                max_length=max_length,
                padding="longest",
                return_tensors="pt",
            )
            inputs = {k: v.to(device) for k, v in model_inputs(model, encoded).items()}
            logits = model(**inputs).logits.float().cpu().numpy()
            for row, i in enumerate(idx):
                for position, word in first_subwords(encoded.word_ids(row)):
                    out[i][word] = logits[row, position]
    return out


def first_subwords(word_ids) -> list[tuple[int, int]]:
    """(position, word) of each word's first subword, in order: where a word's tag is
    learnt and read (examples/ner aligns its labels the same way)."""
    seen, out = set(), []
    for position, word in enumerate(word_ids):
        if word is not None and word not in seen:
            seen.add(word)
            out.append((position, word))
    return out


def predict_embeddings(model, tokenizer, max_length, texts, facts, batch_size=64, device="cpu"):
    """Sentence vectors for raw texts: the encoder, then the pooling (and normalization)
    `facts` declare (edgec.heads.pool, what the package's graph computes)."""
    import torch

    from edgec.heads import pool

    model.eval()
    lengths = [len(t) for t in texts]
    out = None
    with torch.no_grad():
        for idx in length_sorted_batches(lengths, batch_size):
            encoded = encode(tokenizer, [texts[i] for i in idx], None, max_length)
            inputs = {k: v.to(device) for k, v in model_inputs(model, encoded).items()}
            tokens = model(**inputs).last_hidden_state
            vectors = pool(tokens, inputs["attention_mask"], facts).float().cpu().numpy()
            if out is None:
                out = np.zeros((len(texts), vectors.shape[1]), dtype=np.float32)
            out[idx] = vectors
    return out if out is not None else np.zeros((0, 0), dtype=np.float32)
