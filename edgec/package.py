"""Write, read and check packages: a directory (optionally also a .tar.gz) holding the
model files, the tokenizer and the manifest `edgec.json`.

A package is staged in a temporary sibling directory and renamed into place, so an
interrupted or failed build never leaves a half-written package behind; --force swaps
the old one out atomically (_replace). Before any work an output is claimed
(claim_output): refused where it would destroy an input or something edgec did not
write, locked against a second build, and cleared of what a killed build left.

Reading and checking a manifest (its shape, paths, hashes, the digest) lives in
edgec_runtime.manifest; its names are re-exported here so existing callers keep working.
"""

from __future__ import annotations

import ctypes
import errno
import functools
import json
import os
import secrets
import shutil
import sys
import tarfile
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from edgec import __version__
from edgec.outputs import archive_path, claim_output, leftover_prefix, remove_leftovers
from edgec_runtime.errors import BadInput
from edgec_runtime.manifest import (  # noqa: F401  (read side, re-exported for existing callers)
    MANIFEST,
    READABLE_SCHEMAS,
    SCHEMA_VERSION,
    check_integrity,
    integrity_problems,
    read_manifest,
    sha256_of,
)

# renameat2(2): swap two paths atomically, or rename without replacing (Linux)
AT_FDCWD = -100
RENAME_NOREPLACE = 1
RENAME_EXCHANGE = 2
# Test-only (tests/test_package_safety.py): EDGEC_TEST_PAUSE_AT=STEP@MARKER makes the
# write stop at STEP (one of PAUSE_STEPS), so a test can signal it at that exact point.
PAUSE_ENV = "EDGEC_TEST_PAUSE_AT"
PAUSE_STEPS = ("staged", "swapped", "moved-old", "placed")


def file_records(directory: Path, names: list[str]) -> dict[str, dict]:
    return {
        n: {"sha256": sha256_of(directory / n), "size": (directory / n).stat().st_size}
        for n in names
    }


def write_package(
    out: Path, files: dict[str, Path], manifest: dict, *, force=False, archive=False
) -> Path:
    """Copy `files` (package name -> source path) and the manifest into `out`, atomically.

    Whatever stops it (an error, Ctrl-C, a SIGTERM under the CLI) leaves at `out` the
    old package or the new one, complete, and nothing beside it; a KeyboardInterrupt
    says which in its `edgec_left` attribute, for the CLI's message. A SIGKILL can
    leave the staging folder, which the next build removes (remove_leftovers).
    """
    with claim_output(out, force, archive=archive) as out:
        had_old = os.path.lexists(out)
        archive_before = _inode(archive_path(out)) if archive else False
        staging = Path(tempfile.mkdtemp(prefix=leftover_prefix(out, "stage"), dir=out.parent))
        staged = _inode(staging)
        try:
            for name, src in files.items():
                (staging / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, staging / name)
            manifest = {
                "schema_version": SCHEMA_VERSION,
                "edgec_version": __version__,
                "created": datetime.now(UTC).isoformat(timespec="seconds"),
                **manifest,
                "files": file_records(staging, sorted(files)),
            }
            (staging / MANIFEST).write_text(
                json.dumps(manifest, indent=2, default=str) + "\n", encoding="utf-8"
            )
            tar = _write_archive(staging, out) if archive else None
            _pause("staged")
            _replace(staging, out)
            if tar:  # after the folder: a build stopped before it is in changes nothing
                os.replace(tar, archive_path(out))
        except BaseException as e:
            remove_leftovers(out, mine=True)
            if isinstance(e, KeyboardInterrupt):
                e.edgec_left = _left_behind(out, staged, had_old, archive_before)
            raise
    return out


