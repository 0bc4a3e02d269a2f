"""Errors a user can act on, each carrying the process exit code it maps to.

The CLI prints `str(error)` as one line and exits with `error.exit_code`; anything
that is not an `EdgecError` is a bug and shows its traceback only under --verbose.
"""

EXIT_OK = 0
EXIT_VERIFICATION_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_BACKEND_UNAVAILABLE = 3


class EdgecError(Exception):
    """A problem the user can fix; the message names the problem and the fix."""

    exit_code = EXIT_BAD_INPUT


class BadInput(EdgecError):
    """Bad usage or bad input: a path, a file, a column, an option value."""

    exit_code = EXIT_BAD_INPUT


class BackendUnavailable(EdgecError):
    """The requested backend or device cannot run on this machine."""

    exit_code = EXIT_BACKEND_UNAVAILABLE


class VerificationFailed(EdgecError):
    """A parity, tokenizer or integrity check failed; no package was written.

    `report` is the verification report behind the failure, when there is one, so a
    caller can show or save the details the one-line message leaves out.
    """

    exit_code = EXIT_VERIFICATION_FAILED

    def __init__(self, message: str, report: dict | None = None):
        super().__init__(message)
        self.report = report
