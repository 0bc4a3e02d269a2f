"""make bench, int8 on the real models: dynamic, static and int8-auto, side by side.

For each real model (the sentiment teacher, the long-review teacher at max_length 256,
the WNUT-16 NER teacher) three verified ONNX Runtime packages are built from the same
calibration texts (256 training examples; int8-auto validates on the validation
split, and every build is gated on the test split):

- `int8`: dynamic int8, the CPU targets' default (smoothed for the classifiers);
- `int8-static`: static int8 with every group in int8 (dynamic int8's fused kernels
  with fixed scales; the hand-picked rule kept groups float in the Q/DQ graph it
  replaced), smoothed by the task's default for static ranges;
- `int8-auto`: the sensitivity search (edgec.int8_search), whose record says what it
  kept float.

They are timed end to end at batch 1 on the test texts in the same interleaved
rounds, so each ratio is of one run. Builds are cached by the model's weights and the
code that makes them; the search caches its scores too.
"""

from __future__ import annotations

import csv
import hashlib
import sys
from pathlib import Path

from edgec import bench

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
for example in ("sentiment", "reviews", "ner"):
    sys.path.insert(0, str(ROOT / "examples" / example))

SPECS = ("int8", "int8-static", "int8-auto")
CALIBRATION_SIZE = 256
# a fixed precision is built whatever its accuracy: its figures are what is measured
OPEN_GATES = {"min_agreement": 0.0, "max_accuracy_drop": 100.0, "max_class_drop": 100.0,
              "max_entity_f1_drop": 100.0, "max_type_f1_drop": 100.0,
              "min_tag_agreement": 0.0}  # fmt: skip
# the code an int8 package depends on: a change to any rebuilds the packages
SOURCES = (
    "export.py",
    "int8_search.py",
    "candidates.py",
    "backends/__init__.py",
    "backends/onnxruntime.py",
    "backends/qdq.py",
    "backends/fixed_scales.py",
    "backends/groups.py",
    "backends/smooth.py",
)


def real_models(names: tuple[str, ...] = ("sentiment", "reviews", "ner")) -> list[dict]:
    """Name, model folder and data files of each named real model (trained on first use)."""
    import ner
    import reviews
    import sentiment

    models = []
    for name, module, recipe in (
        ("sentiment", sentiment, "full"),
        ("reviews", reviews, "quick"),
        ("ner", ner, "quick"),
    ):
        if name not in names:
            continue
        splits = module.prepare_splits()
        models.append(
            {
                "name": name,
                "model": Path(module.train_teacher(recipe)),
                "eval": splits["test"],
                "validation": splits["validation"],
                "calibration": _head(splits["train"], CALIBRATION_SIZE, name),
                "texts": _texts(module, splits["test"], name),
            }
        )
    return models


def _head(path: Path, n: int, name: str) -> Path:
    """The first `n` examples of a training file, in its own format."""
    out = bench_cache() / f"{name}-calibration{path.suffix}"
    if path.suffix == ".conll":  # sentences are separated by blank lines
        blocks = path.read_text(encoding="utf-8").strip().split("\n\n")[:n]
        out.write_text("\n\n".join(blocks) + "\n", encoding="utf-8")
        return out
    with path.open(encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f))
    with out.open("w", encoding="utf-8", newline="") as f:
        csv.writer(f).writerows(rows[: n + 1])
    return out


def _texts(module, path: Path, name: str) -> list[str]:
    if name == "ner":
        return list(module.read_split(path).texts)  # a TaggedSet: its words, joined
    import sentiment  # the reviews' splits are CSV files of the same form

    return [text for text, _ in sentiment.read_split(path)]


def bench_cache() -> Path:
    from edgec_runtime.paths import cache_dir

    return cache_dir("bench", "int8")


def build_key(model: Path) -> str:
    from edgec.model import sha256_of, weights_file

    digest = hashlib.sha256(sha256_of(weights_file(model)).encode())
    for source in SOURCES:
        digest.update((ROOT / "edgec" / source).read_bytes())
    return digest.hexdigest()[:10]


def build_request(entry: dict, precision: str, output: Path, options: dict | None = None):
    """The x86-cpu BuildRequest of one real model at one precision, on its splits:
    calibration on the training head, int8-auto validating on the validation split,
    every build scored on the test split; gated there only for int8-auto (a fixed
    precision's figures are what is measured, passing or not)."""
    from edgec.pipeline import BuildRequest
    from edgec.targets import get_target

    searched = precision == "int8-auto"
    return BuildRequest(
        model=entry["model"],
        target=get_target("x86-cpu"),
        output=output,
        eval_data=entry["eval"],
        calibration_data=entry["calibration"],
        validation_data=entry["validation"] if searched else None,
        precision=precision,
        options=options or {},
        **({} if searched else {"thresholds": OPEN_GATES}),
    )


