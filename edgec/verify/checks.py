"""A check is one named gate with a status; reports, JUnit and the CLI all read them.

Statuses: "passed", "failed", or "skipped" (not run, and the message says why, so a
report never implies something was checked when it could not be).
"""

from __future__ import annotations


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
