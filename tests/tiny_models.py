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


NER_LABELS = ("O", "B-PER", "I-PER", "B-LOC", "I-LOC")
CLASSIFIER_SCALE = 40.0  # random heads give near-uniform scores; this makes tags confident


def make_tiny_token_classifier(
    family: str, directory: Path, labels=NER_LABELS, seed: int = 0
) -> Path:
    """A random `*ForTokenClassification` with `labels` as id2label, and its tokenizer.

    The classifier head is scaled up so tokens get confident, varied tags: entities of
    every label appear, and no argmax hangs on a near-tie."""
    import torch
    import transformers as t

    torch.manual_seed(seed)
    tokenizer = _tokenizer(family)
    tokenizer.model_max_length = 128
    config = _config(family, len(tokenizer), len(labels))
    config.id2label = dict(enumerate(labels))
    config.label2id = {label: i for i, label in enumerate(labels)}
    model = t.AutoModelForTokenClassification.from_config(config)
    with torch.no_grad():
        model.classifier.weight.mul_(CLASSIFIER_SCALE)
    directory = Path(directory)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


POOLING_MODES = ("mean", "cls", "max")


def _write_json(path: Path, value) -> None:
    import json

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value, indent=2) + "\n", encoding="utf-8")


def _sentence_modules(normalize: bool) -> list[dict]:
    """modules.json in the classic layout hub models ship (sentence_transformers.models.*)."""
    modules = [("", "Transformer"), ("1_Pooling", "Pooling")]
    if normalize:
        modules.append(("2_Normalize", "Normalize"))
    return [
        {"idx": i, "name": str(i), "path": folder, "type": f"sentence_transformers.models.{kind}"}
        for i, (folder, kind) in enumerate(modules)
    ]


def _pooling_config(pooling: str, dimension: int) -> dict:
    if pooling not in POOLING_MODES:
        raise ValueError(f"pooling must be one of {POOLING_MODES}, not {pooling!r}")
    return {
        "word_embedding_dimension": dimension,
        "pooling_mode_cls_token": pooling == "cls",
        "pooling_mode_mean_tokens": pooling == "mean",
        "pooling_mode_max_tokens": pooling == "max",
        "pooling_mode_mean_sqrt_len_tokens": False,
        "pooling_mode_weightedmean_tokens": False,
        "pooling_mode_lasttoken": False,
        "include_prompt": True,
    }


def make_tiny_sentence_embedder(
    directory: Path, pooling: str = "mean", normalize: bool = True, seed: int = 0
) -> Path:
    """A complete sentence-transformers folder around a random tiny BertModel: weights and
    tokenizer at the root, then the Pooling (and optional Normalize) modules, written by
    hand in the layout hub models use rather than by whatever this version would save."""
    import torch
    import transformers as t

    torch.manual_seed(seed)
    directory = Path(directory)
    tokenizer = _tokenizer("bert")
    tokenizer.model_max_length = 128
    config = _config("bert", len(tokenizer), 2)
    t.BertModel(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    _write_json(directory / "modules.json", _sentence_modules(normalize))
    _write_json(
        directory / "1_Pooling" / "config.json", _pooling_config(pooling, config.hidden_size)
    )
    if normalize:
        (directory / "2_Normalize").mkdir(exist_ok=True)
    _write_json(
        directory / "config_sentence_transformers.json",
        {"__version__": {"sentence_transformers": "2.7.0", "transformers": t.__version__}},
    )
    _write_json(
        directory / "sentence_bert_config.json", {"max_seq_length": 128, "do_lower_case": False}
    )
    return directory
