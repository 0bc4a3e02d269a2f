"""Length-sorted batching: with dynamic padding, grouping similar lengths means a
batch pads to its own longest text, not the longest in the whole set."""

from __future__ import annotations

from collections.abc import Iterator, Sequence


def length_sorted_batches(lengths: Sequence[int], batch_size: int) -> Iterator[list[int]]:
    """Yield lists of indices, longest texts first, `batch_size` at a time."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    for start in range(0, len(order), batch_size):
        yield order[start : start + batch_size]
