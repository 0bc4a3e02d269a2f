"""Per-token logits into entities, exactly as transformers' token-classification pipeline.

A package's users compare its entities with what `pipeline("token-classification")`
gave them before deployment, so every rule here is the pipeline's (transformers 5.23),
quirks included, and this module imports numpy only: it runs on the device.

The pipeline's rules, in order:

- scores are a float32 softmax of each token's logits; special tokens are dropped;
- `none` and `simple` tag each token by its argmax;
- `first`, `average` and `max` first join tokens into words and tag each word once.
  Whether a token continues the previous word is *not* taken from `word_ids`: with a
  tokenizer whose model has a continuing-subword prefix (WordPiece's `##`) a token is a
  subword when its vocabulary string's length differs from the text span it covers;
  otherwise (BPE, Unigram) when neither its first character nor the one before it is a
  space (' ' only: a tab or newline does not separate). An unknown token starts a word;
- every strategy but `none` then joins neighbouring tokens or words whose tags agree
  (`B-X` always starts a new entity, `I-X` or a bare `X` continues one) and scores the
  entity by the mean of its parts;
- ignored labels (`O`) are filtered only after that grouping, so an `O` between two
  tags still separates them.

Entities carry char offsets into the text and the exact substring, never a decoded
word: decoding is the tokenizer's business and differs between runtimes. The default
strategy is `simple` (the pipeline's own default is `none`).
"""

from __future__ import annotations

import numpy as np

STRATEGIES = ("none", "simple", "first", "average", "max")
WORD_STRATEGIES = ("first", "average", "max")
MISSING_WORD = -1  # word_tags' value for a word truncation dropped


def probabilities(logits: np.ndarray) -> np.ndarray:
    """Softmax over labels in float32, the pipeline's formula, so scores match to the bit."""
    logits = np.asarray(logits, dtype=np.float32)
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def marks_subwords(tokenizer) -> bool:
    """Whether a `tokenizers.Tokenizer` marks word continuations in its tokens (WordPiece's
    `##`): the pipeline then trusts token lengths instead of the space heuristic."""
    return bool(getattr(tokenizer.model, "continuing_subword_prefix", None))


def subword_flags(
    text: str,
    offsets: list[tuple[int, int]],
    tokens: list[str],
    unknown: list[bool],
    *,
    word_aware: bool,
) -> list[bool]:
    """For each token, whether the pipeline counts it as continuing the previous word.

    `tokens` are vocabulary strings (what `convert_ids_to_tokens` gives, not
    `Encoding.tokens`: a Unigram unknown piece shows its raw text there) and `unknown`
    marks the tokens whose id is the unk token's."""
    flags = []
    for token, unk, (start, end) in zip(tokens, unknown, offsets, strict=True):
        if unk:
            flags.append(False)
        elif word_aware:
            flags.append(len(token) != len(text[start:end]))
        else:
            flags.append(start > 0 and " " not in text[start - 1 : start + 1])
    return flags


def encoding_flags(text: str, offsets, encoding, tokenizer, unk_token_id: int | None) -> list[bool]:
    """subword_flags for a `tokenizers.Encoding`, its text and the offsets into that text."""
    tokens = [tokenizer.id_to_token(i) for i in encoding.ids]
    unknown = [unk_token_id is not None and i == unk_token_id for i in encoding.ids]
    return subword_flags(text, offsets, tokens, unknown, word_aware=marks_subwords(tokenizer))


def first_subwords(word_ids: list[int | None], n_words: int) -> np.ndarray:
    """Token index of each word's first subword, MISSING_WORD where truncation dropped it:
    training puts a word's label on its first subword, so that is where it is read back."""
    first = np.full(n_words, MISSING_WORD, dtype=np.int64)
    for index, word in enumerate(word_ids):
        if word is not None and first[word] == MISSING_WORD:
            first[word] = index
    return first


def word_tags(logits: np.ndarray, word_ids: list[int | None], n_words: int) -> np.ndarray:
    """One label id per word, from its first subword (what training labelled);
    MISSING_WORD for words truncation dropped."""
    first = first_subwords(word_ids, n_words)
    tags = np.full(n_words, MISSING_WORD, dtype=np.int64)
    kept = first != MISSING_WORD
    tags[kept] = np.asarray(logits)[first[kept]].argmax(axis=-1)
    return tags


def _bio(label: str) -> tuple[str, str]:
    """(B or I, tag) as the pipeline reads a label: anything without B-/I- continues."""
    if label.startswith(("B-", "I-")):
        return label[0], label[2:]
    return "I", label


def _tokens(scores, offsets, special_mask, subword) -> list[dict]:
    """The non-special tokens with their scores, spans and subword flag."""
    return [
        {"index": i, "scores": scores[i], "start": offsets[i][0], "end": offsets[i][1], "sub": sub}
        for i, sub in enumerate(subword)
        if not special_mask[i]
    ]


def _tagged(scores: np.ndarray, labels: list[str], start: int, end: int) -> dict:
    best = int(scores.argmax())
    return {"label": labels[best], "score": scores[best], "start": start, "end": end}


