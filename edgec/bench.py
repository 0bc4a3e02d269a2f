"""Latency measurement: packages next to the source model in PyTorch, in one run.

Two modes:

- model-only: the compiled model on synthetic inputs of fixed (batch, sequence) shapes;
- end-to-end: tokenize + infer + postprocess on real texts, so the latency follows the
  data's real length distribution (`texts` given).

The baseline is the source model in PyTorch FP32 eager, both with dynamic padding and
padded to max_length, measured in the same run; every figure is also reported as a
ratio to it, because on a shared machine only ratios taken together are stable.
Subjects are measured in interleaved rounds for the same reason: a burst of someone
else's work slows every subject a little instead of one subject a lot.

Cold start is a NEW process, from spawn until the first prediction; it also reports
whether torch was imported (the runtime must not) and the process's peak RSS.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgec.machine import CpuLoad, cores, describe_machine
from edgec.timing import (  # noqa: F401  (re-exported for benchmarks/)
    PERCENTILES,
    ROUNDS,
    interleaved,
    ratios,
    sentence_latency,
    summarize,
    text_batches,
)

BASELINE_DYNAMIC = "pytorch-fp32 dynamic"
BASELINE_PADDED = "pytorch-fp32 padded"
COLD_START_TIMEOUT = 120  # seconds a new process may take to its first prediction


# ------------------------------------------------------------------- subjects


@dataclass
class Subject:
    """One thing to time. `model(inputs)` runs the bare model; `predict(texts)` runs
    tokenize + infer + postprocess. `cold` is the argv of a fresh process that prints
    one JSON line after its first prediction."""

    name: str
    kind: str  # "package", "pytorch" or "onnx-file"
    backend: str
    precision: str
    path: str
    model: Callable[[dict], object] | None = None
    predict: Callable[[list[str]], list] | None = None
    cold: list[str] | None = None
    size_bytes: int | None = None
    extra: dict = field(default_factory=dict)
    close: Callable[[], None] | None = None

    def describe(self) -> dict:
        return {
            "name": self.name,
            "kind": self.kind,
            "backend": self.backend,
            "precision": self.precision,
            "path": self.path,
            "size_mb": round(self.size_bytes / 1e6, 2) if self.size_bytes else None,
            **self.extra,
        }


def _argmax_labels(logits: np.ndarray, labels: list[str]) -> list[str]:
    return [labels[int(i)] for i in np.asarray(logits).argmax(-1)]


def package_subject(path: str | Path, threads: int | None = None, name: str | None = None):
    """A package, loaded through edgec.runtime exactly as a device would load it."""
    import warnings

    from edgec.runtime import load

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        predictor = load(path, threads=threads)
    manifest = predictor.manifest
    backend = manifest["backend"]
    size = sum(manifest["files"][f]["size"] for f in backend["files"])
    distilled = manifest.get("distillation")
    label = name or f"{backend['name']} {backend['precision']}" + (
        " (student)" if distilled else ""
    )
    return Subject(
        name=label,
        kind="package",
        backend=backend["name"],
        precision=backend["precision"],
        path=str(path),
        model=predictor.runner.run,
        predict=lambda texts: predictor.predict(texts, batch_size=max(1, len(texts))),
        cold=[sys.executable, "-c", COLD_PACKAGE, str(path), str(threads or 0)],
        size_bytes=size,
        extra={
            "verified": predictor.verified,
            "max_length": predictor.preprocessing["max_length"],
            "source_model": manifest["source_model"].get("path"),
            "distilled": bool(distilled),
            "vocab_size": predictor.tokenizer.get_vocab_size(),
        },
        close=predictor.close,
    )


def onnx_file_subject(
    onnx_path: str | Path,
    package: str | Path,
    name: str,
    threads: int | None = None,
    precision: str = "int8",
):
    """A foreign ONNX file (e.g. optimum's) timed by edgec's ORT session code, with the
    tokenizer and postprocessing of `package`: only the model differs."""
    from contextlib import ExitStack

    from edgec.backends.onnxruntime import OrtRunner
    from edgec.package import opened, read_manifest
    from edgec.runtime import Predictor, runtime_options

    stack = ExitStack()  # an archive stays unpacked until the subject is closed
    directory = stack.enter_context(opened(package))
    manifest = read_manifest(directory)
    runner = OrtRunner(Path(onnx_path), runtime_options(manifest, threads))
    predictor = Predictor(directory, manifest, runner, keep_alive=stack)
    return Subject(
        name=name,
        kind="onnx-file",
        backend="onnxruntime",
        precision=precision,
        path=str(onnx_path),
        model=runner.run,
        predict=lambda texts: predictor.predict(texts, batch_size=max(1, len(texts))),
        size_bytes=Path(onnx_path).stat().st_size,
        close=predictor.close,
    )


def pytorch_subjects(model_path: str | Path, threads: int | None = None, padded: bool = True):
    """The source model in PyTorch FP32 eager: dynamic padding, and padded to max_length."""
    import torch

    from edgec.model import load_source_model, weights_file

    torch.set_num_threads(threads or cores())
    source = load_source_model(model_path)
    model, tokenizer, names = source.model, source.tokenizer, source.input_names
    labels, max_length = source.labels, source.max_length
    pad_id = tokenizer.pad_token_id or 0

    def pad_to_max(inputs: dict) -> dict:
        out = {}
        for n, v in inputs.items():
            v = np.asarray(v)
            fill = pad_id if n == "input_ids" else 0
            extra = max_length - v.shape[1]
            out[n] = np.pad(v, ((0, 0), (0, extra)), constant_values=fill) if extra > 0 else v
        return out

    def forward(inputs: dict) -> np.ndarray:
        with torch.inference_mode():
            feed = {n: torch.from_numpy(np.asarray(inputs[n], dtype=np.int64)) for n in names}
            return model(**feed).logits.numpy()

    def e2e(padding: str):
        def run(texts: list[str]) -> list[str]:
            enc = tokenizer(
                texts, truncation=True, max_length=max_length, padding=padding, return_tensors="pt"
            )
            with torch.inference_mode():
                logits = model(**{n: enc[n] for n in names}).logits
            probs = torch.softmax(logits, -1).numpy()
            return _argmax_labels(probs, labels)

        return run

    size = weights_file(Path(model_path)).stat().st_size
    common = dict(
        kind="pytorch",
        backend="pytorch",
        precision="fp32",
        path=str(model_path),
        size_bytes=size,
        extra={"max_length": max_length, "vocab_size": len(tokenizer)},
    )
    subjects = [
        Subject(
            name=BASELINE_DYNAMIC,
            model=forward,
            predict=e2e("longest"),
            cold=[sys.executable, "-c", COLD_PYTORCH, str(model_path), str(threads or 0)],
            **common,
        )
    ]
    if padded:
        subjects.append(
            Subject(
                name=BASELINE_PADDED,
                model=lambda inputs: forward(pad_to_max(inputs)),
                predict=e2e("max_length"),
                **common,
            )
        )
    return subjects


# ------------------------------------------------------------------- what to time

DEFAULT_BUILDS = ("onnxruntime:fp32", "onnxruntime:int8")


def is_package(path: Path) -> bool:
    return (path / "edgec.json").is_file() or path.name.endswith(".tar.gz")


def parse_backend(spec: str) -> tuple[str, str | None]:
    """`NAME` or `NAME:PRECISION`, e.g. `onnxruntime:int8`."""
    name, _, precision = spec.partition(":")
    return name.strip(), precision.strip() or None


def build_for_bench(
    model: Path, spec: str, workdir: Path, calibration_texts: list[str] | None = None
) -> Path:
    """An unverified package of `model` for one backend:precision, written into workdir.

    Latency does not depend on verification, so none is run; the calibration texts
    (default: a few probe sentences) drive fusion checks and static quantization.
    """
    import csv

    from edgec.export import PROBE_TEXTS
    from edgec.pipeline import BuildRequest, build
    from edgec.plugins import get_backend
    from edgec.targets import get_target

    name, precision = parse_backend(spec)
    backend = get_backend(name)
    precision = precision or backend.precisions[0]
    calib = workdir / "calibration.csv"
    if not calib.exists():
        with calib.open("w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(["text"])
            for t in (calibration_texts or PROBE_TEXTS * 4)[:64]:
                w.writerow([t])
    target = get_target("host")
    target.backend, target.precision = name, precision
    target.device = backend.devices[0]
    target.options = {}
    out = workdir / f"{name}-{precision}"
    build(
        BuildRequest(
            model=model,
            target=target,
            output=out,
            calibration_data=calib,
            backend=name,
            precision=precision,
            verify=False,
            force=True,
        )
    )
    return out


def collect_subjects(
    paths: list[Path],
    backends: list[str] | None = None,
    threads: int | None = None,
    baseline: bool = True,
    padded: bool = True,
    workdir: Path | None = None,
    calibration_texts: list[str] | None = None,
    progress=None,
) -> list[Subject]:
    """Subjects for `edgec bench PATH...`: packages as given (filtered by `backends`),
    a MODEL folder compiled for each of `backends` into `workdir`, and the PyTorch
    baseline from the MODEL or the first package's source model when it exists."""
    from edgec.errors import BadInput
    from edgec.package import opened, read_manifest

    packages: list[Path] = []
    models: list[Path] = []
    for p in paths:
        p = Path(p)
        if not p.exists():
            raise BadInput(f"{p} does not exist: pass a package or a model folder")
        if is_package(p):
            packages.append(p)
        elif (p / "config.json").is_file():
            models.append(p)
        else:
            raise BadInput(
                f"{p} is neither an edgec package (no edgec.json) nor a model folder (no config.json)"
            )
    if len(models) > 1:
        raise BadInput("give at most one MODEL folder (it is the baseline); packages may be many")
    wanted = [parse_backend(b) for b in backends or []]

    def selected(manifest: dict) -> bool:
        b = manifest["backend"]
        return not wanted or any(
            n == b["name"] and (p is None or p == b["precision"]) for n, p in wanted
        )

    source = models[0] if models else None
    subjects: list[Subject] = []
    for p in packages:
        with opened(p) as d:
            manifest = read_manifest(d)
        if source is None:
            candidate = Path(manifest["source_model"].get("path") or "")
            if str(candidate) and (candidate / "config.json").is_file():
                source = candidate
        if selected(manifest):
            subjects.append(package_subject(p, threads))
    if models:
        if workdir is None:
            raise BadInput("benching a MODEL folder needs a work directory for its packages")
        for spec in backends or DEFAULT_BUILDS:
            if progress:
                progress(f"compiling {models[0]} for {spec}")
            subjects.append(
                package_subject(
                    build_for_bench(models[0], spec, workdir, calibration_texts), threads
                )
            )
    if packages and not subjects:
        raise BadInput(f"no package matches --backend {', '.join(backends or [])}")
    seen: set[str] = set()
    for s in subjects:
        if s.name in seen:
            s.name = f"{s.name} [{Path(s.path).name}]"
        seen.add(s.name)
    if baseline and source is not None:
        if progress:
            progress(f"loading the PyTorch baseline {source}")
        subjects = [*pytorch_subjects(source, threads, padded), *subjects]
    elif baseline and progress:
        progress(
            "no PyTorch baseline: the packages' source model is not on this machine (or was "
            "a distilled student); pass its folder too: edgec bench PKG... MODEL"
        )
    return subjects


# ------------------------------------------------------------------- cold start

_COLD_REPORT = """
import json
import psutil
def peak_mb():
    # VmHWM, not ru_maxrss: the latter can carry the parent's peak across fork+exec.
    try:
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1e3
    except OSError:
        pass
    return psutil.Process().memory_info().rss / 1e6
print(json.dumps({
    "seconds": time.perf_counter() - T0,
    "torch_imported": "torch" in sys.modules,
    "rss_mb": psutil.Process().memory_info().rss / 1e6,
    "peak_rss_mb": peak_mb(),
}), flush=True)
"""

COLD_PACKAGE = (
    """
import sys, time
T0 = time.perf_counter()
import warnings
warnings.simplefilter("ignore")
from edgec.runtime import load
p = load(sys.argv[1], threads=int(sys.argv[2]) or None)
p.predict(["a gorgeous, witty, seductive movie."])
"""
    + _COLD_REPORT
)

COLD_PYTORCH = (
    """
import sys, time
T0 = time.perf_counter()
import os
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
import torch
if int(sys.argv[2]):
    torch.set_num_threads(int(sys.argv[2]))
from edgec.model import load_source_model
s = load_source_model(sys.argv[1])
enc = s.tokenizer(["a gorgeous, witty, seductive movie."], return_tensors="pt")
with torch.inference_mode():
    s.model(**{n: enc[n] for n in s.input_names}).logits.softmax(-1)
"""
    + _COLD_REPORT
)


def cold_start(argv: list[str], runs: int = 3) -> dict:
    """Spawn `argv` `runs` times; time from spawn until its first prediction is printed.

    The child's own clock starts after the interpreter is up, so the parent's clock is
    the one reported; disk caches are warm after the first run (reported separately).
    """
    import tempfile
    import threading

    samples, reports = [], []
    for _ in range(runs):
        # stderr goes to a file: a chatty child must not block on a full pipe, and a
        # child that hangs is killed rather than hanging the benchmark.
        with tempfile.TemporaryFile(mode="w+") as err:
            started = time.perf_counter()
            proc = subprocess.Popen(
                argv, stdout=subprocess.PIPE, stderr=err, text=True, env=_child_env()
            )
            watchdog = threading.Timer(COLD_START_TIMEOUT, proc.kill)
            watchdog.start()
            try:
                line = proc.stdout.readline()
                elapsed = time.perf_counter() - started
                proc.communicate()
            finally:
                watchdog.cancel()
            err.seek(0)
            message = (err.read().strip().splitlines() or ["no output"])[-1]
        if proc.returncode != 0 or not line.strip():
            if elapsed >= COLD_START_TIMEOUT:
                message = f"no prediction within {COLD_START_TIMEOUT} s"
            return {"error": message}
        samples.append(elapsed)
        reports.append(json.loads(line))
    last = reports[-1]
    return {
        "seconds": round(float(np.median(samples)), 3),
        "first_seconds": round(samples[0], 3),
        "runs": len(samples),
        "torch_imported": any(r["torch_imported"] for r in reports),
        "rss_mb": round(last["rss_mb"], 1),
        "peak_rss_mb": round(max(r["peak_rss_mb"] for r in reports), 1),
    }


def _child_env() -> dict:
    env = dict(os.environ)
    env.setdefault("TQDM_DISABLE", "1")
    env["PYTHONWARNINGS"] = "ignore"
    return env


# ------------------------------------------------------------------- inputs and timing


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


# ------------------------------------------------------------------- the run


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
            "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
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
                calls[s.name] = lambda i, s=s, lots=lots: s.predict(lots[i % len(lots)])
        else:
            for s in subjects:
                inputs = synthetic_inputs(_input_names(s), batch, seq, vocab)
                calls[s.name] = lambda i, s=s, x=inputs: s.model(x)
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


def add_ratios(report: dict) -> None:
    """Attach to each result its ratios to both PyTorch baselines at the same shape."""
    by_key = {(r["subject"], r["batch"], r["seq_len"]): r for r in report["results"]}
    for r in report["results"]:
        r["vs"] = {}
        for base in (BASELINE_DYNAMIC, BASELINE_PADDED):
            b = by_key.get((base, r["batch"], r["seq_len"]))
            if b is not None:
                r["vs"][base] = ratios(r["stats"], b["stats"])


def accuracy(subject: Subject, texts: list[str], labels: list[str], batch: int = 32) -> float:
    """Share of `texts` whose predicted label equals `labels` (as label names)."""
    predicted: list[str] = []
    for i in range(0, len(texts), batch):
        out = subject.predict(texts[i : i + batch])
        predicted += [p["label"] if isinstance(p, dict) else p for p in out]
    return float(np.mean([p == t for p, t in zip(predicted, labels, strict=True)]))


# ------------------------------------------------------------------- rendering


def result_rows(report: dict) -> list[dict]:
    """Flat rows for a table: one per subject and shape."""
    subjects = {s["name"]: s for s in report["subjects"]}
    rows = []
    for r in report["results"]:
        s = subjects[r["subject"]]
        st = r["stats"]
        cold = s.get("cold_start") or {}
        rows.append(
            {
                "subject": r["subject"],
                "shape": f"b{r['batch']}" + (f" s{r['seq_len']}" if r["seq_len"] else " real"),
                **{k: st[k] for k in ("p50", "p90", "p95", "p99", "mean", "std", "throughput")},
                "x_dynamic": r["vs"].get(BASELINE_DYNAMIC, {}).get("speedup"),
                "x_padded": r["vs"].get(BASELINE_PADDED, {}).get("speedup"),
                "cold_s": cold.get("seconds"),
                "torch": cold.get("torch_imported") and s["kind"] == "package",
                "peak_rss_mb": cold.get("peak_rss_mb"),
                "size_mb": s.get("size_mb"),
                "busy": r["cpu"]["busy"],
                "steal": r["cpu"]["steal"],
            }
        )
    return rows


def render_table(report: dict, console) -> None:
    from rich.markup import escape
    from rich.table import Table
    from rich.text import Text

    def f(x, fmt="{:.1f}"):
        return "-" if x is None else fmt.format(x)

    m = report["machine"]
    cpu = report.get("cpu", {})
    title = (
        f"edgec bench ({report['config']['mode']}) on {m['cpu']}, {m['cores']} cores, "
        f"{report['config']['threads']} threads; CPU busy {f(cpu.get('busy'), '{:.0%}')}, "
        f"others {f(cpu.get('others'), '{:.0%}')}, steal {f(cpu.get('steal'), '{:.0%}')}"
    )
    if not console.is_terminal or console.width < 150:
        from rich.console import Console

        console = Console(width=170, highlight=False)
    table = Table(title=title, title_justify="left")
    for col in ("subject", "shape", "p50 ms", "p90", "p95", "p99", "mean", "std", "items/s"):
        table.add_column(col, justify="left" if col in ("subject", "shape") else "right")
    table.add_column("x torch dyn", justify="right")
    table.add_column("x torch pad", justify="right")
    table.add_column("cold s", justify="right")
    table.add_column("peak RSS MB", justify="right")
    table.add_column("size MB", justify="right")
    last_shape = None
    for row in result_rows(report):
        if last_shape is not None and row["shape"] != last_shape:
            table.add_section()
        last_shape = row["shape"]
        table.add_row(
            Text(row["subject"]),
            row["shape"],
            *(f(row[k], "{:.2f}") for k in ("p50", "p90", "p95", "p99", "mean", "std")),
            f(row["throughput"]),
            f(row["x_dynamic"], "{:.2f}x"),
            f(row["x_padded"], "{:.2f}x"),
            f(row["cold_s"], "{:.2f}") + (" (imports torch!)" if row["torch"] else ""),
            f(row["peak_rss_mb"], "{:.0f}"),
            f(row["size_mb"]),
        )
    console.print(table)
    for w in report["warnings"]:
        console.print(f"[yellow]warning:[/] {escape(w)}")


COLORS = {"pytorch": "#7f7f7f", "fp32": "#1f77b4", "int8": "#2ca02c", "onnx-file": "#ff7f0e"}


def _color(subject: dict) -> str:
    if subject["kind"] == "pytorch":
        return COLORS["pytorch"]
    if subject["kind"] == "onnx-file":
        return COLORS["onnx-file"]
    return COLORS["int8"] if "int8" in subject["precision"] else COLORS["fp32"]


def plot(report: dict, path: str | Path, title: str | None = None) -> Path:
    """Latency distribution per subject, one panel per shape: boxes (p25-p75), whiskers
    (p5-p95), the p50 written beside each box; log scale when the spread is wide."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    subjects = {s["name"]: s for s in report["subjects"]}
    shapes: list[tuple] = []
    for r in report["results"]:
        key = (r["batch"], r["seq_len"])
        if key not in shapes:
            shapes.append(key)
    names = list(subjects)
    fig, axes = plt.subplots(
        len(shapes),
        1,
        figsize=(10, 0.55 * len(names) * len(shapes) + 1.4 * len(shapes)),
        squeeze=False,
    )
    for ax, (batch, seq) in zip(axes[:, 0], shapes, strict=True):
        rows = [r for r in report["results"] if (r["batch"], r["seq_len"]) == (batch, seq)]
        rows.sort(key=lambda r: -r["stats"]["p50"])
        data = [r["latencies_ms"] for r in rows]
        box = ax.boxplot(
            data,
            orientation="horizontal",
            whis=(5, 95),
            patch_artist=True,
            showfliers=True,
            widths=0.6,
            flierprops={"markersize": 3, "alpha": 0.5},
            medianprops={"color": "black", "linewidth": 1.5},
        )
        for patch, r in zip(box["boxes"], rows, strict=True):
            patch.set_facecolor(_color(subjects[r["subject"]]))
            patch.set_alpha(0.75)
        labels = [r["subject"] for r in rows]
        ax.set_yticks(range(1, len(rows) + 1), labels)
        lo = min(min(d) for d in data)
        hi = max(max(d) for d in data)
        if hi / max(lo, 1e-6) > 8:
            from matplotlib.ticker import FuncFormatter, LogLocator

            ax.set_xscale("log")
            plain = FuncFormatter(lambda v, _: f"{v:g}")
            ax.xaxis.set_major_formatter(plain)
            ax.xaxis.set_minor_locator(LogLocator(subs=(2, 5)))
            ax.xaxis.set_minor_formatter(plain)
        for y, r in enumerate(rows, start=1):
            p50 = r["stats"]["p50"]
            speed = r.get("vs", {}).get(BASELINE_DYNAMIC, {}).get("speedup")
            text = f"p50 {p50:.1f} ms" + (f"  ({speed:.1f}x)" if speed else "")
            ax.annotate(
                text,
                (max(r["latencies_ms"]), y),
                xytext=(6, 0),
                textcoords="offset points",
                va="center",
                fontsize=9,
            )
        ax.set_xlim(right=hi * (3 if ax.get_xscale() == "log" else 1.35))
        shape = f"batch {batch}, " + (f"seq {seq}" if seq else "real text lengths")
        ax.set_title(shape, loc="left", fontsize=11)
        ax.set_xlabel("latency per call, ms (box p25-p75, whiskers p5-p95)")
        ax.grid(axis="x", alpha=0.3, which="both")
    from matplotlib.patches import Patch

    legend = [
        Patch(color=COLORS["pytorch"], label="PyTorch FP32 eager"),
        Patch(color=COLORS["fp32"], label="package, fp32/fp16"),
        Patch(color=COLORS["int8"], label="package, int8"),
        Patch(color=COLORS["onnx-file"], label="peer model file"),
    ]
    top = 1 - 0.65 / fig.get_figheight()  # room for the title and legend, in inches
    fig.legend(
        handles=legend,
        loc="upper center",
        ncol=4,
        fontsize=9,
        bbox_to_anchor=(0.5, top + 0.3 / fig.get_figheight()),
        frameon=False,
    )
    m = report["machine"]
    fig.suptitle(
        title
        or f"edgec bench, {report['config']['mode']}: {m['cpu']}, "
        f"{report['config']['threads']} threads  (x = speedup vs PyTorch FP32 dynamic)",
        fontsize=11,
    )
    fig.tight_layout(rect=(0, 0, 1, top))
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_json(report: dict, path: str | Path) -> Path:
    path = Path(path)
    path.write_text(json.dumps(report, indent=1, default=str) + "\n", encoding="utf-8")
    return path
