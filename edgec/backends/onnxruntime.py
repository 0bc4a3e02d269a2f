"""ONNX Runtime backend: fp32, dynamic int8 and static (QDQ) int8.

The transformer optimizer fuses attention, LayerNorm and GELU into single kernels,
which is where most of ORT's speed on BERT comes from; a fused graph is kept only
when it matches the plain export on real inputs. Static QDQ quantizes the plain
(unfused) graph because that is the form TensorRT's explicit quantization consumes.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

from edgec.backends import Backend, Compiled
from edgec.plugins import hookimpl

FUSION_TOLERANCE = 1e-3
MODEL_FILE = "model.onnx"


def _threads(options: dict) -> int:
    """Thread count from the target; 0 means every core the process may use."""
    from edgec.machine import cores

    threads = int(options.get("threads", 0) or 0)
    return threads if threads > 0 else cores()


def session(path: Path, options: dict):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = _threads(options)
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.log_severity_level = 3
    # Spinning workers hold their core between ops waiting for the next one; on a busy
    # or shared CPU they steal the time slices the calling thread needs. Measured 2-3x
    # slower under load (benchmarks/NOTES.md); -O allow_spinning=true turns it back on.
    spin = "1" if options.get("allow_spinning", False) else "0"
    so.add_session_config_entry("session.intra_op.allow_spinning", spin)
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


class OrtRunner:
    """Runs a compiled graph; feeds only the inputs the graph declares, as int64."""

    def __init__(self, path: Path, options: dict):
        self.session = session(path, options)
        self.input_names = [i.name for i in self.session.get_inputs()]

    def run(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        feed = {
            name: np.ascontiguousarray(inputs[name], dtype=np.int64) for name in self.input_names
        }
        return self.session.run(["logits"], feed)[0]


def max_logit_difference(path_a: Path, path_b: Path, samples: list[dict]) -> float:
    a, b = OrtRunner(path_a, {}), OrtRunner(path_b, {})
    return max(float(np.abs(a.run(s) - b.run(s)).max()) for s in samples)


def fuse_transformer_ops(src: Path, dst: Path, options: dict, samples: list[dict]) -> dict:
    """Fuse attention/LayerNorm/GELU; fall back to the plain graph if parity breaks."""
    from onnxruntime.transformers.optimizer import optimize_model

    # BERT, DistilBERT, RoBERTa, XLM-R and ELECTRA share the encoder pattern "bert" fuses.
    fused = optimize_model(
        str(src),
        model_type="bert",
        num_heads=int(options.get("num_heads", 0)),
        hidden_size=int(options.get("hidden_size", 0)),
        opt_level=0,
    )
    fused.save_model_to_file(str(dst))
    counts = {k: v for k, v in fused.get_fused_operator_statistics().items() if v}
    drift = max_logit_difference(src, dst, samples)
    if drift > FUSION_TOLERANCE:
        dst.write_bytes(src.read_bytes())
        return {"fused": False, "fusion_rejected_drift": drift}
    return {"fused": True, "fused_operators": counts, "fusion_drift": drift}


class CalibrationReader:
    """Feeds calibration batches to ORT's static quantizer one at a time."""

    def __init__(self, batches: list[dict], input_names: list[str]):
        self._batches = iter(
            [{n: np.asarray(b[n], dtype=np.int64) for n in input_names} for b in batches]
        )

    def get_next(self):
        return next(self._batches, None)


def ffn_down_projections(model, options: dict) -> list[str]:
    """MatMuls whose weight is [intermediate, hidden]: the feed-forward down-projections.

    Their input is the GELU output, whose outlier channels a per-tensor int8 scale
    cannot hold. On the sentiment teacher, static int8 of every MatMul lost 1.38
    points (agreement 0.931); keeping these 6 of 38 in float: 0.62 points (0.981), and
    with symmetric activations 0.88 points instead of 6.5. No other group of MatMuls
    mattered (benchmarks/NOTES.md, section 10).
    """
    shape = [options.get("intermediate_size"), options.get("hidden_size")]
    if None in shape:
        return []
    weights = {i.name: list(i.dims) for i in model.graph.initializer}
    return [
        node.name
        for node in model.graph.node
        if node.op_type == "MatMul" and any(weights.get(i) == shape for i in node.input)
    ]


