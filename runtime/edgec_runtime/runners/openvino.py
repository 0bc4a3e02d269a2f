"""The runner of `openvino` packages: the IR compiled for its device with the precision
pinned, one infer request, sequence lengths bucketed.

Precision is pinned at load time, never left to the plugin's default: on CPUs with
AMX or AVX512-BF16 OpenVINO silently runs fp32 models in bf16, which breaks the fp32
parity promise. openvino is imported only when a package is loaded.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np

from edgec_runtime.errors import BackendUnavailable, BadInput
from edgec_runtime.iospec import BATCH, SEQUENCE, STRING_INPUT, clamp_shapes
from edgec_runtime.runners import RunnerPlugin, hookimpl
from edgec_runtime.threads import cores

MODEL_XML = "model.xml"
MODEL_BIN = "model.bin"
DEVICE_FAMILIES = ("CPU", "GPU", "NPU")
DEFAULT_SEQUENCE_BUCKET = 16  # pad lengths to a multiple: few shapes (OpenVinoRunner)


@cache
def core():
    """One OpenVINO Core per process: creating it scans plugins and devices. Where
    openvino-tokenizers is installed it is imported first: it adds its operators to
    every Core made after, which a strings-in model's tokenizer is made of."""
    import importlib.util

    import openvino as ov

    if importlib.util.find_spec("openvino_tokenizers") is not None:
        import openvino_tokenizers  # noqa: F401  (registers the tokenizer operators)
    return ov.Core()


def device_family(device: str) -> str:
    """Upper-case device family, as OpenVINO names them: "gpu.1" -> "GPU"."""
    return device.upper().split(".")[0]


def _supported(device: str, prop: str) -> bool:
    try:
        return prop in core().get_property(device, "SUPPORTED_PROPERTIES")
    except RuntimeError:
        return False


def inference_precision(device: str, precision: str, settings) -> str:
    """The INFERENCE_PRECISION_HINT to run with.

    fp16 runs in f16 only where the device lists FP16 among its optimization
    capabilities; elsewhere it keeps the fp16-compressed weights and computes in f32.
    bf16 (fp32 weights) computes in bf16, and only where the device lists BF16.
    Everything else computes in f32 (int8 included: its unquantized ops stay exact).
    """
    if settings.options.get("inference_precision"):
        return settings.options.get("inference_precision")
    if precision not in ("fp16", "bf16"):
        return "f32"
    capabilities = core().get_property(device, "OPTIMIZATION_CAPABILITIES")
    if precision == "bf16":
        if "BF16" not in capabilities:  # an emulated bf16 would be slower than f32
            raise BackendUnavailable(
                f"OpenVINO's {device} has no bf16 compute (it needs AVX512_BF16 or AMX): "
                "build for fp32, fp16 or int8"
            )
        return "bf16"
    return "f16" if "FP16" in capabilities else "f32"


def device_problem(device: str) -> str | None:
    """Why OpenVINO cannot run on `device` here (no such device, or no driver), or None."""
    family = device_family(device)
    if family not in DEVICE_FAMILIES:
        return (
            f"device {device!r} is not served by openvino (it serves {', '.join(DEVICE_FAMILIES)})"
        )
    try:
        seen = list(core().available_devices)
    except RuntimeError as e:
        return f"OpenVINO could not list its devices ({e}): reinstall openvino"
    wanted = device.upper()
    if not any(d == wanted or ("." not in wanted and device_family(d) == family) for d in seen):
        return (
            f"OpenVINO sees no {wanted} device on this machine (available: {', '.join(seen) or 'none'}): "
            "build for intel-cpu, or build on a machine with the device and its driver"
        )
    return None


