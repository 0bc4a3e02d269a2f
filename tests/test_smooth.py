"""Activation smoothing before int8 (edgec.backends.smooth): exact in float, applied
only where it cuts a MatMul's int8 error as measured in the form the backend quantizes
(per-call or static ranges, uint8 or symmetric int8), recorded in the manifest, and
off with `-O smooth=[]`. Its accuracy on a real model is in test_int8_search_real.py."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import numpy_helper
from test_onnxruntime_backend import exported, settings_of  # noqa: F401  (a fixture)

from edgec.backends.groups import quantizable_groups
from edgec.backends.onnxruntime import BACKEND
from edgec.backends.smooth import (
    MIN_GAIN,
    SMOOTHED_ROLES,
    Sample,
    choose_alpha,
    roles_for,
    smooth_graph,
)
from edgec.views import smoothing_fact
from edgec_runtime.errors import BadInput

OUTLIER = 30.0  # how much larger the planted channel is than the rest


def sample_of(x: np.ndarray) -> Sample:
    return Sample(x.min(axis=0), x.max(axis=0), x.astype(np.float32))


def test_an_outlier_channel_gets_an_alpha_and_flat_activations_do_not():
    rng = np.random.default_rng(0)
    weight = rng.normal(size=(64, 32)).astype(np.float32)
    flat = [sample_of(rng.normal(size=(128, 64))) for _ in range(4)]
    alpha, before, after, scales = choose_alpha(weight, flat, per_channel=True)
    assert alpha is None and after == before and np.all(scales == 1.0)

    spiky = []
    for _ in range(4):
        x = rng.normal(size=(128, 64))
        x[:, 5] *= OUTLIER
        spiky.append(sample_of(x))
    alpha, before, after, scales = choose_alpha(weight, spiky, per_channel=True)
    assert alpha is not None and after <= before * (1 - MIN_GAIN)
    assert scales[5] == scales.max()  # the outlier channel is divided the most


def test_the_error_is_measured_in_the_form_the_backend_quantizes():
    rng = np.random.default_rng(1)
    weight = rng.normal(size=(64, 32)).astype(np.float32)
    calm, wild = rng.normal(size=(128, 64)), rng.normal(size=(128, 64))
    wild[:, 5] *= OUTLIER  # only one batch has the outlier
    samples = [sample_of(calm), sample_of(wild)]
    per_call = choose_alpha(weight, samples, per_channel=True)
    static = choose_alpha(weight, samples, per_channel=True, static=True)
    # one range for both: the calm batch is quantized with the wild one's step
    assert static[1] > per_call[1]
    assert static[0] is not None and static[2] <= static[1] * (1 - MIN_GAIN)

    positive = [sample_of(np.abs(rng.normal(size=(128, 64)))) for _ in range(2)]  # GELU-like
    uint8 = choose_alpha(weight, positive, per_channel=True, static=True)
    int8 = choose_alpha(weight, positive, per_channel=True, static=True, symmetric=True)
    assert int8[1] > uint8[1]  # symmetric int8 spends half its codes on values never seen


def planted(path, tmp_path):
    """The export with one channel of layer 0's feed-forward output made an outlier:
    its up-projection column times OUTLIER, so the down-projection's input has it."""
    model = onnx.load(str(path))
    groups = quantizable_groups(model)
    (up,) = groups["layer0.ffn-up"]
    node = next(n for n in model.graph.node if n.name == up)
    weight = next(i for i in model.graph.initializer if i.name == node.input[1])
    values = numpy_helper.to_array(weight).copy()
    values[:, 3] *= OUTLIER
    weight.CopyFrom(numpy_helper.from_array(values, weight.name))
    out = tmp_path / "planted.onnx"
    onnx.save(model, str(out))
    return out


def float_outputs(path, batches):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = {i.name for i in session.get_inputs()}
    return [session.run(None, {k: v for k, v in b.items() if k in names})[0] for b in batches]


