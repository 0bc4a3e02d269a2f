"""Student construction: the two recipes `--student` accepts, for every task.

* `layers:N` is the DistilBERT recipe: a copy of the teacher that keeps N of its layers,
  spread evenly down from the last for a classifier (6 -> 3 keeps 1, 3, 5) and up
  from the first for a tagger or an embedder (0, 2, 4), with the teacher's
  embeddings, head (a classifier's or tagger's) and tokenizer. Starting from the
  teacher's own weights is what makes a short distillation enough. `layers:0,2,4`
  names the kept layers (0-based, in order) instead, for a choice the spread does not
  make (`layers:0,` names one).
* `PATH` is a pretrained base (DistilBERT, MiniLM, ...) that gets a new classification
  or token-classification head with the teacher's labels, or, for an embedder, stays a
  bare encoder pooled as the teacher pools (so its width must be the teacher's
  embedding dimension). It keeps its own tokenizer: when that differs from the
  teacher's, each model tokenizes the raw text (or words) itself.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgec.model import num_layers, position_limit
from edgec.model_files import model_folder
from edgec_runtime import iospec
from edgec_runtime.errors import BadInput
from edgec_runtime.iospec import SUPPORTED_FAMILIES, derive_max_length

LAYERS_PREFIX = "layers:"


@dataclass
class StudentSpec:
    """What `--student` asked for: `layers` (a count, with `kept` when the teacher
    layers were named) or `path` (a pretrained base)."""

    text: str
    layers: int | None = None
    path: Path | None = None
    kept: list[int] | None = None


@dataclass
class Student:
    model: Any
    tokenizer: Any
    max_length: int
    spec: StudentSpec
    kept_layers: list[int] | None  # teacher layers copied into the student (layers:N)
    shares_tokenizer: bool


def parse_student_spec(text: str) -> StudentSpec:
    text = (text or "").strip()
    if text.startswith(LAYERS_PREFIX):
        listed = text[len(LAYERS_PREFIX) :]
        items = [item.strip() for item in listed.split(",")]
        if listed.endswith(","):  # layers:0, names one layer (layers:0 would count none)
            items = items[:-1]
        if not items or not all(item.lstrip("-").isdigit() for item in items):
            raise BadInput(
                f"--student {text!r}: after 'layers:' give a number of layers (layers:3) "
                "or the teacher layers to keep, 0-based (layers:0,2,4; one layer: layers:0,)"
            )
        if "," not in listed:
            return StudentSpec(text=text, layers=int(items[0]))
        kept = [int(item) for item in items]
        return StudentSpec(text=text, layers=len(kept), kept=kept)
    if not text:
        raise BadInput("--student is empty: pass layers:N or the folder of a pretrained model")
    return StudentSpec(text=text, path=Path(text).expanduser())


def spread_layers(total: int, keep: int, from_top: bool = True) -> list[int]:
    """`keep` of `total` layer indices, evenly spread down from the last (6, 3 -> 1, 3, 5)
    or, `from_top` False, up from the first (6, 3 -> 0, 2, 4).

    Which one a task takes is its recipe's `layers_from_top` (edgec.distill.tasks),
    measured per task in benchmarks/NOTES.md, section 9.
    """
    if from_top:
        return [total - 1 - i * total // keep for i in reversed(range(keep))]
    return [i * total // keep for i in range(keep)]


def encoder_layers(model):
    """The ModuleList of transformer blocks of any supported family."""
    base = model.base_model
    for owner in ("encoder", "transformer"):
        holder = getattr(base, owner, None)
        if holder is not None and hasattr(holder, "layer"):
            return holder, "layer"
    raise BadInput(f"cannot find the transformer layers of a {type(model).__name__}")


def layer_student(
    teacher_model, teacher_tokenizer, max_length: int, spec: StudentSpec, from_top: bool = True
) -> Student:
    import torch

    total = num_layers(teacher_model.config)
    n = spec.layers
    if n is None or not 1 <= n < total:
        raise BadInput(
            f"--student {spec.text}: the teacher has {total} layers, so N must be 1..{total - 1}"
        )
    kept = spec.kept or spread_layers(total, n, from_top)
    if kept != sorted(set(kept)) or not 0 <= kept[0] <= kept[-1] < total:
        raise BadInput(
            f"--student {spec.text}: name distinct teacher layers in increasing order, "
            f"each 0..{total - 1}"
        )
    student = copy.deepcopy(teacher_model)
    holder, name = encoder_layers(student)
    setattr(holder, name, torch.nn.ModuleList([getattr(holder, name)[i] for i in kept]))
    for new_index, layer in enumerate(getattr(holder, name)):
        for module in layer.modules():  # keep per-layer indices consistent with the new depth
            if hasattr(module, "layer_idx"):
                module.layer_idx = new_index
    config = student.config
    if hasattr(config, "num_hidden_layers") and config.model_type != "distilbert":
        config.num_hidden_layers = n
    else:
        config.n_layers = n
    student.train()
    return Student(student, teacher_tokenizer, max_length, spec, kept, shares_tokenizer=True)


def _read_student_config(path: Path) -> dict:
    if not path.exists():
        raise BadInput(
            f"--student {path}: no such folder; pass layers:N or a pretrained model folder"
        )
    config_file = path / "config.json"
    if not config_file.is_file():
        raise BadInput(f"--student {path} is not a Hugging Face model folder (no config.json)")
    try:
        return json.loads(config_file.read_text(encoding="utf-8"))
    except ValueError as e:
        raise BadInput(f"{config_file} is not valid JSON ({e})") from None


# The transformers class a pretrained student is loaded as, and the head suffix in
# config.json `architectures` that already carries labels, per task.
STUDENT_CLASSES = {
    iospec.SEQUENCE_CLASSIFICATION: ("AutoModelForSequenceClassification", "classifier"),
    iospec.TOKEN_CLASSIFICATION: ("AutoModelForTokenClassification", "tagger"),
    iospec.SENTENCE_EMBEDDING: ("AutoModel", None),
}


def _check_student_labels(path: Path, config: dict, task: str, labels: list[str]) -> None:
    """A student that already has this task's head must have the teacher's labels."""
    architecture, kind = iospec.task_spec(task).architecture, STUDENT_CLASSES[task][1]
    if not architecture or not any(
        a.endswith(architecture) for a in config.get("architectures") or []
    ):
        return
    theirs = [v for _, v in sorted((int(k), v) for k, v in (config.get("id2label") or {}).items())]
    if theirs != labels:
        raise BadInput(
            f"--student {path} is a {kind} for {len(theirs)} labels ({', '.join(theirs)}) "
            f"but the teacher has {len(labels)} ({', '.join(labels)}): pass its base model "
            f"(without a head) or a {kind} with the teacher's labels"
        )


def pretrained_student(
    path: Path,
    labels: list[str],
    max_length: int | None,
    spec,
    task: str = iospec.SEQUENCE_CLASSIFICATION,
    dimension: int | None = None,
) -> Student:
    """A pretrained base with a fresh head for the teacher's labels (classifier,
    tagger), or bare, of the teacher's embedding `dimension` (embedder). A
    sentence-transformers folder is read at its Transformer module."""
    import transformers

    folder = model_folder(path) if path.is_dir() else path
    config = _read_student_config(folder)
    family = config.get("model_type")
    if family not in SUPPORTED_FAMILIES:
        raise BadInput(
            f"--student {path} is a {family!r} model; edgec supports {', '.join(SUPPORTED_FAMILIES)}"
        )
    _check_student_labels(path, config, task, labels)
    head = {}
    if iospec.task_spec(task).labeled:
        id2label = dict(enumerate(labels))
        head = {
            "num_labels": len(labels),
            "id2label": id2label,
            "label2id": {v: k for k, v in id2label.items()},
        }
    auto_class = getattr(transformers, STUDENT_CLASSES[task][0])
    try:
        model = auto_class.from_pretrained(folder, attn_implementation="eager", **head)
        tokenizer = transformers.AutoTokenizer.from_pretrained(folder, use_fast=True)
    except Exception as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise BadInput(f"could not load the student {path}: {first}") from None
    if not tokenizer.is_fast:
        raise BadInput(f"--student {path} has no fast tokenizer (tokenizer.json)")
    width = getattr(model.config, "hidden_size", None) or getattr(model.config, "dim", None)
    if dimension is not None and width != dimension:
        raise BadInput(
            f"--student {path} has {width}-dimensional token vectors but the teacher embeds "
            f"in {dimension}: the student learns the teacher's vectors themselves, so pass "
            f"a base of width {dimension} or use layers:N"
        )
    limit = position_limit(model.config)
    # Truncate where the teacher does (or at --max-length), as far as the student's
    # positions reach; the saved tokenizer then truncates as the student was trained.
    chosen = derive_max_length(max_length or tokenizer.model_max_length, limit)
    tokenizer.model_max_length = chosen
    model.train()
    return Student(model, tokenizer, chosen, spec, None, shares_tokenizer=False)


def same_tokenizer(a, b) -> bool:
    """Do two fast tokenizers turn text into the same ids? Their pipelines (normalizer,
    pre-tokenizer, vocabulary, special tokens) must match; truncation and padding
    settings are per-call and do not count."""

    def pipeline(tokenizer) -> dict:
        spec = json.loads(tokenizer.backend_tokenizer.to_str())
        return {k: v for k, v in spec.items() if k not in ("truncation", "padding")}

    return pipeline(a) == pipeline(b)


def build_student(
    spec: StudentSpec, teacher, max_length: int | None = None, from_top: bool = True
) -> Student:
    """The student for `spec`; `teacher` is the loaded `SourceModel`; `from_top` is the
    direction a `layers:N` spread runs (the task recipe's `layers_from_top`)."""
    if spec.layers is not None:
        student = layer_student(
            teacher.model, teacher.tokenizer, teacher.max_length, spec, from_top
        )
    else:
        embeds = teacher.task == iospec.SENTENCE_EMBEDDING
        student = pretrained_student(
            spec.path,
            teacher.labels,
            max_length or teacher.max_length,
            spec,
            task=teacher.task,
            dimension=teacher.task_facts.get("dimension") if embeds else None,
        )
        student.shares_tokenizer = same_tokenizer(student.tokenizer, teacher.tokenizer)
    if teacher.task == iospec.SENTENCE_EMBEDDING:
        freeze_unpooled(student.model)
    return student


def freeze_unpooled(model) -> None:
    """Freeze the encoder's own pooler (a dense layer on [CLS], in BERT and RoBERTa):
    the folder's Pooling module reads the token vectors, so it takes no part in the
    loss, and data-parallel training (DDP without unused-parameter search) fails on a
    parameter that never gets a gradient. Its weights are kept as the teacher had them."""
    pooler = getattr(model, "pooler", None)
    if pooler is not None:
        for p in pooler.parameters():
            p.requires_grad_(False)


def count_parameters(model) -> int:
    return sum(p.numel() for p in model.parameters())


def _geometry(config) -> tuple[int, int, int]:
    hidden = getattr(config, "hidden_size", None) or config.dim
    inner = getattr(config, "intermediate_size", None) or config.hidden_dim
    return num_layers(config), hidden, inner


def forward_flops(config, seq_len: int = 128) -> float:
    """Multiply-adds x2 of one sequence through the encoder (embeddings are lookups).

    Per layer and token: Q, K, V and output projections (4 h^2), the feed-forward
    (2 h i), and the attention scores and mix (2 s h).
    """
    layers, h, inner = _geometry(config)
    per_token = 2 * (4 * h * h + 2 * h * inner + 2 * seq_len * h)
    return float(layers * per_token * seq_len)


def expected_speedup(teacher_config, student_config, seq_len: int = 128) -> float:
    return forward_flops(teacher_config, seq_len) / forward_flops(student_config, seq_len)
