"""Token-label alignment: whether the runtime tokenizer puts every word on the tokens
training labelled.

A token classifier is trained on word labels moved onto subwords (the first subword
of a word gets its label, the others -100) and read back the same way. A runtime
tokenizer that splits words differently (another pre-tokenizer, a casing change that
turns a word into `[UNK]`, offsets that drift) still produces valid ids, so the model
answers, but its tags land on the wrong words or spans: equal ids elsewhere do not
prove this, so the alignment itself is compared, sentence by sentence.

The runtime meets a sentence two ways, both checked against transformers: as its
words joined by one space (entities are char spans of that text, so offsets count
too), and as the pre-split words (`is_pretokenized`). A round trip of word labels
through training's alignment and the runtime's read-back shows what a mismatch costs.
"""

from __future__ import annotations

import numpy as np

from edgec_runtime.entities import MISSING_WORD, first_subwords

IGNORED_LABEL = -100  # what training puts on subwords after the first and on specials
EXAMPLES_KEPT = 10
DELIMITER = " "  # how the runtime joins pre-split words into a text
CHECKS = ("joined word_ids", "joined offsets", "pre-split word_ids", "round trip")


def _unpadded(tokenizer):
    """A copy of the runtime tokenizer without padding: batching all sentences must not
    add pad tokens to compare, and the caller's tokenizer stays as it was."""
    from tokenizers import Tokenizer

    copy = Tokenizer.from_str(tokenizer.to_str())
    copy.no_padding()
    return copy


def training_labels(word_labels: list[int], word_ids: list[int | None]) -> list[int]:
    """Word labels moved onto tokens as training does: a word's first subword gets its
    label; later subwords and special tokens get IGNORED_LABEL."""
    labels, previous = [], None
    for word in word_ids:
        first = word is not None and word != previous
        labels.append(word_labels[word] if first else IGNORED_LABEL)
        previous = word
    return labels


def read_back(token_labels: list[int], word_ids: list[int | None], n_words: int) -> list[int]:
    """Each word's label read from its first subword, as the runtime reads its tags;
    MISSING_WORD where the word has no token or the token lies past `token_labels`."""
    return [
        token_labels[i] if 0 <= i < len(token_labels) else MISSING_WORD
        for i in first_subwords(word_ids, n_words).tolist()
    ]


def round_trip_problem(
    training_word_ids: list[int | None], runtime_word_ids: list[int | None], n_words: int
) -> bool:
    """Whether a word that survived training's truncation reads back another word's label:
    every word is labelled with its own index, so any shift or split shows."""
    word_labels = list(range(n_words))
    back = read_back(training_labels(word_labels, training_word_ids), runtime_word_ids, n_words)
    kept = first_subwords(training_word_ids, n_words) != MISSING_WORD
    return bool(np.any(np.asarray(back)[kept] != np.asarray(word_labels)[kept]))


def _offsets(values) -> list[tuple[int, int]]:
    return [(int(start), int(end)) for start, end in values]


def _mismatch(check: str, text: str, expected, runtime) -> dict:
    return {"check": check, "text": text, "expected": list(expected), "runtime": list(runtime)}


def sentence_mismatches(words: list[str], hf_joined, rt_joined, hf_split, rt_split) -> list[dict]:
    """Every way one sentence's runtime alignment differs from transformers'. The hf_*
    are (word_ids, offsets) of transformers' encodings, the rt_* runtime Encodings."""
    text = DELIMITER.join(words)
    found = []
    if rt_joined.word_ids != hf_joined[0]:
        found.append(_mismatch("joined word_ids", text, hf_joined[0], rt_joined.word_ids))
    if rt_joined.offsets != hf_joined[1]:
        found.append(_mismatch("joined offsets", text, hf_joined[1], rt_joined.offsets))
    if rt_split.word_ids != hf_split[0]:
        found.append(_mismatch("pre-split word_ids", text, hf_split[0], rt_split.word_ids))
    if round_trip_problem(hf_split[0], rt_split.word_ids, len(words)):
        found.append(_mismatch("round trip", text, hf_split[0], rt_split.word_ids))
    return found


def _hf_alignments(hf_tokenizer, inputs, max_length: int, **kwargs) -> list[tuple]:
    """(word_ids, offsets) of each input, as transformers tokenizes for training."""
    batch = hf_tokenizer(
        inputs, return_offsets_mapping=True, truncation=True, max_length=max_length, **kwargs
    )
    return [(batch.word_ids(i), _offsets(batch["offset_mapping"][i])) for i in range(len(inputs))]


def _problems(mismatches: list[dict], n: int) -> list[str]:
    """One line per kind of mismatch, with how many sentences show it and the first."""
    problems = []
    for check in CHECKS:
        hits = [m for m in mismatches if m["check"] == check]
        if hits:
            problems.append(
                f"{check}: {len(hits)} of {n} sentences align words to tokens differently in "
                f"the runtime tokenizer than in training (first: {hits[0]['text'][:80]!r})"
            )
    return problems


def _truncated_words(sentences: list[list[str]], hf_split: list[tuple]) -> int:
    """Words of which training's truncation kept no token."""
    return sum(
        int(np.sum(first_subwords(word_ids, len(words)) == MISSING_WORD))
        for words, (word_ids, _) in zip(sentences, hf_split, strict=True)
    )


def alignment_report(
    hf_tokenizer, runtime_tokenizer, sentences: list[list[str]], max_length: int
) -> dict:
    """Compare, for every sentence (a list of words), the runtime tokenizer's word
    alignment with transformers': on the joined text (word_ids and char offsets), on
    the pre-split words (word_ids), and by a round trip of word labels. Any mismatch is
    a problem; truncated_words counts the words training's truncation dropped. Empty
    sentences hold no word to align and are left out."""
    sentences = [list(words) for words in sentences if words]
    texts = [DELIMITER.join(words) for words in sentences]
    runtime = _unpadded(runtime_tokenizer)
    rt_joined = runtime.encode_batch(texts)
    rt_split = runtime.encode_batch(sentences, is_pretokenized=True)
    hf_joined = _hf_alignments(hf_tokenizer, texts, max_length)
    hf_split = _hf_alignments(hf_tokenizer, sentences, max_length, is_split_into_words=True)
    per_sentence = [
        sentence_mismatches(*row)
        for row in zip(sentences, hf_joined, rt_joined, hf_split, rt_split, strict=True)
    ]
    mismatches = [m for found in per_sentence for m in found]
    return {
        "sentences": len(sentences),
        "mismatched": sum(1 for found in per_sentence if found),
        "examples": mismatches[:EXAMPLES_KEPT],
        "truncated_words": _truncated_words(sentences, hf_split),
        "problems": _problems(mismatches, len(sentences)),
    }
