"""Write, read and check packages: a directory (optionally also a .tar.gz) holding the
model files, the tokenizer and the manifest `edgec.json`.

A package is staged in a temporary sibling directory and renamed into place, so an
interrupted or failed build never leaves a half-written package behind; --force swaps
the old one out atomically (_replace). Before any work an output is claimed
(claim_output): refused where it would destroy an input or something edgec did not
write, locked against a second build, and cleared of what a killed build left.

Reading and checking a manifest (its shape, paths, hashes, the digest) lives in
edgec.manifest; its names are re-exported here so existing callers keep working.
"""

from __future__ import annotations

import ctypes
import errno
import functools
import json
import os
import re
import secrets
import shutil
import sys
import tarfile
import tempfile
import time
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path

from edgec import __version__
from edgec.errors import BadInput
from edgec.manifest import (  # noqa: F401  (read side, re-exported for existing callers)
    MANIFEST,
    READABLE_SCHEMAS,
    SCHEMA_VERSION,
    check_integrity,
    integrity_problems,
    read_manifest,
)
from edgec.model import sha256_of

try:  # POSIX: the lock on an output (claim_output)
    import fcntl
except ImportError:  # Windows: an exclusively created lock file instead
    fcntl = None

# What a build has in flight carries its pid, so the next build can tell a killed
# build's leftovers (removed: remove_leftovers) from a running one's (never touched):
#   $TMPDIR/edgec-build-<pid>-XXXX   the build's work folder (edgec.pipeline)
#   .OUT.edgec-stage-<pid>-XXXX      the package being written, next to OUT
#   .OUT.edgec-old-<pid>-XXXX        the old package while it is replaced (no renameat2)
#   .OUT.edgec-tar-<pid>-XXXX        the archive being written
#   .OUT.lock                        locked while a build writes OUT; holds its pid
WORK_PREFIX = "edgec-build-"
LEFTOVER_KINDS = ("stage", "old", "tar")
KERNEL_FOLDERS = ("/proc", "/sys")
_CLAIMED: set[Path] = set()  # the outputs this process holds the lock of
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


def check_output(
    out: Path, force: bool, *, archive: bool = False, inputs: dict | None = None
) -> Path:
    """Refuse early, before minutes of compiling, if the output is in the way; return
    the path edgec writes (its folder resolved, its own name kept). The refusals of
    claim_output without holding the output, for a caller that only asks.

    `inputs` (what -> path: the model folder, the data files) are what the build
    reads: an output that is one, holds one or lies inside one would destroy it, so
    that is refused with or without --force.
    """
    out = _checked_target(out, archive, inputs or {})
    _check_replaceable(out, force, archive)
    return out


def archive_path(out: Path) -> Path:
    return out.with_name(out.name + ".tar.gz")


@contextmanager
def claim_output(out: Path, force: bool, *, archive: bool = False, inputs: dict | None = None):
    """Hold `out` for one build and yield the path to write: checked (check_output),
    locked against a second build writing it, and cleared of what a killed build left
    (remove_leftovers) before the check of what is there, so a put-back old package
    counts. Re-entrant: write_package inside a claim neither locks nor sweeps again.
    """
    target = _checked_target(out, archive, inputs or {})
    if target in _CLAIMED:
        _check_replaceable(target, force, archive)
        yield target
        return
    with _locked(target):
        _CLAIMED.add(target)
        try:
            remove_leftovers(target)
            _check_replaceable(target, force, archive)
            yield target
        finally:
            _CLAIMED.discard(target)


def work_prefix() -> str:
    """The name prefix of a build's $TMPDIR work folder (edgec.pipeline): the pid in it
    lets the next build remove it once this process is gone (a SIGKILL skips every
    cleanup)."""
    return f"{WORK_PREFIX}{os.getpid()}-"


