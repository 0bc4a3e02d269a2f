"""Probe: dynamic int8 with and without activation smoothing, on the real models (issue 14).

Dynamic int8 quantizes each MatMul input with one scale per tensor, so a few outlier
channels set the step for all (edgec/backends/smooth.py). This builds, per real model
and from the same calibration texts as benchmarks/int8_models.py (256 training
examples; every build gated on the test split, which the smoothing never reads):

- dynamic int8 unsmoothed (`-O smooth=[]`, the default before this probe);
- dynamic int8 smoothed (every attention-out, ffn-up and ffn-down: today's default
  for classifiers, not for taggers);
- int8-auto with the task's default (its dynamic trials start from that graph);
- with `--variants`, static int8 with every group quantized, unsmoothed and smoothed:
  ONNX Runtime's int8-static (`fixed`: dynamic int8's fused kernels with fixed scales),
  and the Q/DQ graph in ONNX Runtime's uint8 form (`static`) and in TensorRT's
  symmetric int8 one (run on ONNX Runtime's CPU kernels: its accuracy is TensorRT's
  graph's, its speed is not);

and times them end to end at batch 1 on the test texts in the same interleaved rounds,
so each ratio is of one run.

    .venv/bin/python benchmarks/smooth_probe.py --models sentiment,reviews,ner
    .venv/bin/python benchmarks/smooth_probe.py --variants static,static-smoothed,symmetric,symmetric-smoothed
    .venv/bin/python benchmarks/smooth_probe.py --variants dynamic-smoothed,static-smoothed,fixed,fixed-smoothed

Writes benchmarks/smooth_probe.json, replacing the rows of the same models and
variants. A probe, not part of `make bench` (which builds the defaults); NOTES.md
sections 13, 14 and 15 read it.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import int8_models  # noqa: E402  (benchmarks/, on the path above)

RESULTS = HERE / "smooth_probe.json"
ROLES = ["attention-out", "ffn-up", "ffn-down"]
QDQ = {"static_graph": "qdq"}
VARIANTS = {  # name: (precision, -O options)
    "dynamic": ("int8", {"smooth": []}),
    "dynamic-smoothed": ("int8", {"smooth": ROLES}),
    "int8-auto": ("int8-auto", {}),  # the task's default smoothing
    # static int8 with every group int8, ranges by MinMax: the fused graph with fixed
    # scales (ORT's int8-static), and the Q/DQ graph in ORT's uint8 form and TensorRT's
    "fixed": ("int8-static", {"smooth": []}),
    "fixed-smoothed": ("int8-static", {"smooth": ROLES}),
    "static": ("int8-static", {"smooth": [], **QDQ}),
    "static-smoothed": ("int8-static", {"smooth": ROLES, **QDQ}),
    "static-smoothed-qkv": ("int8-static", {"smooth": ["qkv", *ROLES], **QDQ}),
    "symmetric": ("int8-static", {"smooth": [], "symmetric": True, **QDQ}),
    "symmetric-smoothed": ("int8-static", {"smooth": ROLES, "symmetric": True, **QDQ}),
    # the attention core (two activations: scores and context) kept float, as the
    # fused graph's QAttention keeps it
    "static-smoothed-core-float": (
        "int8-static",
        {"smooth": ROLES, "keep_float": ["attention-core"], **QDQ},
    ),
    "symmetric-core-float": (
        "int8-static",
        {"smooth": [], "symmetric": True, "keep_float": ["attention-core"], **QDQ},
    ),
    "symmetric-smoothed-core-float": (
        "int8-static",
        {"smooth": ROLES, "symmetric": True, "keep_float": ["attention-core"], **QDQ},
    ),
}
DEFAULT_VARIANTS = "dynamic,dynamic-smoothed,int8-auto"


def build_variant(entry: dict, name: str, folder: Path) -> tuple[Path, dict]:
    """One verified package of `entry` as VARIANTS[name] says, and its row of figures."""
    from edgec.pipeline import build

    precision, options = VARIANTS[name]
    output = folder / f"{entry['name']}-{name}"
    manifest = build(int8_models.build_request(entry, precision, output, options))
    quantization = manifest["backend"]["quantization"] or {}
    smoothing = quantization.get("smoothing") or {}
    row = {
        "test": int8_models.quality(manifest),
        "smoothed": f"{smoothing.get('smoothed', 0)} of {smoothing.get('of', 0)} MatMuls",
        "build_seconds": manifest.get("build_seconds"),
    }
    search = manifest["backend"].get("search")
    if search:
        row.update(picked=search["picked"], keep_float=search["options"].get("keep_float"),
                   trials=search["trials"], search_seconds=search["seconds"])  # fmt: skip
    return output, row


def probe(entry: dict, variants: list[str], threads: int, runs: int, folder: Path) -> dict:
    packages, rows = {}, {}
    for name in variants:
        packages[name], rows[name] = build_variant(entry, name, folder)
        print(json.dumps({entry["name"]: {name: rows[name]}}), flush=True)
    p50, cpu = int8_models.batch1_p50(packages, entry, threads, runs)
    for name, ms in p50.items():
        rows[name]["p50_ms"] = ms
    base = rows.get(variants[0], {}).get("p50_ms")  # the first variant named
    for row in rows.values():
        row[f"x_{variants[0]}"] = (
            round(row["p50_ms"] / base, 3) if base and "p50_ms" in row else None
        )
    return {"model": entry["name"], "variants": rows, "cpu": cpu}


def _key(row: dict) -> tuple:
    """A row is replaced only by a run of the same model and variants."""
    return row["model"], tuple(row["variants"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default="sentiment,reviews,ner")
    parser.add_argument("--variants", default=DEFAULT_VARIANTS,
                        help=f"the first is the others' base; of: {', '.join(VARIANTS)}")  # fmt: skip
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=200, help="timed batch-1 calls per package")
    args = parser.parse_args()
    from edgec.machine import describe_machine

    models = {m["name"]: m for m in int8_models.real_models(tuple(args.models.split(",")))}
    out, variants = [], args.variants.split(",")
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models.split(","):
            out.append(probe(models[name], variants, args.threads, args.runs, Path(tmp)))
    probed = {_key(row) for row in out}
    kept = json.loads(RESULTS.read_text())["rows"] if RESULTS.is_file() else []
    rows = [r for r in kept if _key(r) not in probed] + out
    for row in out:
        row["machine"] = describe_machine()  # each row's own: rows may come from two runs
    RESULTS.write_text(json.dumps({"rows": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
