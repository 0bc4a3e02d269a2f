"""The source model: a fine-tuned classifier, tagger or sentence embedder, its
tokenizer and its preprocessing.

Preprocessing (max_length, truncation, casing, special tokens) is treated as part of
the model: it is read here once, written to the manifest, and the runtime never
guesses it again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgec.model_files import (
    check_head,
    embedding_facts,
    model_folder,
    read_config,
    resolve_task,
    tagging_facts,
)
from edgec_runtime import iospec
from edgec_runtime.errors import BadInput
from edgec_runtime.manifest import sha256_of

WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
# Without one of these transformers invents a tiny vocabulary and every text becomes
# [UNK]: a folder lacking them has no tokenizer at all.
TOKENIZER_FILES = (
    "tokenizer.json",
    "vocab.txt",
    "vocab.json",
    "sentencepiece.bpe.model",
    "spiece.model",
    "tokenizer.model",
)


@dataclass
class SourceModel:
    path: Path
    model: Any
    tokenizer: Any
    config: Any
    weights_sha256: str
    max_length: int
    input_names: list[str]
    task: str = iospec.SEQUENCE_CLASSIFICATION
    # what the runtime needs to post-process, as the manifest's `task` section records
    # it: the tagging scheme for NER; pooling, normalization and dimension for embeddings
    task_facts: dict = field(default_factory=dict)
    # inputs digest -> outputs, when set: int8-auto verifies many trials on one
    # validation set, and the PyTorch reference of the same inputs is computed once
    outputs_memo: dict | None = None

    @property
    def id2label(self) -> dict[int, str]:
        if not iospec.task_spec(self.task).labeled:
            return {}
        return {int(k): v for k, v in self.config.id2label.items()}

    def task_record(self) -> dict:
        """The manifest's `task` section."""
        return {"name": self.task, **self.task_facts}

    @property
    def label2id(self) -> dict[str, int]:
        return {v: k for k, v in self.id2label.items()}

    @property
    def labels(self) -> list[str]:
        return [self.id2label[i] for i in range(len(self.id2label))]

    @property
    def model_type(self) -> str:
        return self.config.model_type

    @property
    def architecture(self) -> str:
        return type(self.model).__name__

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.model.parameters())

    def shape_facts(self) -> dict:
        """Encoder geometry, for graph optimizers and quantizers that cannot infer it."""
        c = self.config
        heads = getattr(c, "num_attention_heads", None) or c.n_heads
        hidden = getattr(c, "hidden_size", None) or c.dim
        inner = getattr(c, "intermediate_size", None) or c.hidden_dim
        return {
            "num_heads": heads,
            "hidden_size": hidden,
            "intermediate_size": inner,
            "model_type": c.model_type,
        }

    def preprocessing(self, text_pair: bool = False) -> dict:
        return preprocessing_of(self.tokenizer, self.max_length, self.input_names, text_pair)

    def describe(self) -> dict:
        return {
            "path": str(self.path),
            "sha256": self.weights_sha256,
            "architecture": self.architecture,
            "model_type": self.model_type,
            "task": self.task,
            "labels": self.labels,
            "num_parameters": self.num_parameters(),
            "num_layers": num_layers(self.config),
            "hidden_size": self.shape_facts()["hidden_size"],
        }


def num_layers(config) -> int:
    return getattr(config, "num_hidden_layers", None) or config.n_layers


def position_limit(config) -> int:
    """Longest sequence the position embeddings allow (edgec_runtime.iospec says why)."""
    return iospec.position_limit(
        config.model_type, config.max_position_embeddings, config.pad_token_id
    )


def preprocessing_of(tokenizer, max_length: int, input_names: list[str], text_pair: bool) -> dict:
    special = {
        name: {"token": getattr(tokenizer, name), "id": getattr(tokenizer, f"{name}_id")}
        for name in ("cls_token", "sep_token", "pad_token", "unk_token", "bos_token", "eos_token")
        if getattr(tokenizer, name, None) is not None
    }
    init = tokenizer.init_kwargs
    return {
        "max_length": max_length,
        "truncation": "longest_first",
        "truncation_side": tokenizer.truncation_side,
        "padding": "longest",
        "padding_side": tokenizer.padding_side,
        "pad_token": tokenizer.pad_token,
        "pad_token_id": tokenizer.pad_token_id,
        "pad_token_type_id": tokenizer.pad_token_type_id,
        "do_lower_case": init.get("do_lower_case"),
        "strip_accents": init.get("strip_accents"),
        "text_pair": text_pair,
        "special_tokens": special,
        "input_names": input_names,
    }


