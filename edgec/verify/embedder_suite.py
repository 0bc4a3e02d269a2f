"""Verification of a sentence-embedding package, in the suite's three stages.

Run: the PyTorch source (encoder, then the Pooling and Normalize the model folder
declares: edgec.heads) and the package each embed the eval texts. Compare and gate:
edgec.verify.embeddings (cosine per text, the top-10 neighbours every text retrieves
among the others, the rank correlation of all pairwise similarities, and, for scored
text pairs, the Spearman against the scores). The eval data's labels are ignored:
any text file serves as a corpus.
"""

from __future__ import annotations

import time

import numpy as np

from edgec.gates import NEIGHBOURS, resolve_gates
from edgec.ui import SilentUI
from edgec.verify.assemble import assemble
from edgec.verify.embeddings import compare_embeddings, embedding_checks
from edgec_runtime.recorded import nearest

RECORDED_NEIGHBOURS_LIMIT = 2000  # texts whose reference neighbours a build records


def headline(report: dict) -> dict:
    cosine = report.get("cosine") or {}
    return {
        "agreement": (report.get("neighbours") or {}).get("mean_overlap"),
        "quality_delta": None,
        "quality_metric": "top-10 overlap",
        "min_cosine": cosine.get("min"),
        "mean_cosine": cosine.get("mean"),
    }


def _pair_arguments(embed, eval_set):
    """(first, second) embeddings and gold scores of scored pairs, or Nones."""
    scores = getattr(eval_set, "scores", None)
    if eval_set.pairs is None or scores is None:
        return None, None, None
    return (embed(eval_set.texts), embed(eval_set.pairs)), scores, True


def verify_embedder(source, predictor, eval_set, thresholds, ui=None) -> dict:
    """The embedding package against its PyTorch source on `eval_set`'s texts."""
    from edgec.verify.reference import reference_logits
    from edgec.verify.tokenizer import source_tokenizer_report, trained_max_length

    ui = ui or SilentUI()
    started = time.perf_counter()
    gates = resolve_gates(thresholds)
    with ui.step(f"tokenizer consistency on {len(eval_set)} texts and probes"):
        tok = source_tokenizer_report(
            source, predictor, eval_set.texts, max_unk_rate=gates["max_unk_rate"]
        )
    # sentence-transformers truncates at max_seq_length (edgec.model makes it the
    # tokenizer's model_max_length): the reference does too, whatever the package does
    trained = trained_max_length(source)

    def reference(texts):
        return reference_logits(source, texts, None, track=ui.track, max_length=trained)

    with ui.step("PyTorch reference embeddings"):
        ref = reference(eval_set.texts)
    with ui.step(f"running the package on {len(eval_set)} texts"):
        cand = predictor.embed(eval_set.texts)
    pair_ref, scores, _ = _pair_arguments(reference, eval_set)
    pair_cand, _, _ = _pair_arguments(predictor.embed, eval_set)
    report = compare_embeddings(ref, cand, eval_set.texts, pair_ref, pair_cand, scores, NEIGHBOURS)
    report["reference_origin"] = "the PyTorch FP32 reference"
    if len(eval_set) <= RECORDED_NEIGHBOURS_LIMIT:
        report["reference_neighbours"] = nearest(ref, NEIGHBOURS)
    checks = [*tok["checks"], *embedding_checks(report, gates)]
    for w in tok["warnings"]:
        ui.note(w)
    return assemble(
        checks,
        list(tok["warnings"]),
        gates,
        eval_set,
        started,
        "sentence-embedding",
        mode="reference",
        parity=report,
        headline=headline(report),
        tokenizer=tok,
    )


def verify_embedder_recorded(predictor, manifest, eval_set, gates, ui, same_data: bool) -> dict:
    """Without --reference: the neighbours the package retrieves now against those the
    reference retrieved at build time (cosines need the reference's vectors, which a
    package does not carry: the report says they were not re-checked)."""
    from edgec.verify.checks import check

    verification = manifest.get("verification") or {}
    recorded = (verification.get("parity") or {}).get("reference_neighbours")
    with ui.step(f"running the package on {len(eval_set)} texts"):
        cand = predictor.embed(eval_set.texts)
    skipped_cos = check(
        "embedding-cosine",
        [],
        skipped="no --reference: the reference's vectors are not in the package, so "
        "cosines were not re-checked; pass --reference MODEL",
    )
    if not same_data or not recorded or len(recorded) != len(eval_set):
        why = (
            "no --reference, and the eval data differs from the build's (or was too large "
            "to record)"
            if verification.get("parity")
            else "no --reference, and the build recorded no parity (built with --no-verify)"
        )
        return {  # a build without parity already fails `parity-recorded`
            "checks": [skipped_cos, check("embedding-neighbours", [], skipped=why)],
            "warnings": [],
            "parity": {"examples": len(eval_set), "note": why},
        }
    now = nearest(cand, len(recorded[0]) if recorded and recorded[0] else NEIGHBOURS)
    overlaps = [len(set(a) & set(b)) / max(len(a), 1) for a, b in zip(recorded, now, strict=True)]
    mean = float(np.mean(overlaps))
    gate = resolve_gates(gates)["min_neighbour_overlap"]
    problems = (
        [
            f"top-{len(recorded[0])} neighbour overlap with the recorded reference {mean:.4f} is below min_neighbour_overlap {gate}"
        ]
        if mean < gate
        else []
    )
    report = {
        "examples": len(eval_set),
        "reference_origin": "the reference neighbours recorded at build time",
        "neighbours": {
            "k": len(recorded[0]),
            "mean_overlap": mean,
            "min_overlap": float(min(overlaps)),
        },
    }
    info = f"top-{len(recorded[0])} overlap {mean:.4f} with the recorded reference"
    return {
        "checks": [skipped_cos, check("embedding-neighbours", problems, info=info)],
        "warnings": [],
        "parity": report,
        "headline": headline(report),
    }
