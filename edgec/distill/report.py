"""What a distillation achieved: accuracy of teacher and student on the same texts,
retention, size, the speed ratio measured on this machine with torch, and the recipe
(hyperparameters, data fingerprints) that reproduces it; saved as distill-report.json
next to the student.
"""

from __future__ import annotations

import json
import statistics
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from edgec.distill.data import DistillData, data_record, teacher_logits
from edgec.distill.predict import encode, model_inputs, predict_logits
from edgec.distill.students import count_parameters, expected_speedup

REPORT_FILE = "distill-report.json"


def accuracy(logits: np.ndarray, labels) -> float | None:
    if labels is None:
        return None
    return float((logits.argmax(-1) == np.asarray(labels)).mean()) * 100


def time_forward(model, tokenizer, max_length, texts, batches=4, batch_size=16, repeats=3):
    """Median seconds for a few fixed batches through torch on the CPU (after a warm-up)."""
    import torch

    model.eval()
    chunks = [
        texts[i : i + batch_size]
        for i in range(0, min(len(texts), batches * batch_size), batch_size)
    ]
    encoded = [model_inputs(model, encode(tokenizer, c, None, max_length)) for c in chunks]
    times = []
    with torch.no_grad():
        for inputs in encoded[:1]:
            model(**inputs)
        for _ in range(repeats):
            start = time.perf_counter()
            for inputs in encoded:
                model(**inputs)
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def measured_speedup(teacher, student, texts) -> dict:
    """Teacher time / student time on the same texts, each timed twice, interleaved,
    so that a noisy neighbour slows both alike."""
    t_times, s_times = [], []
    for _ in range(2):
        t_times.append(
            time_forward(teacher.model.cpu(), teacher.tokenizer, teacher.max_length, texts)
        )
        s_times.append(
            time_forward(student.model.cpu(), student.tokenizer, student.max_length, texts)
        )
    t, s = min(t_times), min(s_times)
    return {
        "teacher_seconds": round(t, 4),
        "student_seconds": round(s, 4),
        "ratio": round(t / s, 2),
    }


def plan_note(teacher, student) -> str:
    """One line before training: how much smaller and (by FLOPs) faster the student is."""
    t_params, s_params = count_parameters(teacher.model), count_parameters(student.model)
    speedup = expected_speedup(teacher.config, student.model.config)
    return (
        f"student {student.spec.text}: {s_params / 1e6:.1f} M parameters "
        f"(teacher {t_params / 1e6:.1f} M), expected speedup {speedup:.2f}x (FLOPs at 128 tokens)"
        + (f", teacher layers kept {student.kept_layers}" if student.kept_layers else "")
        + ("" if student.shares_tokenizer else "; own tokenizer: each model reads the raw text")
    )


def _weights_mb(path: Path) -> float:
    files = [path / n for n in ("model.safetensors", "pytorch_model.bin") if (path / n).is_file()]
    return round(files[0].stat().st_size / 1e6, 2) if files else 0.0


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


def training_record(trainer, seconds: float, resumed_from, validation) -> dict:
    """The report's `training` section: how long, how far, which checkpoint, where, on
    how many processes, and the checkpoint a --resume continued from (or None)."""
    import torch

    state, args = trainer.state, trainer.args
    return {
        "seconds": round(seconds, 1),
        "steps": state.global_step,
        "epochs": round(state.epoch or 0, 2),
        "best_checkpoint": Path(state.best_model_checkpoint).name
        if state.best_model_checkpoint
        else None,
        "best_validation_loss": state.best_metric,
        "best_validation_accuracy": _validation_accuracy_at(state),
        "validation_metric": "accuracy" if validation.labels else "agreement with the teacher",
        "device": "cpu" if args.use_cpu else "cuda",
        "mixed_precision": "bf16" if args.bf16 else "fp16" if args.fp16 else None,
        "torch_threads": torch.get_num_threads(),
        "processes": args.world_size,
        "global_batch_size": args.per_device_train_batch_size
        * args.gradient_accumulation_steps
        * args.world_size,
        "resumed": resumed_from is not None,
        "resumed_from": Path(resumed_from).name if resumed_from else None,
        "log": [
            {k: v for k, v in entry.items() if k != "total_flos"} for entry in state.log_history
        ],
    }


