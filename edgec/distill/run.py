"""`distill()`: teacher + student spec + data -> a trained student folder and a report.

Read it top to bottom: load the teacher, build the student, prepare the data (the
teacher labels every training text once), train with `DistillationTrainer`, keep the
best checkpoint, save a standard Hugging Face model folder that `edgec build` accepts,
and measure what the student kept.
"""

from __future__ import annotations

import json
import math
import random
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from edgec.distill.losses import IGNORE, LossWeights
from edgec.distill.report import (
    REPORT_FILE,
    accuracy,
    measured_speedup,
    model_inputs,
    predict_logits,
)
from edgec.distill.students import (
    Student,
    build_student,
    count_parameters,
    expected_speedup,
    parse_student_spec,
)
from edgec.errors import BackendUnavailable, BadInput
from edgec.ui import SilentUI

CHECKPOINTS = "checkpoints"
DEVICES = ("auto", "cpu", "cuda")


@dataclass
class Hyperparameters:
    epochs: float = 3.0
    batch_size: int = 32
    learning_rate: float = 5e-5
    warmup_ratio: float = 0.1
    weight_decay: float = 0.01
    max_grad_norm: float = 1.0
    grad_accum: int = 1
    alpha: float = 0.5
    temperature: float = 2.0
    hidden_weight: float = 0.0
    attention_weight: float = 0.0
    layer_map: str | None = None
    patience: int = 2
    eval_steps: int | None = None
    max_steps: int | None = None
    logging_steps: int = 10
    seed: int = 42


@dataclass
class DistillConfig:
    teacher: Path
    student: str
    train_data: Path
    output: Path
    validation_data: Path | None = None
    eval_data: Path | None = None
    unlabeled: Path | None = None
    data: object = None  # pipeline.DataOptions
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
    problems = [
        (hp.epochs <= 0 and not hp.max_steps, "--epochs must be > 0"),
        (hp.batch_size < 1, "--batch-size must be >= 1"),
        (hp.learning_rate <= 0, "--learning-rate must be > 0"),
        (not 0 <= hp.warmup_ratio < 1, "--warmup-ratio must be in [0, 1)"),
        (hp.grad_accum < 1, "--grad-accum must be >= 1"),
        (not 0 <= hp.alpha <= 1, "--alpha must be in [0, 1] (weight of the KD term)"),
        (hp.temperature <= 0, "--temperature must be > 0"),
        (hp.hidden_weight < 0 or hp.attention_weight < 0, "loss weights must be >= 0"),
        (hp.max_steps is not None and hp.max_steps < 1, "--max-steps must be >= 1"),
        (hp.eval_steps is not None and hp.eval_steps < 1, "--eval-steps must be >= 1"),
        (hp.logging_steps < 1, "--logging-steps must be >= 1"),
        (hp.patience < 1, "--patience must be >= 1 (validations without improvement)"),
        (hp.max_grad_norm <= 0, "--max-grad-norm must be > 0"),
        (hp.weight_decay < 0, "--weight-decay must be >= 0"),
    ]
    for bad, message in problems:
        if bad:
            raise BadInput(message)


def data_fingerprint(path: Path | None) -> dict | None:
    """Path, sha256 and size of a data file (or of a dataset folder's files, in order)."""
    import hashlib

    if path is None:
        return None
    path = Path(path)
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for f in files:
        with f.open("rb") as handle:
            for chunk in iter(lambda h=handle: h.read(1 << 20), b""):
                digest.update(chunk)
    return {"path": str(path), "sha256": digest.hexdigest()}


