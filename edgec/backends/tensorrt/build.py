"""The recipe of a TensorRT engine: everything that decides it besides the graph and the
machine, shipped in the package so a Jetson rebuilds exactly this engine from it.
Building the engine itself is the runtime's (edgec_runtime.runners.tensorrt.engine):
a build_on_device package is built where it runs."""

from __future__ import annotations

from edgec_runtime.errors import BadInput
from edgec_runtime.iospec import BATCH, SEQUENCE, clamp_shapes
from edgec_runtime.runners.tensorrt.engine import RECIPE_VERSION
from edgec_runtime.settings import BackendSettings

DEFAULT_WORKSPACE_MB = 1024


def make_recipe(precision: str, settings: BackendSettings) -> dict:
    """The engine's recipe. The sequence range stops at the model's max_length: position
    embeddings end there, and a profile past them would fail to build."""
    shapes = clamp_shapes(settings.device.shapes, settings.model.max_length)
    for axis in (BATCH, SEQUENCE):
        lo, opt, hi = shapes[axis]
        if not 1 <= lo <= opt <= hi:
            raise BadInput(
                f"target shapes: {axis} must be [min, opt, max] with 1 <= min <= opt <= max, got {shapes[axis]}"
            )
    return {
        "recipe_version": RECIPE_VERSION,
        "precision": precision,
        "shapes": shapes,
        "workspace_mb": settings.options["workspace_mb"],
    }
