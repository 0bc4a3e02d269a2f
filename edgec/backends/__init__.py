"""The backend contract.

A backend describes itself as data (name, precisions, devices, what it needs) so
that listing backends never imports a heavy runtime. It does three things:

- `available(device)`: None when it can run here, else one line a user can act on;
- `compile(onnx_path, precision, calibration, settings, workdir)`: writes the files
  that go into the package and returns them with metadata for the manifest;
- `load(package_dir, compiled, settings)`: a runner whose `run(inputs)` maps numpy
  inputs by name to numpy logits.

`settings` is a `BackendSettings` (edgec.backends.settings): the target's device
settings, the model's facts and the backend's own options, which each backend
declares as data in `options`. `calibrated` names the precisions that need
calibration texts, so a build can refuse before any work.

Compiling can need less than running: an OpenVINO IR for an NPU, or a TensorRT graph
whose engine is built on the Jetson, can be made on any machine. `compile_problem`
says what stops a build here, and `check_runner` is how such a package is verified on
a machine without its device (OpenVINO's CPU plugin, ONNX Runtime on the graph).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
from dataclasses import dataclass, field
from pathlib import Path

from edgec.backends.settings import Option
from edgec_runtime.runners import Runner
from edgec_runtime.settings import BackendSettings

AUTO_INT8 = "int8-auto"  # made by the sensitivity search from the `searched` precisions


@dataclass
class Compiled:
    """What `compile` produced: package files (relative to workdir) and manifest facts."""

    files: list[str]
    metadata: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Backend:
    """Base for backends; subclasses implement `compile` and `load`.

    `requires` names the importable modules the backend needs and `extra` the pip
    extra that installs them, so the default `available` can say exactly what to do.
    """

    name: str
    precisions: tuple[str, ...]
    devices: tuple[str, ...]
    requires: tuple[str, ...] = ()
    extra: str | None = None
    description: str = ""
    options: tuple[Option, ...] = ()
    calibrated: tuple[str, ...] = ()  # precisions that need calibration texts
    # the int8 precisions whose compile honours -O keep_float and -O calibration, which
    # precision "int8-auto" searches over (edgec.int8_search)
    searched: tuple[str, ...] = ()

    def needs_calibration(self, precision: str) -> bool:
        return precision in self.calibrated or (precision == AUTO_INT8 and bool(self.searched))

    def missing_modules(self) -> list[str]:
        return [m for m in self.requires if importlib.util.find_spec(m) is None]

    def available(self, device: str | None = None) -> str | None:
        missing = self.missing_modules()
        if missing:
            fix = (
                f"pip install 'edgec[{self.extra}]'"
                if self.extra
                else f"pip install {' '.join(missing)}"
            )
            return f"{', '.join(missing)} is not installed: {fix}"
        if device is not None and not self.serves(device):
            return f"device {device!r} is not served by {self.name} (it serves {', '.join(self.devices)})"
        return None

    def serves(self, device: str) -> bool:
        """Device names are case-insensitive: targets say "cpu" or "CPU" alike."""
        return device.lower() in (d.lower() for d in self.devices)

    def compile_problem(self, device: str | None, settings: BackendSettings) -> str | None:
        """Why this machine cannot make a package for `device`, or None; by default,
        whatever stops it from running one."""
        return self.available(device)

    def check_runner(self, package_dir: Path, compiled: dict, settings: BackendSettings):
        """(runner, None) on the target's device; backends that can compile for absent
        devices return a runner on this machine and a line saying what it checks."""
        return self.load(package_dir, compiled, settings), None

    def version(self) -> str | None:
        for module in self.requires[:1]:
            try:
                return importlib.metadata.version(module)
            except importlib.metadata.PackageNotFoundError:
                return None
        return None

    def compile(
        self,
        onnx_path: Path,
        precision: str,
        calibration,
        settings: BackendSettings,
        workdir: Path,
    ) -> Compiled:
        raise NotImplementedError

    def load(self, package_dir: Path, compiled: dict, settings: BackendSettings) -> Runner:
        """The runtime's runner of this backend's packages (edgec_runtime.runners): a
        build checks a package with the very code a device loads it with."""
        from edgec_runtime.runners import get_runner

        return get_runner(self.name).load(package_dir, compiled, settings)
