"""The progress interface the library reports to.

Library code (the build, verification, distillation) says what it is doing through
`step`, `track`, `info` and `note`; the CLI passes `RichUI`, and everything else gets
`SilentUI`, so the library never prints on its own.

`info` is a plain progress line (which candidate is being verified); `note` is a
warning the user should read (a candidate was skipped). They look different on the
terminal so that routine progress never reads as a problem.
"""

from __future__ import annotations

import contextlib
import time


class SilentUI:
    console = None  # a rich Console when the caller renders progress bars itself

    @contextlib.contextmanager
    def step(self, title: str):
        yield

    def track(self, items, description: str):
        return items

    def info(self, message: str) -> None:
        pass

    def note(self, message: str) -> None:
        pass


class RichUI(SilentUI):
    """Pipeline progress on the terminal: a line per step and bars for long loops.

    `quiet=True` (for `--json`, whose stdout is machine-read) behaves as `SilentUI`.
    rich is imported here, not at module level: library code imports this module for
    `SilentUI` and should not pay for rich.
    """

    def __init__(self, quiet: bool = False):
        if not quiet:
            from rich.console import Console

            self.console = Console(highlight=False)

    @contextlib.contextmanager
    def step(self, title: str):
        if self.console is None:
            yield
            return
        started = time.perf_counter()
        with self.console.status(f"{_escaped(title)}..."):
            yield
        self.console.print(
            f"[green]✓[/] {_escaped(title)} [dim]({time.perf_counter() - started:.1f} s)[/]"
        )

    def track(self, items, description: str):
        if self.console is None:
            return items
        from rich.progress import track

        return track(items, description=description, console=self.console, transient=True)

    def info(self, message: str) -> None:
        if self.console is not None:
            self.console.print(f"[dim]· {_escaped(message)}[/]")

    def note(self, message: str) -> None:
        if self.console is not None:
            self.console.print(f"[yellow]![/] {_escaped(message)}")


def _escaped(text: str) -> str:
    """Messages name paths and options such as `edgec[openvino]`: not style tags."""
    from rich.markup import escape

    return escape(str(text))
