"""Target device profiles (data, not code) and detection of this host's CPU.

`host` is not in the TOML: it is derived from the ISA flags of the machine edgec
runs on, because the right int8 path depends on them (without VNNI, OpenVINO int8
is no faster than fp32, while ONNX Runtime's dynamic int8 still is).
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from edgec.errors import BadInput
from edgec.gates import resolve_gates
from edgec.machine import host_isa


@dataclass
class Target:
    name: str
    backend: str
    precision: str
    device: str = "cpu"
    threads: int = 0
    description: str = ""
    shapes: dict = field(default_factory=lambda: {"batch": [1, 1, 32], "sequence": [1, 128, 512]})
    verify: dict = field(default_factory=resolve_gates)
    options: dict = field(default_factory=dict)
    origin: str = "edgec"
    reason: str = ""

    def describe(self) -> dict:
        return {
            "name": self.name,
            "backend": self.backend,
            "precision": self.precision,
            "device": self.device,
            "threads": self.threads,
            "shapes": self.shapes,
            "verify": self.verify,
            "options": self.options,
            "description": self.description,
            "origin": self.origin,
            "reason": self.reason,
        }


KNOWN_KEYS = {"backend", "precision", "device", "threads", "description", "shapes", "verify"}


def _parse(name: str, raw: dict, origin: str) -> Target:
    for key in ("backend", "precision"):
        if key not in raw:
            raise BadInput(f"target {name!r} in {origin} has no {key!r}: add it")
    verify = resolve_gates(raw.get("verify"))
    options = {k: v for k, v in raw.items() if k not in KNOWN_KEYS}
    fields = {k: raw[k] for k in KNOWN_KEYS - {"verify"} if k in raw}
    return Target(name=name, verify=verify, options=options, origin=origin, **fields)


def _read_toml(text: str, origin: str) -> dict[str, Target]:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise BadInput(f"{origin} is not valid TOML: {e}") from None
    return {name: _parse(name, raw, origin) for name, raw in data.items()}


def _user_files(extra: list[str | Path]) -> list[Path]:
    files = [Path(p) for p in os.environ.get("EDGEC_TARGETS", "").split(os.pathsep) if p]
    files += [Path(p) for p in extra]
    for f in files:
        if not f.is_file():
            raise BadInput(f"targets file {f} does not exist")
    return files


def load_targets(extra_files: list[str | Path] = ()) -> dict[str, Target]:
    from edgec.plugins import target_files

    text = resources.files("edgec").joinpath("targets.toml").read_text(encoding="utf-8")
    targets = _read_toml(text, "edgec/targets.toml")
    for path in [*map(Path, target_files()), *_user_files(list(extra_files))]:
        targets.update(_read_toml(path.read_text(encoding="utf-8"), str(path)))
    targets["host"] = host_target()
    return targets


def get_target(name: str, extra_files: list[str | Path] = ()) -> Target:
    targets = load_targets(extra_files)
    if name not in targets:
        raise BadInput(
            f"unknown target {name!r}: choose one of {', '.join(targets)} (`edgec targets` describes them)"
        )
    return targets[name]


def host_target(isa: dict | None = None, openvino_installed: bool | None = None) -> Target:
    """Pick backend and precision for this machine from its ISA."""
    import importlib.util

    isa = isa or host_isa()
    if openvino_installed is None:
        openvino_installed = importlib.util.find_spec("openvino") is not None
    shapes = {"batch": [1, 1, 32], "sequence": [1, 128, 512]}
    if isa["machine"] in ("aarch64", "arm64"):
        reason = "arm64" + (
            " with dotprod: int8 dot products" if isa["dotprod"] else " without dotprod"
        )
        return Target(
            "host", "onnxruntime", "int8", "cpu", 0, "this machine", shapes, reason=reason
        )
    if (isa["vnni"] or isa["amx"]) and openvino_installed:
        kind = "AMX" if isa["amx"] else "VNNI"
        return Target(
            "host",
            "openvino",
            "int8",
            "CPU",
            0,
            "this machine",
            shapes,
            options={"performance_hint": "LATENCY"},
            reason=f"{kind} present: OpenVINO int8 uses int8 dot-product instructions",
        )
    reason = (
        "no VNNI/AMX: OpenVINO int8 is no faster than fp32 here, "
        "so ONNX Runtime dynamic int8 is chosen"
    )
    if not isa["avx2"]:
        reason = "no AVX2: ONNX Runtime int8 still helps, but expect modest speedups"
    return Target("host", "onnxruntime", "int8", "cpu", 0, "this machine", shapes, reason=reason)
