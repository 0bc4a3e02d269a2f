"""The progress interface the library reports to.

Library code (the build, verification, distillation) says what it is doing through
`step`, `track` and `note`; the CLI passes a rich implementation, and everything else
gets this silent one, so the library never prints on its own.
"""

from __future__ import annotations

import contextlib


class SilentUI:
    console = None  # a rich Console when the caller renders progress bars itself

    @contextlib.contextmanager
    def step(self, title: str):
        yield

    def track(self, items, description: str):
        return items

    def note(self, message: str) -> None:
        pass
