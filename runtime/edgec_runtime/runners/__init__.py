"""Runners: what turns a package's compiled files into `run(inputs) -> output`.

One runner per backend name, found through the entry-point group `edgec_runtime`
(pluggy hooks taking a `register` callback, as the compiler finds its backends). The
built-in runners are ordinary plugins of that group, so a third-party backend makes
its packages loadable on a device exactly the way ONNX Runtime and OpenVINO do: an
entry point whose module implements `register_runners(register)`.

A runner module must be cheap to import: it declares what it needs as data and
imports its inference engine inside `load`.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Protocol

import numpy as np
import pluggy

ENTRY_POINT_GROUP = "edgec_runtime"
hookspec = pluggy.HookspecMarker(ENTRY_POINT_GROUP)
hookimpl = pluggy.HookimplMarker(ENTRY_POINT_GROUP)


class Runner(Protocol):
    input_names: list[str]

    def run(self, inputs: dict[str, np.ndarray]) -> np.ndarray: ...


@dataclass(frozen=True)
class RunnerPlugin:
    """A backend as the device sees it. `requires`: the modules `load` imports; `extra`:
    the edgec-runtime extra that installs them; `device_problem(device)`: what else stops
    it here (no such GPU or NPU), or None."""

    name: str
    load: Callable  # (package_dir: Path, compiled: dict, settings: BackendSettings) -> Runner
    requires: tuple[str, ...] = ()
    extra: str | None = None
    device_problem: Callable[[str], str | None] | None = None

    def missing_modules(self) -> list[str]:
        return [m for m in self.requires if importlib.util.find_spec(m) is None]

    def available(self, device: str | None = None) -> str | None:
        missing = self.missing_modules()
        if missing:
            fix = f"pip install 'edgec-runtime[{self.extra}]'" if self.extra else "pip install"
            return f"{', '.join(missing)} is not installed: {fix}"
        if device is not None and self.device_problem is not None:
            return self.device_problem(device)
        return None


class _Hooks:
    @hookspec
    def register_runners(self, register):
        """Call `register(RunnerPlugin(...))` for each backend this plugin runs."""


BROKEN: dict[str, str] = {}
"""Entry points that failed to import, by name, with the one-line reason."""


def register_entry_points(pm: pluggy.PluginManager, group: str, broken: dict) -> None:
    """Register every module of the entry-point group `group`; one that fails to import
    is recorded in `broken` with a one-line reason, not raised: a third-party plugin's
    bug must not break the others. (The compiler loads its backends this way too.)"""
    from importlib.metadata import entry_points

    for ep in entry_points(group=group):
        if pm.get_plugin(ep.name) is not None:
            continue
        try:
            pm.register(ep.load(), name=ep.name)
        except Exception as e:
            broken[ep.name] = f"{ep.value} failed to import: {type(e).__name__}: {e}"


@cache
def plugin_manager() -> pluggy.PluginManager:
    pm = pluggy.PluginManager(ENTRY_POINT_GROUP)
    pm.add_hookspecs(_Hooks)
    register_entry_points(pm, ENTRY_POINT_GROUP, BROKEN)
    return pm


def runners() -> dict[str, RunnerPlugin]:
    """Every registered runner by backend name; the first registered of a name wins."""
    found: dict[str, RunnerPlugin] = {}

    def register(plugin: RunnerPlugin) -> None:
        found.setdefault(plugin.name, plugin)

    plugin_manager().hook.register_runners(register=register)
    return dict(sorted(found.items()))


def get_runner(name: str) -> RunnerPlugin:
    from edgec_runtime.errors import BackendUnavailable

    known = runners()
    if name not in known:
        broken = f" ({BROKEN[name]})" if name in BROKEN else ""
        raise BackendUnavailable(
            f"no runner for {name!r} packages is installed{broken}: install the plugin that "
            f"provides it (installed: {', '.join(known) or 'none'})"
        )
    return known[name]


def package_file(package_dir: Path, compiled: dict, index: int = 0) -> Path:
    return Path(package_dir) / compiled["files"][index]
