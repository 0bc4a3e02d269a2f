"""Plugin manager: every backend, built-in or third-party, arrives through the
setuptools entry-point group `edgec`.

Entry-point modules must be cheap to import; they describe backends as data and
import their heavy runtime only inside `compile`/`load`.
"""

from __future__ import annotations

from functools import cache

import pluggy

from edgec.plugins import hookspecs
from edgec.plugins.hookspecs import hookimpl

__all__ = ["hookimpl", "plugin_manager", "backends", "get_backend", "target_files"]

ENTRY_POINT_GROUP = "edgec"


BROKEN: dict[str, str] = {}
"""Entry points that failed to import, by name, with the one-line reason."""


@cache
def plugin_manager() -> pluggy.PluginManager:
    """Load every entry point in the group; a broken plugin is reported, not fatal."""
    from edgec_runtime.runners import register_entry_points

    pm = pluggy.PluginManager("edgec")
    pm.add_hookspecs(hookspecs)
    register_entry_points(pm, ENTRY_POINT_GROUP, BROKEN)
    return pm


def backends() -> dict:
    """All registered backends, sorted by name (pluggy calls hooks last-registered first)."""
    found: dict = {}

    def register(backend):
        if backend.name in found:  # keep the first; say so where `edgec backends` shows it
            BROKEN[f"{backend.name} (again)"] = (
                f"a second plugin registers a backend named {backend.name!r}; it is ignored: "
                "uninstall one of the two"
            )
            return
        found[backend.name] = backend

    plugin_manager().hook.register_backends(register=register)
    return dict(sorted(found.items()))


def get_backend(name: str):
    from edgec_runtime.errors import BadInput

    known = backends()
    if name not in known:
        raise BadInput(
            f"unknown backend {name!r}: choose one of {', '.join(sorted(known))} "
            "(`edgec backends` lists them), or install the plugin that provides it"
        )
    return known[name]


def target_files() -> list:
    paths: list = []
    plugin_manager().hook.register_targets(register=paths.append)
    return paths
