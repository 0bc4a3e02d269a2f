"""Read and check a package's manifest `edgec.json`: its shape, its paths, the files
it lists against the files on disk, and the package digest users pin.

Reading is strict because the manifest is what the runtime trusts: it names the
files a backend loads and holds the preprocessing and labels every prediction
depends on. A manifest of the wrong shape, naming a path outside the package, or
listing too few files (an empty `files` would check nothing) is refused before any
file is opened (BadInput, exit 2). The files on disk must then be exactly the ones
listed, with their sizes and hashes (VerificationFailed, exit 1).

The digest covers the manifest, and so every file's hash, the verification status,
max_length and everything else: pinning it pins the whole package, as pip's
hash-checking mode pins a wheel. Fixing a hash in the manifest after editing a file
changes the digest.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path, PurePosixPath, PureWindowsPath

from edgec_runtime.errors import BadInput, VerificationFailed

MANIFEST = "edgec.json"
# 3: a `task` section (sequence-classification, token-classification or
# sentence-embedding, with what post-processing needs); 2 and 1 are classifiers.
# 2: the backend section records the full settings (device, model facts, options)
# a runner is built from; 1 recorded only the user's -O pairs and still loads.
SCHEMA_VERSION = 3
READABLE_SCHEMAS = (1, 2, 3)
# The runtime always reads the tokenizer from this file (edgec.runtime), so every
# package must list it.
TOKENIZER_FILE = "tokenizer.json"
DIGEST_PREFIX = "sha256:"

REBUILD = "rebuild the package with `edgec build`"
# What the runtime, `edgec inspect` and `edgec verify` read without a fallback; every
# schema (1, 2, 3) has them, so a manifest without one is broken, not old.
REQUIRED_SECTIONS = {
    "backend": dict,
    "preprocessing": dict,
    "labels": list,
    "source_model": dict,
    "target": dict,
    "io": dict,
    "verification": dict,
}
REQUIRED_FIELDS = (
    ("preprocessing", "max_length", int),
    ("preprocessing", "pad_token_id", int),
    ("preprocessing", "pad_token", str),
    ("preprocessing", "input_names", list),
    ("verification", "status", str),
)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_manifest(directory: Path) -> dict:
    """The manifest of the package in `directory`, checked for shape and paths
    (BadInput naming the problem); its files are checked by `integrity_problems`."""
    manifest_path = Path(directory) / MANIFEST
    if not manifest_path.is_file():
        raise BadInput(
            f"{directory} is not an edgec package ({MANIFEST} missing): pass the -o folder of `edgec build`"
        )
    try:
        manifest = json.loads(
            manifest_path.read_text(encoding="utf-8"), object_pairs_hook=_unique_keys
        )
    except (ValueError, UnicodeDecodeError) as e:
        raise BadInput(f"{manifest_path} is not valid JSON ({e}): rebuild the package") from None
    if not isinstance(manifest, dict):
        raise BadInput(
            f"{manifest_path} holds a JSON {type(manifest).__name__}, not an object: {REBUILD}"
        )
    if manifest.get("schema_version") not in READABLE_SCHEMAS:
        raise BadInput(
            f"{directory} has manifest schema {manifest.get('schema_version')}, this edgec reads "
            f"{SCHEMA_VERSION}: rebuild the package or upgrade edgec"
        )
    problem = shape_problem(manifest)
    if problem:
        raise BadInput(f"{manifest_path} is not a valid edgec manifest: {problem}; {REBUILD}")
    return manifest


def _unique_keys(pairs: list) -> dict:
    """A JSON object whose key appears twice means what each parser decides (Python
    keeps the last): refuse it, so the manifest checked is the one every reader sees."""
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            raise ValueError(f"the key {key!r} appears twice in one object")
        seen.add(key)
    return dict(pairs)


def shape_problem(manifest: dict) -> str | None:
    """What makes `manifest` unusable, or None: a missing or mistyped section, a file
    record that is not {sha256, size}, a path outside the package, or a file the
    runtime loads that `files` does not list (so its hash would go unchecked)."""
    for key, kind in REQUIRED_SECTIONS.items():
        if not isinstance(manifest.get(key), kind):
            return f"the {key!r} section is missing or not a JSON {_json_type(kind)}"
    if manifest.get("task") is not None and not isinstance(manifest["task"], dict):
        return "the 'task' section is not a JSON object"
    if not all(isinstance(label, str) for label in manifest["labels"]):
        return "'labels' is not a list of label names"
    for section, key, kind in REQUIRED_FIELDS:
        value = manifest[section].get(key)
        if not isinstance(value, kind) or isinstance(value, bool):
            return f"{section}.{key} is missing or not a {kind.__name__}"
    backend = manifest["backend"]
    if not isinstance(backend.get("name"), str):
        return "backend.name is missing or not a string"
    backend_files = backend.get("files")
    if not isinstance(backend_files, list) or not all(isinstance(f, str) for f in backend_files):
        return "backend.files is missing or not a list of file names"
    files = manifest.get("files")
    if not isinstance(files, dict):
        return "the 'files' section is missing or not a JSON object"
    if not files:
        return "'files' is empty, so no file's hash would be checked"
    for name, record in files.items():
        if (
            not isinstance(record, dict)
            or not isinstance(record.get("sha256"), str)
            or len(record["sha256"]) != 64
            or any(c not in "0123456789abcdef" for c in record["sha256"])
            or not isinstance(record.get("size"), int)
            or isinstance(record.get("size"), bool)
        ):
            return f"files[{name!r}] is not a record of sha256 (64 hex digits) and size (bytes)"
    for name in (*files, *backend_files):
        problem = path_problem(name)
        if problem:
            return problem
    for name in (*backend_files, TOKENIZER_FILE):
        if name not in files:
            return f"'files' does not list {name}, which the runtime loads, so its hash would go unchecked"
    return None


def _json_type(kind: type) -> str:
    return {dict: "object", list: "array"}[kind]


def path_problem(name: str) -> str | None:
    """Why a file name in the manifest does not name a file inside the package, or None."""
    if not name or PurePosixPath(name).is_absolute() or PureWindowsPath(name).anchor:
        return f"the path {name!r} is absolute: package files are named relative to the package"
    parts = PurePosixPath(name.replace("\\", "/")).parts
    if ".." in parts:
        return f"the path {name!r} leaves the package ('..')"
    if name in (".", MANIFEST):
        return f"the path {name!r} does not name a model or tokenizer file"
    return None


def integrity_problems(directory: Path, manifest: dict) -> list[str]:
    """The files on disk must be exactly those the manifest lists (the manifest itself
    aside), each a file inside the package with its recorded size and hash."""
    directory = Path(directory)
    root = directory.resolve()
    problems = []
    for name, record in manifest.get("files", {}).items():
        path = directory / name
        if not path.is_file():
            problems.append(f"{name} is missing")
        elif not path.resolve().is_relative_to(root):
            problems.append(f"{name} is a link to {path.resolve()}, outside the package")
        elif path.stat().st_size != record["size"]:
            problems.append(
                f"{name} has {path.stat().st_size} bytes, the manifest says {record['size']}"
            )
        elif sha256_of(path) != record["sha256"]:
            problems.append(f"{name} was modified (sha256 differs from the manifest)")
    listed = set(manifest.get("files", {})) | {MANIFEST}
    problems += [
        f"{name} is not listed in the manifest (remove it, or rebuild the package)"
        for name in unlisted(directory, listed)
    ]
    return problems


def unlisted(directory: Path, listed: set[str]) -> list[str]:
    """Files (and links) under `directory` whose package-relative names are not in
    `listed`; symlinked folders are reported, not followed."""
    found = []
    for folder, subdirs, names in os.walk(directory):
        relative = PurePosixPath(Path(folder).relative_to(directory))
        links = [d for d in subdirs if (Path(folder) / d).is_symlink()]
        subdirs[:] = [d for d in subdirs if d not in links]
        for name in (*names, *links):
            path = (relative / name).as_posix()
            if path not in listed:
                found.append(path)
    return sorted(found)


def check_integrity(directory: Path, manifest: dict) -> None:
    problems = integrity_problems(directory, manifest)
    if problems:
        raise VerificationFailed(
            f"package {directory} failed its integrity check: {'; '.join(problems)}. Rebuild it with `edgec build`"
        )


def package_digest(manifest: dict) -> str:
    """`sha256:<hex>` of the canonical manifest (sorted keys, no spaces, UTF-8): it holds
    every file's hash, so it names the whole package, and reformatting the JSON does
    not change it."""
    canonical = json.dumps(manifest, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return DIGEST_PREFIX + hashlib.sha256(canonical.encode()).hexdigest()


def check_digest(manifest: dict, expected: str | None, package) -> None:
    """Refuse a package that is not the one pinned (VerificationFailed, exit 1)."""
    problem = digest_problem(manifest, expected)
    if problem:
        raise VerificationFailed(f"{package}: {problem}")


def digest_problem(manifest: dict, expected: str | None) -> str | None:
    """Why the package does not match the pinned digest `expected`, or None (also when
    nothing is pinned). A malformed pin is BadInput: it could never match."""
    if expected is None:
        return None
    pinned = expected.strip().lower()
    hexpart = pinned.removeprefix(DIGEST_PREFIX)
    if len(hexpart) != 64 or any(c not in "0123456789abcdef" for c in hexpart):
        raise BadInput(
            f"--digest {expected!r} is not a package digest: pass sha256:<64 hex digits> "
            "as `edgec inspect` prints it"
        )
    actual = package_digest(manifest)
    if actual != DIGEST_PREFIX + hexpart:
        return (
            f"the package digest is {actual}, not the pinned {DIGEST_PREFIX + hexpart}: deploy "
            "the package you pinned, or pin this one after verifying it"
        )
    return None