def quantize_static_qdq(src: Path, dst: Path, calibration: list[dict], options: dict) -> dict:
    """Static int8 with QDQ nodes; `symmetric` gives the int8/zero-point-0 form TensorRT needs.

    The feed-forward down-projections stay in float unless `float_ffn_down` is false.
    """
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if not calibration:
        raise ValueError("static int8 needs calibration data")
    symmetric = bool(options.get("symmetric", False))
    op_types = list(options.get("quantize_ops", ["MatMul", "Gemm"]))
    with tempfile.TemporaryDirectory(prefix="edgec-calib-") as tmp:
        # Calibration writes large scratch files into the working directory.
        pre = Path(tmp) / "pre.onnx"
        quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
        import onnx

        graph = onnx.load(str(pre))
        input_names = [i.name for i in graph.graph.input]
        keep_float = (
            ffn_down_projections(graph, options) if options.get("float_ffn_down", True) else []
        )
        cwd = os.getcwd()
        os.chdir(tmp)
        try:
            quantize_static(
                str(pre),
                str(dst),
                CalibrationReader(calibration, input_names),
                quant_format=QuantFormat.QDQ,
                activation_type=QuantType.QInt8 if symmetric else QuantType.QUInt8,
                weight_type=QuantType.QInt8,
                per_channel=True,
                op_types_to_quantize=op_types,
                nodes_to_exclude=keep_float,
                extra_options={"ActivationSymmetric": symmetric, "WeightSymmetric": True},
            )
        finally:
            os.chdir(cwd)
    return {
        "method": "static-qdq",
        "activations": "int8-symmetric" if symmetric else "uint8-asymmetric",
        "weights": "int8-symmetric-per-channel",
        "op_types": op_types,
        "kept_float": {"rule": "feed-forward down-projections", "nodes": len(keep_float)},
        "calibration_batches": len(calibration),
    }


def quantize_dynamic_int8(src: Path, dst: Path, options: dict) -> dict:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    per_channel = bool(
        options.get("per_channel", True)
    )  # 0.964 -> 0.980 agreement on the sentiment teacher
    import onnx

    # Fused contrib ops (SkipLayerNormalization, FastGelu) defeat ONNX shape inference;
    # their outputs are float, which is all the quantizer needs to know.
    quantize_dynamic(
        str(src),
        str(dst),
        weight_type=QuantType.QInt8,
        per_channel=per_channel,
        extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
    )
    return {"method": "dynamic", "weights": "int8", "per_channel": per_channel}


class OnnxRuntimeBackend(Backend):
    def compile(self, onnx_path, precision, calibration, options, workdir) -> Compiled:
        workdir = Path(workdir)
        samples = (calibration or [])[:4]
        out = workdir / MODEL_FILE
        metadata: dict = {"optimization": {}, "quantization": None}
        if precision == "int8-static":
            metadata["quantization"] = quantize_static_qdq(
                Path(onnx_path), out, calibration, options
            )
            return Compiled([MODEL_FILE], metadata)
        fused = workdir / "fused.onnx"
        if options.get("fuse", True) and samples:
            metadata["optimization"] = fuse_transformer_ops(
                Path(onnx_path), fused, options, samples
            )
        else:
            fused.write_bytes(Path(onnx_path).read_bytes())
            metadata["optimization"] = {"fused": False}
        if precision == "fp32":
            fused.rename(out)
        else:
            metadata["quantization"] = quantize_dynamic_int8(fused, out, options)
            fused.unlink()
        return Compiled([MODEL_FILE], metadata)

    def load(self, package_dir, compiled, options):
        return OrtRunner(Path(package_dir) / compiled["files"][0], options)


BACKEND = OnnxRuntimeBackend(
    name="onnxruntime",
    precisions=("fp32", "int8", "int8-static"),
    devices=("cpu",),
    requires=("onnxruntime",),
    extra=None,
    description="ONNX Runtime on CPU: fused fp32, dynamic int8 weights, static QDQ int8",
)


@hookimpl
def register_backends(register):
    register(BACKEND)
