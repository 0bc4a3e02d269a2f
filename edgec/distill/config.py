"""What a distillation run is asked to do, and the checks that refuse a bad request
before any model is loaded or any step is trained.

`Hyperparameters` is the single source of the training knobs: each field carries its
default and, in `metadata`, the one-line `help` and any extra `flags` (e.g. `--lr`) from
which the `edgec distill` command builds its options, so the CLI cannot drift from it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from edgec_runtime.errors import BackendUnavailable, BadInput

DEVICES = ("auto", "cpu", "cuda")


def _knob(default, help: str, *flags: str):
    """A hyperparameter field: its default, the CLI's help line and extra spellings."""
    metadata = {"help": help, "flags": flags} if flags else {"help": help}
    return field(default=default, metadata=metadata)


@dataclass
class Hyperparameters:
    """The training recipe, in the order `edgec distill --help` lists it."""

    epochs: float = _knob(3.0, "Passes over the training data (--max-steps overrides it).")
    max_steps: int | None = _knob(None, "Stop after this many optimizer steps.")
    batch_size: int = _knob(
        32, "Training examples per batch; an optimizer step takes --grad-accum."
    )
    learning_rate: float = _knob(
        1e-4, "Peak AdamW learning rate (linear warm-up and decay).", "--lr"
    )
    warmup_ratio: float = _knob(0.1, "Share of the steps that warm the learning rate up.")
    weight_decay: float = _knob(0.01, "AdamW weight decay.")
    max_grad_norm: float = _knob(1.0, "Clip gradients to this norm.")
    grad_accum: int = _knob(1, "Batches whose gradients add up to one optimizer step.")
    alpha: float | None = _knob(
        None,
        "Weight of the KD term (1 - alpha: CE on the gold labels); classifiers and "
        "taggers. Default: 1 (KD only) for classifiers, 0.5 for taggers.",
    )
    temperature: float = _knob(2.0, "Softmax temperature of the KD term.", "-T")
    cosine_weight: float = _knob(
        1.0, "Embedders: weight of the cosine-distance term next to the MSE."
    )
    augment: int = _knob(
        4,
        "Copies of each training text with words swapped for the teacher's embedding "
        "neighbours; the teacher labels them (KD term only). 0: none.",
    )
    augment_rate: float = _knob(0.4, "Share of a copy's words that --augment swaps.")
    hidden_weight: float | None = _knob(
        None,
        "Hidden-state MSE weight. Default: 3 for classifiers, 1 for taggers, where the "
        "student can take it (the teacher's tokenizer and width, as every layers:N "
        "student has), else 0.",
    )
    attention_weight: float = _knob(0.0, "MiniLM attention-transfer weight.")
    layer_map: str | None = _knob(
        None, "STUDENT:TEACHER layer pairs for the two above, e.g. 1:2,2:4."
    )
    patience: int = _knob(2, "Early stopping.")
    eval_steps: int | None = _knob(None, "Validate every N steps (default: each epoch).")
    logging_steps: int = _knob(10, "Log the loss every N steps.")
    seed: int = _knob(42, "Seed of the student's new weights, the data order and dropout.")


@dataclass
class DistillConfig:
    teacher: Path
    student: str
    train_data: Path
    output: Path
    validation_data: Path | None = None
    eval_data: Path | None = None
    unlabeled: Path | None = None
    data: object = None  # edgec.data.DataOptions
    hp: Hyperparameters = field(default_factory=Hyperparameters)
    device: str = "auto"
    max_length: int | None = None
    trust_remote_code: bool = False
    resume: bool = False
    force: bool = False
    keep_checkpoints: bool = False


def resolve_device(requested: str | None) -> str:
    """`auto` is CUDA when torch sees a GPU, else the CPU; asking for CUDA without
    one is a device-unavailable error (exit 3), not a silent fallback."""
    import torch

    requested = (requested or "auto").lower()
    if requested not in DEVICES:
        raise BadInput(f"--device {requested!r}: choose one of {', '.join(DEVICES)}")
    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested == "cuda" and not torch.cuda.is_available():
        raise BackendUnavailable(
            f"--device cuda: torch {torch.__version__} sees no CUDA device on this machine; "
            "use --device cpu (or auto)"
        )
    return requested


