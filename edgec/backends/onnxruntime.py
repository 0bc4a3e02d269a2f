"""ONNX Runtime backend: fp32, dynamic int8, static int8, and int8-auto.

The transformer optimizer fuses attention, LayerNorm and GELU into single kernels,
which is where most of ORT's speed on BERT comes from; a fused graph is kept only
when it matches the plain export on real inputs. int8 first smooths outlier activation
channels into the weights (edgec.backends.smooth), measured for the form it runs.
Static int8 runs dynamic int8's fused kernels with calibrated, fixed activation scales
(edgec.backends.fixed_scales): the Q/DQ graph of the plain export, the form TensorRT's
explicit quantization consumes, stays an option (`-O static_graph=qdq`), for checking
TensorRT's accuracy on a CPU; it is slower on these kernels.

Sessions and the runner are the runtime's (edgec_runtime.runners.onnxruntime): a
device loads a package with the code its build verified it with. The Q/DQ quantizer
(qdq) is a shared module: TensorRT uses it too, without importing this backend.
int8-auto is not compiled here: edgec.int8_search builds it from int8-static and int8
trials, choosing the calibration method and the node groups kept float (`searched`).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np

from edgec.backends import Backend, Compiled
from edgec.backends.derived import derived, samples_digest
from edgec.backends.fixed_scales import activation_ranges, fix_scales
from edgec.backends.groups import describe_groups, quantizable_groups, resolve_groups
from edgec.backends.qdq import DEFAULT_OP_TYPES, quantize_static_qdq
from edgec.backends.settings import SEARCH_OPTIONS, SMOOTH_OPTION, TOKENIZER_OPTION, Option
from edgec.backends.smooth import smoothed
from edgec.plugins import hookimpl
from edgec_runtime.errors import BadInput
from edgec_runtime.runners.onnxruntime import OrtRunner
from edgec_runtime.settings import BackendSettings

FUSION_TOLERANCE = 1e-3
MODEL_FILE = "model.onnx"


def max_logit_difference(path_a: Path, path_b: Path, samples: list[dict]) -> float:
    a, b = OrtRunner(path_a), OrtRunner(path_b)
    return max(float(np.abs(a.run(s) - b.run(s)).max()) for s in samples)


def fuse_transformer_ops(
    src: Path, dst: Path, samples: list[dict], *, num_heads: int | None, hidden_size: int | None
) -> dict:
    """Fuse attention/LayerNorm/GELU; fall back to the plain graph if parity breaks.

    Unknown geometry (None) is passed as 0, which lets the optimizer read it from the graph.
    """
    from onnxruntime.transformers.optimizer import optimize_model

    # BERT, DistilBERT, RoBERTa, XLM-R and ELECTRA share the encoder pattern "bert" fuses.
    fused = optimize_model(
        str(src),
        model_type="bert",
        num_heads=int(num_heads or 0),
        hidden_size=int(hidden_size or 0),
        opt_level=0,
    )
    fused.save_model_to_file(str(dst))
    counts = {k: v for k, v in fused.get_fused_operator_statistics().items() if v}
    drift = max_logit_difference(src, dst, samples)
    if drift > FUSION_TOLERANCE:
        dst.write_bytes(src.read_bytes())
        return {"fused": False, "fusion_rejected_drift": drift}
    return {"fused": True, "fused_operators": counts, "fusion_drift": drift}


def quantize_dynamic_int8(src: Path, dst: Path, *, per_channel: bool, keep_float=()) -> dict:
    """Int8 weights, activations quantized per call; per channel: 0.964 -> 0.980
    agreement on the sentiment teacher. The node groups in `keep_float` stay float."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    graph = onnx.load(str(src), load_external_data=False)
    groups = quantizable_groups(graph)
    excluded = resolve_groups(groups, keep_float)

    # Fused contrib ops (SkipLayerNormalization, FastGelu) defeat ONNX shape inference;
    # their outputs are float, which is all the quantizer needs to know.
    quantize_dynamic(
        str(src),
        str(dst),
        weight_type=QuantType.QInt8,
        per_channel=per_channel,
        nodes_to_exclude=excluded,
        extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
    )
    return {
        "method": "dynamic",
        "weights": "int8",
        "per_channel": per_channel,
        "kept_float": {"groups": list(keep_float), "nodes": len(excluded)},
        "node_groups": describe_groups(graph, groups),
    }


def quantize_static_fixed(src: Path, dst: Path, calibration, *, method: str, keep_float=()):
    """Static int8 as ONNX Runtime's CPU runs it fastest: dynamic int8 of `src` with
    each activation scale fixed from the calibration texts (edgec.backends.fixed_scales)."""
    ranges = activation_ranges(src, calibration, method)  # BadInput before any work
    with tempfile.TemporaryDirectory(prefix="edgec-int8-") as tmp:
        dynamic = Path(tmp) / MODEL_FILE
        quantization = quantize_dynamic_int8(src, dynamic, per_channel=True, keep_float=keep_float)
        fixed = fix_scales(dynamic, dst, ranges)
    return {
        **quantization,
        "method": "static-fixed-scales",
        "activations": "uint8-asymmetric",
        "calibration_method": method,
        "calibration_batches": len(calibration),
        **fixed,
    }


