"""Graphs derived from a source graph by a deterministic step, made once per process.

int8-auto compiles dozens of trials of one exported graph, and each int8 trial begins
with the same preparation: ONNX Runtime's quantization pre-processing for static int8,
the transformer fusion for dynamic int8 (seconds each on MiniLM, most of a trial). A
derived graph is kept in a temporary folder for the life of the process, keyed by the
source file's identity (path, size, modification time) and the step's name and
arguments, so only the first trial pays for it.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

_FOLDER: tempfile.TemporaryDirectory | None = None
_MADE: dict[tuple, tuple[Path, object]] = {}


def _folder() -> Path:
    global _FOLDER
    if _FOLDER is None:
        _FOLDER = tempfile.TemporaryDirectory(prefix="edgec-derived-")  # removed at exit
    return Path(_FOLDER.name)


def derived(src: Path, step: str, make: Callable[[Path, Path], object], **args):
    """(path, what `make` returned) of `make(src, path)`, run once per source and args;
    `make` writes the derived graph to the path it is given."""
    stat = Path(src).stat()
    key = (
        str(Path(src).resolve()),
        stat.st_size,
        stat.st_mtime_ns,
        step,
        json.dumps(args, sort_keys=True),
    )
    if key not in _MADE or not _MADE[key][0].is_file():
        path = _folder() / f"{len(_MADE):04d}-{step}.onnx"
        _MADE[key] = (path, make(Path(src), path))
    return _MADE[key]


def samples_digest(batches: list[dict]) -> str:
    """sha256 of tokenized batches: the part of a step's arguments that is data."""
    digest = hashlib.sha256()
    for batch in batches:
        for name in sorted(batch):
            digest.update(name.encode() + np.ascontiguousarray(batch[name]).tobytes())
            digest.update(str(np.shape(batch[name])).encode())
    return digest.hexdigest()


_DIGESTS: dict[tuple, str] = {}


def file_digest(path: Path) -> str:
    """sha256 of a file, remembered by its identity: trials hash the same graph often."""
    stat = Path(path).stat()
    key = (str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _DIGESTS:
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
        _DIGESTS[key] = digest.hexdigest()
    return _DIGESTS[key]
