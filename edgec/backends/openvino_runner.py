"""Running a compiled OpenVINO model: one infer request, sequence lengths bucketed.

Not a backend: the OpenVINO backend (edgec.backends.openvino) loads its packages with
it, as the ONNX Runtime backend does with edgec.backends.ort_runner.
"""

from __future__ import annotations

import numpy as np

from edgec.errors import BadInput


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
