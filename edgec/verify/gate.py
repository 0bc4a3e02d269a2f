"""Stage 3 of verification, gate: a comparison held against the gates, as named checks.

The gates are resolved by `edgec.gates.resolve_gates` (defaults, then each layer
given), never merged here. A figure the comparison could not compute becomes a
`skipped` check whose message says why, so a report never implies it was checked.
"""

from __future__ import annotations

from edgec.gates import resolve_gates
from edgec.verify.checks import check
from edgec.verify.resolution import accuracy_test_text, interval_text

# Re-running the same package on the same data should reproduce the recorded accuracy;
# another CPU's int8 kernels can move a near-tie, so allow this many points of noise,
# or this many examples, whichever is more.
RECORDED_ACCURACY_NOISE = 0.5
RECORDED_NOISE_EXAMPLES = 3
# Accuracies are float percentages: on 100 examples, 7% -> 6% is a drop of
# 1.0000000000000009 points, and one flip on the smallest set a 1-point gate allows
# (edgec.gates.EVAL_SIZE_RULES) must not fail it.
ROUNDING = 1e-9


def parity_checks(comparison: dict, gates: dict | None, *, since_build: dict | None = None):
    """The parity gates on `comparison` (see edgec.verify.compare).

    `since_build` compares the package now with the package as the build recorded it;
    when given, a changed accuracy fails `parity-accuracy` too.
    """
    t = resolve_gates(gates)
    missing = comparison.get("not_compared", {})
    checks = []
    if "logit deltas" in missing:
        why = f"{missing['logit deltas']}: max/mean |dlogit| and KL were not re-checked"
        checks.append(check("parity-logit-deltas", [], skipped=why))
    checks.append(agreement_check(comparison, t))
    if not comparison["labeled"]:
        why = (
            f"{missing['accuracy']}: accuracy, per-class F1 and label permutation were not checked"
        )
        return checks + [
            check(name, [], skipped=why)
            for name in ("parity-accuracy", "parity-class-f1", "labels-permutation")
        ]
    checks += accuracy_checks(comparison, t, since_build)
    checks.append(check("labels-permutation", permutation_problems(comparison)))
    return checks


def agreement_check(comparison: dict, gates: dict) -> dict:
    if "agreement" not in comparison:
        why = f"{comparison['not_compared']['agreement']}: agreement was not re-checked"
        return check("parity-agreement", [], skipped=why)
    agreement, origin = comparison["agreement"], comparison["reference_origin"]
    interval = interval_text(comparison.get("agreement_interval"))
    within = f" ({interval})" if interval else ""
    problems = []
    if agreement < gates["min_agreement"] - ROUNDING:
        problems.append(
            f"agreement {agreement:.4f}{within} is below --min-agreement "
            f"{gates['min_agreement']} ({comparison['flipped_count']} of "
            f"{comparison['examples']} predictions flipped against {origin})"
        )
    info = (
        f"agreement {agreement:.4f}{within}, max |dlogit| {comparison['max_abs_logit_delta']:.4f}"
        if "max_abs_logit_delta" in comparison
        else f"agreement {agreement:.4f}{within} with {origin}"
    )
    return check("parity-agreement", problems, info=info)


def accuracy_checks(comparison: dict, gates: dict, since_build: dict | None) -> list[dict]:
    """Accuracy and per-class F1 against the reference's, in points."""
    if "delta" not in comparison:
        why = (
            f"{comparison['not_compared']['accuracy']}: accuracy and per-class F1 were not compared"
        )
        return [check(n, [], skipped=why) for n in ("parity-accuracy", "parity-class-f1")]
    ref, cand = comparison["reference"]["accuracy"], comparison["candidate"]["accuracy"]
    delta = comparison["delta"]
    tested = accuracy_test_text(comparison.get("accuracy_delta_interval"))
    within = f"; {tested}" if tested else ""
    problems = []
    if -delta["accuracy"] > gates["max_accuracy_drop"] + ROUNDING:
        problems.append(
            f"accuracy fell {-delta['accuracy']:.2f} points ({ref:.2f}% -> {cand:.2f}%{within}) "
            f"against {comparison['reference_origin']}, over --max-accuracy-drop "
            f"{gates['max_accuracy_drop']}"
        )
    problems += unchanged_problems(since_build)
    info = f"accuracy {ref:.2f}% -> {cand:.2f}% ({delta['accuracy']:+.2f} pts{within})"
    if since_build and "delta" in since_build:
        info += f"; the package scored {since_build['reference']['accuracy']:.2f}% when built"
    classes = [
        f"class {name!r} F1 fell {-d:.2f} points, over --max-class-drop {gates['max_class_drop']}"
        for name, d in delta["per_class_f1"].items()
        if -d > gates["max_class_drop"]
    ]
    return [check("parity-accuracy", problems, info=info), check("parity-class-f1", classes)]


def unchanged_problems(since_build: dict | None) -> list[str]:
    """The package re-run on the build's data must score what it scored when built."""
    if not since_build or "delta" not in since_build:
        return []
    noise = max(
        RECORDED_ACCURACY_NOISE, RECORDED_NOISE_EXAMPLES * 100 / max(since_build["examples"], 1)
    )
    if abs(since_build["delta"]["accuracy"]) <= noise:
        return []
    return [
        f"the package now scores {since_build['candidate']['accuracy']:.2f}% on the build's "
        f"eval data but scored {since_build['reference']['accuracy']:.2f}% when it was built: "
        "something in it changed"
    ]


def permutation_problems(comparison: dict) -> list[str]:
    found = comparison.get("label_permutation")
    if not found:
        return []
    swap = ", ".join(f"{a} -> {b}" for a, b in found["mapping"].items())
    return [
        f"the labels look permuted: reading the outputs as {swap} would raise accuracy from "
        f"{found['accuracy']:.1f}% to {found['permuted_accuracy']:.1f}%; check id2label in "
        "config.json and the label column of the eval data"
    ]


def labels_problems(expected: list[str], package: list[str], what: str) -> list[str]:
    """The package's label names, in order, must be `what`'s."""
    if list(expected) == list(package):
        return []
    if sorted(expected) == sorted(package):
        return [
            f"the package's labels {package} are {what}'s {expected} in another order: "
            "its outputs would be named wrongly; rebuild the package"
        ]
    return [f"the package's labels {package} differ from {what}'s {expected}"]


def recorded_parity_checks(verification: dict) -> list[dict]:
    """Without --reference, a package is checked against what its build recorded: one
    built with --no-verify recorded nothing, and that fails."""
    if verification.get("parity"):
        return []
    return [
        check(
            "parity-recorded",
            [
                "the package records no parity (built with --no-verify) and no --reference "
                "was given: nothing to check its accuracy against; pass --reference MODEL"
            ],
        )
    ]