def check_hyperparameters(hp: Hyperparameters) -> None:
    """Refuse values the Trainer would take silently (or fail on after loading)."""
    problems = [
        (hp.epochs <= 0 and not hp.max_steps, "--epochs must be > 0"),
        (hp.batch_size < 1, "--batch-size must be >= 1"),
        (hp.learning_rate <= 0, "--learning-rate must be > 0"),
        (not 0 <= hp.warmup_ratio < 1, "--warmup-ratio must be in [0, 1)"),
        (hp.grad_accum < 1, "--grad-accum must be >= 1"),
        (
            hp.alpha is not None and not 0 <= hp.alpha <= 1,
            "--alpha must be in [0, 1] (weight of the KD term)",
        ),
        (hp.temperature <= 0, "--temperature must be > 0"),
        (
            (hp.hidden_weight or 0) < 0 or hp.attention_weight < 0 or hp.cosine_weight < 0,
            "loss weights must be >= 0",
        ),
        (hp.max_steps is not None and hp.max_steps < 1, "--max-steps must be >= 1"),
        (hp.eval_steps is not None and hp.eval_steps < 1, "--eval-steps must be >= 1"),
        (hp.logging_steps < 1, "--logging-steps must be >= 1"),
        (hp.patience < 1, "--patience must be >= 1 (validations without improvement)"),
        (hp.max_grad_norm <= 0, "--max-grad-norm must be > 0"),
        (hp.augment < 0, "--augment must be >= 0 (copies of each training text)"),
        (not 0 < hp.augment_rate <= 1, "--augment-rate must be in (0, 1]"),
        (hp.weight_decay < 0, "--weight-decay must be >= 0"),
    ]
    for bad, message in problems:
        if bad:
            raise BadInput(message)


def parse_layer_map(
    text: str | None, teacher_layers: int, student_layers: int, kept: list[int] | None = None
):
    """(student, teacher) hidden-state index pairs; index i is the output of layer i.

    Default: a layers:N student's layer j learns the output of the teacher layer it was
    copied from (`kept`, 0-based: layers 1,3,5 -> 1:2, 2:4, 3:6); any other student's
    layer j mirrors teacher layer round(j * teacher / student), so its last layer
    learns the teacher's last representation (the one the head reads).
    """
    if text:
        pairs = []
        for item in text.split(","):
            try:
                s, t = (int(x) for x in item.split(":"))
            except ValueError:
                raise BadInput(
                    f"--layer-map {text!r}: write STUDENT:TEACHER pairs, e.g. 1:2,2:4,3:6"
                ) from None
            if not (1 <= s <= student_layers and 1 <= t <= teacher_layers):
                raise BadInput(
                    f"--layer-map pair {item}: student layers are 1..{student_layers}, "
                    f"teacher layers 1..{teacher_layers}"
                )
            pairs.append((s, t))
        return pairs
    if kept:
        return [(j, layer + 1) for j, layer in enumerate(kept, start=1)]
    return [
        (j, max(1, round(j * teacher_layers / student_layers)))
        for j in range(1, student_layers + 1)
    ]


def resolve_alpha(hp: Hyperparameters, default_alpha: float) -> Hyperparameters:
    """`hp` with its KD weight decided: left at its default, the task recipe's."""
    return hp if hp.alpha is not None else replace(hp, alpha=default_alpha)


def resolve_transfer(
    hp: Hyperparameters, teacher, student, default_weight: float
) -> Hyperparameters:
    """`hp` with its hidden-state weight decided, after refusing transfer terms the
    student cannot take: both compare token positions (same tokenizer required), and
    the hidden-state MSE compares vectors (same width). Left at its default, the weight
    is `default_weight` (the task recipe's) for a student that can take it, else 0."""
    same_tokens = student.shares_tokenizer
    t_hidden = teacher.shape_facts()["hidden_size"]
    s_hidden = getattr(student.model.config, "hidden_size", None) or student.model.config.dim
    if hp.hidden_weight is None:
        able = same_tokens and t_hidden == s_hidden
        hp = replace(hp, hidden_weight=default_weight if able else 0.0)
    elif hp.hidden_weight and t_hidden != s_hidden:
        raise BadInput(
            f"--hidden-weight needs equal hidden sizes (teacher {t_hidden}, student {s_hidden}); "
            "use --attention-weight for students of another width"
        )
    if (hp.hidden_weight or hp.attention_weight) and not same_tokens:
        raise BadInput(
            "--hidden-weight/--attention-weight need a student with the teacher's tokenizer "
            "(token positions must match); use layers:N or a student with the same vocabulary"
        )
    return hp