def remove_leftovers(out: Path, *, mine: bool = False) -> None:
    """Remove what killed builds left: their staging, old-package and archive files
    next to `out` and their $TMPDIR work folders, never those of a live process.

    An old package that a replace without renameat2 was killed holding (moved aside,
    the new one not yet in) is put back at `out`, not removed. With `mine`, this
    process's own leftovers next to `out` instead: what an interrupted or failed
    write_package has to undo.
    """
    kinds = "|".join(LEFTOVER_KINDS)
    beside = re.compile(rf"\.{re.escape(out.name)}\.edgec-({kinds})-(\d+)-[a-z0-9_]+")
    for entry in out.parent.iterdir():
        match = beside.fullmatch(entry.name)
        if not match or not _abandoned(int(match[2]), mine):
            continue
        if match[1] == "old" and not os.path.lexists(out):
            with suppress(OSError):  # left for the next build's sweep if this fails
                os.rename(entry, out)
        else:
            _remove(entry)
    if mine:
        return
    work = re.compile(rf"{WORK_PREFIX}(\d+)-[a-z0-9_]+")
    for entry in Path(tempfile.gettempdir()).glob(f"{WORK_PREFIX}*"):
        match = work.fullmatch(entry.name)
        if match and _abandoned(int(match[1]), False):
            _remove(entry)


def _checked_target(out: Path, archive: bool, inputs: dict) -> Path:
    """The checks on where -o points (not on what is there): the current folder, a
    kernel folder, an input of the build, a parent that is missing, a file or
    read-only."""
    given = Path(out)
    real = Path(os.path.realpath(given))
    here = Path(os.path.realpath(os.getcwd()))
    if real == here:
        raise BadInput(
            f"-o {given} would replace the current folder: name a new folder, e.g. -o dist/model"
        )
    if here.is_relative_to(real):
        raise BadInput(
            f"-o {given} would replace {real}, which holds the current folder: name a new "
            "folder, e.g. -o dist/model"
        )
    if given.name in ("", ".."):
        raise BadInput(f"-o {given} names no new folder: name one, e.g. -o dist/model")
    for kernel in KERNEL_FOLDERS:
        if real.is_relative_to(kernel):
            raise BadInput(
                f"-o {given} is under {kernel}, a kernel folder, not a disk: choose a folder "
                "on a disk"
            )
    targets = {f"-o {given}": real}
    if archive:
        targets[f"the archive {archive_path(given)}"] = Path(os.path.realpath(archive_path(given)))
    for what, path in inputs.items():
        if path is None or not os.path.exists(path):
            continue  # not given, or a Hub model id: nothing on disk to destroy
        source = Path(os.path.realpath(path))
        for shown, target in targets.items():
            if target == source:
                relation = "is"
            elif target.is_relative_to(source):
                relation = "lies inside"
            elif source.is_relative_to(target):
                relation = "contains"
            else:
                continue
            raise BadInput(
                f"{shown} {relation} {what} {path}: writing the package there would destroy "
                "it, --force or not; choose an -o outside it"
            )
    parent = Path(os.path.realpath(given.parent))
    if not parent.exists():
        raise BadInput(f"the folder {given.parent} does not exist: create it first")
    if not parent.is_dir():
        raise BadInput(
            f"-o {given}: {given.parent} is a file, not a folder; choose an -o in a folder"
        )
    if not os.access(parent, os.W_OK | os.X_OK):
        raise BadInput(
            f"-o {given}: cannot write in {given.parent} (read-only or no permission); choose "
            "an -o in a folder you can write to"
        )
    return parent / given.name


def _check_replaceable(out: Path, force: bool, archive: bool) -> None:
    """What is at the output: nothing, or with --force an edgec package (or an empty
    folder) and, with --archive, an archive edgec wrote. Anything else is someone's
    data that --force must not delete."""
    for path in (out, archive_path(out)) if archive else (out,):
        if not os.path.lexists(path):
            continue
        if not force:
            raise BadInput(
                f"{path} already exists: choose another -o or pass --force to replace it"
            )
        problem = _in_the_way(path, is_archive=path != out)
        if problem:
            raise BadInput(
                f"{path} {problem}: --force replaces only what edgec wrote; move it away or "
                "choose another -o"
            )


def _in_the_way(path: Path, *, is_archive: bool) -> str | None:
    """Why --force must not replace what is at `path`, or None when it may."""
    if path.is_symlink():
        return "is a symbolic link"
    if is_archive:
        if path.is_dir():
            return "is a folder, not a package archive"
        return None if _is_package_archive(path) else "is not an edgec package archive"
    if not path.is_dir():
        return "is a file, not an edgec package"
    if not ((path / MANIFEST).is_file() or not any(path.iterdir())):
        return f"is a folder but not an edgec package (no {MANIFEST})"
    if not os.access(path, os.W_OK | os.X_OK):
        return "is a package edgec has no permission to remove"
    return None