def parse_layer_map(text: str | None, teacher_layers: int, student_layers: int):
    """(student, teacher) hidden-state index pairs; index i is the output of layer i.

    Default, for both kinds of student: student layer j mirrors teacher layer
    round(j * teacher / student), so the student's last layer learns the teacher's last
    representation (the one the head reads), e.g. 6 -> 3 layers: 1:2, 2:4, 3:6.
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
    return [
        (j, max(1, round(j * teacher_layers / student_layers)))
        for j in range(1, student_layers + 1)
    ]


def check_transfer(hp: Hyperparameters, teacher, student: Student) -> None:
    """Hidden-state and attention transfer compare positions: same tokens required."""
    if not (hp.hidden_weight or hp.attention_weight):
        return
    if not student.shares_tokenizer:
        raise BadInput(
            "--hidden-weight/--attention-weight need a student with the teacher's tokenizer "
            "(token positions must match); use layers:N or a student with the same vocabulary"
        )
    t_hidden = teacher.shape_facts()["hidden_size"]
    s_hidden = getattr(student.model.config, "hidden_size", None) or student.model.config.dim
    if hp.hidden_weight and t_hidden != s_hidden:
        raise BadInput(
            f"--hidden-weight needs equal hidden sizes (teacher {t_hidden}, student {s_hidden}); "
            "use --attention-weight for students of another width"
        )


def encode_examples(tokenizer, max_length, texts, pairs, labels, teacher_logits) -> list[dict]:
    enc = tokenizer(
        list(texts),
        list(pairs) if pairs is not None else None,
        truncation=True,
        max_length=max_length,
    )
    keys = [k for k in enc if k in ("input_ids", "attention_mask", "token_type_ids")]
    return [
        {
            **{k: enc[k][i] for k in keys},
            "labels": labels[i] if labels is not None else IGNORE,
            "teacher_logits": teacher_logits[i].tolist(),
        }
        for i in range(len(texts))
    ]


def split_validation(train, seed: int, share: float = 0.1):
    """Hold out a seeded share of the training set when no validation file is given."""
    if len(train) < 10:
        return train, train
    order = list(range(len(train)))
    random.Random(seed).shuffle(order)
    cut = max(1, round(len(train) * share))
    held_out = train.subset(sorted(order[:cut]))
    held_out.source = f"{train.source} ({share:.0%} held out)"
    return train.subset(sorted(order[cut:])), held_out


def _prepare_output(config: DistillConfig) -> Path:
    out = Path(config.output)
    checkpoints = out / CHECKPOINTS
    if config.resume:
        if not any(checkpoints.glob("checkpoint-*")):
            raise BadInput(
                f"--resume: {checkpoints} holds no checkpoint to resume from; drop --resume"
            )
        return out
    if out.exists() and any(out.iterdir()):
        if not config.force:
            hint = (
                "pass --resume to continue the interrupted run or --force to start over"
                if checkpoints.is_dir()
                else "pass --force to replace it or choose another -o"
            )
            raise BadInput(f"{out} already exists and is not empty: {hint}")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    return out


def _validation_accuracy_at(state) -> float | None:
    """Validation accuracy of the kept (lowest-loss) checkpoint, from the log."""
    if not state.best_model_checkpoint:
        return None
    step = int(state.best_model_checkpoint.rsplit("-", 1)[1])
    return next(
        (
            e["eval_accuracy"]
            for e in state.log_history
            if e.get("step") == step and "eval_accuracy" in e
        ),
        None,
    )


def _weights_mb(path: Path) -> float:
    files = [path / n for n in ("model.safetensors", "pytorch_model.bin") if (path / n).is_file()]
    return round(files[0].stat().st_size / 1e6, 2) if files else 0.0


def distill(config: DistillConfig, ui=None, callbacks=None) -> dict:
    """Train the student, save it to `config.output`, return (and save) the report."""
    import os

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from transformers import EarlyStoppingCallback, TrainingArguments, set_seed
    from transformers.utils import logging as hf_logging

    if os.environ.get("TQDM_DISABLE"):  # the CLI's quiet mode: no loading/saving bars
        hf_logging.disable_progress_bar()

    from edgec.data import DataOptions
    from edgec.distill.trainer import (
        DistillationCollator,
        DistillationTrainer,
        FinalEvaluation,
        RichProgress,
        accuracy_metric,
    )
    from edgec.model import load_source_model, num_layers

    ui = ui or SilentUI()
    hp = config.hp
    data = config.data or DataOptions()
    check_hyperparameters(hp)
    spec = parse_student_spec(config.student)
    device = resolve_device(config.device)

    teacher = load_source_model(
        config.teacher, trust_remote_code=config.trust_remote_code, max_length=config.max_length
    )
    set_seed(hp.seed)
    student = build_student(spec, teacher, config.max_length)
    check_transfer(hp, teacher, student)

    train = data.load(config.train_data, teacher.label2id)
    if train.labels is None:
        if hp.alpha == 0:
            raise BadInput(
                f"{config.train_data} has no label column and --alpha 0 trains on labels only: "
                "add labels (--label-column) or raise --alpha to learn from the teacher"
            )
        ui.note(f"{config.train_data} has no labels: training on the teacher's soft labels only")
    unlabeled = data.load(config.unlabeled, None) if config.unlabeled else None
    if config.validation_data:
        validation = data.load(config.validation_data, teacher.label2id)
    else:
        train, validation = split_validation(train, hp.seed)
    eval_set = data.load(config.eval_data, teacher.label2id) if config.eval_data else validation
    if len(train) == 0:
        raise BadInput(f"{config.train_data} gives an empty training set: add examples")
    out = _prepare_output(config)

    t_params, s_params = count_parameters(teacher.model), count_parameters(student.model)
    speedup = expected_speedup(teacher.config, student.model.config)
    ui.note(
        f"student {spec.text}: {s_params / 1e6:.1f} M parameters "
        f"(teacher {t_params / 1e6:.1f} M), expected speedup {speedup:.2f}x (FLOPs at 128 tokens)"
        + (f", teacher layers kept {student.kept_layers}" if student.kept_layers else "")
        + ("" if student.shares_tokenizer else "; own tokenizer: each model reads the raw text")
    )

    # The teacher labels every text once: exact (it is frozen) and a forward pass per step cheaper.
    def teacher_logits(ts):
        return predict_logits(
            teacher.model, teacher.tokenizer, teacher.max_length, ts.texts, ts.pairs, device=device
        )

    teacher.model.to(device)
    train_logits = teacher_logits(train)
    val_logits = teacher_logits(validation)
    train_rows = encode_examples(
        student.tokenizer, student.max_length, train.texts, train.pairs, train.labels, train_logits
    )
    if unlabeled is not None:
        train_rows += encode_examples(
            student.tokenizer,
            student.max_length,
            unlabeled.texts,
            unlabeled.pairs,
            None,
            teacher_logits(unlabeled),
        )
    # Validation scores accuracy on true labels, or agreement with the teacher without them.
    val_labels = validation.labels or val_logits.argmax(-1).tolist()
    val_rows = encode_examples(
        student.tokenizer,
        student.max_length,
        validation.texts,
        validation.pairs,
        val_labels,
        val_logits,
    )

    steps_per_epoch = max(1, math.ceil(len(train_rows) / (hp.batch_size * hp.grad_accum)))
    eval_steps = hp.eval_steps or steps_per_epoch
    if hp.max_steps:
        eval_steps = min(eval_steps, hp.max_steps)
    cuda = device == "cuda"
    bf16 = cuda and torch.cuda.is_bf16_supported()
    args = TrainingArguments(
        output_dir=str(out / CHECKPOINTS),
        num_train_epochs=hp.epochs,
        max_steps=hp.max_steps or -1,
        per_device_train_batch_size=hp.batch_size,
        per_device_eval_batch_size=max(64, hp.batch_size),
        gradient_accumulation_steps=hp.grad_accum,
        learning_rate=hp.learning_rate,
        weight_decay=hp.weight_decay,
        warmup_steps=hp.warmup_ratio,  # a float below 1 is a share of the total steps
        lr_scheduler_type="linear",
        max_grad_norm=hp.max_grad_norm,
        eval_strategy="steps",
        eval_steps=eval_steps,
        save_strategy="steps",
        save_steps=eval_steps,
        save_total_limit=2,
        load_best_model_at_end=True,
        # The distillation loss on validation, not its accuracy: on a few hundred
        # sentences accuracy moves in steps of a sentence or two and picked an early
        # checkpoint 2 points worse on test (benchmarks/NOTES.md, distillation).
        metric_for_best_model="loss",
        greater_is_better=False,
        logging_steps=hp.logging_steps,
        logging_first_step=True,
        report_to="none",
        disable_tqdm=True,
        remove_unused_columns=False,
        label_names=["labels"],
        seed=hp.seed,
        data_seed=hp.seed,
        use_cpu=not cuda,
        bf16=bf16,
        fp16=cuda and not bf16,
        dataloader_pin_memory=cuda,
    )
    layer_map = parse_layer_map(
        hp.layer_map, num_layers(teacher.config), num_layers(student.model.config)
    )
    trainer = DistillationTrainer(
        model=student.model,
        args=args,
        train_dataset=train_rows,
        eval_dataset=val_rows,
        data_collator=DistillationCollator(student.tokenizer),
        processing_class=student.tokenizer,
        compute_metrics=accuracy_metric,
        callbacks=[
            FinalEvaluation(),
            EarlyStoppingCallback(early_stopping_patience=hp.patience),
            *(callbacks or []),
        ],
        teacher=teacher.model,
        weights=LossWeights(hp.alpha, hp.temperature, hp.hidden_weight, hp.attention_weight),
        layer_map=layer_map,
    )
    from transformers.trainer_callback import PrinterCallback

    trainer.remove_callback(PrinterCallback)
    if getattr(ui, "console", None) is not None:
        trainer.add_callback(RichProgress(ui.console))
    started = time.perf_counter()
    trainer.train(resume_from_checkpoint=True if config.resume else None)
    training_seconds = time.perf_counter() - started

    model = trainer.model.eval()
    model.save_pretrained(out)
    student.tokenizer.model_max_length = student.max_length
    student.tokenizer.save_pretrained(out)
    if not config.keep_checkpoints:
        shutil.rmtree(out / CHECKPOINTS, ignore_errors=True)
    student.model = model

    teacher_eval = teacher_logits(eval_set)
    student_eval = predict_logits(
        model, student.tokenizer, student.max_length, eval_set.texts, eval_set.pairs, device=device
    )
    t_acc, s_acc = accuracy(teacher_eval, eval_set.labels), accuracy(student_eval, eval_set.labels)
    state = trainer.state
    report = {
        "teacher": {
            "path": str(config.teacher),
            "sha256": teacher.weights_sha256,
            "accuracy": t_acc,
            "parameters": t_params,
            "layers": num_layers(teacher.config),
            "size_mb": _weights_mb(Path(config.teacher)),
        },
        "student": {
            "path": str(out),
            "spec": spec.text,
            "accuracy": s_acc,
            "parameters": count_parameters(model),
            "layers": num_layers(model.config),
            "kept_teacher_layers": student.kept_layers,
            "shares_tokenizer": student.shares_tokenizer,
            "size_mb": _weights_mb(out),
        },
        "retention": (s_acc / t_acc) if t_acc else None,
        "agreement": float((teacher_eval.argmax(-1) == student_eval.argmax(-1)).mean()),
        "eval_data": eval_set.source,
        "examples": len(eval_set),
        "expected_speedup": round(speedup, 2),
        "speed": measured_speedup(teacher, student, eval_set.texts),
        "training": {
            "seconds": round(training_seconds, 1),
            "steps": state.global_step,
            "epochs": round(state.epoch or 0, 2),
            "best_checkpoint": Path(state.best_model_checkpoint).name
            if state.best_model_checkpoint
            else None,
            "best_validation_loss": state.best_metric,
            "best_validation_accuracy": _validation_accuracy_at(state),
            "validation_metric": "accuracy" if validation.labels else "agreement with the teacher",
            "device": device,
            "mixed_precision": "bf16" if bf16 else "fp16" if cuda else None,
            "torch_threads": torch.get_num_threads(),
            "resumed": config.resume,
            "log": [
                {k: v for k, v in entry.items() if k != "total_flos"} for entry in state.log_history
            ],
        },
        "recipe": {
            "student": spec.text,
            "hyperparameters": asdict(hp),
            "seed": hp.seed,
            "max_length": student.max_length,
            "kd_only": train.labels is None,
            "unlabeled_rows": len(unlabeled) if unlabeled is not None else 0,
            "layer_map": layer_map if (hp.hidden_weight or hp.attention_weight) else None,
            "data": {
                "train": {**data_fingerprint(config.train_data), "rows": len(train)},
                "validation": data_fingerprint(config.validation_data)
                or "held out: 10% of the training data",
                "unlabeled": data_fingerprint(config.unlabeled),
                "eval": data_fingerprint(config.eval_data),
            },
        },
    }
    (out / REPORT_FILE).write_text(json.dumps(report, indent=2, default=str) + "\n")
    return report


__all__ = ["DistillConfig", "Hyperparameters", "distill", "model_inputs", "resolve_device"]