def weights_file(path: Path) -> Path:
    for name in WEIGHT_FILES:
        if (path / name).is_file():
            return path / name
    raise BadInput(
        f"{path} has no weights ({' or '.join(WEIGHT_FILES)}): "
        "save the fine-tuned model with save_pretrained()"
    )


MODEL_CLASSES = {
    iospec.SEQUENCE_CLASSIFICATION: "AutoModelForSequenceClassification",
    iospec.TOKEN_CLASSIFICATION: "AutoModelForTokenClassification",
    iospec.SENTENCE_EMBEDDING: "AutoModel",
}


def load_source_model(
    path: str | Path,
    *,
    trust_remote_code: bool = False,
    max_length: int | None = None,
    task: str | None = None,
) -> SourceModel:
    """Load a fine-tuned model of a supported task and its tokenizer, offline, safely.

    Safetensors are preferred; `.bin` weights go through transformers' loader, which
    uses `torch.load(weights_only=True)`, so a pickle cannot run code.
    """
    import os

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    import transformers
    from transformers import AutoTokenizer

    root = Path(path)
    path = model_folder(root)
    config = read_config(path, trust_remote_code)
    task = resolve_task(root, config, task)
    check_head(path, config, task)
    task_facts, declared_length = {}, None
    if task == iospec.SENTENCE_EMBEDDING:
        task_facts, declared_length = embedding_facts(root)
    weights = weights_file(path)
    model_class = getattr(transformers, MODEL_CLASSES[task])
    try:
        model, info = model_class.from_pretrained(
            path,
            trust_remote_code=trust_remote_code,
            output_loading_info=True,
            attn_implementation="eager",
            use_safetensors=weights.suffix == ".safetensors",
        )
    except Exception as e:  # transformers raises many types for unreadable weights
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise BadInput(
            f"could not load the weights in {weights}: {first}; re-save the model"
        ) from None
    if info.get("missing_keys"):
        missing = ", ".join(sorted(info["missing_keys"])[:3])
        raise BadInput(
            f"{path} lacks trained weights for {missing}: it is not a fine-tuned "
            f"{task} model (fine-tune it, then save_pretrained)"
        )
    if not any((path / name).is_file() for name in TOKENIZER_FILES):
        raise BadInput(
            f"{path} has no tokenizer ({', '.join(TOKENIZER_FILES[:2])}, ...): save the "
            "training tokenizer next to the weights (tokenizer.save_pretrained)"
        )
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, use_fast=True)
    except Exception as e:
        raise BadInput(
            f"could not load the tokenizer in {path}: {str(e).splitlines()[0]}"
        ) from None
    if not tokenizer.is_fast:
        raise BadInput(
            f"{path} has no fast tokenizer (tokenizer.json): save it with a fast tokenizer"
        )
    rows = model.get_input_embeddings().num_embeddings
    if len(tokenizer) > rows:
        raise BadInput(
            f"{path}: the tokenizer has {len(tokenizer)} tokens but the model has {rows} "
            "embedding rows, so some ids have no embedding: this tokenizer is not the "
            "model's; save the training tokenizer (or resize_token_embeddings and fine-tune)"
        )
    model.eval()
    if declared_length:  # sentence-transformers truncates at max_seq_length, not the
        tokenizer.model_max_length = declared_length  # tokenizer's own limit
    limit = position_limit(model.config)
    if max_length is not None and not 1 <= max_length <= limit:
        raise BadInput(
            f"--max-length {max_length} is outside 1..{limit}, the model's position limit"
        )
    declared = min(declared_length, limit) if declared_length else tokenizer.model_max_length
    chosen = iospec.derive_max_length(declared, limit, max_length)
    input_names = iospec.input_names(model.config.model_type, tokenizer.model_input_names)
    source = SourceModel(
        path=path,
        model=model,
        tokenizer=tokenizer,
        config=model.config,
        weights_sha256=sha256_of(weights),
        max_length=chosen,
        input_names=input_names,
        task=task,
        task_facts=task_facts,
    )
    if task == iospec.TOKEN_CLASSIFICATION:
        source.task_facts = tagging_facts(source.labels, path)
    if task == iospec.SENTENCE_EMBEDDING and not task_facts.get("dimension"):
        task_facts["dimension"] = source.shape_facts()["hidden_size"]
    return source
