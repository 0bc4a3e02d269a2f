"""The run: every subject at every shape, in interleaved rounds, into one report.

Model-only mode feeds synthetic token ids of fixed shapes; end-to-end mode feeds
batches drawn from real texts. Every figure gets its ratio to the PyTorch baselines of
the same shape, because only ratios taken in one run are stable on a shared machine.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field
from functools import partial

import numpy as np

from edgec.bench.cold import cold_start
from edgec.bench.subjects import BASELINES, Subject
from edgec.machine import CpuLoad, cores, describe_machine
from edgec.timing import ROUNDS, interleaved, ratios, summarize, text_batches


@dataclass
class BenchConfig:
    batches: list[int] = field(default_factory=lambda: [1, 8])
    seq_lens: list[int] = field(default_factory=lambda: [32, 128])
    texts: list[str] | None = None  # end-to-end mode when given
    texts_source: str | None = None
    runs: int = 30
    warmup: int = 3
    threads: int | None = None
    cold_runs: int = 3
    vocab_size: int = 1000

    @property
    def mode(self) -> str:
        return "end-to-end" if self.texts else "model"

    def shapes(self) -> list[tuple[int, int | None]]:
        if self.texts:
            return [(b, None) for b in self.batches]
        return [(b, s) for b in self.batches for s in self.seq_lens]


def synthetic_inputs(
    input_names: list[str], batch: int, seq_len: int, vocab_size: int = 1000, seed: int = 0
) -> dict[str, np.ndarray]:
    """Random token ids of one shape, no padding: the model's cost at exactly that shape."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(5, max(vocab_size, 6), size=(batch, seq_len), dtype=np.int64)
    feeds = {
        "input_ids": ids,
        "attention_mask": np.ones((batch, seq_len), dtype=np.int64),
        "token_type_ids": np.zeros((batch, seq_len), dtype=np.int64),
    }
    return {n: feeds[n] for n in input_names}


def subject_call(subject: Subject, mode: str, data):
    """The call `measure` times for one subject at one shape: `mode` "predict" on a
    list of text batches (`data`, call i takes batch i), or "model" on one feed dict.
    A torch worker runs this very function on its own copy of the subject."""
    if mode == "predict":
        return lambda i: subject.predict(data[i % len(data)])
    return lambda i: subject.model(data)


def _input_names(subject: Subject) -> list[str]:
    names = getattr(getattr(subject.model, "__self__", None), "input_names", None)
    return list(names) if names else ["input_ids", "attention_mask", "token_type_ids"]


def measure(subjects: list[Subject], config: BenchConfig, progress=None) -> dict:
    """Time every subject at every shape; return the report (JSON-ready)."""
    report = {
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": describe_machine(),
        "config": {
            "mode": config.mode,
            "batches": config.batches,
            "seq_lens": None if config.texts else config.seq_lens,
            "texts": config.texts_source,
            "text_count": len(config.texts) if config.texts else None,
            "runs": config.runs,
            "warmup": config.warmup,
            "threads": config.threads or cores(),
            "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),  # this process's
            "torch_omp_policies": list(
                dict.fromkeys(
                    s.extra["omp_wait_policy"] for s in subjects if s.extra.get("baseline")
                )
            ),
            "torch_loaded_before": "torch" in sys.modules,
        },
        "subjects": [s.describe() for s in subjects],
        "results": [],
        "warnings": [],
    }
    vocab = min(
        [s.extra["vocab_size"] for s in subjects if s.extra.get("vocab_size")]
        or [config.vocab_size]
    )
    whole = CpuLoad().start()
    for batch, seq in config.shapes():
        if progress:
            progress(f"batch {batch}" + (f", seq {seq}" if seq else ", real lengths"))
        calls = {}
        if config.texts:
            lots = text_batches(config.texts, batch, config.runs + config.warmup + ROUNDS + 1)
        for s in subjects:
            mode = "predict" if config.texts else "model"
            data = lots if config.texts else synthetic_inputs(_input_names(s), batch, seq, vocab)
            calls[s.name] = (s.timer or partial(subject_call, s))(mode, data)
        with CpuLoad() as load:
            times = interleaved(calls, config.runs, config.warmup)
        for s in subjects:
            report["results"].append(
                {
                    "subject": s.name,
                    "batch": batch,
                    "seq_len": seq,
                    "stats": summarize(times[s.name], batch),
                    "latencies_ms": [round(t, 3) for t in times[s.name]],
                    "cpu": load.as_dict(),
                }
            )
        if load.contended():
            report["warnings"].append(
                f"batch {batch}{f' seq {seq}' if seq else ''}: the CPU was visibly contended "
                f"({load.others:.0%} used by other processes, {load.steal:.0%} stolen): "
                "compare ratios, not absolute times"
            )
    report["cpu"] = whole.stop().as_dict()
    add_ratios(report)
    if config.cold_runs:
        for s, d in zip(subjects, report["subjects"], strict=True):
            if s.cold:
                if progress:
                    progress(f"cold start: {s.name}")
                d["cold_start"] = cold_start(s.cold, config.cold_runs)
    for d in report["subjects"]:
        if d["kind"] == "package" and d.get("cold_start", {}).get("torch_imported"):
            report["warnings"].append(f"{d['name']}: the runtime imported torch")
    return report


def fastest_baselines(report: dict) -> dict[tuple[str, int, int | None], dict]:
    """{(BASELINE_*, batch, seq_len): result}: at each shape, the PyTorch baseline's
    result under the OMP_WAIT_POLICY that was faster there (lower p50)."""
    kinds = {s["name"]: s.get("baseline") for s in report["subjects"]}
    kinds.update({k: k for k in BASELINES if k in kinds})  # reports from before policies
    best: dict[tuple[str, int, int | None], dict] = {}
    for r in report["results"]:
        kind = kinds.get(r["subject"])
        if kind:
            key = (kind, r["batch"], r["seq_len"])
            if key not in best or r["stats"]["p50"] < best[key]["stats"]["p50"]:
                best[key] = r
    return best


def add_ratios(report: dict) -> None:
    """Attach to each result its ratios to both PyTorch baselines at the same shape,
    each the faster of its policies there; `against` names the subject it was."""
    policy = {s["name"]: s.get("omp_wait_policy") for s in report["subjects"]}
    best = fastest_baselines(report)
    for r in report["results"]:
        r["vs"] = {}
        for kind in BASELINES:
            b = best.get((kind, r["batch"], r["seq_len"]))
            if b is not None:
                r["vs"][kind] = {
                    **ratios(r["stats"], b["stats"]),
                    "against": b["subject"],
                    "omp_wait_policy": policy.get(b["subject"]),
                }


def accuracy(subject: Subject, texts: list[str], labels: list[str], batch: int = 32) -> float:
    """Share of `texts` whose predicted label equals `labels` (as label names)."""
    predicted: list[str] = []
    for i in range(0, len(texts), batch):
        out = subject.predict(texts[i : i + batch])
        predicted += [p["label"] if isinstance(p, dict) else p for p in out]
    return float(np.mean([p == t for p, t in zip(predicted, labels, strict=True)]))
