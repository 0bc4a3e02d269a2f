"""What a finite eval set can tell: confidence intervals, and the smallest set a gate needs.

With n examples one flip moves agreement by 1/n and accuracy by 100/n points, so a
figure measured on a few examples says little, and a gate finer than one example
proves nothing. Every parity figure that is a share of agreeing units is therefore
reported with its 95 % Wilson score interval, and a classifier's accuracy delta,
which is paired (both models answer the same examples), with the exact McNemar test
on the examples only one model got right and the Newcombe square-and-add interval
for the difference of paired proportions (Newcombe 1998, Statistics in Medicine 17,
2635-2650, method 10). An eval set too small for its gates to be resolved is refused
before any model is compiled or run (`check_eval_size`); the rule is data, in
`edgec.gates.EVAL_SIZE_RULES`.

The intervals treat the counted units as independent. A tagger's words are not (the
words of one sentence share a context), so its tag-agreement interval is narrower
than the truth; the report says which units were counted.
"""

from __future__ import annotations

import math

from edgec.gates import minimum_eval_size, resolvable_gate

CONFIDENCE = 0.95
WILSON = "Wilson score"
NEWCOMBE = "Newcombe square-and-add (paired Wilson scores, Newcombe 1998 method 10)"


def wilson_interval(successes: int, n: int, confidence: float = CONFIDENCE) -> dict | None:
    """The Wilson score interval of `successes` of `n` (scipy's binomtest), or None for
    no trials."""
    if n <= 0:
        return None
    from scipy.stats import binomtest

    ci = binomtest(int(successes), int(n)).proportion_ci(
        confidence_level=confidence, method="wilson"
    )
    return {
        "method": WILSON,
        "confidence": confidence,
        "low": float(ci.low),
        "high": float(ci.high),
        "successes": int(successes),
        "n": int(n),
    }


def _wilson_bounds(successes: int, n: int, confidence: float) -> tuple[float, float]:
    interval = wilson_interval(successes, n, confidence)
    return interval["low"], interval["high"]


def newcombe_paired(
    both: int, first_only: int, second_only: int, neither: int, confidence: float = CONFIDENCE
) -> tuple[float, float, float]:
    """(difference, low, high) of p1 - p2 for paired binary outcomes: p1 is the share
    right in the first condition, p2 in the second, from the 2x2 counts.

    Newcombe's square-and-add (method 10): the Wilson intervals of p1 and p2, combined
    with the correlation phi of the two outcomes, continuity-corrected as Newcombe
    does (a positive a*d - b*c less n/2, not below 0).
    """
    n = both + first_only + second_only + neither
    p1, p2 = (both + first_only) / n, (both + second_only) / n
    l1, u1 = _wilson_bounds(both + first_only, n, confidence)
    l2, u2 = _wilson_bounds(both + second_only, n, confidence)
    margins = (
        (both + first_only)
        * (second_only + neither)
        * (both + second_only)
        * (first_only + neither)
    )
    phi = 0.0
    if margins > 0:
        cross = both * neither - first_only * second_only
        corrected = cross - n / 2 if cross > n / 2 else (cross if cross < 0 else 0.0)
        phi = corrected / math.sqrt(margins)
    d = p1 - p2
    low = d - math.sqrt(max((p1 - l1) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2, 0))
    high = d + math.sqrt(max((u1 - p1) ** 2 - 2 * phi * (u1 - p1) * (p2 - l2) + (p2 - l2) ** 2, 0))
    return d, low, high


def mcnemar_exact_p(first_only: int, second_only: int) -> float:
    """Two-sided exact McNemar p-value: the discordant pairs against a fair coin."""
    discordant = first_only + second_only
    if discordant == 0:
        return 1.0
    from scipy.stats import binomtest

    return float(binomtest(int(first_only), int(discordant), 0.5).pvalue)