def _words(tokens: list[dict]) -> list[list[dict]]:
    """Tokens joined into words: a word's first token, then every subword after it."""
    words: list[list[dict]] = []
    for token in tokens:
        if words and token["sub"]:
            words[-1].append(token)
        else:
            words.append([token])
    return words


def _word_scores(word: list[dict], strategy: str) -> np.ndarray:
    """The one score vector a word is tagged by: its first token's, its most confident
    token's (the first of equals), or the mean over its tokens."""
    if strategy == "first":
        return word[0]["scores"]
    if strategy == "max":
        return max(word, key=lambda token: token["scores"].max())["scores"]
    return np.nanmean(np.stack([token["scores"] for token in word]), axis=0)


def _group(parts: list[dict]) -> list[list[dict]]:
    """Neighbours with the same tag in one group; a B- label always opens a new one."""
    groups: list[list[dict]] = []
    for part in parts:
        bi, tag = _bio(part["label"])
        if groups and bi != "B" and tag == _bio(groups[-1][-1]["label"])[1]:
            groups[-1].append(part)
        else:
            groups.append([part])
    return groups


def _entity_of(group: list[dict]) -> dict:
    """A group as one entity: named like the pipeline's entity_group (the first label
    after its first '-'), scored by the mean of its parts."""
    score = np.mean(np.nanmean([part["score"] for part in group]))
    label = group[0]["label"].split("-", 1)[-1]
    return {"label": label, "score": score, "start": group[0]["start"], "end": group[-1]["end"]}


def _tag(tokens: list[dict], labels: list[str], strategy: str) -> list[dict]:
    """Tagged tokens (none, simple) or tagged words (first, average, max)."""
    if strategy in WORD_STRATEGIES:
        return [
            _tagged(_word_scores(word, strategy), labels, word[0]["start"], word[-1]["end"])
            for word in _words(tokens)
        ]
    return [
        {**_tagged(t["scores"], labels, t["start"], t["end"]), "index": t["index"]} for t in tokens
    ]


def entities(
    text: str,
    logits: np.ndarray,
    offsets: list[tuple[int, int]],
    special_mask: list[int],
    subword: list[bool],
    labels: list[str],
    strategy: str = "simple",
    ignore_labels=("O",),
) -> list[dict]:
    """Entities of one unpadded text from its logits [tokens, labels], as the pipeline
    finds them: each a dict of label, score, start, end (chars) and text, plus the
    token index for `none`. `subword` comes from `subword_flags`."""
    if strategy not in STRATEGIES:
        raise ValueError(
            f"unknown aggregation strategy {strategy!r}: one of {', '.join(STRATEGIES)}"
        )
    tokens = _tokens(probabilities(logits), offsets, special_mask, subword)
    parts = _tag(tokens, labels, strategy)
    found = parts if strategy == "none" else [_entity_of(g) for g in _group(parts)]
    return [
        {**e, "score": float(e["score"]), "text": text[e["start"] : e["end"]]}
        for e in found
        if e["label"] not in ignore_labels
    ]


def from_encoding(
    text: str,
    logits: np.ndarray,
    encoding,
    tokenizer,
    labels: list[str],
    strategy: str = "simple",
    *,
    unk_token_id: int | None,
    ignore_labels=("O",),
) -> list[dict]:
    """Entities of `text` from a `tokenizers.Encoding` of it and its unpadded logits.

    `unk_token_id` is transformers' (the manifest's special_tokens): a BPE model often
    names no unk token itself, yet its text can still hold a literal `<unk>`."""
    flags = encoding_flags(text, encoding.offsets, encoding, tokenizer, unk_token_id)
    return entities(
        text,
        logits,
        encoding.offsets,
        encoding.special_tokens_mask,
        flags,
        labels,
        strategy,
        ignore_labels,
    )


def word_offsets(words: list[str], encoding, delimiter: str = " ") -> list[tuple[int, int]]:
    """Token offsets of a pre-split encoding moved into the words joined by `delimiter`:
    `tokenizers` counts offsets from each word's start, the pipeline from the sentence's."""
    starts, position = [], 0
    for word in words:
        starts.append(position)
        position += len(word) + len(delimiter)
    return [
        (start, end) if word is None else (start + starts[word], end + starts[word])
        for (start, end), word in zip(encoding.offsets, encoding.word_ids, strict=True)
    ]


def from_words(
    words: list[str],
    logits: np.ndarray,
    encoding,
    tokenizer,
    labels: list[str],
    strategy: str = "simple",
    *,
    unk_token_id: int | None,
    delimiter: str = " ",
    ignore_labels=("O",),
) -> list[dict]:
    """Entities of pre-split words (`encode(words, is_pretokenized=True)`), as the pipeline
    gives them with `is_split_into_words=True`: offsets into the words joined by `delimiter`."""
    text = delimiter.join(words)
    offsets = word_offsets(words, encoding, delimiter)
    flags = encoding_flags(text, offsets, encoding, tokenizer, unk_token_id)
    return entities(
        text, logits, offsets, encoding.special_tokens_mask, flags, labels, strategy, ignore_labels
    )
