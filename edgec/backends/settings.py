"""What a build hands a backend, as one typed object, and how `-O` is checked.

A backend declares its options as data (`Option`: name, type, default, one line of
help), the way Olive's passes declare their config, so `-O KEY=VALUE` is validated
before any work and `edgec backends --options NAME` can list them.

What a backend is handed is a `BackendSettings` (edgec_runtime.settings: device,
model facts, options), the record the manifest keeps and a device loads with; this
module fills its `options`: defaults < target profile < `-O`, each checked.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass

from edgec.backends.qdq import CALIBRATION_METHODS, DEFAULT_CALIBRATION
from edgec.backends.smooth import SMOOTHED_ROLES
from edgec.gates import resolve_gates
from edgec_runtime.errors import BadInput
from edgec_runtime.settings import BackendSettings

TYPES = {
    bool: "true or false",
    int: "an integer",
    float: "a number",
    str: "text",
    list: "a JSON list",
    dict: "a JSON object",
}


@dataclass(frozen=True)
class Option:
    """One backend option. `gate`: when unset, the build fills it from its verification
    gate of that name (OpenVINO's accuracy control may lose what the build allows).
    `minimum`: the smallest value a number may take (a negative bucket or workspace
    would build, then fail or misbehave on the device)."""

    name: str
    type: type
    default: object
    help: str
    choices: tuple = ()
    gate: str | None = None
    minimum: float | None = None

    def parse(self, raw, backend: str):
        """A `-O` string (or a TOML value) as this option's type; BadInput if it is not."""
        value = raw
        if isinstance(raw, str) and self.type is not str:
            try:
                value = json.loads(raw)
            except ValueError:
                value = raw
        ok = (
            (
                self.type is float
                and isinstance(value, int | float)
                and not isinstance(value, bool)
                and math.isfinite(value)  # NaN would pass every comparison a gate makes
            )
            or (self.type is int and isinstance(value, int) and not isinstance(value, bool))
            or (self.type not in (int, float) and isinstance(value, self.type))
            or (value is None and self.default is None)
        )
        if not ok:
            raise BadInput(
                f"{backend} option {self.name}={raw!r}: give {TYPES[self.type]} ({self.help})"
            )
        if self.type is float and value is not None:
            value = float(value)
        if self.minimum is not None and value is not None and value < self.minimum:
            raise BadInput(
                f"{backend} option {self.name}={raw!r}: give {self.minimum:g} or more ({self.help})"
            )
        if self.choices and value not in self.choices:
            raise BadInput(
                f"{backend} option {self.name}={raw!r}: choose one of "
                f"{', '.join(map(str, self.choices))}"
            )
        return value

    def describe(self) -> dict:
        return {
            "name": self.name,
            "type": TYPES[self.type],
            "default": self.default,
            "help": self.help,
            "choices": list(self.choices),
            **({"gate": self.gate} if self.gate else {}),
        }


TOKENIZER_OPTION = Option(
    "tokenizer",
    str,
    "python",
    "graph: the tokenizer inside the model, which then takes raw texts (no Python "
    "tokenizer on the device); kept only if it tokenizes the eval texts as training did",
    choices=("python", "graph"),
)
"""Declared by the backends that can hold a tokenizer (ONNX Runtime, OpenVINO)."""

KEEP_FLOAT_OPTION = Option(
    "keep_float",
    list,
    [],
    'int8: node groups left in float, e.g. ["ffn-down"] (every layer\'s), '
    '["layer5.ffn-down", "head"]; int8-auto chooses them by a measured search',
)
SMOOTH_OPTION = Option(
    "smooth",
    list,
    None,
    "int8: node groups whose input outliers move into the weights first (SmoothQuant, "
    "alpha measured per MatMul on the calibration texts in the int8 form the backend "
    f"runs); default: {', '.join(SMOOTHED_ROLES)} for classifiers, and for taggers in "
    "static int8; none for embedders; [] for none",
)
"""Declared by the backends that quantize MatMuls to int8 themselves (ONNX Runtime,
TensorRT's Q/DQ graph); not a search option: the search's trials all share it."""
CALIBRATION_OPTION = Option(
    "calibration",
    str,
    DEFAULT_CALIBRATION,
    "static int8: how activation ranges are set from the calibration texts; "
    "int8-auto measures all three",
    choices=tuple(CALIBRATION_METHODS),
)
SEARCH_OPTIONS = (
    KEEP_FLOAT_OPTION,
    CALIBRATION_OPTION,
    Option(
        "search_margin",
        float,
        0.5,
        "int8-auto: the share of each gate's allowance the search may use on its validation "
        "texts (0.5: half the accuracy drop), leaving the rest for the eval set",
        minimum=0.0,
    ),
    Option("search_trials", int, 80, "int8-auto: at most this many trial compiles", minimum=1),
    Option(
        "search_seconds", float, 1800.0, "int8-auto: stop searching after this long", minimum=1.0
    ),
)
"""Declared by the backends whose int8 the sensitivity search drives (`searched`)."""


def parse_pairs(pairs, flag: str = "-O/--option") -> dict[str, str]:
    """`("symmetric=true",)` -> `{"symmetric": "true"}`; values are typed later, by the
    option that owns them."""
    out = {}
    for pair in pairs:
        key, sep, value = str(pair).partition("=")
        if not sep or not key.strip():
            raise BadInput(f"{flag} {pair!r} is not KEY=VALUE, e.g. -O symmetric=true")
        out[key.strip()] = value
    return out


def valid_keys_hint(backends) -> str:
    keys = sorted({o.name for b in backends for o in b.options})
    names = ", ".join(b.name for b in backends)
    listing = f" `edgec backends --options {backends[0].name}` describes them" if backends else ""
    return f"valid keys for {names}: {', '.join(keys) or 'none'};{listing}"


def check_keys(given: Mapping, backends, where: str) -> None:
    """Every key must belong to at least one of the candidate backends: a typo is exit 2."""
    known = {o.name for b in backends for o in b.options}
    unknown = [k for k in given if k not in known]
    if unknown:
        raise BadInput(
            f"{where}: unknown option {', '.join(map(repr, unknown))}; {valid_keys_hint(backends)}"
        )


def resolve_options(backend, target_options: Mapping, user: Mapping, gates: Mapping) -> dict:
    """Every declared option's value: its default, then the target's, then the user's;
    an option tied to a gate takes the gate's value (the default gate when the build gave
    none) when nobody set it. Backends read `settings.options[name]` and nothing else."""
    gates = resolve_gates(gates)
    values = {}
    for option in backend.options:
        value = option.default
        if option.name in target_options:
            value = option.parse(target_options[option.name], backend.name)
        if option.name in user:
            value = option.parse(user[option.name], backend.name)
        if value is None and option.gate:
            value = option.parse(gates[option.gate], backend.name)
        values[option.name] = value
    return values


def with_defaults(backend, settings: BackendSettings) -> BackendSettings:
    """Declared defaults for options a record lacks (a package built before the option
    existed loads as it was built)."""
    missing = {o.name: o.default for o in backend.options if o.name not in settings.options}
    return settings.with_options(**missing) if missing else settings
