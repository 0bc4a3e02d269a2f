"""What `edgec bench` times: a Subject per package, foreign ONNX file or PyTorch model.

A subject hides how each thing is loaded behind the same two calls (the bare model on
token ids, and tokenize + infer + postprocess on texts), so the harness can time them
side by side without knowing which runtime is underneath.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgec.bench.cold import child_argv
from edgec.machine import cores

# The two PyTorch baselines. Each is timed under one or more OpenMP wait policies, as a
# subject named baseline_name(kind, policy); ratios are taken against the faster.
BASELINE_DYNAMIC = "pytorch-fp32 dynamic"
BASELINE_PADDED = "pytorch-fp32 padded"
BASELINES = (BASELINE_DYNAMIC, BASELINE_PADDED)
# OMP_WAIT_POLICY for PyTorch: PASSIVE (threads sleep between parallel regions) and
# libgomp's default, unset (they spin a few ms, then sleep). ACTIVE is left out: its
# threads spin for as long as the process lives, over every other subject's turn.
OMP_POLICIES = ("PASSIVE", "default")
DEFAULT_BUILDS = ("onnxruntime:fp32", "onnxruntime:int8")


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
    # A subject that runs in another process: `timer(mode, data)` is the call to time
    # (see subject_call), one that times its share of each round over there.
    timer: Callable[[str, object], Callable[[int], object]] | None = None

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


def _argmax_labels(logits: np.ndarray, labels: list[str]) -> list:
    """Label names of the argmax: one per text, or one list per text for token logits."""
    ids = np.asarray(logits).argmax(-1)
    if ids.ndim == 2:
        return [[labels[int(i)] for i in row] for row in ids]
    return [labels[int(i)] for i in ids]


def package_subject(path: str | Path, threads: int | None = None, name: str | None = None):
    """A package, loaded through edgec.runtime exactly as a device would load it."""
    import warnings

    from edgec_runtime import load

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
        cold=child_argv("package", path, threads),
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

    from edgec.plugins import get_backend
    from edgec_runtime.archive import opened
    from edgec_runtime.loading import runtime_settings
    from edgec_runtime.manifest import read_manifest
    from edgec_runtime.predictors import make_predictor

    stack = ExitStack()  # an archive stays unpacked until the subject is closed
    directory = stack.enter_context(opened(package))
    manifest = read_manifest(directory)
    ort = get_backend("onnxruntime")
    onnx_path = Path(onnx_path)
    # The backend's own loader, pointed at the foreign file: the session a package gets.
    runner = ort.load(
        onnx_path.parent, {"files": [onnx_path.name]}, runtime_settings(manifest, threads)
    )
    predictor = make_predictor(directory, manifest, runner, keep_alive=stack)
    return Subject(
        name=name,
        kind="onnx-file",
        backend="onnxruntime",
        precision=precision,
        path=str(onnx_path),
        model=runner.run,
        predict=lambda texts: predictor.predict(texts, batch_size=max(1, len(texts))),
        size_bytes=onnx_path.stat().st_size,
        close=predictor.close,
    )


def omp_policy(env=None) -> str:
    """OMP_WAIT_POLICY of this process (or of `env`) as a label: PASSIVE, ACTIVE or
    default (unset). libgomp reads it once, when torch first loads it."""
    value = (os.environ if env is None else env).get("OMP_WAIT_POLICY", "").strip().upper()
    return value or "default"


def baseline_name(kind: str, policy: str) -> str:
    """The subject name of a PyTorch baseline (`kind`: BASELINE_*) under `policy`."""
    return f"{kind} (OMP {policy})"


def pytorch_subjects(
    model_path: str | Path,
    threads: int | None = None,
    padded: bool = True,
    policies: list[str] | tuple[str, ...] | None = None,
):
    """The source model in PyTorch FP32 eager: dynamic padding, and padded to max_length,
    under each OMP_WAIT_POLICY of `policies` (OMP_POLICIES labels; default: this
    process's). One process has one policy, so the policy this process has is timed
    here and each other one in a worker process (edgec.bench.torch_worker) that loads
    the same model and runs the same calls. Order: by policy, this process's first, so
    on a contended CPU the subject timed after a worker whose threads spin (which runs a
    little slower for it, benchmarks/NOTES.md 2) is the caller's next one, not a
    PyTorch baseline."""
    here = omp_policy()
    policies = sorted(dict.fromkeys(policies or [here]), key=lambda p: p != here)
    groups = []
    for policy in policies:
        if policy == here:
            groups.append(_pytorch_here(model_path, threads, padded, policy))
        elif policy not in OMP_POLICIES:
            raise ValueError(
                f"OMP_WAIT_POLICY {policy!r} cannot be timed in a worker: give one of "
                f"{', '.join(OMP_POLICIES)}"
            )
        else:
            from edgec.bench.torch_worker import worker_subjects

            groups.append(worker_subjects(model_path, threads, padded, policy))
    subjects = [s for g in groups for s in g]
    for s in subjects[1:]:
        s.cold = None  # cold start once: the same import and load under any policy
    return subjects


def _pytorch_here(model_path: str | Path, threads: int | None, padded: bool, policy: str):
    """pytorch_subjects in this process, whose OpenMP runs under `policy`."""
    import torch

    from edgec.heads import task_outputs
    from edgec.model import load_source_model, weights_file
    from edgec_runtime.iospec import SENTENCE_EMBEDDING

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

    def outputs(feed: dict):  # the task's graph output: logits, or the pooled embedding
        return task_outputs(model, source.task, source.task_facts, feed)

    def forward(inputs: dict) -> np.ndarray:
        with torch.inference_mode():
            feed = {n: torch.from_numpy(np.asarray(inputs[n], dtype=np.int64)) for n in names}
            return outputs(feed).numpy()

    def e2e(padding: str):
        def run(texts: list[str]) -> list:
            enc = tokenizer(
                texts, truncation=True, max_length=max_length, padding=padding, return_tensors="pt"
            )
            with torch.inference_mode():
                out = outputs({n: enc[n] for n in names})
            if source.task == SENTENCE_EMBEDDING:
                return list(out.numpy())
            # classifier: a label per text; tagger: a label per token (the softmax and
            # argmax a user's post-processing starts from)
            return _argmax_labels(torch.softmax(out, -1).numpy(), labels)

        return run

    size = weights_file(Path(model_path)).stat().st_size

    def subject(kind: str, **calls) -> Subject:
        return Subject(
            name=baseline_name(kind, policy),
            kind="pytorch",
            backend="pytorch",
            precision="fp32",
            path=str(model_path),
            size_bytes=size,
            extra={
                "max_length": max_length,
                "vocab_size": len(tokenizer),
                "baseline": kind,
                "omp_wait_policy": policy,
                "process": "this",
                "torch_threads": torch.get_num_threads(),
            },
            **calls,
        )

    subjects = [
        subject(
            BASELINE_DYNAMIC,
            model=forward,
            predict=e2e("longest"),
            cold=child_argv("pytorch", model_path, threads),
        )
    ]
    if padded:
        subjects.append(
            subject(
                BASELINE_PADDED,
                model=lambda inputs: forward(pad_to_max(inputs)),
                predict=e2e("max_length"),
            )
        )
    return subjects


def is_package(path: Path) -> bool:
    return (path / "edgec.json").is_file() or path.name.endswith((".tar.gz", ".tgz"))


def build_for_bench(
    model: Path,
    spec: str,
    workdir: Path,
    calibration_texts: list[str] | None = None,
    options: dict | None = None,
) -> Path:
    """An unverified package of `model` for one backend:precision, written into workdir.

    Latency does not depend on verification, so none is run; the calibration texts
    (default: a few probe sentences) drive fusion checks, static quantization and an
    in-graph tokenizer's check. `options`: -O pairs (e.g. {"tokenizer": "graph"}).
    """
    import csv
    import dataclasses

    from edgec.export import PROBE_TEXTS
    from edgec.pipeline import BuildRequest, build, parse_candidate
    from edgec.plugins import get_backend
    from edgec.targets import get_target

    name, precision = parse_candidate(spec)
    backend = get_backend(name)
    precision = precision or backend.precisions[0]
    calib = workdir / "calibration.csv"
    if not calib.exists():
        with calib.open("w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(["text"])
            for t in (calibration_texts or PROBE_TEXTS * 4)[:64]:
                w.writerow([t])
    # host's thread count and shapes, this backend's device, none of host's extras
    target = dataclasses.replace(
        get_target("host"), backend=name, precision=precision, device=backend.devices[0], options={}
    )
    out = workdir / f"{name}-{precision}"
    build(
        BuildRequest(
            model=model,
            target=target,
            output=out,
            calibration_data=calib,
            backend=name,
            precision=precision,
            options=dict(options or {}),
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
    torch_policies: list[str] | None = None,
) -> list[Subject]:
    """Subjects for `edgec bench PATH...`: packages as given (filtered by `backends`),
    a MODEL folder compiled for each of `backends` into `workdir`, and the PyTorch
    baseline from the MODEL or the first package's source model when it exists, under
    each OMP_WAIT_POLICY of `torch_policies` (default: this process's)."""
    from edgec.pipeline import parse_candidate
    from edgec_runtime.archive import opened
    from edgec_runtime.errors import BadInput
    from edgec_runtime.manifest import read_manifest

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
    wanted = [parse_candidate(b) for b in backends or []]

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
        subjects = [*pytorch_subjects(source, threads, padded, torch_policies), *subjects]
    elif baseline and progress:
        progress(
            "no PyTorch baseline: the packages' source model is not on this machine (or was "
            "a distilled student); pass its folder too: edgec bench PKG... MODEL"
        )
    return subjects
