"""The compiler's side of loading a package: verifying it on this machine.

Loading and predicting are edgec-runtime's (`edgec_runtime.load`). What the compiler adds is `checking_predictor`: a package for
a device this machine lacks (an NPU, a Jetson) is checked on what is here instead,
which only the backend that compiled it knows how to do.
"""

from __future__ import annotations

from pathlib import Path

from edgec.backends.settings import with_defaults
from edgec.plugins import get_backend
from edgec_runtime.errors import BackendUnavailable, BadInput
from edgec_runtime.loading import runtime_settings
from edgec_runtime.manifest import path_problem
from edgec_runtime.predictors import Predictor, make_predictor


def checking_predictor(directory: Path, manifest: dict) -> tuple[Predictor, str | None]:
    """A predictor to verify the package on this machine, and, when that is not the
    target's device, what it checks instead (see Backend.check_runner).

    The build calls this on a candidate whose manifest has no `files` yet, so only the
    paths the backend is handed are checked here; `read_manifest` checks the rest of
    a written package before its manifest reaches this function.
    """
    for name in manifest["backend"].get("files", []):
        problem = path_problem(name)
        if problem:
            raise BadInput(
                f"{directory} cannot be loaded: {problem}; rebuild it with `edgec build`"
            )
    backend = get_backend(manifest["backend"]["name"])
    settings = with_defaults(backend, runtime_settings(manifest))
    reason = backend.compile_problem(settings.device.device, settings)
    if reason:
        raise BackendUnavailable(f"cannot check this {backend.name} package here: {reason}")
    runner, checked_on = backend.check_runner(directory, manifest["backend"], settings)
    return make_predictor(directory, manifest, runner), checked_on
