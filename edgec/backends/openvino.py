"""OpenVINO backend: an IR (model.xml + model.bin) for Intel CPU, GPU or NPU.

The IR is device-independent, so a package for an Intel GPU or NPU can be compiled
on any machine; only loading (and therefore verifying) needs the device.

Precision is pinned at load time, never left to the plugin's default: on CPUs with
AMX or AVX512-BF16 OpenVINO silently runs fp32 models in bf16, which breaks the
fp32 parity promise. int8 comes from NNCF post-training quantization on the user's
own calibration texts; `int8-accuracy-control` additionally reverts layers to float
until edgec's parity metric (argmax agreement with fp32, or accuracy when labels are
given) stays within the target's allowed drop.

openvino and nncf are imported only inside functions: listing backends stays cheap.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgec.backends import Backend, Compiled
from edgec.backends.settings import TOKENIZER_OPTION, Option
from edgec.plugins import hookimpl
from edgec.quiet import tame_logger
from edgec_runtime.errors import BadInput
from edgec_runtime.runners.openvino import (
    DEFAULT_SEQUENCE_BUCKET,
    MODEL_BIN,
    MODEL_XML,
    core,
    device_family,
    device_problem,
    inference_precision,
    static_shape_of,
)
from edgec_runtime.settings import BackendSettings

DEFAULT_RESTORE_ITERATIONS = 16  # bounds accuracy control's layer-reverting loop


# ---------------------------------------------------------------- calibration data


def single_samples(batches: list[dict], input_names: list[str]) -> list[dict]:
    """Split padded batches into unpadded single sequences.

    NNCF collects activation statistics per data item; padded positions would add
    hidden states of [PAD] tokens to the ranges, so each sequence is fed alone and
    only its real tokens (attention_mask == 1) are kept.
    """
    samples = []
    for batch in batches:
        mask = np.asarray(batch.get("attention_mask", np.ones_like(batch[input_names[0]])))
        for row in range(mask.shape[0]):
            keep = mask[row].astype(bool)
            samples.append(
                {n: np.asarray(batch[n], dtype=np.int64)[row, keep][None, :] for n in input_names}
            )
    return samples


def labeled_samples(validation: list, input_names: list[str]) -> list[tuple[dict, int]]:
    """(inputs_dict, labels_array) batches -> (single unpadded inputs, label) items."""
    items = []
    for inputs, labels in validation:
        labels = np.asarray(labels).reshape(-1)
        for sample, label in zip(single_samples([inputs], input_names), labels, strict=True):
            items.append((sample, int(label)))
    return items


def agreement_fn(compiled_model, items) -> tuple[float, list[float]]:
    """edgec's parity metric for NNCF: fraction of items whose argmax matches.

    Per-item values let NNCF rank which quantized layers cost the most agreement.
    """
    output = compiled_model.output(0)
    hits = [
        float(int(np.argmax(compiled_model(inputs)[output], axis=-1)[0]) == expected)
        for inputs, expected in items
    ]
    return (float(np.mean(hits)) if hits else 1.0), hits


def tag_agreement_fn(compiled_model, items) -> tuple[float, list[float]]:
    """A tagger's parity metric: per sentence, the share of its tokens whose tag (the
    argmax) is fp32's; the `min_tag_agreement` gate measures the same on words."""
    output = compiled_model.output(0)
    shares = [
        float(np.mean(np.argmax(compiled_model(inputs)[output], axis=-1)[0] == expected))
        for inputs, expected in items
    ]
    return (float(np.mean(shares)) if shares else 1.0), shares


def cosine_fn(compiled_model, items) -> tuple[float, list[float]]:
    """An embedder's parity metric: per text, the cosine of its vector with fp32's."""
    output = compiled_model.output(0)
    cosines = []
    for inputs, expected in items:
        got = np.asarray(compiled_model(inputs)[output], dtype=np.float64)[0]
        denominator = max(float(np.linalg.norm(got) * np.linalg.norm(expected)), 1e-12)
        cosines.append(float(got @ expected) / denominator)
    return (float(np.mean(cosines)) if cosines else 1.0), cosines


def fp32_targets(compiled_model, samples: list[dict], task: str) -> list:
    """What each calibration text's fp32 output is, in the form its metric compares."""
    output = compiled_model.output(0)
    outputs = [np.asarray(compiled_model(s)[output]) for s in samples]
    if task == "sentence-embedding":
        return [o[0].astype(np.float64) for o in outputs]
    if task == "token-classification":
        return [np.argmax(o, axis=-1)[0] for o in outputs]
    return [int(np.argmax(o, axis=-1)[0]) for o in outputs]


