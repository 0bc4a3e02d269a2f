"""Distillation hyperparameters on the command line, generated from their dataclass.

Each field of `edgec.distill.Hyperparameters` is one option of `edgec distill`:
`--{name, _ as -}`, typed and defaulted by the field, with the help text and any
extra flags (`--lr`, `-T`) from `field.metadata` ("help", "flags"). A hyperparameter
is therefore declared once, in the library, and `edgec build --distill-option
KEY=VALUE` is checked against the same fields with the same types.

The dataclass is imported the first time Click needs the options (to parse or to
print `edgec distill --help`), not when the CLI loads, so `edgec --help` and the
other commands never import edgec.distill.
"""

from __future__ import annotations

import dataclasses
import typing

import click

from edgec_runtime.errors import BadInput

CLICK_TYPES = {float: click.FLOAT, int: click.INT, str: click.STRING, bool: click.BOOL}


def _dataclass():
    from edgec.distill.config import Hyperparameters

    return Hyperparameters


def fields() -> list[tuple[dataclasses.Field, object, bool]]:
    """(field, its type without None, whether None is allowed), in declaration order."""
    hints = typing.get_type_hints(_dataclass())
    out = []
    for field in dataclasses.fields(_dataclass()):
        kind = hints[field.name]
        args = typing.get_args(kind)
        optional = type(None) in args
        if optional:
            rest = [a for a in args if a is not type(None)]
            kind = rest[0] if len(rest) == 1 else str
        out.append((field, kind, optional))
    return out


def click_type(kind) -> click.ParamType:
    """float, int, str or bool; anything else is taken as text."""
    return CLICK_TYPES.get(kind, click.STRING)


def option(field: dataclasses.Field, kind, optional: bool) -> click.Option:
    """One field as a Click option; the Python name stays the field's name, so the
    command passes its values straight to `Hyperparameters(**values)`."""
    flag = "--" + field.name.replace("_", "-")
    if kind is bool:
        flag = f"{flag}/--no-{flag[2:]}"
    return click.Option(
        [flag, *field.metadata.get("flags", ()), field.name],
        type=click_type(kind),
        default=field.default,
        show_default=field.default is not None,
        help=field.metadata.get("help"),
    )


def options() -> list[click.Option]:
    return [option(*f) for f in fields()]


class HyperparameterCommand(click.Command):
    """A command whose hyperparameter options are made on first use and placed
    before the parameter named `hyperparameters_before` (so `--help` keeps them
    together, where a reader looks for them)."""

    def __init__(self, *args, hyperparameters_before: str, **kwargs):
        super().__init__(*args, **kwargs)
        self._before = hyperparameters_before
        self._made = False

    def get_params(self, ctx: click.Context) -> list[click.Parameter]:
        if not self._made:
            self._made = True
            names = [p.name for p in self.params]
            at = names.index(self._before) if self._before in names else len(names)
            self.params[at:at] = options()
        return super().get_params(ctx)


def parse(pairs: tuple[str, ...], flag: str = "--distill-option") -> dict:
    """`("epochs=2",)` -> `{"epochs": 2.0}`, typed as `edgec distill` types them; an
    unknown name or a value of the wrong kind is BadInput (exit 2)."""
    from edgec.backends.settings import parse_pairs

    given = parse_pairs(pairs, flag)
    if not given:
        return {}
    known = {field.name: (field, kind, optional) for field, kind, optional in fields()}
    values = {}
    for key, raw in given.items():
        if key not in known:
            raise BadInput(
                f"{flag} {key!r} is not a distillation hyperparameter; choose from "
                f"{', '.join(known)}"
            )
        _field, kind, optional = known[key]
        if optional and raw.strip().lower() in ("", "none", "null"):
            values[key] = None
            continue
        try:
            values[key] = click_type(kind).convert(raw, None, None)
        except click.BadParameter:
            raise BadInput(f"{flag} {key}={raw!r}: give {kind.__name__} value") from None
    return values
