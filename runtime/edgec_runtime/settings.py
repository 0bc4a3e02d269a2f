"""What a runner is given, rebuilt from the manifest's record alone.

`BackendSettings` has three named parts, each from one source: `device` (the target's
device settings: device, threads, shape ranges), `model` (facts about the exported
model: geometry, max_length, pad id, task) and `options` (the backend's own options).
The compiler records it in the manifest (`record()`) and a device rebuilds it
(`from_record`), so a build verifies a package under exactly the settings a device
loads it with. Declaring and checking options is the compiler's job
(edgec.backends.settings); the runtime only reads them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field

from edgec_runtime.iospec import DEFAULT_SHAPES


@dataclass(frozen=True)
class DeviceSettings:
    device: str = "cpu"
    threads: int = 0  # 0: every core the process may use
    shapes: dict = field(default_factory=lambda: {k: list(v) for k, v in DEFAULT_SHAPES.items()})


@dataclass(frozen=True)
class ModelFacts:
    """Encoder geometry (for graph optimizers and quantizers that cannot infer it) and
    the preprocessing facts a runner pads with."""

    model_type: str | None = None
    num_heads: int | None = None
    hidden_size: int | None = None
    intermediate_size: int | None = None
    max_length: int | None = None
    pad_token_id: int = 0
    task: str = "sequence-classification"  # what the output is (edgec_runtime.iospec.TASKS)


@dataclass(frozen=True)
class BackendSettings:
    device: DeviceSettings = field(default_factory=DeviceSettings)
    model: ModelFacts = field(default_factory=ModelFacts)
    options: Mapping = field(default_factory=dict)

    def with_device(self, **changes) -> BackendSettings:
        return dataclasses.replace(self, device=dataclasses.replace(self.device, **changes))

    def with_options(self, **changes) -> BackendSettings:
        return dataclasses.replace(self, options={**self.options, **changes})

    def record(self) -> dict:
        return {
            "device": dataclasses.asdict(self.device),
            "model": dataclasses.asdict(self.model),
            "options": dict(self.options),
        }

    @classmethod
    def from_record(cls, record: Mapping) -> BackendSettings:
        def known(kind, values):
            names = {f.name for f in dataclasses.fields(kind)}
            return kind(**{k: v for k, v in (values or {}).items() if k in names})

        return cls(
            device=known(DeviceSettings, record.get("device")),
            model=known(ModelFacts, record.get("model")),
            options=dict(record.get("options") or {}),
        )

    @classmethod
    def from_legacy_manifest(cls, manifest: Mapping) -> BackendSettings:
        """Schema-1 packages recorded only the user's -O pairs: rebuild the rest from the
        target and preprocessing sections, as those builds did."""
        target = manifest.get("target") or {}
        pre = manifest.get("preprocessing") or {}
        extras = {**(target.get("options") or {}), **(manifest["backend"].get("options") or {})}
        return cls(
            device=DeviceSettings(
                device=target.get("device", "cpu"),
                threads=int(target.get("threads", 0) or 0),
                shapes=target.get("shapes") or DeviceSettings().shapes,
            ),
            model=ModelFacts(
                max_length=pre.get("max_length"), pad_token_id=pre.get("pad_token_id") or 0
            ),
            options=extras,
        )
