"""Write, read and check packages: a directory (optionally also a .tar.gz) holding the
model files, the tokenizer and the manifest `edgec.json`.

A package is staged in a temporary sibling directory and renamed into place, so an
interrupted or failed build never leaves a half-written package behind.
"""

from __future__ import annotations

import json
import shutil
import tarfile
import tempfile
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from edgec import __version__
from edgec.errors import BadInput, VerificationFailed
from edgec.model import sha256_of

MANIFEST = "edgec.json"
# 3: a `task` section (sequence-classification, token-classification or
# sentence-embedding, with what post-processing needs); 2 and 1 are classifiers.
# 2: the backend section records the full settings (device, model facts, options)
# a runner is built from; 1 recorded only the user's -O pairs and still loads.
SCHEMA_VERSION = 3
READABLE_SCHEMAS = (1, 2, 3)


def file_records(directory: Path, names: list[str]) -> dict[str, dict]:
    return {
        n: {"sha256": sha256_of(directory / n), "size": (directory / n).stat().st_size}
        for n in names
    }


def check_output(out: Path, force: bool) -> None:
    """Refuse early, before minutes of compiling, if the output is in the way."""
    for path in (out, archive_path(out)):
        if path.exists() and not force:
            raise BadInput(
                f"{path} already exists: choose another -o or pass --force to replace it"
            )
    if not out.parent.exists():
        raise BadInput(f"the folder {out.parent} does not exist: create it first")


def archive_path(out: Path) -> Path:
    return out.with_name(out.name + ".tar.gz")


def write_package(
    out: Path, files: dict[str, Path], manifest: dict, *, force=False, archive=False
) -> Path:
    """Copy `files` (package name -> source path) and the manifest into `out`, atomically."""
    out = Path(out)
    check_output(out, force)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
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
        if archive:
            _write_archive(staging, archive_path(out), force)
        _replace(staging, out, force)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out


def _write_archive(staging: Path, target: Path, force: bool) -> None:
    tmp = target.with_name(f".{target.name}.tmp")
    with tarfile.open(tmp, "w:gz") as tar:
        tar.add(staging, arcname=target.name.removesuffix(".tar.gz"))
    if target.exists() and force:
        target.unlink()
    tmp.rename(target)


def _replace(staging: Path, out: Path, force: bool) -> None:
    if out.exists():
        if not force:
            raise BadInput(f"{out} already exists: choose another -o or pass --force to replace it")
        old = out.with_name(f".{out.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        out.rename(old)
        staging.rename(out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        staging.rename(out)


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
            roots = [p for p in Path(tmp).iterdir() if (p / MANIFEST).is_file()]
            if not roots:
                raise BadInput(f"{path} holds no edgec package ({MANIFEST} missing)")
            yield roots[0]
        return
    raise BadInput(f"package {path} does not exist: pass a folder written by `edgec build`")


def read_manifest(directory: Path) -> dict:
    manifest_path = Path(directory) / MANIFEST
    if not manifest_path.is_file():
        raise BadInput(
            f"{directory} is not an edgec package ({MANIFEST} missing): pass the -o folder of `edgec build`"
        )
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except ValueError as e:
        raise BadInput(f"{manifest_path} is not valid JSON ({e}): rebuild the package") from None
    if manifest.get("schema_version") not in READABLE_SCHEMAS:
        raise BadInput(
            f"{directory} has manifest schema {manifest.get('schema_version')}, this edgec reads "
            f"{SCHEMA_VERSION}: rebuild the package or upgrade edgec"
        )
    return manifest


def integrity_problems(directory: Path, manifest: dict) -> list[str]:
    """Every file the manifest lists must be present with its recorded size and hash."""
    problems = []
    for name, record in manifest.get("files", {}).items():
        path = Path(directory) / name
        if not path.is_file():
            problems.append(f"{name} is missing")
        elif path.stat().st_size != record["size"]:
            problems.append(
                f"{name} has {path.stat().st_size} bytes, the manifest says {record['size']}"
            )
        elif sha256_of(path) != record["sha256"]:
            problems.append(f"{name} was modified (sha256 differs from the manifest)")
    return problems


def check_integrity(directory: Path, manifest: dict) -> None:
    problems = integrity_problems(directory, manifest)
    if problems:
        raise VerificationFailed(
            f"package {directory} failed its integrity check: {'; '.join(problems)}. Rebuild it with `edgec build`"
        )