def test_smoothing_is_exact_in_float_and_recorded_per_matmul(exported, tmp_path):  # noqa: F811
    _, path, calibration = exported
    src = planted(path, tmp_path)
    record = smooth_graph(src, tmp_path / "smoothed.onnx", calibration)
    groups = record["groups"]
    assert "layer0.ffn-down" in groups and groups["layer0.ffn-down"][0]["alpha"] is not None
    for entries in groups.values():
        for e in entries:
            before, after = e["error"]
            assert after == before if e["alpha"] is None else after <= before
    graph = onnx.load(str(tmp_path / "smoothed.onnx")).graph
    muls = [n for n in graph.node if n.op_type == "Mul" and n.name.endswith("/smooth")]
    assert len(muls) == record["smoothed"] >= 1 and record["of"] == 3 * len(
        [g for g in quantizable_groups(onnx.load(str(src))) if g.endswith(".ffn-down")]
    )
    before = float_outputs(src, calibration)
    after = float_outputs(tmp_path / "smoothed.onnx", calibration)
    for a, b in zip(before, after, strict=True):
        assert np.abs(a - b).max() <= 1e-4 * max(1.0, np.abs(a).max())


@pytest.mark.parametrize(
    "precision,form",
    [
        ("int8", "per-call uint8-asymmetric activations"),
        ("int8-static", "static uint8-asymmetric activations"),
    ],
)
def test_int8_smooths_by_default_for_its_own_form_and_not_when_told(
    exported,  # noqa: F811
    tmp_path,
    precision,
    form,
):
    source, path, calibration = exported
    src = planted(path, tmp_path)
    for name in "abc":
        (tmp_path / name).mkdir()
    smoothed = BACKEND.compile(src, precision, calibration, settings_of(source), tmp_path / "a")
    record = smoothed.metadata["quantization"]["smoothing"]
    assert record["smoothed"] >= 1 and record["calibration_batches"] == len(calibration)
    assert record["measured_for"] == form
    line = smoothing_fact(record)  # what `edgec inspect` and the build summary say
    assert line.startswith(f"{record['smoothed']} of {record['of']} MatMuls, alpha ")
    assert line.endswith(f" calibration tokens for {form}")
    graph = onnx.load(str(tmp_path / "a" / "model.onnx")).graph
    smooth = {n.output[0] for n in graph.node if n.name.endswith("/smooth")}
    assert len(smooth) == record["smoothed"]
    if precision == "int8-static":  # the ranges are calibrated on the smoothed inputs
        assert smooth <= {n.input[0] for n in graph.node if n.op_type == "QuantizeLinear"}

    off = BACKEND.compile(
        src, precision, calibration, settings_of(source, smooth=[]), tmp_path / "b"
    )
    assert off.metadata["quantization"]["smoothing"] == {"smoothed": 0, "why": "-O smooth=[]"}
    graph = onnx.load(str(tmp_path / "b" / "model.onnx")).graph
    assert not any(n.name.endswith("/smooth") for n in graph.node)

    if precision == "int8":  # static int8 refuses to build without calibration texts
        blind = BACKEND.compile(src, "int8", None, settings_of(source), tmp_path / "c")
        assert blind.metadata["quantization"]["smoothing"]["why"] == "no calibration texts"


def test_a_group_the_model_lacks_is_bad_input_naming_its_groups(exported, tmp_path):  # noqa: F811
    source, path, calibration = exported
    settings = settings_of(source, smooth=["layer99.ffn-down"])
    with pytest.raises(
        BadInput, match="^smooth: .layer99.ffn-down. names no node group of this model"
    ):
        BACKEND.compile(path, "int8", calibration, settings, tmp_path)


def test_each_int8_form_has_its_own_default_per_task():
    """Measured per form (NOTES.md, sections 13 and 14): the tagger's entities suffered
    from smoothing with per-call ranges and gained from it with static ones."""
    tagger = "token-classification"
    assert roles_for(None, tagger, static=False)[0] == []
    assert (
        "not by default for token-classification (per-call int8"
        in roles_for(None, tagger, static=False)[1]
    )
    assert roles_for(None, tagger, static=True)[0] == list(SMOOTHED_ROLES)
    for static in (False, True):
        assert roles_for(None, "sequence-classification", static=static)[0] == list(SMOOTHED_ROLES)
        assert roles_for(None, "sentence-embedding", static=static)[0] == []
        assert roles_for([], tagger, static=static) == ([], "-O smooth=[]")