# Accuracy control without labels, per task: the metric NNCF keeps within the drop,
# against fp32, and the build gate that sets the drop (the metric is 1.0 for fp32).
UNLABELED_METRICS = {
    "sequence-classification": ("agreement-with-fp32", agreement_fn, None),
    "token-classification": (
        "token-tag-agreement-with-fp32",
        tag_agreement_fn,
        "min_tag_agreement",
    ),
    "sentence-embedding": ("mean-cosine-with-fp32", cosine_fn, "min_mean_cosine"),
}


# ---------------------------------------------------------------- quantization


def _nncf_target_device(nncf, settings: BackendSettings):
    family = device_family(settings.device.device)
    return getattr(nncf.TargetDevice, family, nncf.TargetDevice.ANY)


def _nncf_settings(nncf, settings: BackendSettings, method: str, calibration_samples: int) -> dict:
    """What the manifest records of an NNCF quantization."""
    return {
        "method": method,
        "nncf_version": nncf.__version__,
        "model_type": "transformer",
        "target_device": _nncf_target_device(nncf, settings).value,
        "calibration_samples": calibration_samples,
    }


def quantize_int8(model, calibration: list[dict], settings: BackendSettings):
    import nncf

    tame_logger("nncf")
    names = [p.get_any_name() for p in model.inputs]
    samples = single_samples(calibration, names)
    quantized = nncf.quantize(
        model,
        nncf.Dataset(samples),
        model_type=nncf.ModelType.TRANSFORMER,
        target_device=_nncf_target_device(nncf, settings),
        subset_size=len(samples),
    )
    return quantized, _nncf_settings(nncf, settings, "nncf-ptq", len(samples))


