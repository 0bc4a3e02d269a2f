"""Verification gates: the defaults, and the one place they are resolved.

A gate can be set in four places, weakest first: these defaults, the target profile,
the command line, and (for `edgec verify` without new values) the gates the build
recorded. `resolve_gates` merges them in that order; nothing else merges gates.
"""

from __future__ import annotations

# Gates every task's suite reads (the tokenizer report is shared by all): the share of
# eval tokens that are UNK. Measured: docs/verification.md, "Why a 5 % UNK rate fails".
COMMON_GATES = {"max_unk_rate": 0.05}

# The parity gates when neither the target nor the command line sets them, for each
# task; each task's checks read their own names. All are measured, not guessed:
# docs/verification.md, "Why 0.94 agreement" and "Gates for taggers and embedders".
TASK_GATES = {
    "sequence-classification": {
        "max_accuracy_drop": 1.0,
        "min_agreement": 0.94,
        "max_class_drop": 3.0,
        **COMMON_GATES,
    },
    "token-classification": {
        "max_entity_f1_drop": 1.5,
        "max_type_f1_drop": 5.0,
        "min_tag_agreement": 0.995,
        **COMMON_GATES,
    },
    "sentence-embedding": {
        "min_cosine": 0.95,
        "min_mean_cosine": 0.98,
        "min_neighbour_overlap": 0.8,
        "min_similarity_spearman": 0.975,
        "max_pair_spearman_drop": 0.02,
        **COMMON_GATES,
    },
}
DEFAULT_GATES = {name: value for gates in TASK_GATES.values() for name, value in gates.items()}
GATE_NAMES = tuple(DEFAULT_GATES)
# `edgec build --distill` refuses a student below this share of the teacher's accuracy.
DEFAULT_MIN_RETENTION = 0.97
# Each text's nearest others an embedder's neighbour check compares.
NEIGHBOURS = 10

# The smallest eval set whose figures can resolve each gate, per task: (gate, what is
# counted, how one counted unit moves the gated figure). A gate that tolerates less
# than one unit silently becomes "none at all", and a pass on a handful of examples
# proves nothing: docs/verification.md, "How small an eval set may be".
#   share:      the figure is the share of units that agree (one flip moves it by 1/n),
#               so a gate g tolerates a flip only from n >= 1 / (1 - g);
#   points:     the figure moves by about 100/n points per unit (one flipped example
#               for accuracy; one changed entity for entity F1), so a drop gate d
#               tolerates one unit only from n >= 100 / d;
#   neighbours: top-NEIGHBOURS overlap among n texts; random neighbours overlap by
#               NEIGHBOURS / (n - 1) on average, which must be below the gate g, so
#               n > 1 + NEIGHBOURS / g (and at least NEIGHBOURS + 2: with fewer, every
#               text's neighbours are all the others and the overlap is always 1).
# A gate that tolerates nothing (agreement 1, drop 0) is exact at any size.
EVAL_SIZE_RULES = {
    "sequence-classification": (
        ("min_agreement", "examples", "share"),
        ("max_accuracy_drop", "labeled examples", "points"),
    ),
    "token-classification": (
        ("min_tag_agreement", "words", "share"),
        ("max_entity_f1_drop", "gold entities", "points"),
    ),
    "sentence-embedding": (("min_neighbour_overlap", "texts", "neighbours"),),
}
_EXACT = 1e-9  # 1 / (1 - 0.99) is 99.99999999999991 in floating point: not 101


def _size_for(kind: str, value: float) -> int:
    import math

    if kind == "share":
        return 1 if value >= 1 else math.ceil(round(1 / (1 - value), 6) - _EXACT)
    if kind == "points":
        return 1 if value <= 0 else math.ceil(round(100 / value, 6) - _EXACT)
    floor = NEIGHBOURS + 2
    if value <= 0:
        return floor
    return max(floor, math.floor(round(1 + NEIGHBOURS / value, 6)) + 1)


def resolvable_gate(kind: str, n: int) -> float | None:
    """The loosest gate of `kind` that `n` counted units still resolve (None: none)."""
    import math

    if n <= 0:
        return None
    if kind == "share":
        return math.floor((1 - 1 / n) * 10_000) / 10_000
    if kind == "points":
        return math.ceil(100 / n * 100) / 100
    if n < NEIGHBOURS + 2:
        return None
    return math.floor(NEIGHBOURS / (n - 1) * 10_000) / 10_000 + 0.0001


def minimum_eval_size(task: str, gates: dict | None = None) -> list[dict]:
    """What `task`'s eval set must hold for its `gates` (resolved over the defaults) to
    mean anything: one {gate, value, count, kind, minimum} per rule."""
    resolved = resolve_gates(gates)
    return [
        {
            "gate": gate,
            "value": resolved[gate],
            "count": count,
            "kind": kind,
            "minimum": _size_for(kind, float(resolved[gate])),
        }
        for gate, count, kind in EVAL_SIZE_RULES.get(task, ())
    ]


# What values each gate can meaningfully take: a share (agreement, cosine, overlap,
# rank correlation, UNK rate) lies in 0..1; a drop in points in 0..100; a drop of a
# rank correlation in 0..2. Outside (or NaN, which passes every comparison) a gate
# silently checks nothing or fails everything.
GATE_RANGES = {
    name: (0.0, 2.0, "a drop of a rank correlation")
    if name == "max_pair_spearman_drop"
    else (0.0, 100.0, "a drop in points")
    if name.endswith("_drop")
    else (0.0, 1.0, "a share")
    for name in DEFAULT_GATES
}


def gate_problem(name: str, value) -> str | None:
    """Why `value` cannot be gate `name`, or None."""
    import math

    low, high, kind = GATE_RANGES.get(name, (-math.inf, math.inf, "a number"))
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return f"gate {name} = {value!r} is not a number"
    if not low <= value <= high:
        return f"gate {name} = {value:g} is outside {low:g}..{high:g} ({kind})"
    return None


def resolve_gates(*layers: dict | None) -> dict:
    """Defaults, then each layer in turn; a layer's None values leave a gate unset. A
    value no gate can take (NaN, a share above 1, a negative drop) is exit 2."""
    gates = dict(DEFAULT_GATES)
    for layer in layers:
        gates.update({k: v for k, v in (layer or {}).items() if v is not None})
    problems = [p for p in (gate_problem(k, v) for k, v in gates.items() if k in GATE_RANGES) if p]
    if problems:
        from edgec_runtime.errors import BadInput

        raise BadInput(f"{'; '.join(problems)}: set it to a value in its range")
    return gates


def parse_gate_pairs(pairs, where: str) -> dict:
    """`NAME=VALUE` strings -> {name: float}; an unknown name or a value that is not a
    number is exit 2 naming the gates."""
    from edgec_runtime.errors import BadInput

    out = {}
    for pair in pairs:
        name, sep, value = str(pair).partition("=")
        name = name.strip()
        if not sep or name not in DEFAULT_GATES:
            raise BadInput(
                f"{where} {pair!r}: not NAME=VALUE with a known gate; the gates are "
                f"{', '.join(GATE_NAMES)}"
            )
        try:
            out[name] = float(value)
        except ValueError:
            raise BadInput(f"{where} {pair!r}: {value!r} is not a number") from None
    return out
