"""Teacher-labelled augmentation: more text for the KD term, made from the training set.

A small student needs more text than a few thousand labelled examples to match its
teacher (benchmarks/NOTES.md, section 9: 6000 extra in-domain sentences gave about
two points); most users have no pile of unlabeled text to pass as --unlabeled. So,
as in TinyBERT's data augmentation, each training text is copied with some of its
words swapped for neighbours in the teacher's own word-embedding space. The teacher
labels every copy, so a swap that changes the meaning ("good" -> "bad") is not label
noise: it is a new example with the teacher's answer for it. Copies carry no gold
label and feed the KD term only.

Only whole words the tokenizer keeps as one vocabulary entry are swapped, and only
for entries of the same kind (alphabetic, not a special token or a continuation
piece); everything else in the text (punctuation, spacing, numbers) stays as it was.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Sequence

NEIGHBOURS = 15  # candidates per word (TinyBERT's K)
WORD = re.compile(r"[^\W\d_]+")


def _swappable(token: str) -> bool:
    return token.isalpha() and not token.startswith("##")


def neighbour_table(embeddings, vocab: dict[str, int], words: set[str], k: int = NEIGHBOURS):
    """{word: its k nearest vocabulary words by cosine of the teacher's input
    embeddings}, for the `words` that are single swappable vocabulary entries."""
    import torch
    from torch.nn.functional import normalize

    asked = [w for w in sorted(words) if w in vocab and _swappable(w)]
    if not asked:
        return {}
    pool = sorted((i, t) for t, i in vocab.items() if _swappable(t) and i < len(embeddings))
    pool_ids = torch.tensor([i for i, _ in pool])
    out = {}
    with torch.no_grad():
        table = normalize(embeddings[pool_ids].float(), dim=-1)
        for start in range(0, len(asked), 1024):  # bounded memory: 1024 rows of scores
            chunk = asked[start : start + 1024]
            queries = normalize(embeddings[torch.tensor([vocab[w] for w in chunk])].float(), dim=-1)
            nearest = (queries @ table.T).topk(min(k + 1, len(pool)), dim=-1).indices.tolist()
            for word, row in zip(chunk, nearest, strict=True):
                out[word] = [pool[j][1] for j in row if pool[j][1] != word][:k]
    return out


def augment_texts(
    texts: Sequence[str],
    copies: int,
    rate: float,
    seed: int,
    neighbours: Callable[[set[str]], dict[str, list[str]]],
    normalize: Callable[[str], str] = str.lower,
) -> list[tuple[int, str]]:
    """(index of the source text, new text) for up to `copies` copies of each text, in
    each of which every swappable word is replaced with probability `rate` by one of
    its neighbours. `normalize` maps a word to its vocabulary spelling (lower case for
    an uncased tokenizer). Copies equal to their source or to another copy are dropped,
    so a text with no swappable word yields none. The same seed gives the same copies."""
    words = {normalize(m.group()) for text in texts for m in WORD.finditer(text)}
    table = neighbours(words)
    rng = random.Random(seed)

    def swap(match):
        near = table.get(normalize(match.group()))
        if near and rng.random() < rate:
            return rng.choice(near)
        return match.group()

    out = []
    for index, text in enumerate(texts):
        seen = {text}
        for _ in range(copies):
            new = WORD.sub(swap, text)
            if new not in seen:
                seen.add(new)
                out.append((index, new))
    return out


def teacher_neighbours(tokenizer, model) -> Callable[[set[str]], dict[str, list[str]]]:
    """`neighbours` for `augment_texts` from a teacher's tokenizer and input embeddings."""
    embeddings = model.get_input_embeddings().weight.detach()
    vocab = tokenizer.get_vocab()
    return lambda words: neighbour_table(embeddings, vocab, words)


def vocabulary_spelling(tokenizer) -> Callable[[str], str]:
    """How a word is spelled in the vocabulary: through the tokenizer's own normalizer
    (an uncased one lower-cases and strips accents), as written without one."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    normalizer = getattr(backend, "normalizer", None)
    return normalizer.normalize_str if normalizer is not None else str
