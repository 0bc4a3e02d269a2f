"""Sentence embeddings: compare two encoders' vectors for the same texts, and gate that.

An embedding is only ever used through its similarities, so a close cosine between
each text's two vectors is necessary but not enough: small errors that are harmless
one by one can still reorder who is whose nearest neighbour. The comparison therefore
also asks whether each text keeps its nearest neighbours, whether all pairwise
similarities keep their order, and, when scored text pairs are given, whether the
candidate ranks them against the gold scores as well as the reference did.

Stage compare (`compare_embeddings`) gives a report of plain data; stage gate
(`embedding_checks`) turns it into named checks. Neither loads a model.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from edgec.gates import TASK_GATES

# The figures live in edgec.metrics, shared with distillation's retention; RANK_TEXTS
# and RANK_SEED stay importable from here, next to the checks that read them.
from edgec.metrics import (  # noqa: F401
    RANK_SEED,
    RANK_TEXTS,
    neighbour_overlap,
    row_cosines,
    similarity_rank,
    spearman,
)
from edgec.verify.checks import check

# The gates these checks read, as edgec.gates declares them (measured there).
EMBEDDING_GATES = TASK_GATES["sentence-embedding"]
WORST_KEPT = 10
NO_PAIRS = "no scored text pairs were given"


def compare_embeddings(
    reference: np.ndarray,
    candidate: np.ndarray,
    texts: Sequence[str],
    pair_reference: tuple[np.ndarray, np.ndarray] | None = None,
    pair_candidate: tuple[np.ndarray, np.ndarray] | None = None,
    pair_scores: Sequence[float] | None = None,
    k: int = 10,
) -> dict:
    """Compare `candidate`'s embeddings of `texts` with `reference`'s (rows aligned).

    `pair_reference` and `pair_candidate` are each model's embeddings of the first
    and of the second text of scored pairs, and `pair_scores` their gold similarity.
    """
    reference, candidate = _aligned(reference, candidate, len(texts))
    n = len(texts)
    report: dict = {"examples": n, "dimensions": int(reference.shape[1])}
    missing: dict = {}
    report["cosine"] = cosine_report(reference, candidate, texts)
    if n < 2:
        missing["neighbours"] = missing["similarity rank"] = "one text has no neighbours"
    else:
        report["neighbours"] = neighbour_overlap(reference, candidate, k)
        report["similarity_rank"] = similarity_rank(reference, candidate)
        if report["similarity_rank"]["spearman"] is None:
            missing["similarity rank"] = report.pop("similarity_rank")["note"]
    pairs = _pairs(pair_reference, pair_candidate, pair_scores)
    if pairs is None:
        missing["pair scores"] = NO_PAIRS
    else:
        report["pair_scores"] = pair_score_ranks(*pairs)
        if report["pair_scores"]["drop"] is None:
            missing["pair scores"] = report.pop("pair_scores")["note"]
    if missing:
        report["not_compared"] = missing
    return report


def _aligned(reference, candidate, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Both as float64 [n, d]: a misaligned row would compare different texts."""
    reference = np.asarray(reference, dtype=np.float64)
    candidate = np.asarray(candidate, dtype=np.float64)
    if reference.ndim != 2 or reference.shape != candidate.shape:
        raise ValueError(
            f"reference {reference.shape} and candidate {candidate.shape} embeddings "
            "must both be [texts, dimensions]"
        )
    if len(reference) != n or n == 0:
        raise ValueError(f"{len(reference)} embeddings for {n} texts")
    return reference, candidate


def cosine_report(reference, candidate, texts) -> dict:
    """Each text's reference-vs-candidate cosine: min, 1st percentile, mean, the worst."""
    cos = row_cosines(reference, candidate)
    worst = np.argsort(cos, kind="stable")[:WORST_KEPT]
    return {
        "min": float(cos.min()),
        "p1": float(np.percentile(cos, 1)),
        "mean": float(cos.mean()),
        "worst": [{"index": int(i), "text": texts[i], "cosine": float(cos[i])} for i in worst],
    }


def _pairs(pair_reference, pair_candidate, pair_scores):
    """The scored pairs as arrays, or None when none were given; partial input is a bug."""
    given = [x is not None for x in (pair_reference, pair_candidate, pair_scores)]
    if not any(given):
        return None
    if not all(given):
        raise ValueError("pair_reference, pair_candidate and pair_scores go together")
    scores = np.asarray(pair_scores, dtype=np.float64)
    sides = []
    for name, (first, second) in (
        ("pair_reference", pair_reference),
        ("pair_candidate", pair_candidate),
    ):
        first, second = np.asarray(first, dtype=np.float64), np.asarray(second, dtype=np.float64)
        if first.shape != second.shape or len(first) != len(scores):
            raise ValueError(
                f"{name}: {first.shape} and {second.shape} embeddings for {len(scores)} scores"
            )
        sides.append(row_cosines(first, second))
    return sides[0], sides[1], scores


