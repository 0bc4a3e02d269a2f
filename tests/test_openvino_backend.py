"""The OpenVINO backend, run for real on tiny models (CPU only on these machines).

The tiny models' heads are scaled up so logits are O(1): with random init they are
~0.01, which would make every absolute tolerance below meaningless.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("openvino")
pytest.importorskip("nncf")

from conftest import random_sentences  # noqa: E402
from tiny_models import make_tiny_classifier  # noqa: E402

from edgec.backends.openvino import BACKEND, core  # noqa: E402
from edgec.backends.settings import (  # noqa: E402
    resolve_options,
)
from edgec.export import export_onnx, reference_inputs, torch_outputs  # noqa: E402
from edgec.model import load_source_model  # noqa: E402
from edgec.verify.reference import calibration_batches  # noqa: E402
from edgec_runtime.errors import BackendUnavailable  # noqa: E402
from edgec_runtime.settings import BackendSettings, DeviceSettings, ModelFacts  # noqa: E402

SHAPES = {"batch": [1, 1, 32], "sequence": [1, 128, 512]}
FP32_TOLERANCE = 1e-4
FP16_TOLERANCE = 2e-2  # observed ~3e-3 on O(1) logits with f16 compute (AVX512-FP16 CPU)
HEAD_SCALE = 100.0
# int8 against fp32 on the tiny model's O(1) logits (observed: agreement 1.00, max
# |dlogit| 9e-3); a broken quantization (wrong scales, a lost head) breaks both.
INT8_MIN_AGREEMENT = 0.9
INT8_LOGIT_TOLERANCE = 0.1


def settings(device="CPU", shapes=None, model=None, **options) -> BackendSettings:
    """What a build hands the backend: device settings, model facts, declared options."""
    return BackendSettings(
        device=DeviceSettings(device=device, threads=2, shapes=shapes or SHAPES),
        model=model or ModelFacts(),
        options=resolve_options(BACKEND, {}, options, gates={}),
    )


CPU = settings()


def tiny_with_big_logits(family: str, directory: Path) -> Path:
    import torch
    from transformers import AutoModelForSequenceClassification

    path = make_tiny_classifier(family, directory)
    model = AutoModelForSequenceClassification.from_pretrained(path)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "classifier" in name and name.endswith("weight"):
                param.mul_(HEAD_SCALE)
    model.save_pretrained(path)
    return path


class Tiny:
    def __init__(self, family: str, root: Path):
        self.source = load_source_model(tiny_with_big_logits(family, root / family))
        self.onnx = root / f"{family}.onnx"
        export_onnx(self.source, self.onnx)
        texts = random_sentences(48, seed=3)
        self.calibration = calibration_batches(self.source, texts)
        self.probe = reference_inputs(self.source, random_sentences(12, seed=4))
        self.reference = torch_outputs(self.source, self.probe)

    def build(self, precision: str, workdir: Path, shapes=None, **options):
        facts = ModelFacts(
            max_length=self.source.max_length, pad_token_id=self.source.tokenizer.pad_token_id
        )
        options = settings(shapes=shapes, model=facts, **options)
        compiled = BACKEND.compile(self.onnx, precision, self.calibration, options, workdir)
        section = {
            "name": "openvino",
            "precision": precision,
            "files": compiled.files,
            **compiled.metadata,
        }
        return compiled, BACKEND.load(workdir, section, options)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Tiny:
    return Tiny("bert", tmp_path_factory.mktemp("ov"))


def max_diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).max())


@pytest.mark.parametrize("family", ["bert", "distilbert", "roberta", "xlm-roberta", "electra"])
def test_fp32_matches_pytorch(family, tmp_path):
    model = Tiny(family, tmp_path)
    compiled, runner = model.build("fp32", tmp_path / "out")
    assert (tmp_path / "out" / "model.xml").is_file() and (tmp_path / "out" / "model.bin").is_file()
    assert compiled.files == ["model.xml", "model.bin"]
    assert runner.inference_precision == "f32"  # pinned: AMX/BF16 CPUs would default to bf16
    logits = runner.run(model.probe)
    assert logits.shape == model.reference.shape
    assert max_diff(logits, model.reference) <= FP32_TOLERANCE


def test_fp16_runs_close_to_pytorch(tiny, tmp_path):
    compiled, runner = tiny.build("fp16", tmp_path)
    assert compiled.metadata["weights"] == "fp16"
    # f16 compute exactly where the CPU lists FP16 among its capabilities
    has_fp16 = "FP16" in core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")
    assert compiled.metadata["inference_precision_hint"] == ("f16" if has_fp16 else "f32")
    assert runner.inference_precision == compiled.metadata["inference_precision_hint"]
    logits = runner.run(tiny.probe)
    print(
        f"fp16 max abs logit diff {max_diff(logits, tiny.reference):.2e} "
        f"(|logits| up to {np.abs(tiny.reference).max():.2f}, compute {runner.inference_precision})"
    )
    assert max_diff(logits, tiny.reference) <= FP16_TOLERANCE
    assert (logits.argmax(1) == tiny.reference.argmax(1)).all()


def test_bf16_computes_in_bf16_where_the_cpu_has_it(tiny, tmp_path):
    """AMX or AVX512_BF16: fp32 weights, bf16 compute. Elsewhere bf16 is refused (exit 3),
    never emulated: an emulated bf16 is slower than f32."""
    if "BF16" not in core().get_property("CPU", "OPTIMIZATION_CAPABILITIES"):
        with pytest.raises(BackendUnavailable, match="no bf16 compute"):
            tiny.build("bf16", tmp_path)
        return
    compiled, runner = tiny.build("bf16", tmp_path)
    assert compiled.metadata["weights"] == "fp32"
    assert compiled.metadata["inference_precision_hint"] == runner.inference_precision == "bf16"
    logits = runner.run(tiny.probe)
    assert max_diff(logits, tiny.reference) <= FP16_TOLERANCE  # bf16 keeps 8 mantissa bits
    assert (logits.argmax(1) == tiny.reference.argmax(1)).all()


def test_fp16_without_device_support_keeps_f32_compute(tiny, tmp_path):
    _, runner = tiny.build("fp16", tmp_path, inference_precision="f32")
    assert runner.inference_precision == "f32"
    assert max_diff(runner.run(tiny.probe), tiny.reference) <= 1e-3


def test_int8_stays_close_to_fp32(tiny, tmp_path):
    compiled, runner = tiny.build("int8", tmp_path)
    logits = runner.run(tiny.probe)
    assert logits.shape == tiny.reference.shape
    agreement = (logits.argmax(1) == tiny.reference.argmax(1)).mean()
    assert agreement >= INT8_MIN_AGREEMENT
    assert max_diff(logits, tiny.reference) <= INT8_LOGIT_TOLERANCE
    quantization = compiled.metadata["quantization"]
    assert quantization["method"] == "nncf-ptq"
    assert quantization["calibration_samples"] == 48  # one unpadded item per text
    xml = (tmp_path / "model.xml").read_text()
    assert "FakeQuantize" in xml or "FakeConvert" in xml
    print(
        f"int8 max abs logit diff {max_diff(logits, tiny.reference):.2e}, "
        f"agreement {(logits.argmax(1) == tiny.reference.argmax(1)).mean():.2f}"
    )


def test_int8_needs_calibration(tiny, tmp_path):
    from edgec_runtime.errors import BadInput

    with pytest.raises(BadInput, match="calibration"):
        BACKEND.compile(tiny.onnx, "int8", None, CPU, tmp_path)


def test_accuracy_control_uses_agreement_with_fp32(tiny, tmp_path):
    schedule = {"max_num_iterations": 2}
    compiled, runner = tiny.build(
        "int8-accuracy-control", tmp_path, accuracy_control=schedule, max_accuracy_drop=0.5
    )
    q = compiled.metadata["quantization"]
    assert q["validation_metric"] == "agreement-with-fp32"
    assert q["max_drop_points"] == 0.5 and q["schedule"] == schedule
    # the reported agreement is the real one: recomputed here, per unpadded text
    _, fp32 = tiny.build("fp32", tmp_path / "fp32")
    samples = single_texts(tiny.calibration)
    agree = [runner.run(s).argmax(1)[0] == fp32.run(s).argmax(1)[0] for s in samples]
    assert q["validation_value"] == pytest.approx(np.mean(agree))
    logits = runner.run(tiny.probe)
    assert (logits.argmax(1) == tiny.reference.argmax(1)).mean() >= INT8_MIN_AGREEMENT


def test_accuracy_control_with_labeled_validation(tiny, tmp_path):
    labels = [np.arange(len(b["input_ids"])) % 2 for b in tiny.calibration]
    validation = list(zip(tiny.calibration, labels, strict=True))
    compiled, runner = tiny.build(
        "int8-accuracy-control",
        tmp_path,
        validation=validation,
        accuracy_control={"max_num_iterations": 1},
    )
    q = compiled.metadata["quantization"]
    assert q["validation_metric"] == "accuracy" and q["validation_samples"] == 48
    # the reported accuracy is the real one against those labels, recomputed here
    gold = np.concatenate(labels)
    predicted = [runner.run(s).argmax(1)[0] for s in single_texts(tiny.calibration)]
    assert q["validation_value"] == pytest.approx(np.mean(np.asarray(predicted) == gold))
    json.dumps(compiled.metadata)  # the manifest must be able to hold it


def single_texts(batches: list[dict]) -> list[dict]:
    """Each text of padded batches alone, unpadded, in order."""
    out = []
    for batch in batches:
        for row, mask in enumerate(batch["attention_mask"]):
            keep = mask.astype(bool)
            out.append({n: v[row, keep][None, :] for n, v in batch.items()})
    return out


def test_dynamic_batch_and_sequence(tiny, tmp_path):
    _, runner = tiny.build("fp32", tmp_path)
    short = reference_inputs(tiny.source, ["ok"])
    long = reference_inputs(tiny.source, random_sentences(5, seed=9), max_length=64)
    assert short["input_ids"].shape != long["input_ids"].shape
    for inputs in (short, long, short):
        expected = torch_outputs(tiny.source, inputs)
        assert max_diff(runner.run(inputs), expected) <= FP32_TOLERANCE


@pytest.mark.parametrize("family", ["bert", "roberta"])
def test_static_shapes_pad_and_split_without_changing_logits(family, tmp_path):
    """The NPU path (fixed shapes), exercised on CPU with static_shapes=True."""
    model = Tiny(family, tmp_path)
    shapes = {"batch": [2, 2, 2], "sequence": [32, 32, 32]}
    compiled, runner = model.build("fp32", tmp_path / "out", static_shapes=True, shapes=shapes)
    assert compiled.metadata["static_shape"] == (2, 32)
    inputs = reference_inputs(model.source, random_sentences(3, seed=5), max_length=32)
    expected = torch_outputs(model.source, inputs)
    assert max_diff(runner.run(inputs), expected) <= FP32_TOLERANCE


@pytest.mark.parametrize("family", ["bert", "roberta"])
def test_lengths_are_padded_to_a_bucket_without_changing_logits(family, tmp_path):
    """Few shapes for OpenVINO: lengths round up to 16 with pad tokens (RoBERTa's is 1)."""
    model = Tiny(family, tmp_path)
    pad = model.source.tokenizer.pad_token_id
    _, runner = model.build("fp32", tmp_path / "out")
    seen = []
    infer = runner._infer
    runner._infer = lambda feed: (seen.append(feed["input_ids"].copy()), infer(feed))[1]
    lengths = []
    for n, seed in ((1, 1), (3, 2), (5, 3)):
        inputs = reference_inputs(model.source, random_sentences(n, seed=seed), max_length=60)
        expected = torch_outputs(model.source, inputs)
        assert max_diff(runner.run(inputs), expected) <= FP32_TOLERANCE
        length = inputs["input_ids"].shape[1]
        lengths.append(length)
        assert seen[-1].shape[1] == -(-length // 16) * 16
        assert (seen[-1][:, length:] == pad).all()
    assert any(length % 16 for length in lengths)  # something was really padded


def test_ir_for_an_absent_gpu_is_still_written(tiny, tmp_path):
    compiled = BACKEND.compile(tiny.onnx, "fp16", tiny.calibration, settings("GPU"), tmp_path)
    assert (tmp_path / "model.xml").is_file()
    assert "FP16" in compiled.metadata["inference_precision_hint"]


def test_available_explains_missing_devices():
    assert BACKEND.available() is None
    assert BACKEND.available("CPU") is None
    assert BACKEND.available("cpu") is None
    for device in ("NPU", "GPU"):
        reason = BACKEND.available(device)
        assert reason and f"no {device} device" in reason and "available: CPU" in reason
        assert "intel-cpu" in reason and "\n" not in reason
    assert "not served by openvino" in BACKEND.available("cuda")


def test_available_names_the_missing_package():
    broken = dataclasses.replace(BACKEND, requires=("openvino_not_installed_here",))
    assert "pip install 'edgec[openvino]'" in broken.available("CPU")


def test_registered_through_the_entry_point():
    from edgec.plugins import get_backend

    assert get_backend("openvino") is BACKEND


def test_listing_backends_does_not_import_openvino():
    code = (
        "import sys, edgec.backends.openvino\n"
        "from edgec.plugins import backends\n"
        "assert 'openvino' in backends()\n"
        "heavy = [m for m in ('openvino', 'nncf', 'torch') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("verbose", [[], ["--verbose"]])
def test_json_stays_json_while_nncf_quantizes(tiny_bert, tiny_eval_csv, tmp_path, verbose):
    """NNCF draws bars and logs to stdout; --json output must still parse, --verbose or not."""
    from cli_helpers import run_edgec

    for precision in ("int8", "int8-accuracy-control"):
        out = tmp_path / precision
        result = run_edgec(
            "build", tiny_bert, "--target", "intel-cpu", "--precision", precision,
            "--eval-data", tiny_eval_csv, "-o", out, "--json", *verbose,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        manifest = json.loads(result.stdout)["manifest"]
        assert manifest["backend"]["precision"] == precision
