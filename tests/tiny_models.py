"""Tiny random-weight classifiers of every supported family, for mechanics only.

They are built from configs and hand-made vocabularies (the hub is unreachable),
so their accuracy means nothing; accuracy claims use the real sentiment teacher.
"""

from __future__ import annotations

from pathlib import Path

WORDS = [
    "a",
    "the",
    "movie",
    "film",
    "is",
    "was",
    "good",
    "bad",
    "great",
    "awful",
    "plot",
    "acting",
    "story",
    "witty",
    "dull",
    "and",
    "or",
    "not",
    "very",
    "it",
    "this",
    "that",
    "of",
    "to",
    "in",
    "with",
    "for",
    "on",
    "an",
    "i",
    "you",
    "we",
    "they",
    "love",
    "hate",
    "fun",
    "boring",
]
LETTERS = list("abcdefghijklmnopqrstuvwxyz0123456789.,;:!?'\"-()")


def _wordpiece_vocab() -> dict[str, int]:
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS, *LETTERS]
    tokens += ["##" + c for c in LETTERS]
    return {t: i for i, t in enumerate(dict.fromkeys(tokens))}


def _byte_level_vocab() -> dict[str, int]:
    from tokenizers.pre_tokenizers import ByteLevel

    tokens = ["<s>", "<pad>", "</s>", "<unk>", "<mask>", *sorted(ByteLevel.alphabet())]
    return {t: i for i, t in enumerate(dict.fromkeys(tokens))}


def _unigram_vocab() -> list[tuple[str, float]]:
    pieces = ["<s>", "<pad>", "</s>", "<unk>"]
    pieces += ["▁" + w for w in WORDS] + ["▁", *LETTERS]
    pieces = list(dict.fromkeys(pieces)) + ["<mask>"]
    return [(p, 0.0 if i < 4 else -float(i) / 10) for i, p in enumerate(pieces)]


def _tokenizer(family: str):
    import transformers as t

    if family in ("bert", "distilbert", "electra"):
        cls = {
            "bert": t.BertTokenizer,
            "distilbert": t.DistilBertTokenizer,
            "electra": t.ElectraTokenizer,
        }
        return cls[family](vocab=_wordpiece_vocab())
    if family == "roberta":
        return t.RobertaTokenizer(vocab=_byte_level_vocab(), merges=[])
    return t.XLMRobertaTokenizer(vocab=_unigram_vocab())


def _config(family: str, vocab_size: int, num_labels: int):
    import transformers as t

    labels = {"id2label": {i: f"class_{i}" for i in range(num_labels)}}
    labels["label2id"] = {v: k for k, v in labels["id2label"].items()}
    if family == "distilbert":
        return t.DistilBertConfig(
            vocab_size=vocab_size,
            dim=32,
            n_layers=2,
            n_heads=2,
            hidden_dim=64,
            max_position_embeddings=128,
            **labels,
        )
    common = dict(
        vocab_size=vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        **labels,
    )
    if family == "bert":
        return t.BertConfig(max_position_embeddings=128, **common)
    if family == "electra":
        return t.ElectraConfig(embedding_size=32, max_position_embeddings=128, **common)
    cls = t.RobertaConfig if family == "roberta" else t.XLMRobertaConfig
    return cls(
        max_position_embeddings=130,
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
        type_vocab_size=1,
        **common,
    )


def make_tiny_classifier(family: str, directory: Path, num_labels: int = 2, seed: int = 0) -> Path:
    import torch
    import transformers as t

    torch.manual_seed(seed)
    tokenizer = _tokenizer(family)
    tokenizer.model_max_length = 128
    config = _config(family, len(tokenizer), num_labels)
    model = t.AutoModelForSequenceClassification.from_config(config)
    directory = Path(directory)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory
