"""What a distillation achieved: the task's metric for teacher and student on the same
texts (accuracy, entity F1, or the similarity rank correlation for embedders),
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

from edgec.distill.data import DistillData, data_record
from edgec.distill.predict import encode, model_inputs
from edgec.distill.students import count_parameters, expected_speedup
from edgec.distill.tasks import ClassificationRecipe

REPORT_FILE = "distill-report.json"


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


def _validation_metric_at(state, metric: str) -> float | None:
    """The validation metric of the kept (lowest-loss) checkpoint, from the log."""
    if not state.best_model_checkpoint:
        return None
    step = int(state.best_model_checkpoint.rsplit("-", 1)[1])
    key = f"eval_{metric}"
    return next(
        (e[key] for e in state.log_history if e.get("step") == step and key in e),
        None,
    )


def training_record(trainer, seconds: float, resumed_from, validation, recipe=None) -> dict:
    """The report's `training` section: how long, how far, which checkpoint, where, on
    how many processes, and the checkpoint a --resume continued from (or None)."""
    import torch

    recipe = recipe or ClassificationRecipe()
    state, args = trainer.state, trainer.args
    return {
        "seconds": round(seconds, 1),
        "steps": state.global_step,
        "epochs": round(state.epoch or 0, 2),
        "best_checkpoint": Path(state.best_model_checkpoint).name
        if state.best_model_checkpoint
        else None,
        "best_validation_loss": state.best_metric,
        f"best_validation_{recipe.validation_metric}": _validation_metric_at(
            state, recipe.validation_metric
        ),
        "validation_metric": (
            recipe.validation_name
            if recipe.has_gold(validation)
            else recipe.validation_basis(validation)
        ),
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


def build_report(
    config, teacher, student, data: DistillData, training: dict, layer_map, recipe=None
) -> dict:
    """Score the saved student against the teacher on the evaluation texts with the
    task's metric and gather everything into the report; `training` is
    `training_record`'s section."""
    from edgec.model import num_layers

    recipe = recipe or ClassificationRecipe()
    hp, eval_set, out = config.hp, data.eval_set, Path(config.output)
    scores = recipe.score(teacher, student, eval_set, training["device"])
    speedup = expected_speedup(teacher.config, student.model.config)
    return {
        "task": recipe.task,
        "metric": {
            "name": recipe.metric,
            "key": recipe.metric_key,
            "format": recipe.metric_format,
            "agreement": recipe.agreement_meaning,
        },
        "teacher": {
            "path": str(config.teacher),
            "sha256": teacher.weights_sha256,
            **scores["teacher"],
            "parameters": count_parameters(teacher.model),
            "layers": num_layers(teacher.config),
            "size_mb": _weights_mb(Path(teacher.path)),
        },
        "student": {
            "path": str(out),
            "spec": student.spec.text,
            **scores["student"],
            "parameters": count_parameters(student.model),
            "layers": num_layers(student.model.config),
            "kept_teacher_layers": student.kept_layers,
            "shares_tokenizer": student.shares_tokenizer,
            "size_mb": _weights_mb(out),
        },
        "retention": scores["retention"],
        **({"retention_note": scores["retention_note"]} if "retention_note" in scores else {}),
        "agreement": scores["agreement"],
        **{k: v for k, v in scores.items() if k not in RECIPE_SCORES},
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
            # the gold labels train nothing: the task has none, the data has none, or
            # --alpha 1 gives their CE term no weight
            "kd_only": hp.alpha == 1 or not recipe.uses_labels or not recipe.has_gold(data.train),
            "unlabeled_rows": len(data.unlabeled) if data.unlabeled is not None else 0,
            "augmented_rows": len(data.augmented) if data.augmented is not None else 0,
            "layer_map": layer_map if (hp.hidden_weight or hp.attention_weight) else None,
            "data": data_record(config, data),
        },
    }


# the keys of a recipe's scores that build_report places itself
RECIPE_SCORES = ("teacher", "student", "retention", "retention_note", "agreement")


def metric_text(value, fmt: str) -> str:
    """A metric value as reports print it: 83.12% (percent), 61.20 (points), 0.9812."""
    if value is None:
        return "-"
    if fmt == "percent":
        return f"{value:.2f}%"
    if fmt == "points":
        return f"{value:.2f}"
    return f"{value:.4f}"


def retention_text(report: dict) -> str:
    """What the student kept, in words, with the figures the retention is made of."""
    metric = report.get("metric") or {"name": "accuracy", "key": "accuracy", "format": "percent"}
    t, s = report["teacher"], report["student"]
    name, key, fmt = metric["name"], metric["key"], metric["format"]
    retention = report["retention"]
    if fmt == "share":  # the teacher's own figure is 1: the student's is the retention
        overlap = s.get("neighbour_overlap")
        return (
            f"the student's pairwise similarities rank-correlate {retention:.4f} with the "
            f"teacher's ({name}, 1.0 for the teacher itself"
            + (f"; top-{s['neighbours']} neighbour overlap {overlap:.4f}" if overlap else "")
            + f") on {report['eval_data']}"
        )
    return (
        f"the student keeps {retention * 100:.1f}% of the teacher's {name} "
        f"({metric_text(s[key], fmt)} vs {metric_text(t[key], fmt)} on {report['eval_data']})"
    )


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


def _units(report: dict) -> str:
    return "sentences" if report.get("task") == "token-classification" else "texts"


def summary_rows(report: dict) -> list[tuple[str, str]]:
    """Rows for the terminal table: teacher vs student, in the task's own metric."""
    t, s = report["teacher"], report["student"]
    metric = report.get("metric") or {"name": "accuracy", "key": "accuracy", "format": "percent"}
    name, key, fmt = metric["name"], metric["key"], metric["format"]
    rows = [
        ("student", f"{s['spec']} ({s['layers']} layers)"),
        (f"teacher {name}", metric_text(t[key], fmt)),
        (f"student {name}", metric_text(s[key], fmt)),
    ]
    if fmt == "share":  # an embedder: the student's figure is its retention
        if s.get("neighbour_overlap") is not None:
            overlap = f"{s['neighbour_overlap']:.4f} of the teacher's top-{s['neighbours']}"
            rows.append(("neighbour overlap", overlap))
        if report["retention"] is not None:
            rows.append(("retention", f"{report['retention']:.4f} ({name}; the teacher's is 1.0)"))
        rows.append(("agreement", f"{report['agreement']:.4f} {metric['agreement']}"))
    else:
        if report["retention"] is not None:
            rows.append(("retention", f"{report['retention'] * 100:.1f}% of the teacher's {name}"))
        agreement = metric.get("agreement", "same predictions")
        rows.append(("agreement", f"{report['agreement'] * 100:.1f}% {agreement}"))
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
        ("evaluated on", f"{report['eval_data']} ({report['examples']} {_units(report)})"),
        ("training time", _training_time(report["training"])),
    ]
    return rows
