"""Opening a package: a folder as it is, a .tar.gz unpacked into a temporary folder
that lives as long as the `with` block (a predictor keeps it open while loaded)."""

from __future__ import annotations

import tarfile
import tempfile
from contextlib import contextmanager
from pathlib import Path

from edgec_runtime.errors import BadInput
from edgec_runtime.manifest import MANIFEST


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
