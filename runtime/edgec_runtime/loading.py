"""Loading a package on a device: open it, check it, pick its runner, make its predictor.

Nothing here imports torch or transformers: a device needs numpy, tokenizers and the
backend's own inference engine.
"""

from __future__ import annotations

import warnings
from contextlib import ExitStack
from pathlib import Path

from edgec_runtime.archive import opened
from edgec_runtime.errors import BackendUnavailable
from edgec_runtime.manifest import check_digest, check_integrity, read_manifest
from edgec_runtime.predictors import Predictor, make_predictor
from edgec_runtime.runners import get_runner
from edgec_runtime.settings import BackendSettings


class UnverifiedPackageWarning(UserWarning):
    """The package was built with --no-verify: nothing proved its accuracy."""


def runtime_settings(manifest: dict, threads: int | None = None) -> BackendSettings:
    """What a runner is given, from the manifest's record alone: the build verifies a
    package with exactly the settings a device will load it with. An option the record
    lacks (a package built before the option existed) takes the runner's default."""
    record = manifest["backend"].get("settings")
    if record is not None:
        settings = BackendSettings.from_record(record)
    else:  # schema 1: only the user's -O pairs were recorded
        settings = BackendSettings.from_legacy_manifest(manifest)
    return settings.with_device(threads=threads) if threads is not None else settings


def load(
    package: str | Path,
    *,
    threads: int | None = None,
    check_hashes: bool = True,
    digest: str | None = None,
) -> Predictor:
    """Load a package directory or .tar.gz; hashes are checked before anything runs.

    `digest` pins the package (`sha256:<hex>`, as `edgec inspect` prints it): a package
    whose manifest differs in any byte that matters (a file's hash, max_length, the
    verification status) is refused with VerificationFailed, as pip refuses a wheel
    that does not match its pinned hash.
    """
    path = Path(package)
    stack = ExitStack()  # holds an unpacked archive open for the predictor's lifetime
    try:
        return _load(path, stack, threads, check_hashes, digest)
    except BaseException:
        stack.close()  # an unpacked archive is removed when loading fails
        raise


def _load(path: Path, stack: ExitStack, threads, check_hashes: bool, digest) -> Predictor:
    directory = stack.enter_context(opened(path))
    manifest = read_manifest(directory)
    check_digest(manifest, digest, path)
    if check_hashes:
        check_integrity(directory, manifest)
    runner_plugin = get_runner(manifest["backend"]["name"])
    settings = runtime_settings(manifest, threads)
    reason = runner_plugin.available(settings.device.device)
    if reason:
        raise BackendUnavailable(
            f"cannot run this {runner_plugin.name} package here: {reason}"
        )
    if manifest.get("verification", {}).get("status") != "passed":
        warnings.warn(
            f"{path} is UNVERIFIED (built with --no-verify): its accuracy was never checked",
            UnverifiedPackageWarning,
            stacklevel=3,  # the caller of load()
        )
    runner = runner_plugin.load(directory, manifest["backend"], settings)
    return make_predictor(directory, manifest, runner, keep_alive=stack)