def quantize_int8_accuracy_control(model, calibration: list[dict], settings: BackendSettings):
    """NNCF accuracy control with edgec's parity metric for the model's task.

    Option `validation` (classifiers): optional list of (inputs_dict, labels_array)
    batches; then the metric is accuracy against those labels. Without it the metric
    is the task's parity with this fp32 model on the calibration texts, which needs no
    labels (UNLABELED_METRICS: argmax agreement, token-tag agreement, or mean cosine).
    Option `max_accuracy_drop` is in points (1.0 = one percentage point); a build fills
    it from its own --max-accuracy-drop gate (the target's, by default).
    Option `accuracy_control` may set max_num_iterations and ranking_subset_size.
    """
    import nncf
    from nncf.quantization.advanced_parameters import AdvancedAccuracyRestorerParameters

    tame_logger("nncf")

    names = [p.get_any_name() for p in model.inputs]
    calibration_samples = single_samples(calibration, names)
    task = settings.model.task
    max_drop_points = settings.options["max_accuracy_drop"]
    if settings.options["validation"] and task == "sequence-classification":
        items = labeled_samples(settings.options["validation"], names)
        metric, metric_fn = "accuracy", agreement_fn
    else:
        fp32 = core().compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
        targets = fp32_targets(fp32, calibration_samples, task)
        items = list(zip(calibration_samples, targets, strict=True))
        metric, metric_fn, gate = UNLABELED_METRICS[task]
        if gate is not None:  # the gate's floor, as a drop from fp32's 1.0, in points
            max_drop_points = (1.0 - settings.options[gate]) * 100
    schedule = {
        "max_num_iterations": DEFAULT_RESTORE_ITERATIONS,
        **settings.options["accuracy_control"],
    }
    quantized = nncf.quantize_with_accuracy_control(
        model,
        nncf.Dataset(calibration_samples),
        nncf.Dataset(items, lambda item: item[0]),
        metric_fn,
        max_drop=max_drop_points / 100.0,
        drop_type=nncf.DropType.ABSOLUTE,
        subset_size=len(calibration_samples),
        model_type=nncf.ModelType.TRANSFORMER,
        target_device=_nncf_target_device(nncf, settings),
        advanced_accuracy_restorer_parameters=AdvancedAccuracyRestorerParameters(**schedule),
    )
    final = core().compile_model(quantized, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    record = {
        **_nncf_settings(nncf, settings, "nncf-accuracy-control", len(calibration_samples)),
        "validation_samples": len(items),
        "validation_metric": metric,
        "validation_value": metric_fn(final, items)[0],
        "max_drop_points": max_drop_points,
        "drop_type": "absolute",
        "schedule": schedule,
    }
    return quantized, record


# ---------------------------------------------------------------- the backend


class OpenVinoBackend(Backend):
    def available(self, device: str | None = None) -> str | None:
        reason = super().available(None)
        if reason or device is None:
            return reason
        return device_problem(device)

    def compile_problem(self, device: str | None, settings: BackendSettings) -> str | None:
        """The IR is device-independent: openvino and nncf are all a build needs."""
        reason = Backend.available(self, None)
        if reason or device is None:
            return reason
        if device_family(device) not in self.devices:
            return (
                f"device {device!r} is not served by openvino (it serves {', '.join(self.devices)})"
            )
        return None

    def check_runner(self, package_dir, compiled, settings: BackendSettings):
        """The target's device when present; else OpenVINO's CPU plugin on the same IR,
        with the NPU's fixed shapes kept, so the package is still checked here."""
        device = settings.device.device.upper()
        if self.available(device) is None:
            return self.load(package_dir, compiled, settings), None
        family = device_family(device)
        on_cpu = settings.with_device(device="CPU").with_options(static_shapes=family == "NPU")
        where = (
            f"OpenVINO's CPU plugin: there is no {family} device on this machine, so the IR "
            f"was checked on the CPU{' with the NPU’s fixed shapes' if family == 'NPU' else ''}"
        )
        return self.load(package_dir, compiled, on_cpu), where

    def compile(self, onnx_path, precision, calibration, settings, workdir) -> Compiled:
        import openvino as ov

        if precision not in self.precisions:
            raise BadInput(
                f"openvino has no precision {precision!r}: choose one of {', '.join(self.precisions)}"
            )
        if self.needs_calibration(precision) and not calibration:  # the pipeline refuses first
            raise BadInput(
                f"OpenVINO {precision} needs calibration texts: pass --eval-data or "
                "--calibration-data"
            )
        model = ov.convert_model(str(onnx_path))
        quantization = None
        if precision == "int8":
            model, quantization = quantize_int8(model, calibration, settings)
        elif precision == "int8-accuracy-control":
            model, quantization = quantize_int8_accuracy_control(model, calibration, settings)
        # fp16 stores fp16 weights; every other precision keeps float weights exact (bf16
        # is how the device computes, set at load: the IR is the fp32 one).
        ov.save_model(model, str(Path(workdir) / MODEL_XML), compress_to_fp16=precision == "fp16")
        device = settings.device.device.upper()
        hint = (
            inference_precision(device, precision, settings)
            if self.available(device) is None
            else UNSEEN_DEVICE_HINTS.get(precision, "f32")
        )
        metadata = {
            "openvino_version": ov.__version__,
            "weights": "fp16" if precision == "fp16" else ("int8" if quantization else "fp32"),
            "quantization": quantization,
            "inference_precision_hint": hint,
            "inputs": [p.get_any_name() for p in model.inputs],
            "static_shape": static_shape_of(settings),
        }
        return Compiled([MODEL_XML, MODEL_BIN], metadata)


# What a package for a device this machine lacks will compute in, as the manifest says.
UNSEEN_DEVICE_HINTS = {"fp16": "f16 where the device lists FP16, else f32", "bf16": "bf16"}

BACKEND = OpenVinoBackend(
    name="openvino",
    precisions=("fp32", "fp16", "bf16", "int8", "int8-accuracy-control"),
    devices=("CPU", "GPU", "NPU"),
    requires=("openvino", "nncf"),
    extra="openvino",
    description="OpenVINO IR for Intel CPU, GPU and NPU: fp32, fp16, bf16 (AMX/AVX512_BF16), NNCF int8 (optionally accuracy-controlled)",
    calibrated=("int8", "int8-accuracy-control"),
    options=(
        TOKENIZER_OPTION,
        Option(
            "performance_hint",
            str,
            "LATENCY",
            "OpenVINO's PERFORMANCE_HINT at load time",
            choices=("LATENCY", "THROUGHPUT", "CUMULATIVE_THROUGHPUT"),
        ),
        Option(
            "inference_precision",
            str,
            None,
            "INFERENCE_PRECISION_HINT to run with (default: f32; f16 for fp16 where the device has it)",
            choices=("f32", "f16", "bf16"),
        ),
        Option(
            "static_shapes",
            bool,
            False,
            "one fixed (batch, sequence) shape, the target's largest (always on for the NPU)",
        ),
        Option(
            "sequence_bucket",
            int,
            DEFAULT_SEQUENCE_BUCKET,
            "pad sequence lengths up to a multiple of this: fewer shapes to specialise",
            minimum=1,
        ),
        Option(
            "accuracy_control",
            dict,
            {},
            "int8-accuracy-control schedule: max_num_iterations, ranking_subset_size",
        ),
        Option(
            "max_accuracy_drop",
            float,
            None,
            "accuracy points int8-accuracy-control may lose (default: the build's gate)",
            gate="max_accuracy_drop",
        ),
        Option(
            "min_tag_agreement",
            float,
            None,
            "taggers: the token-tag agreement with fp32 accuracy control keeps (default: the build's gate)",
            gate="min_tag_agreement",
        ),
        Option(
            "min_mean_cosine",
            float,
            None,
            "embedders: the mean cosine with fp32 accuracy control keeps (default: the build's gate)",
            gate="min_mean_cosine",
        ),
        Option(
            "validation",
            list,
            None,
            "Python API only: labeled (inputs, labels) batches for accuracy control",
        ),
    ),
)


@hookimpl
def register_backends(register):
    register(BACKEND)
