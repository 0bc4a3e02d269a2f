"""The hooks a plugin may implement.

Following simonw/llm, a hook receives a `register` callback instead of returning
values, so one plugin can contribute any number of backends or targets.
"""

import pluggy

hookspec = pluggy.HookspecMarker("edgec")
hookimpl = pluggy.HookimplMarker("edgec")


@hookspec
def register_backends(register):
    """Call `register(backend)` for each `edgec.backends.Backend` this plugin provides."""


@hookspec
def register_targets(register):
    """Call `register(path)` for each TOML file of target profiles this plugin ships."""
