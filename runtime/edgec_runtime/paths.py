"""Where edgec keeps what it may reuse: `$EDGEC_CACHE`, default `~/.cache/edgec`."""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    return Path(os.environ.get("EDGEC_CACHE") or Path.home() / ".cache" / "edgec").expanduser()


def cache_dir(*parts: str) -> Path:
    """A folder under the cache root, created on first use."""
    path = cache_root().joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path
