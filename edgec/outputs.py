"""Where a build may write its package, decided before any work.

An output must not be, hold or lie inside the model or its data; `--force` may only
replace what edgec wrote; one build at a time writes an output (a lock next to it);
and what a killed build left behind carries its pid, so the next build removes it
once that process is gone. edgec.package writes into what this module claimed.
"""

from __future__ import annotations

import os
import re
import shutil
import tarfile
import tempfile
import time
from contextlib import contextmanager, suppress
from pathlib import Path

from edgec_runtime.errors import BadInput
from edgec_runtime.manifest import MANIFEST

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


def leftover_prefix(out: Path, kind: str) -> str:
    return f".{out.name}.edgec-{kind}-{os.getpid()}-"