def verified_build(entry: dict, precision: str, log) -> Path:
    """A verified x86-cpu package of one precision, cached by build key."""
    from edgec.pipeline import build

    out = bench_cache() / f"{entry['name']}-{build_key(entry['model'])}" / precision
    if (out / "edgec.json").is_file():
        return out
    log(f"building {entry['name']} onnxruntime:{precision} (verified)")
    out.parent.mkdir(parents=True, exist_ok=True)
    build(build_request(entry, precision, out))
    return out


def quality(manifest: dict) -> dict:
    """The verification headline's quality figures of a built package."""
    head = manifest["verification"].get("headline") or {}
    return {
        "metric": head.get("quality_metric"),
        "delta": head.get("quality_delta"),
        "agreement": head.get("agreement"),
        "status": manifest["verification"]["status"],
    }


def section_int8(threads: int, runs: int, log) -> dict:
    """Build, then time the three packages of every real model at batch 1."""
    from edgec.views import int8_search  # what `edgec inspect` shows of the search
    from edgec_runtime.manifest import read_manifest

    out = {"models": [], "failed": {}}
    for entry in real_models():
        packages = {}
        for precision in SPECS:
            try:
                packages[precision] = verified_build(entry, precision, log)
            except Exception as e:  # one failing build must not sink the suite
                out["failed"][f"{entry['name']} {precision}"] = str(e).splitlines()[0]
                log(f"  FAILED: {e}")
        log(f"int8 on {entry['name']}: batch 1, {runs} runs x {len(packages)}")
        p50, cpu = batch1_p50(packages, entry, threads, runs)
        manifests = {p: read_manifest(path) for p, path in packages.items()}
        out["models"].append(
            {
                "name": entry["name"],
                "max_length": next(iter(manifests.values()))["preprocessing"]["max_length"]
                if manifests
                else None,
                "texts": len(entry["texts"]),
                "p50_ms": p50,
                "quality": {p: quality(m) for p, m in manifests.items()},
                "search": int8_search(manifests["int8-auto"]) if "int8-auto" in manifests else None,
                "cpu": cpu,
            }
        )
    return out


def batch1_p50(packages: dict[str, Path], entry: dict, threads: int, runs: int) -> tuple:
    """(p50 ms of each named package, the CPU's record): end to end at batch 1 on the
    model's test texts, all packages in the same interleaved rounds."""
    if not packages:
        return {}, {}
    subjects = [bench.package_subject(path, threads, name=n) for n, path in packages.items()]
    config = bench.BenchConfig(
        batches=[1], texts=entry["texts"], texts_source=str(entry["eval"]),
        runs=runs, warmup=3, threads=threads, cold_runs=0,
    )  # fmt: skip
    try:
        report = bench.measure(subjects, config)
    finally:
        for s in subjects:
            if s.close:
                s.close()
    return {r["subject"]: r["stats"]["p50"] for r in report["results"]}, report["cpu"]


def int8_lines(section: dict, number: int) -> list[str]:
    """The report's table of this section."""
    from report import fmt

    lines = [
        f"## {number}. int8 on the real models: dynamic, static and int8-auto (ONNX Runtime)",
        "",
        "End to end at batch 1 on each model's test texts, interleaved. `int8` is dynamic "
        "int8 with the task's default smoothing (the classifiers smoothed, the NER tagger "
        "not: NOTES.md, section 13); `int8-static` quantizes every group on dynamic "
        "int8's fused kernels with fixed scales, smoothed for all three (section 15); "
        "`int8-auto` is the search (calibration on 256 training examples, gates on the "
        "validation split, tightened by half; the test split never read by it; its trials "
        "are fewer when its sensitivity scores are cached from an earlier run). Quality: "
        "accuracy or entity F1 points against PyTorch FP32 on the test split.",
        "",
        "| model | max_length | precision | p50 ms | x dynamic | quality delta pts | agreement | kept float | search |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for m in section["models"]:
        dyn = m["p50_ms"].get("int8")
        for p in SPECS:
            if p not in m["p50_ms"]:
                continue
            q = m["quality"].get(p, {})
            s = m["search"] if p == "int8-auto" else None
            kept = (
                f"{s['picked']}"
                + (f" ({s['calibration']})" if s["calibration"] else "")
                + f": {', '.join(s['keep_float']) or 'none'}"
                if s
                else "-"
            )
            searched = f"{s['trials']} trials, {s['seconds']:.0f} s" if s else "-"
            lines.append(
                f"| {m['name']} | {m['max_length']} | {p} | {m['p50_ms'][p]:.2f} | "
                f"{fmt(dyn and m['p50_ms'][p] / dyn, '{:.2f}x')} | {fmt(q.get('delta'), '{:+.2f}')} | "
                f"{fmt(q.get('agreement'), '{:.4f}')} | {kept} | {searched} |"
            )
    if section["failed"]:
        lines.append(f"\nBuilds that failed: {section['failed']}")
    return [*lines, ""]
