"""Embedding comparison and gates on constructed vectors: each figure against numpy/scipy."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import spearmanr

from edgec.verify.checks import failed
from edgec.verify.embeddings import (
    EMBEDDING_GATES,
    NO_PAIRS,
    RANK_TEXTS,
    WORST_KEPT,
    compare_embeddings,
    embedding_checks,
)


def vectors(n: int, d: int = 32, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, d))


def texts(n: int) -> list[str]:
    return [f"text {i}" for i in range(n)]


def numpy_cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def by_name(checks) -> dict[str, dict]:
    return {c["name"]: c for c in checks}


def scored_pairs(m: int = 40, d: int = 32, seed: int = 1):
    rng = np.random.default_rng(seed)
    first = rng.normal(size=(m, d))
    second = first + rng.normal(size=(m, d)) * np.linspace(0.1, 3, m)[:, None]
    scores = np.linspace(5, 0, m)
    return first, second, scores


def test_identical_embeddings_pass_every_check_with_perfect_figures():
    ref = vectors(50)
    first, second, scores = scored_pairs()
    report = compare_embeddings(
        ref, ref.copy(), texts(50), (first, second), (first, second), scores
    )
    assert report["examples"] == 50 and report["dimensions"] == 32
    assert report["cosine"]["min"] == pytest.approx(1.0)
    assert report["cosine"]["mean"] == pytest.approx(1.0)
    assert report["neighbours"]["mean_overlap"] == report["neighbours"]["min_overlap"] == 1.0
    assert report["neighbours"]["k"] == 10
    assert report["similarity_rank"]["spearman"] == pytest.approx(1.0)
    assert report["similarity_rank"]["pairs"] == 50 * 49 // 2
    assert report["pair_scores"]["drop"] == 0.0
    assert "not_compared" not in report
    checks = embedding_checks(report, {})
    assert [c["name"] for c in checks] == [
        "embedding-cosine",
        "embedding-neighbours",
        "embedding-similarity-rank",
        "embedding-pair-scores",
    ]
    assert all(c["status"] == "passed" for c in checks)
    assert by_name(checks)["embedding-pair-scores"]["message"].endswith("(+0.0000) over 40 pairs")


def test_noisy_embeddings_give_the_cosines_numpy_computes():
    ref = vectors(200)
    cand = ref + vectors(200, seed=1) * 0.05
    report = compare_embeddings(ref, cand, texts(200))
    cos = numpy_cosines(ref, cand)
    assert report["cosine"]["min"] == pytest.approx(cos.min())
    assert report["cosine"]["p1"] == pytest.approx(np.percentile(cos, 1))
    assert report["cosine"]["mean"] == pytest.approx(cos.mean())
    worst = report["cosine"]["worst"]
    assert len(worst) == WORST_KEPT
    assert [w["index"] for w in worst] == list(np.argsort(cos)[:WORST_KEPT])
    assert worst[0]["text"] == f"text {int(cos.argmin())}"
    assert worst[0]["cosine"] == pytest.approx(cos.min())


def test_similarity_rank_is_scipys_spearman_of_the_upper_triangle():
    ref = vectors(30)
    cand = ref + vectors(30, seed=2) * 0.3
    report = compare_embeddings(ref, cand, texts(30))

    def upper(x):
        unit = x / np.linalg.norm(x, axis=1, keepdims=True)
        return (unit @ unit.T)[np.triu_indices(30, k=1)]

    expected = spearmanr(upper(ref), upper(cand)).statistic
    assert report["similarity_rank"]["spearman"] == pytest.approx(expected)


def test_shuffled_candidate_fails_neighbours_rank_and_cosine():
    ref = vectors(100)
    cand = ref[np.random.default_rng(3).permutation(100)]
    checks = by_name(embedding_checks(compare_embeddings(ref, cand, texts(100)), {}))
    for name in ("embedding-cosine", "embedding-neighbours", "embedding-similarity-rank"):
        assert checks[name]["status"] == "failed", name
    assert "below min_neighbour_overlap 0.8" in checks["embedding-neighbours"]["message"]
    assert "below min_similarity_spearman 0.975" in checks["embedding-similarity-rank"]["message"]


def test_neighbour_overlap_counts_the_kept_neighbours():
    """Text 0 sits between two clusters; moving it changes its neighbours only."""
    ref = np.array([[1.0, 0.1], [1.0, 0.0], [0.99, 0.02], [0.0, 1.0], [0.02, 0.99]])
    cand = ref.copy()
    cand[0] = [0.1, 1.0]  # now nearest to 3 and 4 instead of 1 and 2
    nb = compare_embeddings(ref, cand, texts(5), k=2)["neighbours"]
    assert nb["k"] == 2 and nb["min_overlap"] == 0.0 and nb["worst_index"] == 0
    assert nb["mean_overlap"] == pytest.approx(np.mean([0.0, 1, 1, 1, 1]))


def test_cosine_check_fails_on_one_bad_text_and_on_a_low_mean():
    ref = vectors(100)
    one_bad = ref.copy()
    one_bad[7] = -ref[7]
    check = by_name(embedding_checks(compare_embeddings(ref, one_bad, texts(100)), {}))[
        "embedding-cosine"
    ]
    assert check["status"] == "failed"
    assert check["message"].startswith("min cosine -1.0000 (text 7: 'text 7') is below min_cosine")
    # every text at cosine ~0.97: above the min gate (0.95), below the mean gate (0.98)
    noise = vectors(100, seed=4)
    noise -= (noise * ref).sum(1, keepdims=True) / (ref**2).sum(1, keepdims=True) * ref
    noise *= (np.linalg.norm(ref, axis=1) / np.linalg.norm(noise, axis=1))[:, None]
    tilted = ref + noise * np.tan(np.arccos(0.97))
    report = compare_embeddings(ref, tilted, texts(100))
    assert report["cosine"]["min"] == pytest.approx(0.97)
    check = by_name(embedding_checks(report, {}))["embedding-cosine"]
    assert check["status"] == "failed"
    assert check["message"] == "mean cosine 0.9700 is below min_mean_cosine 0.98"
    assert (
        by_name(embedding_checks(report, {"min_mean_cosine": 0.96}))["embedding-cosine"]["status"]
        == "passed"
    )


def test_pair_scores_give_scipys_spearman_and_fail_on_a_drop():
    first, second, scores = scored_pairs()
    rng = np.random.default_rng(5)
    worse = second + rng.normal(size=second.shape) * 2
    report = compare_embeddings(
        vectors(5), vectors(5), texts(5), (first, second), (first, worse), scores
    )
    ps = report["pair_scores"]
    ref = spearmanr(numpy_cosines(first, second), scores).statistic
    cand = spearmanr(numpy_cosines(first, worse), scores).statistic
    assert ps["reference_spearman"] == pytest.approx(ref)
    assert ps["candidate_spearman"] == pytest.approx(cand)
    assert ps["drop"] == pytest.approx(ref - cand) and ps["drop"] > 0.02
    check = by_name(embedding_checks(report, {}))["embedding-pair-scores"]
    assert check["status"] == "failed"
    assert check["message"] == (
        f"pair-score Spearman fell {ref - cand:.4f} ({ref:.4f} -> {cand:.4f}), "
        "over max_pair_spearman_drop 0.02"
    )


def test_without_scored_pairs_the_pair_check_is_skipped_with_the_reason():
    report = compare_embeddings(vectors(20), vectors(20), texts(20))
    assert report["not_compared"] == {"pair scores": NO_PAIRS}
    check = by_name(embedding_checks(report, {}))["embedding-pair-scores"]
    assert check["status"] == "skipped" and check["message"].startswith(NO_PAIRS)


def test_fewer_texts_than_k_use_all_the_others_and_say_so():
    ref = vectors(4)
    report = compare_embeddings(ref, ref, texts(4), k=10)
    assert report["neighbours"]["k"] == 3
    assert "overlap of the 3 nearest, not 10" in report["neighbours"]["note"]
    check = by_name(embedding_checks(report, {}))["embedding-neighbours"]
    assert check["status"] == "passed" and "not 10" in check["message"]


def test_one_text_has_only_a_cosine():
    ref = vectors(1)
    report = compare_embeddings(ref, ref * 2, texts(1))
    assert report["cosine"]["min"] == pytest.approx(1.0)
    assert "neighbours" not in report and "similarity_rank" not in report
    checks = by_name(embedding_checks(report, {}))
    assert checks["embedding-cosine"]["status"] == "passed"
    for name in ("embedding-neighbours", "embedding-similarity-rank"):
        assert checks[name]["status"] == "skipped"
        assert checks[name]["message"].startswith("one text has no neighbours")


def test_two_texts_have_no_rank_correlation():
    ref = vectors(2)
    report = compare_embeddings(ref, ref, texts(2))
    assert report["neighbours"]["mean_overlap"] == 1.0
    assert report["not_compared"]["similarity rank"].startswith("fewer than 2")


def test_many_texts_rank_a_fixed_sample_and_say_so():
    n = RANK_TEXTS + 100
    ref = vectors(n, d=8)
    cand = ref + vectors(n, d=8, seed=6) * 0.01
    first = compare_embeddings(ref, cand, texts(n))["similarity_rank"]
    again = compare_embeddings(ref, cand, texts(n))["similarity_rank"]
    assert first == again
    assert first["texts"] == RANK_TEXTS
    assert first["pairs"] == RANK_TEXTS * (RANK_TEXTS - 1) // 2
    assert f"sample of {RANK_TEXTS} of the {n} texts" in first["note"]


def test_misaligned_inputs_are_refused():
    with pytest.raises(ValueError, match="must both be"):
        compare_embeddings(vectors(3), vectors(4), texts(3))
    with pytest.raises(ValueError, match="3 embeddings for 2 texts"):
        compare_embeddings(vectors(3), vectors(3), texts(2))
    first, second, scores = scored_pairs()
    with pytest.raises(ValueError, match="go together"):
        compare_embeddings(vectors(3), vectors(3), texts(3), (first, second), None, scores)


def test_the_checks_read_the_declared_gates():
    from edgec.gates import TASK_GATES

    assert EMBEDDING_GATES is TASK_GATES["sentence-embedding"]  # declared once, in edgec.gates
    report = compare_embeddings(vectors(20), vectors(20), texts(20))
    assert not failed(
        embedding_checks(
            report,
            {
                "min_cosine": -2,
                "min_mean_cosine": -2,
                "min_neighbour_overlap": 0,
                "min_similarity_spearman": -2,
            },
        )
    )
