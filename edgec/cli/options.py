"""Options that several commands share, each declared once.

A decorator here stands for an option (or a block of options) that more than one
command takes, so its flag, type and help read the same everywhere. Options only one
command has stay with that command.
"""

from __future__ import annotations

from pathlib import Path

import click

from edgec.gates import TASK_GATES
from edgec.hub import DATASET_SYNTAX
from edgec_runtime.errors import BadInput
from edgec_runtime.iospec import SUPPORTED_TASKS

VERBOSE_KEY = "edgec.verbose"


def compose(*decorators):
    """Several option decorators as one, applied in the order written (the order
    `--help` lists them)."""

    def apply(f):
        for decorator in reversed(decorators):
            f = decorator(f)
        return f

    return apply


def is_verbose(ctx: click.Context) -> bool:
    return bool(ctx.meta.get(VERBOSE_KEY))


def _set_verbose(ctx, _param, value):
    """Both `edgec --verbose build` and `edgec build --verbose` count; libraries are
    quieted when a command's options are parsed (`ctx.parent` is the group), the first
    moment both places are known, and before any of its work starts."""
    if value:
        ctx.meta[VERBOSE_KEY] = True  # meta is shared by the group and its commands
    if ctx.parent is not None and not ctx.resilient_parsing:
        _quiet_unless_verbose(ctx)
    return value


def _quiet_unless_verbose(ctx: click.Context) -> None:
    from edgec.quiet import libraries_to_stderr, quiet_libraries

    libraries_to_stderr()
    if not is_verbose(ctx):
        quiet_libraries()


verbose_option = click.option(
    "--verbose",
    "-v",
    is_flag=True,
    expose_value=False,
    is_eager=True,  # set before any other option's callback can fail
    callback=_set_verbose,
    help="Show tracebacks and library logs.",
)

json_option = click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")

targets_option = click.option(
    "--targets",
    "targets_files",
    multiple=True,
    type=click.Path(),  # edgec.targets checks it: a folder is exit 2 in edgec's own words
    help="Extra TOML file of target profiles (repeatable; also $EDGEC_TARGETS).",
)

package_argument = click.argument("package", type=click.Path(path_type=Path))

# The package digest a deployment pins (edgec_runtime.manifest.package_digest): the library
# checks it, so a mismatch is edgec's exit 1 and a malformed pin its exit 2.
digest_option = click.option(
    "--digest",
    metavar="sha256:HEX",
    help="Refuse the package (exit 1) unless its digest is this one, as `edgec inspect` "
    "and `edgec build` print it: pins every file, max_length and the verification status.",
)


# how a data option's help names a hub data set (edgec.hub)
HUB_DATA = f"or a hub data set, {DATASET_SYNTAX}"


def data_file_option(*flags: str, help: str, required: bool = False):
    """A data file (CSV, TSV, JSONL, Parquet, a dataset folder, or a hub data set
    hf://datasets/...); the library checks that it exists, so the message and exit code
    are edgec's own."""
    return click.option(*flags, required=required, type=click.Path(path_type=Path), help=help)


def revision_option(help: str):
    """`--revision REV` of a Hugging Face hub id (edgec.hub): a branch, tag or commit."""
    return click.option("--revision", metavar="REV", help=help)


def output_option(help: str):
    return click.option("-o", "--output", required=True, type=click.Path(path_type=Path), help=help)


def report_file_option(*flags: str, help: str):
    """A file edgec writes after the work: its folder must exist, checked before the
    work starts so a long run does not end in a failed write."""
    return click.option(*flags, type=click.Path(path_type=Path), callback=_folder_exists, help=help)


REPORT_SUFFIXES = {
    "--junit": ".xml",
    "--report": ".json",
    "--json": ".json",
    "--plot": ".png",
    "--summary": ".md",
}


def _folder_exists(_ctx, param, value: Path | None):
    if value is not None and value.is_dir():
        flag = param.opts[0]
        example = value / f"report{REPORT_SUFFIXES.get(flag, '')}"
        raise BadInput(f"{flag} {value} is a folder; give a file to write, e.g. {example}")
    if value is not None and not value.parent.is_dir():
        raise BadInput(
            f"{param.opts[0]} {value}: the folder {value.parent} does not exist; create it first"
        )
    return value


def column_options(source: str, pairs: bool = True, labels: bool = True):
    """Which columns of `source` hold the text, the second text and the label."""
    options = [
        click.option(
            "--text-column",
            help=f"Column of {source} holding the text (default: text, sentence, ...).",
        )
    ]
    if pairs:
        options.append(
            click.option(
                "--text-pair-column",
                help=f"Column of {source} holding the second text of a pair "
                "(default: text_pair, sentence2).",
            )
        )
    if labels:
        options.append(
            click.option(
                "--label-column",
                help=f"Column of {source} holding labels, as names or ids (default: label).",
            )
        )
    return compose(*options)