def paired_accuracy(reference_correct, candidate_correct, confidence: float = CONFIDENCE) -> dict:
    """The candidate's accuracy minus the reference's, in points, with its interval and
    McNemar's exact test, from each example's correctness under both models."""
    ref = [bool(x) for x in reference_correct]
    cand = [bool(x) for x in candidate_correct]
    if not ref:
        return {}
    both = sum(r and c for r, c in zip(ref, cand, strict=True))
    lost = sum(r and not c for r, c in zip(ref, cand, strict=True))  # only the reference right
    gained = sum(c and not r for r, c in zip(ref, cand, strict=True))  # only the package right
    neither = len(ref) - both - lost - gained
    delta, low, high = newcombe_paired(both, gained, lost, neither, confidence)
    return {
        "method": NEWCOMBE,
        "test": "McNemar exact (two-sided binomial on the discordant examples)",
        "confidence": confidence,
        "delta": delta * 100,
        "low": low * 100,
        "high": high * 100,
        "lost": lost,
        "gained": gained,
        "mcnemar_p": mcnemar_exact_p(lost, gained),
    }


def interval_text(interval: dict | None, scale: float = 1.0, digits: int = 4, sign="") -> str:
    """'95% CI 0.9716-0.9893' (or '' without an interval), for every report."""
    if not interval:
        return ""
    low, high = interval["low"] * scale, interval["high"] * scale
    share = round(interval["confidence"] * 100)
    return f"{share}% CI {low:{sign}.{digits}f} to {high:{sign}.{digits}f}"


def accuracy_test_text(test: dict | None) -> str:
    """'95% CI -1.23 to +0.21 pts, McNemar p 0.21 (9 examples lost, 5 gained)' (or '')."""
    if not test:
        return ""
    return (
        f"{interval_text(test, digits=2, sign='+')} pts, McNemar p {test['mcnemar_p']:.3g} "
        f"({test['lost']} examples lost, {test['gained']} gained)"
    )


# ---------------------------------------------------------------- eval-set size


def eval_counts(task: str, eval_set, labels) -> dict:
    """The units each size rule counts, for `eval_set` of `task`; a count a set cannot
    have (gold entities without gold tags) is absent, and its rule does not apply."""
    if task == "token-classification":
        counts = {"words": sum(len(words) for words in eval_set.words)}
        if eval_set.tags is not None:
            from edgec.verify.tokens import sentence_entities

            gold = sentence_entities(eval_set.tag_names(labels))
            counts["gold entities"] = sum(len(sentence) for sentence in gold)
        return counts
    if task == "sentence-embedding":
        return {"texts": len(eval_set)}
    counts = {"examples": len(eval_set)}
    if eval_set.labels is not None:
        counts["labeled examples"] = len(eval_set)
    return counts


def _hint(rule: dict, have: int) -> str:
    """The gates `have` units do resolve (None for neighbours among too few texts)."""
    loosest = resolvable_gate(rule["kind"], have)
    if loosest is None or have < 2:  # one example resolves only the trivial gates
        return ""
    side = "<=" if rule["kind"] == "share" else ">="
    return f" (it resolves {rule['gate']} {side} {loosest:.4g})"


def eval_size_problems(task: str, eval_set, gates: dict, labels) -> list[str]:
    """One sentence for each gate `eval_set` is too small to resolve."""
    counts = eval_counts(task, eval_set, labels)
    problems = []
    for rule in minimum_eval_size(task, gates):
        have = counts.get(rule["count"])
        if have is None or have >= rule["minimum"]:
            continue
        problems.append(
            f"{rule['gate']} {rule['value']} needs at least {rule['minimum']} "
            f"{rule['count']}, it has {have}{_hint(rule, have)}"
        )
    return problems


def check_eval_size(task: str, eval_set, gates: dict, labels) -> None:
    """Exit 2 (BadInput) when `eval_set` is too small for `gates` to mean anything."""
    problems = eval_size_problems(task, eval_set, gates, labels)
    if problems:
        from edgec_runtime.errors import BadInput

        raise BadInput(
            f"{eval_set.source} is too small to verify against these gates: "
            + "; ".join(problems)
            + ". With n examples one flip moves agreement by 1/n and accuracy by 100/n "
            "points, so a finer gate proves nothing: give a larger --eval-data "
            "(docs/verification.md, 'How small an eval set may be')"
        )