def build_report(config, teacher, student, data: DistillData, training: dict, layer_map) -> dict:
    """Score the saved student against the teacher on the evaluation texts and gather
    everything into the report; `training` is `training_record`'s section."""
    from edgec.model import num_layers

    hp, eval_set, out = config.hp, data.eval_set, Path(config.output)
    device = training["device"]
    teacher_eval = teacher_logits(teacher, eval_set, device)
    student_eval = predict_logits(
        student.model,
        student.tokenizer,
        student.max_length,
        eval_set.texts,
        eval_set.pairs,
        device=device,
    )
    t_acc, s_acc = accuracy(teacher_eval, eval_set.labels), accuracy(student_eval, eval_set.labels)
    speedup = expected_speedup(teacher.config, student.model.config)
    return {
        "teacher": {
            "path": str(config.teacher),
            "sha256": teacher.weights_sha256,
            "accuracy": t_acc,
            "parameters": count_parameters(teacher.model),
            "layers": num_layers(teacher.config),
            "size_mb": _weights_mb(Path(config.teacher)),
        },
        "student": {
            "path": str(out),
            "spec": student.spec.text,
            "accuracy": s_acc,
            "parameters": count_parameters(student.model),
            "layers": num_layers(student.model.config),
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
        "training": training,
        "recipe": {
            "student": student.spec.text,
            "hyperparameters": asdict(hp),
            "seed": hp.seed,
            "max_length": student.max_length,
            "kd_only": data.train.labels is None,
            "unlabeled_rows": len(data.unlabeled) if data.unlabeled is not None else 0,
            "layer_map": layer_map if (hp.hidden_weight or hp.attention_weight) else None,
            "data": data_record(config, data),
        },
    }


def write_report(report: dict, out: Path) -> None:
    (Path(out) / REPORT_FILE).write_text(json.dumps(report, indent=2, default=str) + "\n")


def _training_time(training: dict) -> str:
    text = f"{training['seconds']:.0f} s, {training['steps']} steps"
    processes = training.get("processes", 1)
    if processes > 1:
        text += f", {processes} processes (global batch {training['global_batch_size']})"
    if training.get("resumed_from"):
        text += f", resumed from {training['resumed_from']}"
    return text


def summary_rows(report: dict) -> list[tuple[str, str]]:
    """Rows for the terminal table: teacher vs student."""
    t, s = report["teacher"], report["student"]

    def pct(v):
        return "-" if v is None else f"{v:.2f}%"

    rows = [
        ("student", f"{s['spec']} ({s['layers']} layers)"),
        ("teacher accuracy", pct(t["accuracy"])),
        ("student accuracy", pct(s["accuracy"])),
    ]
    if report["retention"] is not None:
        rows.append(("retention", f"{report['retention'] * 100:.1f}% of the teacher"))
    rows.append(("agreement", f"{report['agreement'] * 100:.1f}% same predictions"))
    rows += [
        (
            "parameters",
            f"{t['parameters'] / 1e6:.1f} M -> {s['parameters'] / 1e6:.1f} M "
            f"({s['parameters'] / t['parameters'] * 100:.0f}%)",
        ),
        ("size", f"{t['size_mb']:.1f} MB -> {s['size_mb']:.1f} MB"),
        ("expected speedup", f"{report['expected_speedup']:.2f}x (FLOPs)"),
        (
            "measured speedup",
            f"{report['speed']['ratio']:.2f}x (torch on this machine)",
        ),
        ("evaluated on", f"{report['eval_data']} ({report['examples']} texts)"),
        ("training time", _training_time(report["training"])),
    ]
    return rows