threshold_options = compose(
    click.option(
        "--max-accuracy-drop",
        type=float,
        help="Largest accuracy loss allowed, in points (target default: 1.0).",
    ),
    click.option(
        "--min-agreement",
        type=float,
        help="Smallest share of predictions that must match the reference "
        "(target default: 0.94; 0.98 for fp16 targets).",
    ),
    click.option(
        "--max-class-drop",
        type=float,
        help="Largest per-class F1 loss allowed, in points (target default: 3.0).",
    ),
)


gate_option = click.option(
    "--gate",
    "gate_pairs",
    multiple=True,
    metavar="NAME=VALUE",
    help="Set any verification gate (repeatable), e.g. --gate max_entity_f1_drop=0.5. "
    "Each task reads its own: "
    + "; ".join(f"{task}: {', '.join(gates)}" for task, gates in TASK_GATES.items())
    + " (defaults: docs/verification.md).",
)

task_option = click.option(
    "--task",
    type=click.Choice(SUPPORTED_TASKS),
    help="The model's task (default: detected: a *ForSequenceClassification or "
    "*ForTokenClassification head, or a sentence-transformers folder).",
)


def thresholds(max_accuracy_drop, min_agreement, max_class_drop, gate_pairs=()) -> dict:
    """The verification gates as the library takes them (None: the target's default).
    `--gate NAME=VALUE` names any gate; the dedicated flags win over it."""
    from edgec.gates import parse_gate_pairs

    return {
        **parse_gate_pairs(gate_pairs, "--gate"),
        **{
            k: v
            for k, v in {
                "max_accuracy_drop": max_accuracy_drop,
                "min_agreement": min_agreement,
                "max_class_drop": max_class_drop,
            }.items()
            if v is not None
        },
    }


def trust_remote_code_option(
    help: str = "Allow models that run code from their folder (review it first).",
):
    return click.option("--trust-remote-code", is_flag=True, help=help)


def force_option(help: str = "Replace an existing output."):
    return click.option("--force", is_flag=True, help=help)


def max_length_option(help: str):
    return click.option("--max-length", type=int, help=help)


def device_option(*flags: str, help: str):
    """Where training runs: auto is CUDA when torch sees one."""
    return click.option(
        *flags,
        type=click.Choice(["auto", "cpu", "cuda"]),
        default="auto",
        show_default=True,
        help=help,
    )


def whole_number(minimum: int, maximum: int | None = None, hint: str = ""):
    """A Click callback: the value as an int in minimum..maximum, else exit 2 in one line
    naming the flag (Click's own refusal is a usage block)."""

    def check(_ctx, param, value):
        if value is None:
            return None
        flag = param.opts[0]
        span = f"{minimum}..{maximum}" if maximum is not None else f"{minimum} or more"
        try:
            number = int(str(value).strip())
        except ValueError:
            raise BadInput(f"{flag} {value!r} is not a whole number: give {span}{hint}") from None
        if number < minimum or (maximum is not None and number > maximum):
            raise BadInput(f"{flag} {number} is out of range: give {span}{hint}")
        return number

    return check


def count_option(flag: str, default: int, minimum: int, maximum: int, help: str):
    """A count with a floor and a ceiling, e.g. `--runs`: outside them is exit 2."""
    return click.option(
        flag,
        default=str(default),
        show_default=True,
        metavar="N",
        callback=whole_number(minimum, maximum),
        help=help,
    )


def threads_option(help: str, minimum: int = 1):
    """`--threads N`: below `minimum` is exit 2 (predict takes 0, every core); more than
    this machine's cores is cut to them, with a note on stderr."""
    count = whole_number(minimum, hint=" (0: every core)" if minimum == 0 else "")

    def check(ctx, param, value):
        from edgec.machine import cores

        threads = count(ctx, param, value)
        available = cores()
        if threads and threads > available:
            plural = "s" if available != 1 else ""
            click.echo(
                f"note: --threads {threads}: this machine has {available} core{plural}; "
                f"using {available}",
                err=True,
            )
            return available
        return threads

    return click.option("--threads", metavar="N", callback=check, help=help)


def key_value_option(*flags: str, help: str):
    """A repeatable KEY=VALUE option; values stay strings for their owner to type."""
    return click.option(*flags, multiple=True, metavar="KEY=VALUE", help=help)
