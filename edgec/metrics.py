"""Model-free figures that verification and distillation both report, defined once.

A package is verified against its source and a distilled student is judged against
its teacher by the same numbers: strict IOB2 entity scores for taggers, and for
embedders the top-k neighbour overlap and the rank correlation of all pairwise
similarities. `edgec.verify` and `edgec.distill` are sibling layers that may not
import each other, so the figures live here, below both, and a "retention" of a
student means exactly what the verification gate of the same name measures.

Plain functions of numpy arrays and tag lists; no model is loaded here.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

# Above this many texts the pairwise-similarity rank correlation uses a fixed sample
# of them: 2000 texts are already ~2 million pairs, and the full matrix grows as n^2.
RANK_TEXTS = 2000
RANK_SEED = 0

Tags = Sequence[Sequence[str]]


# ---------------------------------------------------------------- embeddings


def row_cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine of each row of `a` with the same row of `b` (a zero vector scores 0)."""
    from sklearn.preprocessing import normalize

    return np.einsum("ij,ij->i", normalize(a), normalize(b))


def nearest(embeddings: np.ndarray, k: int) -> np.ndarray:
    """Each text's k nearest other texts by cosine similarity, nearest first."""
    from sklearn.neighbors import NearestNeighbors

    index = NearestNeighbors(n_neighbors=k, metric="cosine", algorithm="brute")
    # without a query, kneighbors leaves each text out of its own neighbours
    return index.fit(embeddings).kneighbors(return_distance=False)


def neighbour_overlap(reference, candidate, k: int) -> dict:
    """Share of each text's k nearest neighbours (by the reference) the candidate keeps:
    the mean and the worst text. With fewer than k other texts, k is all of them."""
    used = min(k, len(reference) - 1)
    ref, cand = nearest(reference, used), nearest(candidate, used)
    kept = (ref[:, :, None] == cand[:, None, :]).any(axis=2).mean(axis=1)
    out = {
        "k": used,
        "mean_overlap": float(kept.mean()),
        "min_overlap": float(kept.min()),
        "worst_index": int(kept.argmin()),
    }
    if used < k:
        out["note"] = f"only {len(reference)} texts: overlap of the {used} nearest, not {k}"
    return out


def upper_similarities(embeddings: np.ndarray) -> np.ndarray:
    """Every pairwise cosine similarity, each pair once (the upper triangle)."""
    from sklearn.metrics.pairwise import cosine_similarity

    upper = np.triu_indices(len(embeddings), k=1)
    return cosine_similarity(embeddings)[upper]


def similarity_rank(reference, candidate) -> dict:
    """Spearman correlation of every pairwise similarity (each pair once), over a fixed
    sample of RANK_TEXTS texts when there are more."""
    n = len(reference)
    out: dict = {}
    if n > RANK_TEXTS:
        rows = np.sort(np.random.default_rng(RANK_SEED).choice(n, RANK_TEXTS, replace=False))
        reference, candidate = reference[rows], candidate[rows]
        out["note"] = f"pairs among a fixed sample of {RANK_TEXTS} of the {n} texts"
    ref, cand = upper_similarities(reference), upper_similarities(candidate)
    rho, why = spearman({"reference": ref, "candidate": cand}, "pairwise similarities")
    out.update({"spearman": rho, "pairs": len(ref), "texts": len(reference)})
    if why:
        out["note"] = why
    return out


def spearman(sides: dict[str, np.ndarray], what: str) -> tuple[float | None, str | None]:
    """scipy's Spearman rho of the two `sides`, or None and why when it is undefined
    (under 2 values, or one side constant) instead of scipy's NaN and a warning."""
    from scipy.stats import spearmanr

    (a_name, a), (b_name, b) = sides.items()
    if len(a) < 2:
        return None, f"fewer than 2 {what}: no rank correlation"
    for side, values in ((a_name, a), (b_name, b)):
        if np.ptp(values) == 0:
            return None, f"the {side} {what} are all equal: no rank correlation"
    return float(spearmanr(a, b).statistic), None


# ---------------------------------------------------------------- entities


def sentence_entities(tags: Tags) -> list[list[tuple[str, int, int]]]:
    """Each sentence's entities as (type, first word, last word), read strictly (IOB2)."""
    from seqeval.scheme import IOB2, Entities

    return [
        [(e.tag, e.start, e.end - 1) for e in sentence]
        for sentence in Entities([list(t) for t in tags], IOB2).entities
    ]


def entity_scores(truth: Tags, predicted: Tags) -> dict:
    """Entity precision/recall/F1 in points, overall (micro) and per type, strict IOB2.

    With no entity on either side the prediction is exactly right: 100, not seqeval's
    undefined 0, so identical taggers of entity-free text do not look broken.
    """
    from seqeval.metrics import classification_report
    from seqeval.scheme import IOB2

    truth, predicted = [list(t) for t in truth], [list(p) for p in predicted]
    found = sum(len(s) for s in sentence_entities(predicted))
    if found == 0 and not any(sentence_entities(truth)):
        return {
            **dict.fromkeys(("precision", "recall", "f1"), 100.0),
            "support": 0,
            "found": 0,
            "per_type": {},
        }
    by_name = classification_report(
        truth, predicted, mode="strict", scheme=IOB2, output_dict=True, zero_division=0
    )
    overall = by_name.pop("micro avg")
    for summary in ("macro avg", "weighted avg"):
        by_name.pop(summary)
    return {
        **_points(overall),
        "found": found,
        "per_type": {t: _points(s) for t, s in by_name.items()},
    }


def _points(scores: dict) -> dict:
    return {
        "precision": float(scores["precision"]) * 100,
        "recall": float(scores["recall"]) * 100,
        "f1": float(scores["f1-score"]) * 100,
        "support": int(scores["support"]),
    }


def tag_agreement_share(reference: Tags, candidate: Tags) -> float:
    """Share of words tagged the same (1.0 for no words)."""
    pairs = [
        (r, c)
        for rs, cs in zip(reference, candidate, strict=True)
        for r, c in zip(rs, cs, strict=True)
    ]
    return 1 - sum(r != c for r, c in pairs) / len(pairs) if pairs else 1.0