class OnnxRuntimeBackend(Backend):
    def compile(
        self,
        onnx_path: Path,
        precision: str,
        calibration,
        settings: BackendSettings,
        workdir: Path,
    ) -> Compiled:
        src, workdir = Path(onnx_path), Path(workdir)
        model = settings.model
        out = workdir / MODEL_FILE
        metadata: dict = {"optimization": {}, "quantization": None}
        static = precision == "int8-static"
        if static and static_graph_form(settings.options) == "qdq":
            # The plain (unfused) graph: the form TensorRT's explicit quantization reads.
            metadata["quantization"] = quantize_static_qdq(
                src,
                out,
                calibration,
                symmetric=settings.options["symmetric"],
                op_types=settings.options["quantize_ops"],
                keep_float=settings.options["keep_float"],
                method=settings.options["calibration"],
                smooth=settings.options["smooth"],
                task=model.task,
            )
            return Compiled([MODEL_FILE], metadata)
        # Each step's graph is derived once per process (int8-auto compiles many trials).
        graph, samples = src, (calibration or [])[:4]
        if settings.options["fuse"] and samples:
            graph, metadata["optimization"] = derived(
                src,
                "fused",
                lambda a, b: fuse_transformer_ops(
                    a, b, samples, num_heads=model.num_heads, hidden_size=model.hidden_size
                ),
                samples=samples_digest(samples),
                geometry=[model.num_heads, model.hidden_size],
            )
        else:
            metadata["optimization"] = {"fused": False}
        if precision == "fp32":
            shutil.copyfile(graph, out)
            return Compiled([MODEL_FILE], metadata)
        # static int8's weights are per channel in both graphs; -O per_channel is dynamic's
        per_channel = static or settings.options["per_channel"]
        keep_float = settings.options["keep_float"]
        graph, smoothing = smoothed(
            graph,
            calibration,
            settings.options["smooth"],
            model.task,
            per_channel=per_channel,
            static=static,
        )
        if static:
            quantization = quantize_static_fixed(
                graph,
                out,
                calibration,
                method=settings.options["calibration"],
                keep_float=keep_float,
            )
        else:
            quantization = quantize_dynamic_int8(
                graph, out, per_channel=per_channel, keep_float=keep_float
            )
        metadata["quantization"] = {**quantization, "smoothing": smoothing}
        return Compiled([MODEL_FILE], metadata)


def static_graph_form(options: dict) -> str:
    """The int8-static graph, "fused" or "qdq"; BadInput for an option only Q/DQ has."""
    form = options["static_graph"]
    if form == "fused":
        if options["symmetric"]:
            raise BadInput(
                "-O symmetric=true: symmetric int8 activations exist only in the Q/DQ "
                "graph (TensorRT's form); add -O static_graph=qdq"
            )
        if list(options["quantize_ops"]) != list(DEFAULT_OP_TYPES):
            raise BadInput(
                "-O quantize_ops applies to the Q/DQ graph only (the fused graph "
                "quantizes every MatMul and attention); add -O static_graph=qdq"
            )
    return form


BACKEND = OnnxRuntimeBackend(
    name="onnxruntime",
    precisions=("fp32", "int8", "int8-static", "int8-auto"),
    devices=("cpu",),
    requires=("onnxruntime",),
    extra=None,
    description="ONNX Runtime on CPU: fused fp32, dynamic int8, static int8 (fixed scales)",
    options=(
        TOKENIZER_OPTION,
        Option(
            "allow_spinning",
            bool,
            False,
            "let idle intra-op threads spin between ops (faster only on an otherwise idle CPU)",
        ),
        Option(
            "fuse",
            bool,
            True,
            "fuse attention, LayerNorm and GELU (kept only if logits stay within 1e-3)",
        ),
        Option("per_channel", bool, True, "dynamic int8: one weight scale per output channel"),
        Option(
            "static_graph",
            str,
            "fused",
            "int8-static: fused (dynamic int8's fused kernels with calibrated, fixed "
            "activation scales: the fast one here) or qdq (Q/DQ nodes on the unfused "
            "graph, TensorRT's form: to check its accuracy on a CPU; slower here)",
            choices=("fused", "qdq"),
        ),
        Option(
            "symmetric",
            bool,
            False,
            "int8-static with static_graph=qdq: symmetric int8 activations (zero point "
            "0, TensorRT's) instead of uint8",
        ),
        SMOOTH_OPTION,
        *SEARCH_OPTIONS,
        Option(
            "quantize_ops",
            list,
            list(DEFAULT_OP_TYPES),
            "int8-static with static_graph=qdq: the ONNX operator types to quantize",
        ),
    ),
    calibrated=("int8-static",),
    # dynamic first: the search shares its trials in this order (benchmarks/NOTES.md, 15)
    searched=("int8", "int8-static"),
)


@hookimpl
def register_backends(register):
    register(BACKEND)
