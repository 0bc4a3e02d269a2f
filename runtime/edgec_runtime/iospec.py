"""What goes in and out of an exported model: one table row per model family (the
inputs) and one per task (the output).

Export, the manifest's `io` section, the runtime's padding and post-processing,
TensorRT's optimization profiles and OpenVINO's static reshape all read these facts
from here, so a family's inputs, axes, tolerance and sequence limit, and a task's
output, its axes and what the runtime does with it, are declared once (the idea of
optimum's `OnnxConfig`, as plain data).

Nothing here imports torch or transformers: the device runtime reads it too.
"""

from __future__ import annotations

from dataclasses import dataclass

BATCH, SEQUENCE = "batch", "sequence"
DEFAULT_SHAPES = {BATCH: [1, 1, 32], SEQUENCE: [1, 128, 512]}
# model input name -> attribute of a `tokenizers` Encoding, in export order
ENCODING_FIELDS = {
    "input_ids": "ids",
    "attention_mask": "attention_mask",
    "token_type_ids": "type_ids",
}
LOGITS = "logits"
STRING_INPUT = "text"
"""A strings-in package's one input: a 1-D string tensor, one text per row (the
tokenizer runs inside the graph: `edgec build -O tokenizer=graph`)."""
IN_GRAPH = "in-graph"  # the backend record's tokenizer.status of a strings-in package


def strings_in(backend_record: dict) -> bool:
    """Whether a package's model takes raw strings (its backend record says so)."""
    return (backend_record.get("tokenizer") or {}).get("status") == IN_GRAPH


SENTENCE_EMBEDDING_OUTPUT = "sentence_embedding"

SEQUENCE_CLASSIFICATION = "sequence-classification"
TOKEN_CLASSIFICATION = "token-classification"
SENTENCE_EMBEDDING = "sentence-embedding"


@dataclass(frozen=True)
class TaskSpec:
    """One task's graph output and how a model folder shows it.

    `output_axes` are the output's dynamic axes in order: a classifier's logits vary
    with the batch, a tagger's with the batch and the sequence, an embedding with the
    batch only (pooling and normalization happen inside the graph). `architecture` is
    the suffix of config.json's `architectures` that marks the task; a
    sentence-embedding folder is told by its modules.json instead (edgec.model).
    """

    name: str
    output: str
    output_axes: tuple[str, ...]
    architecture: str | None
    labeled: bool  # the output is one score per label (and the manifest lists labels)
    distillable: bool = False  # `--distill` has a recipe for it (edgec.distill.tasks)
    summary: str = ""


TASKS: dict[str, TaskSpec] = {
    spec.name: spec
    for spec in (
        TaskSpec(
            SEQUENCE_CLASSIFICATION,
            LOGITS,
            (BATCH,),
            "ForSequenceClassification",
            labeled=True,
            distillable=True,
            summary="one label per text (or text pair)",
        ),
        TaskSpec(
            TOKEN_CLASSIFICATION,
            LOGITS,
            (BATCH, SEQUENCE),
            "ForTokenClassification",
            labeled=True,
            distillable=True,
            summary="one tag per word, grouped into entity spans (NER)",
        ),
        TaskSpec(
            SENTENCE_EMBEDDING,
            SENTENCE_EMBEDDING_OUTPUT,
            (BATCH,),
            None,
            labeled=False,
            distillable=True,
            summary="one vector per text, pooled (and normalized) inside the graph",
        ),
    )
}
SUPPORTED_TASKS = tuple(TASKS)
# sentence-transformers' Pooling flags edgec can put in the graph, by mode name
POOLING_MODES = {
    "mean": "pooling_mode_mean_tokens",
    "cls": "pooling_mode_cls_token",
    "max": "pooling_mode_max_tokens",
}
# NER runtime: how word tags are grouped into entities (transformers' pipeline names)
AGGREGATION_STRATEGIES = ("none", "simple", "first", "average", "max")
DEFAULT_AGGREGATION = "simple"
TAGGING_SCHEME = "IOB2"


@dataclass(frozen=True)
class FamilySpec:
    """One model family's graph interface.

    `inputs` are those the family's forward accepts, in export order; a model exports
    the ones its tokenizer also produces. `reserves_padding_positions`: RoBERTa-style
    position ids start after the pad id, so pad_token_id + 1 positions are unusable.
    """

    inputs: tuple[str, ...]
    export_tolerance: float = 1e-4  # max |output| drift of ONNX against PyTorch
    reserves_padding_positions: bool = False


_BERT = FamilySpec(inputs=("input_ids", "attention_mask", "token_type_ids"))
_ROBERTA = FamilySpec(inputs=("input_ids", "attention_mask"), reserves_padding_positions=True)
FAMILIES: dict[str, FamilySpec] = {
    "bert": _BERT,
    "distilbert": FamilySpec(inputs=("input_ids", "attention_mask")),
    "roberta": _ROBERTA,
    "xlm-roberta": _ROBERTA,
    "electra": _BERT,
}
SUPPORTED_FAMILIES = tuple(FAMILIES)


def family_spec(model_type: str) -> FamilySpec:
    return FAMILIES[model_type]


def input_names(model_type: str, tokenizer_inputs) -> list[str]:
    """The family's inputs that the tokenizer produces, in export order."""
    produced = set(tokenizer_inputs)
    return [name for name in family_spec(model_type).inputs if name in produced]


def task_spec(task: str) -> TaskSpec:
    return TASKS[task]


def dynamic_axes(inputs: list[str], task: str = SEQUENCE_CLASSIFICATION) -> dict:
    """Batch and sequence are dynamic on every input; the output as its task says."""
    spec = task_spec(task)
    axes = {name: {0: BATCH, 1: SEQUENCE} for name in inputs}
    axes[spec.output] = dict(enumerate(spec.output_axes))
    return axes


def position_limit(model_type: str, max_position_embeddings: int, pad_token_id) -> int:
    """Longest sequence the position embeddings allow."""
    limit = int(max_position_embeddings)
    if family_spec(model_type).reserves_padding_positions:
        limit -= (pad_token_id or 0) + 1
    return limit


def derive_max_length(tokenizer_max_length, limit: int, requested: int | None = None) -> int:
    """The package's token limit: the one asked for, else the tokenizer's own
    model_max_length (what training truncated at), never past the position limit."""
    if requested is not None:
        return int(requested)
    return min(int(tokenizer_max_length), limit)


def clamp_shapes(shapes: dict | None, max_length: int | None) -> dict:
    """Shape ranges [min, opt, max] per axis, the sequence axis cut at max_length: no
    text is longer, and a profile past the position embeddings cannot be built."""
    out = {
        axis: [int(v) for v in (shapes or DEFAULT_SHAPES).get(axis, DEFAULT_SHAPES[axis])]
        for axis in (BATCH, SEQUENCE)
    }
    if max_length:
        out[SEQUENCE] = [min(v, int(max_length)) for v in out[SEQUENCE]]
    return out
