"""Run `edgec` as a user would: in this process through Click's CliRunner (fast, the
default for exit-code and message tests), or as the real console script in a new
process where what that process imports or leaves behind is the point.

Both return a `subprocess.CompletedProcess`, so a test can move between them and
`assert_clean_error` reads either.
"""

from __future__ import annotations

import os
import subprocess
import sys
import traceback
from pathlib import Path

EDGEC = str(Path(sys.executable).with_name("edgec"))


def run_edgec(*args, env: dict | None = None, cwd=None) -> subprocess.CompletedProcess:
    """The installed console script, in a new process."""
    return subprocess.run(
        [EDGEC, *map(str, args)],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        cwd=cwd,
        timeout=900,
    )


def invoke_edgec(*args, env: dict | None = None) -> subprocess.CompletedProcess:
    """The same command line, run in this process by Click's CliRunner.

    An exception that escapes the CLI (which turns every exception into a message and
    an exit code) is appended to stderr as a traceback, so a test sees it.
    """
    from click.testing import CliRunner

    from edgec.cli import cli

    argv = [str(a) for a in args]
    result = CliRunner(env=env).invoke(cli, argv, prog_name="edgec")
    stderr = result.stderr
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        stderr += "".join(traceback.format_exception(*result.exc_info))
    return subprocess.CompletedProcess(["edgec", *argv], result.exit_code, result.stdout, stderr)


def assert_clean_error(result: subprocess.CompletedProcess, code: int, *fragments: str) -> None:
    """One line on stderr naming the problem, the documented exit code, no traceback."""
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout
    error_lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(error_lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in error_lines[0], (fragment, error_lines[0])
