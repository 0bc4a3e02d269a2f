"""One verification report from its checks: the shape every task's suite returns."""

from __future__ import annotations

import time

from edgec.gates import TASK_GATES
from edgec.iospec import SEQUENCE_CLASSIFICATION
from edgec.verify.checks import failure_lines
from edgec.verify.results import eval_fingerprint

ASSEMBLED = (
    "status",
    "task",
    "failures",
    "not_checked",
    "thresholds",
    "eval_data",
    "eval_examples",
    "eval_fingerprint",
    "seconds",
)


def assemble(
    checks, warnings_, thresholds, eval_set, started, task=SEQUENCE_CLASSIFICATION, **sections
) -> dict:
    """The report; `thresholds` lists the gates `task`'s checks read, not every task's."""
    failures = failure_lines(checks)
    own = TASK_GATES[task]
    return {
        "status": "failed" if failures else "passed",
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
