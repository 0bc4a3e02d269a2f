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

from edgec.gates import resolve_gates
from edgec.machine import host_isa
from edgec_runtime.errors import BadInput


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
    # the precision built instead when `precision` fails only parity gates (int8-auto)
    fallback: str = ""

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
            "fallback": self.fallback,
            "description": self.description,
            "origin": self.origin,
            "reason": self.reason,
        }


KNOWN_KEYS = {
    "backend",
    "precision",
    "fallback",
    "device",
    "threads",
    "description",
    "shapes",
    "verify",
}
TEXT_KEYS = ("backend", "precision", "fallback", "device", "description")
SHAPE_AXES = ("batch", "sequence")
# A profile's batch range is a promise the engine is built for: past this, no edge
# device has the memory (and `edgec bench --batch` stops at the same size).
MAX_BATCH = 4096


def _close_match(word: str, choices) -> str:
    import difflib

    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _is_number(value) -> bool:
    import math

    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _check_keys(name: str, raw: dict, where: str) -> None:
    """Every key is a profile field or some installed backend's option: a typo such as
    `thread` would otherwise become a backend option no backend reads."""
    from edgec.plugins import backends

    options = {}
    for backend in backends().values():
        for option in backend.options:
            options.setdefault(option.name, (backend, option))
    for key, value in raw.items():
        if key in KNOWN_KEYS:
            continue
        if key not in options:
            fields = ", ".join((*TEXT_KEYS, "threads", "shapes", "verify"))
            raise BadInput(
                f"{where}: unknown key {key!r}{_close_match(key, [*KNOWN_KEYS, *options])}; "
                f"the keys are {fields}, or a backend option ({', '.join(sorted(options))})"
            )
        backend, option = options[key]
        try:
            option.parse(value, backend.name)
        except BadInput as e:
            raise BadInput(f"{where}: {e}") from None


def _check_shapes(shapes, where: str) -> None:
    example = "shapes = { batch = [1, 1, 32], sequence = [1, 128, 512] }"
    if not isinstance(shapes, dict):
        raise BadInput(f"{where}: shapes = {shapes!r} is not a table; write {example}")
    for axis, bounds in shapes.items():
        if axis not in SHAPE_AXES:
            raise BadInput(
                f"{where}: shapes has no axis {axis!r}{_close_match(axis, SHAPE_AXES)}; "
                f"the axes are {', '.join(SHAPE_AXES)}: {example}"
            )
        ok = (
            isinstance(bounds, list)
            and len(bounds) == 3
            and all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in bounds)
            and bounds == sorted(bounds)
        )
        if not ok:
            raise BadInput(
                f"{where}: shapes.{axis} = {bounds!r} is not [min, opt, max], three positive "
                f"integers with min <= opt <= max; write {example}"
            )
        if axis == "batch" and bounds[2] > MAX_BATCH:
            raise BadInput(f"{where}: shapes.batch max {bounds[2]} is over {MAX_BATCH}: lower it")


def _check_verify(verify, where: str) -> None:
    from edgec.gates import GATE_NAMES

    example = "verify = { min_agreement = 0.94 }"
    if not isinstance(verify, dict):
        raise BadInput(f"{where}: verify = {verify!r} is not a table of gates; write {example}")
    for gate, value in verify.items():
        if gate not in GATE_NAMES:
            raise BadInput(
                f"{where}: verify.{gate} is not a gate{_close_match(gate, GATE_NAMES)}; "
                f"the gates are {', '.join(GATE_NAMES)}"
            )
        if not _is_number(value):
            raise BadInput(f"{where}: verify.{gate} = {value!r} is not a number; e.g. {example}")


def _check_profile(name: str, raw, origin: str) -> None:
    """The whole profile, before any command uses it: a wrong key or type is exit 2
    naming the file, the target and the key."""
    where = f"target {name!r} in {origin}"
    if not isinstance(raw, dict):
        raise BadInput(
            f"{origin}: top-level key {name!r} = {raw!r} is not a target; a target is a table: "
            f'[{name}] then backend = "onnxruntime", precision = "int8", ...'
        )
    for key in ("backend", "precision"):
        if key not in raw:
            raise BadInput(f"{where} has no {key!r}: add it")
    _check_keys(name, raw, where)
    for key in TEXT_KEYS:
        if key in raw and not isinstance(raw[key], str):
            raise BadInput(f"{where}: {key} = {raw[key]!r} is not text: quote it")
    threads = raw.get("threads", 0)
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 0:
        raise BadInput(
            f"{where}: threads = {threads!r}: give a whole number of threads, 0 for every core"
        )
    if "shapes" in raw:
        _check_shapes(raw["shapes"], where)
    if "verify" in raw:
        _check_verify(raw["verify"], where)


def _parse(name: str, raw: dict, origin: str) -> Target:
    _check_profile(name, raw, origin)
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
    from_env = [Path(p) for p in os.environ.get("EDGEC_TARGETS", "").split(os.pathsep) if p]
    sources = [(f, "$EDGEC_TARGETS") for f in from_env] + [(Path(p), "--targets") for p in extra]
    for f, source in sources:
        if f.is_dir():
            raise BadInput(f"{source} {f} is a folder: point it at a TOML file of target profiles")
        if not f.is_file():
            raise BadInput(f"targets file {f} ({source}) does not exist")
    return [f for f, _ in sources]


def _read_file(path: Path) -> str:
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise BadInput(f"{path} line {line} is not valid UTF-8: re-save it as UTF-8") from None


def load_targets(extra_files: list[str | Path] = ()) -> dict[str, Target]:
    from edgec.plugins import target_files

    text = resources.files("edgec").joinpath("targets.toml").read_text(encoding="utf-8")
    targets = _read_toml(text, "edgec/targets.toml")
    for path in [*map(Path, target_files()), *_user_files(list(extra_files))]:
        targets.update(_read_toml(_read_file(path), str(path)))
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
            "host", "onnxruntime", "int8", "cpu", 0, "this machine", shapes, reason=reason,
            fallback="int8-auto",
        )  # fmt: skip
    if (isa["vnni"] or isa["amx"]) and openvino_installed:
        kind = "AMX" if isa["amx"] else "VNNI"
        bf16 = bool(isa.get("bf16"))  # measured: bf16 1.8x fp32 at b1, -0.12 pts (NOTES.md)
        return Target(
            "host",
            "openvino",
            "int8",
            "CPU",
            0,
            "this machine",
            shapes,
            options={"performance_hint": "LATENCY"},
            reason=f"{kind} present: OpenVINO int8 uses int8 dot-product instructions"
            + ("; bf16 compute if int8 fails its parity gates" if bf16 else ""),
            fallback="bf16" if bf16 else "",
        )
    reason = (
        "no VNNI/AMX: OpenVINO int8 is no faster than fp32 here, "
        "so ONNX Runtime dynamic int8 is chosen"
    )
    if not isa["avx2"]:
        reason = "no AVX2: ONNX Runtime int8 still helps, but expect modest speedups"
    return Target(
        "host", "onnxruntime", "int8", "cpu", 0, "this machine", shapes, reason=reason,
        fallback="int8-auto",
    )  # fmt: skip
