"""The source model: a fine-tuned classifier, tagger or sentence embedder, its
tokenizer and its preprocessing.

Preprocessing (max_length, truncation, casing, special tokens) is treated as part of
the model: it is read here once, written to the manifest, and the runtime never
guesses it again.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgec import iospec
from edgec.errors import BadInput
from edgec.iospec import SUPPORTED_FAMILIES

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
    """Longest sequence the position embeddings allow (edgec.iospec says why)."""
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


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_config(path: Path, trust_remote_code: bool) -> dict:
    if not path.exists():
        raise BadInput(f"model path {path} does not exist: pass a Hugging Face model directory")
    if not (path / "config.json").is_file():
        raise BadInput(
            f"{path} is not a Hugging Face model directory (no config.json): "
            "pass the folder written by save_pretrained()"
        )
    try:
        config = json.loads((path / "config.json").read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise BadInput(
            f"{path / 'config.json'} is not valid JSON ({e}): re-save the model"
        ) from None
    if not isinstance(config, dict):
        kind = "null" if config is None else f"a JSON {type(config).__name__}"
        raise BadInput(
            f"{path / 'config.json'} holds {kind}, not the model's settings (a JSON object): "
            "re-save the model with save_pretrained()"
        )
    _check_id2label(path / "config.json", config)
    if config.get("auto_map") and not trust_remote_code:
        raise BadInput(
            f"{path} runs custom code from its directory (auto_map in config.json): "
            "review that code, then pass --trust-remote-code"
        )
    family = config.get("model_type")
    if family not in SUPPORTED_FAMILIES:
        raise BadInput(
            f"{path} is a {family!r} model; edgec supports {', '.join(SUPPORTED_FAMILIES)}"
        )
    return config


def _check_id2label(file: Path, config: dict) -> None:
    """id2label maps the ids 0..N-1 to names; transformers reads its keys as integers,
    so anything else would surface later as a failure to load the weights."""
    id2label = config.get("id2label")
    if id2label is None:
        return
    example = '{"0": "negative", "1": "positive"}'
    if not isinstance(id2label, dict) or not id2label:
        raise BadInput(
            f"{file}: id2label = {id2label!r} is not a map of ids to names, e.g. {example}"
        )
    for key in id2label:
        try:
            int(str(key).strip())
        except ValueError:
            raise BadInput(
                f"{file}: id2label key {key!r} is not an integer id; id2label maps the ids "
                f"0..N-1 to label names, e.g. {example}: fix config.json id2label"
            ) from None
    ids = sorted(int(str(k).strip()) for k in id2label)
    if ids != list(range(len(ids))):
        raise BadInput(
            f"{file}: id2label has the ids {', '.join(map(str, ids))}; they must be "
            f"0..{len(ids) - 1}, one per output of the head: fix config.json id2label"
        )


def check_head(path: Path, config: dict, task: str) -> None:
    """A labeled task needs distinct label names, and a classifier a classification
    head: refused from config.json alone, before the weights are loaded."""
    if not iospec.task_spec(task).labeled:
        return
    file = path / "config.json"
    id2label = {int(str(k).strip()): v for k, v in (config.get("id2label") or {}).items()}
    num_labels = len(id2label) or config.get("num_labels", 2)
    regression = config.get("problem_type") == "regression"
    if task == iospec.SEQUENCE_CLASSIFICATION and (regression or num_labels == 1):
        why = "problem_type regression" if regression else "num_labels 1"
        raise BadInput(
            f"{path}: a regression head is not a classifier ({why} in config.json); edgec "
            "builds classifiers with two or more labels: fine-tune a classification head"
        )
    first: dict = {}
    for i in sorted(id2label):
        name = id2label[i]
        if name in first:
            raise BadInput(
                f"{file}: id2label names ids {first[name]} and {i} both {name!r}; every label "
                "needs its own name (data files give labels by name): fix config.json id2label"
            )
        first[name] = i


# ---------------------------------------------------------------- tasks


def sentence_transformer_modules(path: Path) -> list[dict] | None:
    """modules.json of a sentence-transformers folder, or None when there is none."""
    file = path / "modules.json"
    if not file.is_file():
        return None
    try:
        modules = json.loads(file.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise BadInput(f"{file} is not valid JSON ({e}): re-save the model") from None
    if not isinstance(modules, list) or not all(isinstance(m, dict) for m in modules):
        raise BadInput(f"{file} is not a list of modules: re-save it with sentence-transformers")
    return modules


def _module_kind(module: dict) -> str:
    return str(module.get("type", "")).rsplit(".", 1)[-1]


def detect_task(path: Path, config: dict) -> str | None:
    """The task a model folder was fine-tuned for: a sentence-transformers folder with a
    Pooling module embeds; otherwise config.json's architecture says."""
    modules = sentence_transformer_modules(path) or []
    if any(_module_kind(m) == "Pooling" for m in modules):
        return iospec.SENTENCE_EMBEDDING
    architectures = config.get("architectures") or []
    for spec in iospec.TASKS.values():
        if spec.architecture and any(a.endswith(spec.architecture) for a in architectures):
            return spec.name
    return None