def _is_package_archive(path: Path) -> bool:
    """A gzip tar holding ROOT/edgec.json, as --archive writes. The manifest is its
    first file (_write_archive), so only the start is read; an older archive is read
    until the manifest shows up."""
    try:
        with tarfile.open(path, "r:gz") as tar:
            return any(m.isfile() and Path(m.name).parts[1:] == (MANIFEST,) for m in tar)
    except (tarfile.TarError, OSError, EOFError):
        return False


@contextmanager
def _locked(out: Path):
    """An exclusive lock on .OUT.lock next to the output, so a second build writing the
    same OUT is refused at once rather than colliding in the final rename. The file
    holds the owner's pid for that message and is removed on release; a killed owner's
    file is inert (the kernel drops its lock) and the next build takes and removes it.
    Without fcntl (Windows) the file's exclusive creation is the lock.
    """
    path = out.with_name(f".{out.name}.lock")
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | (0 if fcntl else os.O_EXCL), 0o644)
        except FileExistsError:
            raise _busy(out, path) from None
        if fcntl is None:
            break
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise _busy(out, path) from None
        with suppress(FileNotFoundError):
            if os.stat(path).st_ino == os.fstat(fd).st_ino:
                break
        os.close(fd)  # the last owner removed the file between our open and lock: again
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield
    finally:
        with suppress(FileNotFoundError):
            os.unlink(path)
        os.close(fd)


def _busy(out: Path, lock: Path) -> BadInput:
    pid = "unknown"
    for _ in range(20):  # the owner writes its pid just after taking the lock
        with suppress(OSError):
            pid = lock.read_text(encoding="utf-8").strip() or pid
        if pid != "unknown":
            break
        time.sleep(0.05)
    stale = "" if fcntl else f"; if none is running, delete {lock}"
    return BadInput(
        f"another edgec build is writing {out} (pid {pid}): wait for it or choose another -o{stale}"
    )


def _abandoned(pid: int, mine: bool) -> bool:
    if mine:
        return pid == os.getpid()
    return pid != os.getpid() and not _alive(pid)


def _alive(pid: int) -> bool:
    """Whether process `pid` exists. Where that cannot be asked safely (Windows, whose
    os.kill ends the process) every owner counts as alive, so nothing is removed."""
    if os.name == "nt" or pid <= 0:
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError: another user's live process
        return True
    return True


def _remove(entry: Path) -> None:
    if entry.is_dir() and not entry.is_symlink():
        shutil.rmtree(entry, ignore_errors=True)
    else:
        with suppress(OSError):
            entry.unlink()


def _leftover_prefix(out: Path, kind: str) -> str:
    return f".{out.name}.edgec-{kind}-{os.getpid()}-"


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
        staging = Path(tempfile.mkdtemp(prefix=_leftover_prefix(out, "stage"), dir=out.parent))
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
    tmp = out.with_name(_leftover_prefix(out, "tar") + secrets.token_hex(4))
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
    old = out.with_name(_leftover_prefix(out, "old") + secrets.token_hex(4))
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


@contextmanager
def opened(path: str | Path):
    """Yield the package directory; a .tar.gz is unpacked into a temporary one."""
    path = Path(path)
    if path.is_dir():
        yield path
        return
    if path.is_file() and path.name.endswith((".tar.gz", ".tgz")):
        with tempfile.TemporaryDirectory(prefix="edgec-pkg-") as tmp:
            try:
                with tarfile.open(path) as tar:
                    tar.extractall(tmp, filter="data")
            except (tarfile.TarError, OSError) as e:
                raise BadInput(f"{path} is not a readable package archive: {e}") from None
            entries = list(Path(tmp).iterdir())
            roots = [p for p in entries if (p / MANIFEST).is_file()]
            if not roots:
                raise BadInput(f"{path} holds no edgec package ({MANIFEST} missing)")
            if len(entries) > 1:  # which one would run is a guess: refuse to make it
                names = ", ".join(sorted(p.name for p in entries))
                raise BadInput(
                    f"{path} holds {len(entries)} entries at its top ({names}); an edgec "
                    "archive holds exactly one package folder: re-create it with --archive"
                )
            yield roots[0]
        return
    if path.exists():
        raise BadInput(
            f"{path} is not an edgec package: pass a folder written by `edgec build` (or its .tar.gz)"
        )
    raise BadInput(f"package {path} does not exist: pass a folder written by `edgec build`")
