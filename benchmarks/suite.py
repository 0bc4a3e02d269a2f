"""The benchmark suite behind `make bench`: one command, one run, ratios taken together.

    .venv/bin/python benchmarks/suite.py            # full suite, ~10-15 minutes
    .venv/bin/python benchmarks/suite.py --quick    # fewer runs, for a smoke test

Sections (all measured in the same run, interleaved where compared). PyTorch FP32 eager
is timed under two OpenMP wait policies, PASSIVE in this process and libgomp's default
in a worker process (edgec.bench.torch_worker) that takes its turn in the same rounds;
every "x PyTorch" ratio and goal is against the faster of the two at that shape.

1. GEMM ceilings: an fp32 and a dynamic-int8 MatMul chain through ONNX Runtime, on
   BERT-base's FFN shapes; they turn FLOPs into a latency floor for this machine.
2. BERT-base (12 layers, hidden 768, random weights from a BertConfig, the real MiniLM
   WordPiece tokenizer): model-only latency per backend and precision at batch 1 and 8,
   seq 128, against PyTorch FP32 eager, the FLOP floor and optimum's int8 models.
3. The real sentiment teacher (and its distilled student if one exists): accuracy,
   size, end-to-end latency at the test split's real sentence lengths, against
   PyTorch FP32 eager (dynamic padding and padded to max_length) and optimum.
4. Cold start (new process until the first prediction, no torch) and peak RSS.

Writes benchmarks/results.json, benchmarks/RESULTS.md and two PNGs. Builds are cached
under $EDGEC_CACHE/bench, keyed by the ONNX Runtime backend's source, so a tuning
change rebuilds and a rerun without one only measures.

This file runs the sections; its siblings hold the rest, by job: ceilings.py (GEMM
ceilings, FLOP counts and floors), goals.py (the targets and their verdicts),
report.py (RESULTS.md and the plots).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "examples" / "sentiment"))

# Before torch loads OpenMP: spinning OpenMP threads make PyTorch 5-30x slower on a
# busy CPU and up to ~2x faster on an idle one (benchmarks/NOTES.md 2). This process
# waits passively, like ORT's sessions; PyTorch is also timed under libgomp's default
# policy in a worker process (TORCH_POLICIES), and every ratio is against the faster.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("TQDM_DISABLE", "1")

# Siblings in benchmarks/ (on sys.path as the script's own folder), then edgec.
from ceilings import (  # noqa: E402
    FFN,
    HIDDEN,
    LAYERS,
    SEQ,
    attach_floors,
    bert_flops,
    gemm_subjects,
    latency_floors,
    split_gemm,
)
from goals import targets  # noqa: E402
from int8_models import section_int8  # noqa: E402
from report import fmt, write_report  # noqa: E402

from edgec import bench  # noqa: E402
from edgec.machine import CpuLoad, cores, describe_machine  # noqa: E402
from edgec.pipeline import parse_candidate  # noqa: E402

PEER_PYTHON = HERE / ".venv-optimum" / "bin" / "python"
# PyTorch is timed under each: PASSIVE here, libgomp's default in a worker process.
TORCH_POLICIES = ("PASSIVE", "default")


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def cache() -> Path:
    from edgec_runtime.paths import cache_dir

    return cache_dir("bench")


def build_key(backend: str, model: Path) -> str:
    """Packages are rebuilt when the model's weights or the code that compiles them
    changes: the exporter, the backend's module and the modules the backends share
    (quantizers, smoothing, node groups)."""
    from edgec.model import sha256_of, weights_file

    digest = hashlib.sha256(sha256_of(weights_file(model)).encode())
    backends = ROOT / "edgec" / "backends"
    for path in [ROOT / "edgec" / "export.py", *sorted(backends.glob("*.py"))]:
        digest.update(path.read_bytes())
    for path in sorted((backends / backend).rglob("*.py")):  # a backend that is a package
        digest.update(path.read_bytes())
    return digest.hexdigest()[:10]


# ------------------------------------------------------------------- models and builds


def bert_base_dir() -> Path:
    """BERT-base geometry, random weights, the real MiniLM WordPiece tokenizer (30522)."""
    path = cache() / "bert-base-random"
    if (path / "model.safetensors").is_file():
        return path
    import sentiment
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(sentiment.fetch_base_model())
    tokenizer.model_max_length = SEQ
    config = BertConfig(
        vocab_size=30522,
        hidden_size=HIDDEN,
        num_hidden_layers=LAYERS,
        num_attention_heads=12,
        intermediate_size=FFN,
        max_position_embeddings=512,
        id2label={0: "negative", 1: "positive"},
        label2id={"negative": 0, "positive": 1},
        architectures=["BertForSequenceClassification"],
    )
    model = BertForSequenceClassification(config).eval()
    tmp = path.with_name(path.name + ".tmp")
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    tmp.rename(path)
    return path


STRINGS_IN_SPECS = ("onnxruntime:int8", "openvino:int8")


def available_specs(openvino=("fp32", "int8")) -> list[str]:
    from edgec.plugins import backends

    specs = ["onnxruntime:fp32", "onnxruntime:int8", "onnxruntime:int8-static"]
    found = backends()
    ov = found.get("openvino")
    if ov is not None and ov.available() is None:
        specs += [f"openvino:{p}" for p in ov.precisions if p in openvino]
    return specs


def build_packages(
    model: Path, name: str, specs: list[str], calibration: list[str], options: dict | None = None
) -> dict:
    """Package per spec, cached by model name and build key; failures are reported.
    `options`: -O pairs for every spec (give such builds their own `name`)."""
    out, failed = {}, {}
    for spec in specs:
        backend = parse_candidate(spec)[0]
        root = cache() / "packages" / f"{name}-{backend}-{build_key(backend, model)}"
        root.mkdir(parents=True, exist_ok=True)
        target = root / spec.replace(":", "-")
        if (target / "edgec.json").is_file():
            out[spec] = target
            continue
        log(f"building {name} {spec}")
        started = time.perf_counter()
        try:
            out[spec] = bench.build_for_bench(model, spec, root, calibration, options)
            log(f"  built in {time.perf_counter() - started:.0f} s")
        except Exception as e:  # one backend failing must not sink the suite
            failed[spec] = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
            log(f"  FAILED: {failed[spec]}")
    return {"packages": out, "failed": failed}


def optimum_peer(model: Path, name: str) -> dict:
    """Run optimum's export + ORTQuantizer in its own venv; cached per model."""
    if not PEER_PYTHON.is_file():
        return {"error": f"{PEER_PYTHON} missing: run `make bench` to create it"}
    out = cache() / "optimum" / name
    log(f"optimum peer for {name}")
    done = subprocess.run(
        [str(PEER_PYTHON), str(HERE / "optimum_peer.py"), str(model), str(out)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        return {"error": (done.stderr.strip().splitlines() or ["failed"])[-1]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def peer_subjects(peer: dict, package: Path, threads: int) -> list[bench.Subject]:
    subjects = []
    for key in ("int8-avx2", "int8-avx512_vnni"):
        if key in peer.get("files", {}):
            subjects.append(
                bench.onnx_file_subject(
                    peer["files"][key], package, f"optimum {key}", threads, "int8"
                )
            )
    return subjects


# ------------------------------------------------------------------- sections


def section_bert_base(threads: int, runs: int) -> dict:
    model = bert_base_dir()
    import sentiment

    splits = sentiment.prepare_splits()
    calib = [t for t, _ in sentiment.read_split(splits["train"])[:64]]
    built = build_packages(model, "bert-base", available_specs(), calib)
    peer = optimum_peer(model, "bert-base")
    subjects = bench.pytorch_subjects(model, threads, padded=False, policies=TORCH_POLICIES)
    packages = [bench.package_subject(p, threads) for p in built["packages"].values()]
    subjects += packages
    any_pkg = next(iter(built["packages"].values()))
    subjects += peer_subjects(peer, any_pkg, threads)
    subjects += gemm_subjects(threads, [SEQ, 8 * SEQ])
    report = {}
    for batch, n in ((1, runs), (8, max(5, runs // 3))):
        config = bench.BenchConfig(
            batches=[batch], seq_lens=[SEQ], runs=n, warmup=2, threads=threads, cold_runs=0
        )
        log(f"BERT-base model-only, batch {batch}, seq {SEQ}, {n} runs x {len(subjects)}")
        part = bench.measure(subjects, config)
        if not report:
            report = part
        else:
            report["results"] += part["results"]
            report["warnings"] += part["warnings"]
            report["cpu_batch8"] = part["cpu"]
    report["config"]["batches"] = [1, 8]
    ceilings = split_gemm(report)
    report["gemm"] = ceilings
    floors = latency_floors(ceilings, (1, 8))
    attach_floors(report, floors)
    report["floors_ms"] = floors
    report["flops_per_sequence"] = bert_flops(SEQ)
    report["builds_failed"] = built["failed"]
    report["peer"] = peer
    for s in subjects:
        if s.close:
            s.close()
    return report


def find_student() -> Path | None:
    import sentiment

    for p in sorted(sentiment.cache_dir().glob("student*")):
        if (p / "config.json").is_file() and (p / "model.safetensors").is_file():
            return p
    return None


def section_sentiment(threads: int, runs: int, cold_runs: int) -> dict:
    import sentiment

    teacher = sentiment.train_teacher("full")
    splits = sentiment.prepare_splits()
    test = sentiment.read_split(splits["test"])
    texts = [t for t, _ in test]
    gold = [label for _, label in test]
    calib = [t for t, _ in sentiment.read_split(splits["train"])[:128]]
    specs = available_specs(openvino=("fp32", "fp16", "bf16", "int8"))
    built = build_packages(teacher, "teacher", specs, calib)
    peer = optimum_peer(teacher, "teacher")
    subjects = bench.pytorch_subjects(teacher, threads, padded=True, policies=TORCH_POLICIES)
    torch_ref = subjects[0]  # dynamic padding, in this process: accuracy is PyTorch's once
    for spec, path in built["packages"].items():
        subjects.append(bench.package_subject(path, threads, name=f"teacher {spec}"))
    # strings-in: the tokenizer inside the graph, against the same backend's package
    strings = build_packages(
        teacher, "teacher-strings-in", [s for s in specs if s in STRINGS_IN_SPECS], calib,
        options={"tokenizer": "graph"},
    )  # fmt: skip
    for spec, path in strings["packages"].items():
        subjects.append(bench.package_subject(path, threads, name=f"teacher {spec} strings-in"))
    student = find_student()
    student_failed = {}
    if student is not None:
        sbuilt = build_packages(student, "student", ["onnxruntime:int8", "onnxruntime:fp32"], calib)
        student_failed = sbuilt["failed"]
        for spec, path in sbuilt["packages"].items():
            subjects.append(bench.package_subject(path, threads, name=f"student {spec}"))
    ref = built["packages"].get("onnxruntime:int8") or next(iter(built["packages"].values()))
    subjects += peer_subjects(peer, ref, threads)
    log(f"accuracy of {len(subjects)} subjects on {len(texts)} test sentences")
    accuracies = {}
    for s in subjects:
        if s.kind == "pytorch" and s is not torch_ref:
            continue
        accuracies[s.name] = bench.accuracy(s, texts, gold, batch=32)
    for s in subjects:  # padding and the wait policy change no label
        if s.kind == "pytorch":
            accuracies[s.name] = accuracies[torch_ref.name]
    config = bench.BenchConfig(
        batches=[1, 8],
        texts=texts,
        texts_source=f"{splits['test'].name} (sentiment test split, {len(texts)} sentences)",
        runs=runs,
        warmup=3,
        threads=threads,
        cold_runs=cold_runs,
    )
    log(f"sentiment end-to-end, batch 1 and 8, {runs} runs x {len(subjects)}")
    report = bench.measure(subjects, config)
    base = accuracies[torch_ref.name]
    for s in report["subjects"]:
        s["accuracy"] = accuracies.get(s["name"])
        s["accuracy_drop_pts"] = (base - s["accuracy"]) * 100 if s["accuracy"] is not None else None
    tokens = token_lengths(ref, texts)
    report["token_lengths"] = {
        "p50": float(np.median(tokens)),
        "p90": float(np.percentile(tokens, 90)),
        "max": int(max(tokens)),
        "max_length": subjects[0].extra["max_length"],
    }
    report["student"] = str(student) if student else None
    report["builds_failed"] = {
        **built["failed"],
        **{f"{k} strings-in": v for k, v in strings["failed"].items()},
        **student_failed,
    }
    report["peer"] = peer
    report["teacher"] = str(teacher)
    for s in subjects:
        if s.close:
            s.close()
    return report


def section_verify(threads: int) -> dict:
    """How long `edgec verify PKG --eval-data 1000.csv --reference TEACHER` takes: the
    CI check on 1,000 labeled sentences (the 800 test + 200 validation ones), whole
    command in a new process, and the verification itself as the report times it."""
    import csv

    import sentiment

    teacher = sentiment.train_teacher("full")
    splits = sentiment.prepare_splits()
    rows = sentiment.read_split(splits["test"]) + sentiment.read_split(splits["validation"])
    data = cache() / "verify-1000.csv"
    with data.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "label"])
        writer.writerows(rows)
    calib = [t for t, _ in sentiment.read_split(splits["train"])[:128]]
    package = build_packages(teacher, "teacher", ["onnxruntime:int8"], calib)["packages"][
        "onnxruntime:int8"
    ]
    report_path = cache() / "verify-1000.json"
    edgec = Path(sys.executable).with_name("edgec")
    runs = []
    log(f"edgec verify on {len(rows)} sentences, 3 runs")
    for _ in range(3):
        with CpuLoad() as load:
            started = time.perf_counter()
            done = subprocess.run(
                [str(edgec), "verify", str(package), "--eval-data", str(data),
                 "--reference", str(teacher), "--report", str(report_path)],
                capture_output=True, text=True,
            )  # fmt: skip
            wall = time.perf_counter() - started
        report = json.loads(report_path.read_text())
        runs.append(
            {
                "wall_seconds": round(wall, 2),
                "verify_seconds": report["seconds"],
                "exit_code": done.returncode,
                "status": report["status"],
                "cpu": load.as_dict(),
            }
        )
    return {
        "sentences": len(rows),
        "package": str(package),
        "threads": threads,
        "runs": runs,
        "wall_seconds": float(np.median([r["wall_seconds"] for r in runs])),
        "verify_seconds": float(np.median([r["verify_seconds"] for r in runs])),
    }


def token_lengths(package: Path, texts: list[str]) -> list[int]:
    from edgec.package import read_manifest
    from edgec_runtime.tokenizer import runtime_tokenizer

    manifest = read_manifest(package)
    tok = runtime_tokenizer(package / "tokenizer.json", manifest["preprocessing"])
    tok.no_padding()
    return [len(e.ids) for e in tok.encode_batch(texts)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="few runs: a smoke test")
    parser.add_argument("--threads", type=int, default=0, help="default: every core")
    parser.add_argument("--out", type=Path, default=HERE)
    parser.add_argument(
        "--report-only", action="store_true", help="redo RESULTS.md and PNGs from results.json"
    )
    args = parser.parse_args()
    if args.report_only:
        results = json.loads((args.out / "results.json").read_text())
        results["targets"] = targets(results)
        write_report(results, args.out)
        return
    from edgec.quiet import quiet_libraries

    quiet_libraries()
    threads = args.threads or cores()
    runs = 6 if args.quick else 30
    started = time.perf_counter()
    results = {
        "created": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": describe_machine(),
        "threads": threads,
    }
    whole = CpuLoad().start()
    results["bert_base"] = section_bert_base(threads, runs)
    results["gemm"] = results["bert_base"]["gemm"]
    results["sentiment"] = section_sentiment(
        threads, 10 if args.quick else 40, 1 if args.quick else 3
    )
    results["verify"] = section_verify(threads)
    results["int8"] = section_int8(threads, 10 if args.quick else 40, log)
    results["cpu"] = whole.stop().as_dict()
    results["load_end"] = [round(x, 2) for x in os.getloadavg()]
    results["seconds"] = time.perf_counter() - started
    results["targets"] = targets(results)
    args.out.mkdir(parents=True, exist_ok=True)
    bench.write_json(results, args.out / "results.json")
    write_report(results, args.out)
    for t in results["targets"]:
        log(
            f"{'INFO' if t['met'] is None else 'MET ' if t['met'] else 'MISS'} {t['target']}: {fmt(t['measured'])} (goal {t['goal']}) {t['note']}"
        )
    log(f"done in {results['seconds'] / 60:.1f} min: {args.out / 'RESULTS.md'}")


if __name__ == "__main__":
    main()