def resolve_task(path: Path, config: dict, requested: str | None) -> str:
    """`--task` when given (it must be one edgec supports), else the detected task."""
    if requested is not None:
        if requested not in iospec.TASKS:
            raise BadInput(
                f"--task {requested!r} is not a task edgec builds: choose one of "
                f"{', '.join(iospec.SUPPORTED_TASKS)}"
            )
        return requested
    task = detect_task(path, config)
    if task is None:
        architectures = ", ".join(config.get("architectures") or []) or "base model"
        raise BadInput(
            f"{path} is a {architectures} with no task edgec builds (a *ForSequenceClassification "
            "or *ForTokenClassification head, or a sentence-transformers modules.json with "
            f"Pooling): fine-tune it first, or pass --task ({', '.join(iospec.SUPPORTED_TASKS)})"
        )
    return task


def transformer_dir(path: Path, modules: list[dict]) -> Path:
    """Where the Transformer module's weights and tokenizer are: the folder itself in
    what sentence-transformers saves today, `0_Transformer/` in older saves."""
    inner = path / str(modules[0].get("path", ""))
    if path.resolve() not in (inner.resolve(), *inner.resolve().parents):
        raise BadInput(f"{path}/modules.json points outside the model folder: re-save it")
    return inner


def embedding_facts(path: Path) -> tuple[dict, int | None]:
    """Pooling mode, normalization and dimension from a sentence-transformers folder,
    and its max_seq_length: the graph pools exactly as `encode` does."""
    modules = sentence_transformer_modules(path)
    if modules is None:
        raise BadInput(
            f"{path} has no modules.json: a sentence-embedding model is the folder "
            "sentence-transformers saves (Transformer, Pooling, optionally Normalize)"
        )
    kinds = [_module_kind(m) for m in modules]
    unsupported = [k for k in kinds if k not in ("Transformer", "Pooling", "Normalize")]
    if unsupported or kinds[:2] != ["Transformer", "Pooling"] or kinds.count("Pooling") != 1:
        raise BadInput(
            f"{path}/modules.json chains {' -> '.join(kinds)}; edgec puts Transformer -> "
            "Pooling [-> Normalize] into the graph: remove or fold the other modules"
        )
    pooling_file = path / modules[1].get("path", "") / "config.json"
    try:
        pooling = json.loads(pooling_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise BadInput(f"{pooling_file} is unreadable ({e}): re-save the model") from None
    modes = [m for m, flag in iospec.POOLING_MODES.items() if pooling.get(flag)]
    others = [k for k, v in pooling.items() if k.startswith("pooling_mode") and v]
    if len(modes) != 1 or len(others) != 1:
        raise BadInput(
            f"{pooling_file} pools with {', '.join(others) or 'nothing'}; edgec supports "
            f"exactly one of {', '.join(iospec.POOLING_MODES.values())}"
        )
    st_config = transformer_dir(path, modules) / "sentence_bert_config.json"
    max_seq = None
    if st_config.is_file():
        try:
            max_seq = json.loads(st_config.read_text(encoding="utf-8")).get("max_seq_length")
        except ValueError:
            raise BadInput(f"{st_config} is not valid JSON: re-save the model") from None
    facts = {
        "pooling": modes[0],
        "normalize": "Normalize" in kinds,
        "dimension": pooling.get("word_embedding_dimension"),
    }
    return facts, (int(max_seq) if max_seq else None)


def tagging_facts(labels: list[str], path: Path) -> dict:
    """A tagger's labels must be IOB2 (O, B-TYPE, I-TYPE): entity grouping and
    seqeval's strict matching read that scheme."""
    odd = [t for t in labels if t != "O" and not (t[:2] in ("B-", "I-") and len(t) > 2)]
    if odd:
        raise BadInput(
            f"{path}: the tags {', '.join(odd[:5])} are not IOB2 (O, B-TYPE, I-TYPE); "
            "edgec groups and scores entities in IOB2: rename id2label in config.json"
        )
    types = sorted({t[2:] for t in labels if t != "O"})
    return {"scheme": iospec.TAGGING_SCHEME, "entity_types": types}


def model_folder(path: str | Path) -> Path:
    """Where config.json and the weights are: the folder itself, or a
    sentence-transformers folder's Transformer module (0_Transformer/ in old saves)."""
    root = Path(path)
    modules = sentence_transformer_modules(root) if root.is_dir() else None
    if modules and _module_kind(modules[0]) == "Transformer":
        return transformer_dir(root, modules)
    return root


def peek_task(path: str | Path, requested: str | None, trust_remote_code: bool = False) -> str:
    """The model's task from its files alone (no weights loaded): a build refuses what
    it cannot do for that task before any work."""
    root = Path(path)
    inner = model_folder(root)
    config = read_config(inner, trust_remote_code)
    task = resolve_task(root, config, requested)
    check_head(inner, config, task)
    return task


def peek_label2id(path: str | Path, task: str) -> dict[str, int] | None:
    """The labels' ids from config.json alone, so data files are checked before the
    weights load; None when config.json names no labels (the model's defaults then)."""
    if not iospec.task_spec(task).labeled:
        return {}
    config = json.loads((Path(path) / "config.json").read_text(encoding="utf-8"))
    id2label = config.get("id2label")
    if not isinstance(id2label, dict) or not id2label:
        return None
    label2id = {str(name): int(str(i).strip()) for i, name in id2label.items()}
    if task == iospec.TOKEN_CLASSIFICATION:  # tags that are not IOB2: said before the data
        tagging_facts(sorted(label2id, key=label2id.get), Path(path))
    return label2id


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