def pair_score_ranks(reference: np.ndarray, candidate: np.ndarray, scores: np.ndarray) -> dict:
    """Each model's Spearman rho between its pair cosines and the gold scores, and the
    candidate's drop (reference minus candidate)."""
    what = "pair similarities"
    ref, why = spearman({"reference": reference, "gold": scores}, what)
    cand, why_cand = spearman({"candidate": candidate, "gold": scores}, what)
    out = {
        "pairs": len(scores),
        "reference_spearman": ref,
        "candidate_spearman": cand,
        "drop": ref - cand if ref is not None and cand is not None else None,
        "max_abs_cosine_delta": float(np.abs(reference - candidate).max()) if len(scores) else 0.0,
    }
    if why or why_cand:
        out["note"] = why or why_cand
    return out


# ---------------------------------------------------------------- gate


def _gate(gates: dict | None, name: str) -> float:
    return (gates or {}).get(name, EMBEDDING_GATES[name])


def embedding_checks(report: dict, gates: dict | None) -> list[dict]:
    """The embedding gates on `report` (from `compare_embeddings`), as named checks."""
    return [
        cosine_check(report, gates),
        neighbours_check(report, gates),
        similarity_rank_check(report, gates),
        pair_scores_check(report, gates),
    ]


def _skipped(report: dict, name: str, figure: str, what: str) -> dict:
    why = report["not_compared"][figure]
    return check(name, [], skipped=f"{why}: {what} was not checked")


def _quoted(text: str, limit: int = 60) -> str:
    return repr(text if len(text) <= limit else text[: limit - 3] + "...")


def cosine_check(report: dict, gates: dict | None) -> dict:
    """Every text's two vectors must point the same way (min), and on average closely."""
    cos = report["cosine"]
    low, low_mean = _gate(gates, "min_cosine"), _gate(gates, "min_mean_cosine")
    problems = []
    if cos["min"] < low:
        worst = cos["worst"][0]
        problems.append(
            f"min cosine {cos['min']:.4f} (text {worst['index']}: {_quoted(worst['text'])}) "
            f"is below min_cosine {low}"
        )
    if cos["mean"] < low_mean:
        problems.append(f"mean cosine {cos['mean']:.4f} is below min_mean_cosine {low_mean}")
    info = f"cosine min {cos['min']:.4f}, 1st percentile {cos['p1']:.4f}, mean {cos['mean']:.4f}"
    return check("embedding-cosine", problems, info=info)


def neighbours_check(report: dict, gates: dict | None) -> dict:
    """Each text should keep its nearest neighbours: a search or a deduplication built on
    the candidate returns what the reference would."""
    if "neighbours" not in report:
        return _skipped(report, "embedding-neighbours", "neighbours", "neighbour overlap")
    nb, low = report["neighbours"], _gate(gates, "min_neighbour_overlap")
    mean = f"top-{nb['k']} neighbour overlap mean {nb['mean_overlap']:.4f}"
    worst = f"min {nb['min_overlap']:.4f}, text {nb['worst_index']}"
    note = f"; {nb['note']}" if "note" in nb else ""
    problems = []
    if nb["mean_overlap"] < low:
        problems.append(f"{mean} is below min_neighbour_overlap {low} ({worst}{note})")
    return check("embedding-neighbours", problems, info=f"{mean} ({worst}{note})")


def similarity_rank_check(report: dict, gates: dict | None) -> dict:
    """All pairwise similarities should keep their order (Spearman), not just each
    text's nearest few."""
    if "similarity_rank" not in report:
        return _skipped(report, "embedding-similarity-rank", "similarity rank", "similarity rank")
    rank, low = report["similarity_rank"], _gate(gates, "min_similarity_spearman")
    figures = f"pairwise similarity Spearman {rank['spearman']:.4f} over {rank['pairs']} pairs"
    note = f" ({rank['note']})" if "note" in rank else ""
    problems = []
    if rank["spearman"] < low:
        problems.append(f"{figures} is below min_similarity_spearman {low}{note}")
    return check("embedding-similarity-rank", problems, info=figures + note)


def pair_scores_check(report: dict, gates: dict | None) -> dict:
    """On scored pairs, the candidate's Spearman against gold may fall at most
    max_pair_spearman_drop below the reference's."""
    if "pair_scores" not in report:
        return _skipped(report, "embedding-pair-scores", "pair scores", "Spearman against gold")
    ps, limit = report["pair_scores"], _gate(gates, "max_pair_spearman_drop")
    ref, cand = ps["reference_spearman"], ps["candidate_spearman"]
    info = (
        f"pair-score Spearman {ref:.4f} -> {cand:.4f} ({cand - ref:+.4f}) over {ps['pairs']} pairs"
    )
    problems = []
    if ps["drop"] > limit:
        problems.append(
            f"pair-score Spearman fell {ps['drop']:.4f} ({ref:.4f} -> {cand:.4f}), "
            f"over max_pair_spearman_drop {limit}"
        )
    return check("embedding-pair-scores", problems, info=info)
