"""What a distillation achieved: accuracy of teacher and student on the same texts,
retention, size, and the speed ratio measured on this machine with torch.

Each model is fed its own tokenization of the raw text, so a student with a different
tokenizer is judged exactly as it will be deployed.
"""

from __future__ import annotations

import statistics
import time

import numpy as np

from edgec.batching import length_sorted_batches

REPORT_FILE = "distill-report.json"


def _encode(tokenizer, texts, pairs, max_length):
    return tokenizer(
        list(texts),
        list(pairs) if pairs is not None else None,
        truncation=True,
        max_length=max_length,
        padding="longest",
        return_tensors="pt",
    )


def model_inputs(model, encoded) -> dict:
    """Only the inputs the model's forward takes (DistilBERT has no token_type_ids)."""
    import inspect

    accepted = inspect.signature(model.forward).parameters
    return {k: v for k, v in encoded.items() if k in accepted}


def predict_logits(model, tokenizer, max_length, texts, pairs=None, batch_size=64, device="cpu"):
    """Logits for raw texts, length-sorted batches with dynamic padding, eval mode."""
    import torch

    model.eval()
    lengths = [len(t) + (len(pairs[i]) if pairs is not None else 0) for i, t in enumerate(texts)]
    out = np.zeros((len(texts), model.config.num_labels), dtype=np.float32)
    with torch.no_grad():
        for idx in length_sorted_batches(lengths, batch_size):
            encoded = _encode(
                tokenizer,
                [texts[i] for i in idx],
                [pairs[i] for i in idx] if pairs is not None else None,
                max_length,
            )
            inputs = {k: v.to(device) for k, v in model_inputs(model, encoded).items()}
            out[idx] = model(**inputs).logits.float().cpu().numpy()
    return out


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
    encoded = [model_inputs(model, _encode(tokenizer, c, None, max_length)) for c in chunks]
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
        (
            "training time",
            f"{report['training']['seconds']:.0f} s, {report['training']['steps']} steps",
        ),
    ]
    return rows
