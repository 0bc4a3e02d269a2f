"""One verification report from its checks: the shape every task's suite returns.

A report's status is `failed` when a check failed; otherwise `incomplete` when parity
was asked for and none of its task's parity checks (PARITY_CHECKS) ran, since a report
whose every parity check was skipped proves nothing about the package's answers
however much else passed; otherwise `passed`. Only `passed` exits 0.
"""

from __future__ import annotations

import time

from edgec.gates import TASK_GATES
from edgec.verify.checks import failure_lines
from edgec.verify.results import eval_fingerprint
from edgec_runtime.iospec import SEQUENCE_CLASSIFICATION

# The checks that compare a package's answers with a reference's, per task. Checks that
# only inform (ner-entity-f1-vs-reference) or only guard the labels are not parity.
PARITY_CHECKS = {
    "sequence-classification": (
        "parity-agreement",
        "parity-accuracy",
        "parity-class-f1",
        "parity-logit-deltas",
    ),
    "token-classification": ("ner-entity-f1", "ner-type-f1", "ner-tag-agreement"),
    "sentence-embedding": (
        "embedding-cosine",
        "embedding-neighbours",
        "embedding-similarity-rank",
        "embedding-pair-scores",
    ),
}
PARITY_NOT_REQUESTED = (
    "parity was not requested (--tokenizer-only): integrity and the tokenizer were "
    "checked, the package's answers were not compared with the source model's"
)
HOW_TO_CHECK_PARITY = (
    "pass --reference MODEL (the source model folder) for full parity on this data, or "
    "the eval data the build verified on (the manifest's verification.eval_data) to "
    "re-check the package against what its build recorded; --tokenizer-only checks "
    "integrity and the tokenizer alone"
)

ASSEMBLED = (
    "status",
    "incomplete",
    "parity_requested",
    "task",
    "failures",
    "not_checked",
    "thresholds",
    "eval_data",
    "eval_examples",
    "eval_fingerprint",
    "seconds",
)


def incomplete_message(checks, task: str) -> str | None:
    """Why no parity check of `task` ran (None when one did), and how to run one."""
    names = PARITY_CHECKS[task]
    ran = [c for c in checks if c["name"] in names and c["status"] != "skipped"]
    if ran:
        return None
    skipped = [f"{c['name']} ({c['message']})" for c in checks if c["name"] in names]
    return (
        "no parity check ran, so nothing here shows the package answers like its source "
        f"model: skipped {'; '.join(skipped) or ', '.join(names)}. To check parity, "
        + HOW_TO_CHECK_PARITY
    )


def assemble(
    checks,
    warnings_,
    thresholds,
    eval_set,
    started,
    task=SEQUENCE_CLASSIFICATION,
    *,
    parity_requested: bool = True,
    **sections,
) -> dict:
    """The report; `thresholds` lists the gates `task`'s checks read, not every task's.

    `parity_requested` False (`edgec verify --tokenizer-only`) lets a report without
    parity checks pass, and says so in its warnings.
    """
    failures = failure_lines(checks)
    own = TASK_GATES[task]
    incomplete = incomplete_message(checks, task) if parity_requested and not failures else None
    if not parity_requested:
        warnings_ = [*warnings_, PARITY_NOT_REQUESTED]
    status = "failed" if failures else ("incomplete" if incomplete else "passed")
    return {
        "status": status,
        **({"incomplete": incomplete} if incomplete else {}),
        "parity_requested": parity_requested,
        "failures": failures,
        "checks": checks,
        "warnings": warnings_,
        "not_checked": [f"{c['name']}: {c['message']}" for c in checks if c["status"] == "skipped"],
        "task": task,
        "thresholds": {k: v for k, v in thresholds.items() if k in own},
        "eval_data": eval_set.source if eval_set is not None else None,
        "eval_examples": len(eval_set) if eval_set is not None else 0,
        "eval_fingerprint": eval_fingerprint(eval_set) if eval_set is not None else None,
        **sections,
        "seconds": round(time.perf_counter() - started, 2),
    }
