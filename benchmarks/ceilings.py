"""GEMM ceilings and FLOP floors: what this machine could do at best, per precision.

A latency alone says nothing about how much is left on the table. A chain of MatMuls
on BERT-base's FFN shapes, timed in the same interleaved rounds as the models, turns
FLOPs into a ceiling (GFLOP/s) for this CPU under the same contention; BERT-base's
matmul FLOPs divided by that ceiling give a latency floor, and p50 / floor says how
close a backend gets to it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgec import bench

SEQ = 128  # the sequence length BERT-base is timed at, and its floors computed for
HIDDEN, LAYERS, FFN = 768, 12, 3072  # BERT-base geometry


def bert_flops(seq: int, hidden: int = HIDDEN, layers: int = LAYERS, ffn: int = FFN) -> float:
    """Multiply-adds x 2 of the encoder's matmuls per sequence (embeddings, softmax,
    LayerNorm and the head are noise next to them)."""
    per_layer = 2 * seq * hidden * (4 * hidden + 2 * ffn) + 2 * 2 * seq * seq * hidden
    return float(layers * per_layer)


GEMM_FLOPS_PER_ROW = 4 * 2 * 2 * HIDDEN * FFN


def gemm_subjects(threads: int, rows: list[int]) -> list[bench.Subject]:
    """An fp32 and a dynamic-int8 MatMul chain (768->3072->768, 4 times), through the
    same ORT session code as the packages. They are timed as subjects next to BERT-base,
    in the same interleaved rounds, so floor and model see the same contention; each
    call runs batch x seq rows."""
    import tempfile

    import onnx
    from onnx import TensorProto, helper, numpy_helper
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from edgec_runtime.runners.onnxruntime import session

    rng = np.random.default_rng(0)
    nodes, inits = [], []
    prev = "x"
    for i in range(4):
        for j, (k, n) in enumerate(((HIDDEN, FFN), (FFN, HIDDEN))):
            w = f"w{i}{j}"
            inits.append(
                numpy_helper.from_array((rng.standard_normal((k, n)) * 0.02).astype(np.float32), w)
            )
            nodes.append(helper.make_node("MatMul", [prev, w], [f"y{i}{j}"]))
            prev = f"y{i}{j}"
    graph = helper.make_graph(
        nodes,
        "gemm",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["m", HIDDEN])],
        [helper.make_tensor_value_info(prev, TensorProto.FLOAT, ["m", HIDDEN])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    xs = {m: rng.standard_normal((m, HIDDEN)).astype(np.float32) for m in rows}
    subjects = []
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = Path(tmp) / "fp32.onnx"
        int8 = Path(tmp) / "int8.onnx"
        onnx.save(model, fp32)
        quantize_dynamic(str(fp32), str(int8), weight_type=QuantType.QInt8, per_channel=True)
        for precision, path in (("fp32", fp32), ("int8", int8)):
            sess = session(path, threads=threads)
            subjects.append(
                bench.Subject(
                    name=f"GEMM chain {precision}",
                    kind="gemm",
                    backend="onnxruntime",
                    precision=precision,
                    path="(synthetic)",
                    model=lambda inputs, sess=sess: sess.run(
                        None, {"x": xs[inputs["input_ids"].size]}
                    ),
                )
            )
    return subjects


def split_gemm(report: dict) -> dict:
    """Move the GEMM chains' results out of `report` into ceilings per precision and rows."""
    out: dict = {}
    keep = []
    for r in report["results"]:
        if not r["subject"].startswith("GEMM chain"):
            keep.append(r)
            continue
        precision = r["subject"].rsplit(" ", 1)[1]
        rows = r["batch"] * r["seq_len"]
        flops = GEMM_FLOPS_PER_ROW * rows
        out.setdefault(precision, {})[str(rows)] = {
            "gflops": flops / (r["stats"]["p50"] / 1000) / 1e9,
            "gflops_p10": flops / (np.percentile(r["latencies_ms"], 10) / 1000) / 1e9,
            "p50_ms": r["stats"]["p50"],
        }
    report["results"] = keep
    report["subjects"] = [s for s in report["subjects"] if s["kind"] != "gemm"]
    return out


def latency_floors(ceilings: dict, batches: tuple[int, ...], seq: int = SEQ) -> dict:
    """Per batch and precision, the ms BERT-base's matmuls take at the GEMM ceiling."""
    flops = bert_flops(seq)
    floors = {}
    for batch in batches:
        rows = str(batch * seq)
        floors[batch] = {
            precision: batch * flops / (ceilings[precision][rows]["gflops"] * 1e9) * 1000
            for precision in ("fp32", "int8")
        }
    return floors


def attach_floors(report: dict, floors: dict) -> None:
    """Give each result its floor (of its precision and batch) and its p50 / floor."""
    for r in report["results"]:
        s = next(x for x in report["subjects"] if x["name"] == r["subject"])
        precision = "int8" if "int8" in s["precision"] else "fp32"
        floor = floors[r["batch"]][precision]
        r["floor_ms"] = floor
        r["x_floor"] = r["stats"]["p50"] / floor
