"""Verification gates: the defaults, and the one place they are resolved.

A gate can be set in four places, weakest first: these defaults, the target profile,
the command line, and (for `edgec verify` without new values) the gates the build
recorded. `resolve_gates` merges them in that order; nothing else merges gates.
"""

from __future__ import annotations

# The parity gates when neither the target nor the command line sets them. Agreement
# 0.94 is measured, not guessed: docs/verification.md, "Why 0.94 agreement".
DEFAULT_GATES = {"max_accuracy_drop": 1.0, "min_agreement": 0.94, "max_class_drop": 3.0}
GATE_NAMES = tuple(DEFAULT_GATES)
# `edgec build --distill` refuses a student below this share of the teacher's accuracy.
DEFAULT_MIN_RETENTION = 0.97


def resolve_gates(*layers: dict | None) -> dict:
    """Defaults, then each layer in turn; a layer's None values leave a gate unset."""
    gates = dict(DEFAULT_GATES)
    for layer in layers:
        gates.update({k: v for k, v in (layer or {}).items() if v is not None})
    return gates
