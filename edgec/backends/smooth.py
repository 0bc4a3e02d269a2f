"""Activation smoothing before int8: outlier channels' range moved into the weights.

An encoder's MatMul inputs have a few channels far larger than the rest (MiniLM's
first feed-forward down-projection: one GELU channel reaches 24.8, the median channel
1.7), and int8 gives a whole activation tensor one scale, so those few set the step
for all. Dividing input channel j by s_j and multiplying the weight's row j by s_j
leaves the float product unchanged (SmoothQuant, Xiao et al. 2022) and flattens what
int8 sees; s_j = max|x_j|^alpha / max|w_j|^(1 - alpha).

No alpha suits every MatMul: a large one moves the outliers into the weights, where
per-output-channel scales then lose the other rows. So alpha is measured per MatMul:
the int8 output error of each choice (none included), on the calibration texts, with
activations and weights quantized as the backend will: per tensor, with each call's
range (dynamic int8) or one range for every call (static Q/DQ: the calibration texts'
least and greatest value, as MinMax calibration sets it), asymmetric uint8 or symmetric
int8 (TensorRT's form); symmetric int8 weights per output channel or per tensor. The
least error wins, and a MatMul where none beats no smoothing by a tenth (MIN_GAIN) is
left as it was. Each smoothed MatMul gains one elementwise Mul on its input
(benchmarks/NOTES.md, sections 13 and 14 have what that costs and what it buys, per
form).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from edgec.backends.derived import derived, samples_digest
from edgec.backends.groups import quantizable_groups, resolve_groups

SMOOTHED_ROLES = ("attention-out", "ffn-up", "ffn-down")  # the MatMuls with one input each
# What each task smooths unless -O smooth says, per int8 form (benchmarks/NOTES.md,
# sections 13 and 14; every group int8, the test split).
# - Dynamic int8 (per-call ranges): both classifiers flipped fewer predictions at no
#   accuracy cost (sentiment: 5 of 800 test and 10 of 2,744 training predictions
#   instead of 13 and 27). The tagger flipped fewer tags too (0.9989 agreement instead
#   of 0.9979 on 1,794 training sentences), but the ones left cost entities: entity F1
#   -0.72 on test and -0.88 on train, against -0.11 and +0.19 unsmoothed.
# - Static Q/DQ (one range per tensor): it gained on the three bench models, uint8 and
#   symmetric int8 alike (sentiment -3.25 -> -0.25 points, reviews -1.00 -> +0.33, NER
#   entity F1 -3.85 -> -2.21; symmetric -6.75 -> -5.75, -3.67 -> -2.00, -9.82 -> -9.55),
#   and neither gained nor lost on a fourth (the quick sentiment teacher: -1.62 both).
# Embedders were measured in neither form, so they keep the unsmoothed graph.
DEFAULT_ROLES = {
    "per-call": {
        "sequence-classification": SMOOTHED_ROLES,
        "token-classification": (),
        "sentence-embedding": (),
    },
    "static": {
        "sequence-classification": SMOOTHED_ROLES,
        "token-classification": SMOOTHED_ROLES,
        "sentence-embedding": (),
    },
}


def _form(static: bool) -> str:
    return "static" if static else "per-call"


def roles_for(option, task: str, *, static: bool) -> tuple[list[str], str]:
    """(the roles to smooth, why none are when the list is empty) from the `smooth`
    option's value: None means the task's default for this int8 form."""
    if option is None:
        form = _form(static)
        roles = list(DEFAULT_ROLES[form].get(task, ()))
        why = f"not by default for {task} ({form} int8; -O smooth='[\"ffn-down\"]' to try it)"
        return roles, why
    return list(option), "-O smooth=[]"


def smoothed(graph: Path, calibration, option, task: str, **form) -> tuple[Path, dict]:
    """(the graph to quantize, the manifest's smoothing record): `graph` smoothed as the
    `smooth` option (or the task's default) asks, for the int8 form of `form`
    (per_channel, static, symmetric: see smooth_graph), made once per process; `graph`
    itself, and why, when nothing is to be smoothed or there are no texts to measure on."""
    roles, why = roles_for(option, task, static=form.get("static", False))
    if not roles or not calibration:
        return graph, {"smoothed": 0, "why": why if not roles else "no calibration texts"}
    return derived(
        graph,
        "smoothed",
        lambda a, b: smooth_graph(a, b, calibration, roles=roles, **form),
        samples=samples_digest(calibration),
        roles=roles,
        **form,
    )


ALPHAS = (0.5, 0.6, 0.7, 0.8, 0.9)
# a Mul is paid for only where the error drops by at least this share
MIN_GAIN = 0.1
MAX_TOKENS = 16384  # of the calibration texts, for the peaks and the errors
ROWS_PER_BATCH = 32  # real-token rows per calibration batch the error is measured on


@dataclass
class Sample:
    """What one calibration batch says of one MatMul input: each channel's least and
    greatest value over the whole batch (int8 scales a whole tensor by its range) and a
    few real-token rows to measure the error on."""

    low: np.ndarray
    high: np.ndarray
    rows: np.ndarray


def _fake_int8_activations(x: np.ndarray, low: float, high: float, symmetric: bool):
    """x through int8 and back with the range [low, high]: symmetric int8 (zero point
    0) or asymmetric uint8, as the backend's quantizer sets the scale."""
    if symmetric:
        scale = max(abs(low), abs(high), 1e-12) / 127.0
        return np.clip(np.round(x / scale), -127, 127) * scale
    low, high = min(low, 0.0), max(high, 0.0)
    scale = max(high - low, 1e-12) / 255.0
    zero = np.round(-low / scale)
    return (np.clip(np.round(x / scale) + zero, 0, 255) - zero) * scale


def _fake_int8_weights(w: np.ndarray, per_channel: bool) -> np.ndarray:
    """[in, out] weights through symmetric int8 and back."""
    peak = np.abs(w).max(axis=0, keepdims=True) if per_channel else np.abs(w).max()
    scale = np.maximum(peak, 1e-12) / np.float32(127.0)
    return (np.round(w / scale) * scale).astype(np.float32)


def _scales(act_peak: np.ndarray, weight: np.ndarray, alpha: float) -> np.ndarray:
    row_peak = np.abs(weight).max(axis=1)
    scales = np.maximum(act_peak, 1e-5) ** alpha / np.maximum(row_peak, 1e-5) ** (1 - alpha)
    return scales.astype(np.float32)  # one dtype throughout: mixed ones leave BLAS


def samples_of(model, names: list[str], batches: list[dict]) -> dict[str, list[Sample]]:
    """One float run per batch, with the tensors `names` made graph outputs."""
    import onnx

    from edgec_runtime.runners.onnxruntime import session

    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    for name in names:
        info = onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None)
        probe.graph.output.append(info)
    float_graph = session(probe.SerializeToString(), threads=2)  # beside a build's other work
    feeds = {i.name for i in float_graph.get_inputs()}
    found: dict[str, list[Sample]] = {n: [] for n in names}
    for batch in batches:
        values = float_graph.run(names, {k: np.asarray(v) for k, v in batch.items() if k in feeds})
        real = np.flatnonzero(np.asarray(batch["attention_mask"]).reshape(-1))
        pick = real[np.linspace(0, len(real) - 1, min(ROWS_PER_BATCH, len(real))).astype(int)]
        for name, value in zip(names, values, strict=True):
            x = value.reshape(-1, value.shape[-1])
            found[name].append(Sample(x.min(axis=0), x.max(axis=0), x[pick].astype(np.float32)))
    return found


def enough_tokens(batches: list[dict]) -> tuple[list[dict], int]:
    """The first batches holding MAX_TOKENS real tokens, and their token count: enough
    for channel peaks, and a calibration set of long reviews is not all run through the
    float model again."""
    taken, tokens = [], 0
    for batch in batches:
        if tokens >= MAX_TOKENS:
            break
        taken.append(batch)
        tokens += int(np.asarray(batch["attention_mask"]).sum())
    return taken, tokens


def choose_alpha(
    weight, samples: list[Sample], *, per_channel: bool, static: bool = False, symmetric=False
) -> tuple:
    """(alpha or None, error without, error with, scales or None) of one MatMul: the
    relative int8 output error of each alpha on the sampled rows, each batch quantized
    with its own range (or, `static`, all with the range of every batch together);
    None unless an alpha cuts the error by MIN_GAIN."""
    peak = np.max([np.maximum(-s.low, s.high) for s in samples], axis=0)
    peak = peak.astype(np.float32)
    options = [(None, np.ones_like(peak))] + [(a, _scales(peak, weight, a)) for a in ALPHAS]
    exact = [s.rows @ weight for s in samples]  # the float products, one per batch
    norms = [max(float(np.linalg.norm(e)), 1e-12) for e in exact]
    error = np.zeros(len(options))
    for i, (_, scales) in enumerate(options):
        quantized = _fake_int8_weights(weight * scales[:, None], per_channel)
        lows = [float((s.low / scales).min()) for s in samples]
        highs = [float((s.high / scales).max()) for s in samples]
        if static:  # one range, the calibration's, for every call
            lows, highs = [min(lows)] * len(lows), [max(highs)] * len(highs)
        for s, product, norm, low, high in zip(samples, exact, norms, lows, highs, strict=True):
            approx = _fake_int8_activations(s.rows / scales, low, high, symmetric) @ quantized
            error[i] += float(np.linalg.norm(approx - product)) / norm
    error /= max(len(samples), 1)
    best = int(np.argmin(error))
    if best and error[best] > error[0] * (1 - MIN_GAIN):
        best = 0
    alpha, scales = options[best]
    return alpha, float(error[0]), float(error[best]), scales


def smooth_graph(
    src: Path,
    dst: Path,
    batches: list[dict],
    *,
    roles=SMOOTHED_ROLES,
    per_channel: bool = True,
    static: bool = False,
    symmetric: bool = False,
) -> dict:
    """Write `dst`: `src` with the MatMuls of `roles` (groups, roles or layers, as
    keep_float names them) smoothed where it measurably cuts their int8 error, measured
    in the form the backend quantizes (`static` ranges, `symmetric` activations: see
    `choose_alpha`); return the record for the manifest: per group, each MatMul's alpha
    and its error before and after. Groups that will stay float are smoothed too (exact
    in float), so one smoothed graph serves every trial of a search."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(src))
    groups = quantizable_groups(model)
    # the default roles are optional (a graph may lack one); a name the user gave is not
    present = [
        r for r in roles if r not in SMOOTHED_ROLES or any(k.endswith(f".{r}") for k in groups)
    ]
    wanted = set(resolve_groups(groups, present, option="smooth"))
    initializers = {i.name: i for i in model.graph.initializer}
    readers = Counter(name for n in model.graph.node for name in n.input)
    targets = [
        n
        for n in model.graph.node
        if n.name in wanted
        and n.op_type == "MatMul"
        and n.input[1] in initializers
        and len(initializers[n.input[1]].dims) == 2
        and readers[n.input[1]] == 1  # a shared (tied) weight cannot take one MatMul's scales
    ]
    group_of = {name: g for g, names in groups.items() for name in names}
    weights = {
        n.name: numpy_helper.to_array(initializers[n.input[1]]).astype(np.float32) for n in targets
    }
    inputs = list(dict.fromkeys(n.input[0] for n in targets))
    batches, tokens = enough_tokens(batches)
    samples = samples_of(model, inputs, batches) if targets else {}
    # Small products: on two busy cores BLAS threads made them 90x slower, not faster.
    with threadpool_limits(1):
        picked = {
            n.name: choose_alpha(
                weights[n.name],
                samples[n.input[0]],
                per_channel=per_channel,
                static=static,
                symmetric=symmetric,
            )
            for n in targets
        }
    record: dict = {}
    muls = {}  # MatMul name -> the Mul that goes before it
    for node in targets:
        alpha, before, after, s = picked[node.name]
        entry = {"alpha": alpha, "error": [round(before, 5), round(after, 5)]}
        record.setdefault(group_of[node.name], []).append(entry)
        if alpha is None:
            continue
        weight = initializers[node.input[1]]
        scaled = weights[node.name] * s[:, None]
        weight.CopyFrom(numpy_helper.from_array(scaled.astype(np.float32), weight.name))
        inverse = f"{node.name}/smooth_inverse"
        model.graph.initializer.append(
            numpy_helper.from_array((1.0 / s).astype(np.float32), inverse)
        )
        smoothed = f"{node.name}/smoothed_input"
        muls[node.name] = onnx.helper.make_node(
            "Mul", [node.input[0], inverse], [smoothed], name=f"{node.name}/smooth"
        )
        node.input[0] = smoothed
    ordered = []
    for node in model.graph.node:
        if node.name in muls:
            ordered.append(muls[node.name])
        ordered.append(node)
    del model.graph.node[:]
    model.graph.node.extend(ordered)
    onnx.save(model, str(dst))
    return {
        "method": "smoothquant, alpha measured per MatMul",
        "measured_for": _form(static)
        + (" int8-symmetric" if symmetric else " uint8-asymmetric")
        + " activations",
        "roles": list(roles),
        "calibration_batches": len(batches),
        "tokens": tokens,
        "smoothed": sum(1 for v in picked.values() if v[0] is not None),
        "of": len(targets),
        "groups": record,
    }
