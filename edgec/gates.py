"""Verification gates: the defaults, and the one place they are resolved.

A gate can be set in four places, weakest first: these defaults, the target profile,
the command line, and (for `edgec verify` without new values) the gates the build
recorded. `resolve_gates` merges them in that order; nothing else merges gates.
"""

from __future__ import annotations

# The parity gates when neither the target nor the command line sets them, for each
# task; each task's checks read their own names. All are measured, not guessed:
# docs/verification.md, "Why 0.94 agreement" and "Gates for taggers and embedders".
TASK_GATES = {
    "sequence-classification": {
        "max_accuracy_drop": 1.0,
        "min_agreement": 0.94,
        "max_class_drop": 3.0,
    },
    "token-classification": {
        "max_entity_f1_drop": 1.5,
        "max_type_f1_drop": 5.0,
        "min_tag_agreement": 0.995,
    },
    "sentence-embedding": {
        "min_cosine": 0.95,
        "min_mean_cosine": 0.98,
        "min_neighbour_overlap": 0.8,
        "min_similarity_spearman": 0.975,
        "max_pair_spearman_drop": 0.02,
    },
}
DEFAULT_GATES = {name: value for gates in TASK_GATES.values() for name, value in gates.items()}
GATE_NAMES = tuple(DEFAULT_GATES)
# `edgec build --distill` refuses a student below this share of the teacher's accuracy.
DEFAULT_MIN_RETENTION = 0.97


def resolve_gates(*layers: dict | None) -> dict:
    """Defaults, then each layer in turn; a layer's None values leave a gate unset."""
    gates = dict(DEFAULT_GATES)
    for layer in layers:
        gates.update({k: v for k, v in (layer or {}).items() if v is not None})
    return gates


def parse_gate_pairs(pairs, where: str) -> dict:
    """`NAME=VALUE` strings -> {name: float}; an unknown name or a value that is not a
    number is exit 2 naming the gates."""
    from edgec.errors import BadInput

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