class OpenVinoRunner:
    """One compiled model and one infer request, created once and reused per call.

    OpenVINO specialises a dynamic model for every input shape it meets, and a new
    shape costs more than the inference itself; real sentences come in every length.
    So the sequence axis is padded up to a multiple of `sequence_bucket` (16: at most
    4 shapes per batch size for max_length 64), which measured 1.27 ms per sentence
    against 1.78 ms unpadded for the int8 sentiment teacher (benchmarks/NOTES.md).
    `static_shape` (batch, sequence) serves devices that need one fixed shape (the NPU):
    rows are also split into batches of that size. Padded positions hold the pad token
    with attention_mask 0: masked keys get zero attention weight, so the real rows'
    logits are unchanged.
    """

    def __init__(
        self,
        compiled_model,
        static_shape: tuple[int, int] | None = None,
        sequence_bucket: int = 1,
        max_sequence: int | None = None,
        pad_token_id: int = 0,
    ):
        self.compiled = compiled_model
        self.request = compiled_model.create_infer_request()
        self.input_names = [p.get_any_name() for p in compiled_model.inputs]
        outputs = compiled_model.outputs
        self.output = next((o for o in outputs if "logits" in o.get_names()), outputs[0])
        self.static_shape = static_shape
        self.sequence_bucket = max(1, int(sequence_bucket))
        self.max_sequence = max_sequence
        self.pad_token_id = int(pad_token_id or 0)
        self.inference_precision = None  # what the device actually computes in, e.g. "f32"
        if "INFERENCE_PRECISION_HINT" in compiled_model.get_property("SUPPORTED_PROPERTIES"):
            hint = compiled_model.get_property("INFERENCE_PRECISION_HINT")
            self.inference_precision = getattr(hint, "get_type_name", lambda: str(hint))()

    def _infer(self, feed: dict[str, np.ndarray]) -> np.ndarray:
        result = self.request.infer(feed, share_inputs=True)
        return np.array(result[self.output], dtype=np.float32)

    def _padded(self, feed: dict[str, np.ndarray], rows: int, length: int) -> dict:
        """`feed` copied into (rows, length) arrays of pad tokens and zero masks."""
        out = {}
        for name, value in feed.items():
            fill = self.pad_token_id if name == "input_ids" else 0
            padded = np.full((rows, length), fill, dtype=np.int64)
            padded[: value.shape[0], : value.shape[1]] = value
            out[name] = padded
        return out

    def run(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        if STRING_INPUT in self.input_names:  # strings-in: the graph tokenizes and pads
            result = self.request.infer({STRING_INPUT: np.asarray(inputs[STRING_INPUT], dtype=str)})
            return np.array(result[self.output], dtype=np.float32)
        feed = {n: np.ascontiguousarray(inputs[n], dtype=np.int64) for n in self.input_names}
        if self.static_shape is not None:
            return self._run_static(feed)
        rows, length = next(iter(feed.values())).shape
        bucketed = -(-length // self.sequence_bucket) * self.sequence_bucket
        if self.max_sequence:
            bucketed = max(length, min(bucketed, self.max_sequence))
        if bucketed != length:
            feed = self._padded(feed, rows, bucketed)
        return self._infer(feed)

    def _run_static(self, feed: dict[str, np.ndarray]) -> np.ndarray:
        batch, sequence = self.static_shape
        rows, length = next(iter(feed.values())).shape
        if length > sequence:
            raise BadInput(
                f"a sequence of {length} tokens exceeds this package's fixed length {sequence}: "
                "rebuild with a longer sequence shape or a smaller --max-length"
            )
        out = []
        for start in range(0, rows, batch):
            chunk = {name: value[start : start + batch] for name, value in feed.items()}
            out.append(
                self._infer(self._padded(chunk, batch, sequence))[: min(batch, rows - start)]
            )
        return np.concatenate(out, axis=0)


def static_shape_of(settings) -> tuple[int, int] | None:
    """Fixed (batch, sequence) for the NPU, or when options ask for static shapes: the
    largest of the target's ranges, the sequence cut at max_length (no text is longer;
    padding past it only costs time)."""
    family = device_family(settings.device.device)
    if family != "NPU" and not settings.options.get("static_shapes", False):
        return None
    shapes = clamp_shapes(settings.device.shapes, settings.model.max_length)
    return shapes[BATCH][-1], shapes[SEQUENCE][-1]


def compile_config(device: str, precision: str, settings) -> dict:
    """Properties for core.compile_model, limited to those the device supports."""
    wanted = {
        "PERFORMANCE_HINT": settings.options.get("performance_hint", "LATENCY"),
        "INFERENCE_PRECISION_HINT": inference_precision(device, precision, settings),
    }
    threads = min(int(settings.device.threads or 0), cores())  # a profile may name more
    if threads > 0 and device_family(device) == "CPU":
        wanted["INFERENCE_NUM_THREADS"] = threads
    return {k: v for k, v in wanted.items() if _supported(device, k)}


def load(package_dir, compiled, settings) -> OpenVinoRunner:
    device = settings.device.device.upper()
    precision = compiled.get("precision", "fp32")
    model = core().read_model(str(Path(package_dir) / MODEL_XML))
    static = static_shape_of(settings)
    if static is not None:
        model.reshape({p.get_any_name(): list(static) for p in model.inputs})
    config = compile_config(device, precision, settings)
    return OpenVinoRunner(
        core().compile_model(model, device, config),
        static,
        sequence_bucket=settings.options.get("sequence_bucket", DEFAULT_SEQUENCE_BUCKET),
        max_sequence=clamp_shapes(settings.device.shapes, None)[SEQUENCE][-1],
        pad_token_id=settings.model.pad_token_id,
    )


RUNNER = RunnerPlugin(
    name="openvino",
    load=load,
    requires=("openvino",),
    extra="openvino",
    device_problem=device_problem,
)


@hookimpl
def register_runners(register):
    register(RUNNER)
