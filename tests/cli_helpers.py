"""Run the real `edgec` console script in a subprocess, as a user would."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

EDGEC = str(Path(sys.executable).with_name("edgec"))


def run_edgec(*args, env: dict | None = None, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [EDGEC, *map(str, args)],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        cwd=cwd,
        timeout=900,
    )


def assert_clean_error(result: subprocess.CompletedProcess, code: int, *fragments: str) -> None:
    """One line on stderr naming the problem, the documented exit code, no traceback."""
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout
    error_lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(error_lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in error_lines[0], (fragment, error_lines[0])
