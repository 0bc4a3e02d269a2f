"""Latency measurement: packages next to the source model in PyTorch, in one run.

Two modes:

- model-only: the compiled model on synthetic inputs of fixed (batch, sequence) shapes;
- end-to-end: tokenize + infer + postprocess on real texts, so the latency follows the
  data's real length distribution (`texts` given).

The baseline is the source model in PyTorch FP32 eager, both with dynamic padding and
padded to max_length, measured in the same run (under each OpenMP wait policy asked
for, the others' in a worker process); every figure is also reported as a ratio to it,
the faster policy at each shape, because on a shared machine only ratios taken
together are stable.
Subjects are measured in interleaved rounds for the same reason: a burst of someone
else's work slows every subject a little instead of one subject a lot.

Cold start is a NEW process, from spawn until the first prediction; it also reports
whether torch was imported (the runtime must not) and the process's peak RSS.

The modules, by job: `subjects` (what is timed), `run` (timing them into a report),
`torch_worker` (PyTorch under another OpenMP wait policy, in a worker process), `cold`
and `cold_child` (cold start in a new process), `render` (table, plot, JSON).
The timing primitives, shared with `edgec build`'s comparison of candidates, live in
`edgec.timing` and are re-exported here.

The re-exports load on first use: `python -m edgec.bench.cold_child` runs this file
first, and whatever it imported would be counted in every cold start it times.
"""

from __future__ import annotations

from importlib import import_module

_EXPORTS = {
    "edgec.bench.cold": ("COLD_START_TIMEOUT", "cold_start"),
    "edgec.bench.render": (
        "COLORS",
        "baseline_lines",
        "plot",
        "render_table",
        "result_rows",
        "write_json",
    ),
    "edgec.bench.run": (
        "BenchConfig",
        "accuracy",
        "add_ratios",
        "fastest_baselines",
        "measure",
        "subject_call",
        "synthetic_inputs",
    ),
    "edgec.bench.subjects": (
        "BASELINES",
        "BASELINE_DYNAMIC",
        "BASELINE_PADDED",
        "DEFAULT_BUILDS",
        "OMP_POLICIES",
        "Subject",
        "baseline_name",
        "build_for_bench",
        "collect_subjects",
        "is_package",
        "omp_policy",
        "onnx_file_subject",
        "package_subject",
        "pytorch_subjects",
    ),
    "edgec.bench.torch_worker": ("TorchWorker", "worker_subjects"),
    "edgec.timing": (
        "PERCENTILES",
        "ROUNDS",
        "interleaved",
        "ratios",
        "sentence_latency",
        "summarize",
        "text_batches",
        "timed_calls",
    ),
}
_HOME = {name: module for module, names in _EXPORTS.items() for name in names}
__all__ = sorted(_HOME)


def __getattr__(name: str):
    if name not in _HOME:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(_HOME[name]), name)
    globals()[name] = value  # found once, then an ordinary attribute
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
