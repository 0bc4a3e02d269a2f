"""What the task tests share: holding a package's entities to transformers' pipeline."""

from __future__ import annotations

import pytest


def assert_same_entities(text: str, mine: list[dict], theirs: list[dict], strategy: str, tol):
    """edgec's entities for `text` equal the pipeline's: label, character span, the exact
    substring, and the score within `tol` (the pipeline names the label `entity` for
    strategy none, `entity_group` otherwise)."""
    key = "entity" if strategy == "none" else "entity_group"
    assert [(e["label"], e["start"], e["end"]) for e in mine] == [
        (e[key], e["start"], e["end"]) for e in theirs
    ], text
    for got, expected in zip(mine, theirs, strict=True):
        assert got["text"] == text[got["start"] : got["end"]]
        assert got["score"] == pytest.approx(float(expected["score"]), abs=tol)
