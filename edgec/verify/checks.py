"""A check is one named gate with a status; reports, JUnit and the CLI all read them.

Statuses: "passed", "failed", or "skipped" (not run, and the message says why, so a
report never implies something was checked when it could not be).
"""

from __future__ import annotations

# The parity gates when neither the target nor the command line sets them. Agreement
# 0.94 is measured, not guessed: docs/verification.md, "Why 0.94 agreement".
DEFAULT_GATES = {"max_accuracy_drop": 1.0, "min_agreement": 0.94, "max_class_drop": 3.0}
# `edgec build --distill` refuses a student below this share of the teacher's accuracy.
DEFAULT_MIN_RETENTION = 0.97


def check(name: str, problems: list[str], *, skipped: str | None = None, info: str = "") -> dict:
    if skipped is not None:
        return {"name": name, "status": "skipped", "message": skipped}
    if problems:
        return {"name": name, "status": "failed", "message": "; ".join(problems)}
    return {"name": name, "status": "passed", "message": info}


def failed(checks: list[dict]) -> list[dict]:
    return [c for c in checks if c["status"] == "failed"]


def failure_messages(checks: list[dict]) -> list[str]:
    """Why each failed check failed; empty means every gate passed."""
    return [c["message"] for c in failed(checks)]


def failure_lines(checks: list[dict]) -> list[str]:
    return [f"{c['name']}: {c['message']}" for c in failed(checks)]