def _write_archive(staging: Path, out: Path) -> Path:
    """OUT.tar.gz of the staged package, written next to it under a temporary name that
    write_package renames over the old one (atomic for a file) once the folder is in.
    The manifest goes first, so _is_package_archive reads only the start."""
    tmp = out.with_name(leftover_prefix(out, "tar") + secrets.token_hex(4))
    with tarfile.open(tmp, "x:gz") as tar:
        tar.add(staging, arcname=out.name, recursive=False)
        tar.add(staging / MANIFEST, arcname=f"{out.name}/{MANIFEST}")
        for path in sorted(staging.rglob("*")):
            if path != staging / MANIFEST:
                name = f"{out.name}/{path.relative_to(staging).as_posix()}"
                tar.add(path, arcname=name, recursive=False)
    return tmp


def _replace(staging: Path, out: Path) -> None:
    """Put the staged package at `out` so that at every instant one complete package is
    there. An existing one is swapped out in one atomic exchange (Linux renameat2)
    and then removed. Without the exchange (another OS, a filesystem without it) the
    old one is moved aside and removed only once the new one is in; if that is
    interrupted in between, remove_leftovers puts the old one back.
    """
    if not os.path.lexists(out):
        try:
            if not _renameat2(staging, out, RENAME_NOREPLACE):
                os.rename(staging, out)
        except FileExistsError:
            raise BadInput(
                f"{out} appeared while edgec was writing it: run the build again"
            ) from None
        return
    if _renameat2(staging, out, RENAME_EXCHANGE):
        _pause("swapped")
        shutil.rmtree(staging, ignore_errors=True)  # the old package, after the swap
        return
    old = out.with_name(leftover_prefix(out, "old") + secrets.token_hex(4))
    os.rename(out, old)
    _pause("moved-old")
    os.rename(staging, out)
    _pause("placed")
    shutil.rmtree(old, ignore_errors=True)


def _renameat2(src: Path, dst: Path, flags: int) -> bool:
    """rename(2) with renameat2 `flags`; False where that is unavailable (not Linux, a
    libc without renameat2, ENOSYS from the kernel, EINVAL from a filesystem without
    the flag), so the caller takes the portable way."""
    call = _libc_renameat2()
    if call is None:
        return False
    if call(AT_FDCWD, os.fsencode(src), AT_FDCWD, os.fsencode(dst), flags) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL):
        return False
    raise OSError(err, os.strerror(err), str(src), None, str(dst))


@functools.cache
def _libc_renameat2():
    if not sys.platform.startswith("linux"):
        return None
    try:
        call = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):  # musl, or glibc before 2.28
        return None
    call.argtypes = (ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint)
    call.restype = ctypes.c_int
    return call


def _inode(path: Path) -> int | None:
    try:
        return os.lstat(path).st_ino
    except OSError:
        return None


def _left_behind(out: Path, staged: int | None, had_old: bool, archive_before) -> str:
    """What an interrupted write_package leaves, for the CLI's message: told from the
    folder at `out` (the staged one keeps its inode through the renames)."""
    if _inode(out) != staged:  # the archive is renamed in only after the folder
        return f"the old package at {out} is kept" if had_old else f"nothing was written to {out}"
    archive = archive_path(out)
    if archive_before is False or _inode(archive) != archive_before:
        return f"the new package is in place at {out}"
    if archive_before is None:
        return f"the new package is in place at {out}; {archive.name} was not written"
    return f"the new package is in place at {out}; {archive.name} is still the old one"


def _pause(step: str) -> None:
    """Test-only hook, see PAUSE_ENV: at the named step write the marker file (this
    pid in it) and wait while it exists, at most 10 minutes; a test signals the
    process there, or deletes the marker to let it go on."""
    at, _, marker = os.environ.get(PAUSE_ENV, "").partition("@")
    if at != step or not marker:
        return
    Path(marker).write_text(f"{os.getpid()}\n", encoding="utf-8")
    deadline = time.monotonic() + 600
    while os.path.exists(marker) and time.monotonic() < deadline:
        time.sleep(0.02)
