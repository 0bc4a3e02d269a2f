"""Stage 1 of verification, run: what each model answered on the eval set.

A `Result` is one model's answers: logits when the model was run here (the PyTorch
reference, the package's predictor), or, for what a build saved in the manifest, the
reference's predicted class per example and the label metrics it recorded. Comparing
and gating never need to know which: they use what a result holds and say what it
lacks. A saved result only applies to the data it was produced on, which the eval
fingerprint tells.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import numpy as np

from edgec.ui import SilentUI
from edgec.verify.reference import reference_logits
from edgec_runtime.recorded import decode_predictions


@dataclass(frozen=True, eq=False)
class Result:
    """One model's answers on one eval set, in the eval set's order.

    `predictions` is the class per example (from the logits when there are any),
    `metrics` the label metrics a build recorded (computed from logits otherwise), and
    `note` says why a result holds less than logits, for the report.
    """

    origin: str
    logits: np.ndarray | None = None
    predictions: np.ndarray | None = None
    metrics: dict | None = None
    note: str | None = None


def logits_result(origin: str, logits) -> Result:
    logits = np.asarray(logits, dtype=np.float64)
    return Result(origin, logits=logits, predictions=logits.argmax(axis=1))


def reference_result(source, eval_set, max_length: int, ui=None) -> Result:
    """The PyTorch FP32 source model on the eval set, truncated as training truncated."""
    ui = ui or SilentUI()
    logits = reference_logits(
        source, eval_set.texts, eval_set.pairs, track=ui.track, max_length=max_length
    )
    return logits_result("the PyTorch FP32 reference", logits)


def package_result(predictor, eval_set, ui=None) -> Result:
    """The package's own predictor (tokenizer and backend) on the eval set."""
    ui = ui or SilentUI()
    with ui.step(f"running the package on {len(eval_set)} texts"):
        logits = predictor.logits(eval_set.texts, eval_set.pairs)
    return logits_result("the package", logits)


# ---------------------------------------------------------------- saved results


def eval_fingerprint(eval_set) -> str:
    """sha256 of the texts, pairs and labels (tags, scores): tells whether two runs used
    the same data."""
    parts = [eval_set.texts, eval_set.pairs, eval_set.labels]
    for extra in ("tags", "scores"):  # a tagged or scored set: what else it holds
        if getattr(eval_set, extra, None) is not None:
            parts.append(getattr(eval_set, extra))
    blob = json.dumps(parts, ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def same_data_as_build(verification: dict, eval_set) -> bool:
    """Whether the build's recorded parity was measured on exactly this eval set."""
    recorded = verification.get("eval_fingerprint")
    return bool(verification.get("parity") and recorded == eval_fingerprint(eval_set))


def recorded_reference(verification: dict, eval_set) -> Result:
    """The build's reference, as the manifest saved it: its predicted classes and label
    metrics, when the eval set is the build's; otherwise an empty result saying why."""
    origin = "the reference recorded at build time"
    parity = verification.get("parity")
    if not parity:
        return Result(origin, note="no --reference, and the build recorded no parity")
    if not same_data_as_build(verification, eval_set):
        return Result(origin, note="no --reference, and the eval data differs from the build's")
    encoded = parity.get("reference_predictions")
    predictions = decode_predictions(encoded) if encoded and len(encoded) == len(eval_set) else None
    kept = "predicted classes" if predictions is not None else "metrics, no per-example classes"
    return Result(
        origin,
        predictions=predictions,
        metrics=parity.get("reference") if parity.get("labeled") else None,
        note=f"no --reference, and the build recorded the reference's {kept}",
    )


def recorded_package(verification: dict, eval_set) -> Result:
    """The package as it scored when it was built (label metrics only), on the build's
    data: re-running it on the same data should reproduce them."""
    origin = "the package at build time"
    parity = verification.get("parity") or {}
    if not (parity.get("labeled") and same_data_as_build(verification, eval_set)):
        return Result(origin, note="the build recorded no labeled parity on this eval data")
    return Result(origin, metrics=parity["candidate"], note="the build recorded metrics only")


def recorded_summary(verification: dict) -> dict | None:
    """The build's headline parity figures, for the report next to today's."""
    parity = verification.get("parity")
    if not parity:
        return None
    keep = ("examples", "agreement", "max_abs_logit_delta", "mean_abs_logit_delta", "mean_kl")
    out = {k: parity.get(k) for k in keep}
    if parity.get("labeled"):
        out["reference_accuracy"] = parity["reference"]["accuracy"]
        out["candidate_accuracy"] = parity["candidate"]["accuracy"]
    return out
