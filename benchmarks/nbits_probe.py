"""Probe: ONNX Runtime's MatMulNBits with 8-bit weights against dynamic int8 (issue 14).

Dynamic int8 spends half of BERT-base's time outside the int8 GEMMs (benchmarks/NOTES.md,
section 12): a DynamicQuantizeLinear pass before every MatMul, dequantization after it.
MatMulNBits with `accuracy_level=4` quantizes its activations to int8 inside the GEMM
kernel (MLAS's SQNBit path), so that pass and its memory traffic disappear. This
times, on BERT-base (random weights, b1 s128), in one process and interleaved rounds:
the fused fp32 graph, edgec's dynamic int8, 8-bit MatMulNBits at two block sizes (with
attention left fp32, and with attention as dynamic QAttention), and the dynamic-int8
GEMM chain of benchmarks/ceilings.py as the floor. It also reports each graph's
largest logit difference from fp32 on a random batch (4 x 128 token ids).

    .venv/bin/python benchmarks/nbits_probe.py [--runs 40] [--threads 2]

Writes benchmarks/nbits_probe.json. A probe, not part of `make bench`: a variant that
beat dynamic int8 would become a backend option (none did: NOTES.md, section 12).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "examples" / "sentiment"))

OUT = HERE / "nbits_probe.json"


def build_graphs(work: Path) -> dict[str, Path]:
    """fp32 fused, dynamic int8 and the MatMulNBits variants of BERT-base, in `work`."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer
    from suite import bert_base_dir

    from edgec.backends.onnxruntime import fuse_transformer_ops, quantize_dynamic_int8
    from edgec.export import export_onnx, reference_inputs
    from edgec.model import load_source_model

    source = load_source_model(bert_base_dir())
    samples = [reference_inputs(source, ["a film of real beauty", "dull and far too long"])]
    plain, fused = work / "plain.onnx", work / "fp32.onnx"
    export_onnx(source, plain)
    fuse_transformer_ops(plain, fused, samples, num_heads=12, hidden_size=768)
    graphs = {"fp32 fused": fused, "dynamic int8 (edgec)": work / "dynamic.onnx"}
    quantize_dynamic_int8(fused, graphs["dynamic int8 (edgec)"], per_channel=True)
    for block in (32, 128):
        name = f"nbits8 b{block}, attention fp32"
        quantizer = MatMulNBitsQuantizer(
            onnx.load(str(fused)), bits=8, block_size=block, is_symmetric=True, accuracy_level=4
        )
        quantizer.process()
        graphs[name] = work / f"nbits8_b{block}.onnx"
        quantizer.model.save_model_to_file(str(graphs[name]), use_external_data_format=False)
        # the QKV projections live inside the fused Attention op: dynamic QAttention
        both = f"nbits8 b{block} + QAttention"
        graphs[both] = work / f"nbits8_b{block}_qattn.onnx"
        quantize_dynamic(
            str(graphs[name]),
            str(graphs[both]),
            weight_type=QuantType.QInt8,
            per_channel=True,
            op_types_to_quantize=["Attention"],
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
        )
    return graphs


def main() -> None:
    import tempfile

    from ceilings import SEQ, gemm_subjects, latency_floors, split_gemm

    from edgec import bench
    from edgec.bench.run import synthetic_inputs
    from edgec_runtime.runners.onnxruntime import OrtRunner

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        graphs = build_graphs(Path(tmp))
        runners = {name: OrtRunner(path, threads=args.threads) for name, path in graphs.items()}
        sizes = {name: path.stat().st_size for name, path in graphs.items()}
    probe = synthetic_inputs(["input_ids", "attention_mask", "token_type_ids"], 4, SEQ, 20000)
    reference = runners["fp32 fused"].run(probe)
    drift = {name: float(np.abs(r.run(probe) - reference).max()) for name, r in runners.items()}
    subjects = [
        bench.Subject(
            name, "onnx-file", "onnxruntime", name, "(probe)", model=r.run, size_bytes=sizes[name]
        )  # fmt: skip
        for name, r in runners.items()
    ]
    subjects += gemm_subjects(args.threads, [SEQ])
    config = bench.BenchConfig(
        batches=[1], seq_lens=[SEQ], runs=args.runs, warmup=2, threads=args.threads, cold_runs=0
    )
    report = bench.measure(subjects, config)
    ceilings = split_gemm(report)
    floor = latency_floors(ceilings, (1,))[1]["int8"]  # every row against the int8 floor
    rows = {
        r["subject"]: {
            "p50_ms": round(r["stats"]["p50"], 2),
            "x_floor": round(r["stats"]["p50"] / floor, 2),
            "max_logit_diff_vs_fp32": drift[r["subject"]],
            "mb": round(sizes[r["subject"]] / 1e6, 1),
        }
        for r in report["results"]
    }
    result = {
        "machine": report["machine"],
        "cpu_load": report["cpu"],
        "warnings": report["warnings"],
        "threads": args.threads,
        "runs": args.runs,
        "int8_gemm_ceiling_gop_s": round(ceilings["int8"][str(SEQ)]["gflops"], 1),
        "int8_floor_ms": round(floor, 2),
        "rows": rows,
    }
    OUT.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
