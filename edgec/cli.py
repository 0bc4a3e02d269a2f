"""The `edgec` command line: one Click group; each command parses its options, calls
the library and renders the result. Heavy libraries are imported inside commands so
`edgec --help` stays fast and never imports torch or a backend runtime.

Errors: a user mistake (`EdgecError`) prints one line and exits with its code; any
other exception is a bug, shown with its traceback under --verbose.
"""

from __future__ import annotations

import json
import sys
import traceback
from pathlib import Path

import click

from edgec import __version__
from edgec.errors import BadInput, EdgecError
from edgec.gates import DEFAULT_MIN_RETENTION

EXIT_INTERNAL = 4
EXIT_CODES_HELP = """\b
Exit codes:
  0  success
  1  verification failed (parity, tokenizer, retention or integrity); nothing written
  2  bad usage or bad input (paths, files, columns, options)
  3  backend or device unavailable on this machine
  4  internal error (a bug: rerun with --verbose and report it)"""


def _verbose(ctx: click.Context) -> bool:
    return bool(ctx.meta.get("edgec.verbose"))


class EdgecGroup(click.Group):
    """Turns library errors into one-line messages and documented exit codes."""

    def invoke(self, ctx):
        try:
            _quiet_unless_verbose(ctx)
            return super().invoke(ctx)
        except EdgecError as e:
            if _verbose(ctx):
                traceback.print_exc()
            click.secho(f"error: {e}", err=True, fg="red")
            ctx.exit(e.exit_code)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except KeyboardInterrupt:
            click.secho(
                "interrupted: a build leaves nothing behind; an interrupted distill keeps its "
                "checkpoints (continue with --resume)",
                err=True,
                fg="red",
            )
            ctx.exit(130)
        except Exception as e:
            if _verbose(ctx):
                traceback.print_exc()
            click.secho(
                f"internal error: {type(e).__name__}: {e} (rerun with --verbose for the traceback "
                "and report it)",
                err=True,
                fg="red",
            )
            ctx.exit(EXIT_INTERNAL)


def _set_verbose(ctx, _param, value):
    if value:
        ctx.meta["edgec.verbose"] = True
    return value


verbose_option = click.option(
    "--verbose",
    "-v",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=_set_verbose,
    help="Show tracebacks and library logs.",
)
json_option = click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
targets_option = click.option(
    "--targets",
    "targets_files",
    multiple=True,
    type=click.Path(dir_okay=False),
    help="Extra TOML file of target profiles (repeatable; also $EDGEC_TARGETS).",
)


def console():
    from rich.console import Console

    return Console(stderr=False, highlight=False)


def plain(value) -> object:
    """Text shown as typed: rich would read '[tensorrt]' in "pip install 'edgec[tensorrt]'"
    (or '[CLS]' in a user's sentence) as a style tag and drop it."""
    from rich.text import Text

    return Text(str(value))


def escaped(value) -> str:
    from rich.markup import escape

    return escape(str(value))


def print_json(data) -> None:
    click.echo(json.dumps(data, indent=2, default=str))


@click.group(
    cls=EdgecGroup, epilog=EXIT_CODES_HELP, context_settings={"help_option_names": ["-h", "--help"]}
)
@click.version_option(__version__, prog_name="edgec")
@verbose_option
@click.pass_context
def cli(ctx):
    """edgec compiles a fine-tuned Hugging Face text classifier into a verified,
    self-contained package for an edge device.

    \b
    Typical use:
      edgec targets                                  # which devices edgec knows
      edgec build ./model --target x86-cpu --eval-data test.csv -o dist/model
      edgec predict dist/model "a gorgeous, witty, seductive movie"
      edgec verify dist/model --eval-data test.csv   # the parity check for CI
      edgec bench dist/model --lengths-from test.csv

    The build refuses to write a package that loses accuracy or tokenizes
    differently from training. Run `edgec COMMAND --help` for each command.
    """
    ctx.call_on_close(lambda: None)


def _quiet_unless_verbose(ctx: click.Context) -> None:
    from edgec.quiet import libraries_to_stderr, quiet_libraries

    libraries_to_stderr()
    if not _verbose(ctx):
        quiet_libraries()


# ---------------------------------------------------------------- build


class RichUI:
    """Pipeline progress on the terminal: a line per step and bars for long loops."""

    def __init__(self, quiet: bool = False):
        self.console = console() if not quiet else None

    def step(self, title: str):
        import contextlib
        import time

        @contextlib.contextmanager
        def _step():
            if self.console is None:
                yield
                return
            started = time.perf_counter()
            with self.console.status(f"{escaped(title)}..."):
                yield
            self.console.print(
                f"[green]✓[/] {escaped(title)} [dim]({time.perf_counter() - started:.1f} s)[/]"
            )

        return _step()

    def track(self, items, description: str):
        if self.console is None:
            return items
        from rich.progress import track

        return track(items, description=description, console=self.console, transient=True)

    def note(self, message: str) -> None:
        if self.console is not None:
            self.console.print(f"[yellow]![/] {escaped(message)}")


def parse_options(pairs: tuple[str, ...], hint: str = "-O/--option") -> dict:
    """`-O key=value` backend options; values are parsed as JSON when they can be."""
    options = {}
    for pair in pairs:
        if "=" not in pair:
            raise BadInput(f"{hint} {pair!r} is not KEY=VALUE, e.g. -O symmetric=true")
        key, value = pair.split("=", 1)
        try:
            options[key] = json.loads(value)
        except ValueError:
            options[key] = value
    return options


def distill_hyperparameters(pairs: tuple[str, ...]) -> dict:
    """`--distill-option epochs=2`: checked against `edgec distill`'s hyperparameters."""
    from dataclasses import fields

    from edgec.distill.run import Hyperparameters

    options = parse_options(pairs, "--distill-option")
    types = {f.name: str(f.type) for f in fields(Hyperparameters)}
    for key, value in options.items():
        if key not in types:
            raise BadInput(
                f"--distill-option {key!r} is not a distillation hyperparameter; choose from "
                f"{', '.join(types)}"
            )
        options[key] = _typed(key, value, types[key])
    return options


def _typed(key: str, value, type_name: str):
    """`epochs=2` -> 2.0 for a float field; a value of the wrong kind is a usage error."""
    if value is None and "None" in type_name:
        return None
    try:
        if type_name.startswith("float"):
            return float(value)
        if type_name.startswith("int"):
            if isinstance(value, float) and not value.is_integer():
                raise ValueError
            return int(value)
    except (TypeError, ValueError):
        raise BadInput(
            f"--distill-option {key}={value!r}: give {type_name.split()[0]} value"
        ) from None
    return str(value)


def data_options(f):
    for option in reversed(
        [
            click.option(
                "--text-column", help="Column holding the text (default: text, sentence, ...)."
            ),
            click.option(
                "--text-pair-column",
                help="Column holding the second text of a pair (default: text_pair, sentence2).",
            ),
            click.option(
                "--label-column", help="Column holding labels, as names or ids (default: label)."
            ),
        ]
    ):
        f = option(f)
    return f


def threshold_options(f):
    for option in reversed(
        [
            click.option(
                "--max-accuracy-drop",
                type=float,
                help="Largest accuracy loss allowed, in points (target default: 1.0).",
            ),
            click.option(
                "--min-agreement",
                type=float,
                help="Smallest share of predictions that must match the reference (target default: 0.94; 0.98 for fp16 targets).",
            ),
            click.option(
                "--max-class-drop",
                type=float,
                help="Largest per-class F1 loss allowed, in points (target default: 3.0).",
            ),
        ]
    ):
        f = option(f)
    return f


def summary_rows(manifest: dict, package: Path) -> list[tuple[str, str]]:
    backend = manifest["backend"]
    size = sum(manifest["files"][f]["size"] for f in backend["files"])
    rows = [
        ("package", str(package)),
        ("backend", f"{backend['name']} {backend.get('version') or ''} / {backend['precision']}"),
        ("target", manifest["target"]["name"]),
        ("model size", f"{size / 1e6:.1f} MB"),
    ]
    verification = manifest["verification"]
    parity = verification.get("parity")
    distilled = manifest.get("distillation")
    if distilled:
        rows += [
            ("teacher accuracy", f"{distilled['teacher']['accuracy']:.2f}%"),
            (
                "student accuracy",
                f"{distilled['student']['accuracy']:.2f}% ({distilled['student']['spec']}, "
                f"{distilled['retention'] * 100:.1f}% retained)",
            ),
        ]
    if parity and parity.get("labeled"):
        rows += [
            ("source accuracy", f"{parity['reference']['accuracy']:.2f}%"),
            (
                "package accuracy",
                f"{parity['candidate']['accuracy']:.2f}% ({parity['delta']['accuracy']:+.2f} pts)",
            ),
        ]
    if parity:
        rows.append(("agreement", f"{parity['agreement']:.4f} on {parity['examples']} examples"))
    if verification.get("tokenizer"):
        tok = verification["tokenizer"]
        rows.append(
            (
                "tokenizer",
                f"{tok['texts_compared'] - tok['mismatches']}/{tok['texts_compared']} identical",
            )
        )
    rows.append(("verification", verification["status"].upper()))
    if verification.get("checked_on"):
        rows.append(("checked with", verification["checked_on"]))
    if "build_seconds" in manifest:
        rows.append(("build time", f"{manifest['build_seconds']:.1f} s"))
    return rows


def render_rows(title: str, rows) -> None:
    from rich.table import Table

    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    for key, value in rows:
        table.add_row(key, plain(value))
    console().print(table)


@cli.command()
@click.argument("model", type=click.Path(path_type=Path))
@click.option(
    "--target",
    "-t",
    "target_name",
    default="host",
    show_default=True,
    help="Device profile (see `edgec targets`); `host` detects this machine.",
)
@click.option(
    "--eval-data",
    type=click.Path(path_type=Path),
    help="Labeled (or unlabeled) texts the package is verified on: CSV, TSV, JSONL, Parquet or a dataset folder.",
)
@click.option(
    "--calibration-data",
    type=click.Path(path_type=Path),
    help="Texts for static quantization (default: the eval data).",
)
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(path_type=Path),
    help="Package folder to write.",
)
@click.option(
    "--backend",
    metavar="NAME[,NAME...]",
    help="Override the target's backend (see `edgec backends`). Several, comma-separated, "
    "build and verify one candidate each (see --pick).",
)
@click.option(
    "--precision",
    metavar="P[,P...]",
    help="Override the target's precision, e.g. fp32, int8, int8-static; a comma list "
    "builds one candidate per backend and precision.",
)
@click.option(
    "--pick",
    type=click.Choice(["target", "fastest"]),
    default="target",
    show_default=True,
    help="With several candidates: package the target's own backend and precision, or "
    "the fastest one that passes verification (batch-1 latency on the eval texts).",
)
@data_options
@click.option(
    "--max-length",
    type=int,
    help="Token limit, for tokenizers that record none (default: the tokenizer's "
    "model_max_length, capped by the position embeddings). A limit other than the one "
    "training used fails the tokenizer check: that is what it is for.",
)
@click.option(
    "--trust-remote-code",
    is_flag=True,
    help="Allow models that run code from their folder (review it first).",
)
@threshold_options
@click.option(
    "-O",
    "--option",
    "backend_options",
    multiple=True,
    metavar="KEY=VALUE",
    help="Backend option, e.g. -O symmetric=true for TensorRT-ready static int8.",
)
@click.option(
    "--no-verify", is_flag=True, help="Skip verification; the package is marked UNVERIFIED."
)
@click.option(
    "--distill",
    "distill_student",
    metavar="STUDENT",
    help="Distil first (layers:N or a pretrained folder) and package the student.",
)
@click.option("--train-data", type=click.Path(path_type=Path), help="Training texts for --distill.")
@click.option(
    "--validation-data",
    type=click.Path(path_type=Path),
    help="With --distill: texts for early stopping (default: 10% held out of --train-data).",
)
@click.option(
    "--unlabeled",
    type=click.Path(path_type=Path),
    help="With --distill: extra texts the teacher labels (KD term only).",
)
@click.option(
    "--distill-option",
    "distill_options",
    multiple=True,
    metavar="KEY=VALUE",
    help="A hyperparameter of `edgec distill` for --distill, e.g. epochs=2 or seed=1 "
    "(names as in `edgec distill --help`, with _ for -).",
)
@click.option(
    "--distill-device",
    type=click.Choice(["auto", "cpu", "cuda"]),
    default="auto",
    show_default=True,
    help="Where --distill trains: auto is CUDA (bf16/fp16) when present, else the CPU.",
)
@click.option(
    "--min-retention",
    type=float,
    default=DEFAULT_MIN_RETENTION,
    show_default=True,
    help="With --distill: refuse (exit 1) when student/teacher accuracy is below this.",
)
@click.option("--force", is_flag=True, help="Replace an existing output.")
@click.option("--archive", is_flag=True, help="Also write OUTPUT.tar.gz.")
@targets_option
@json_option
@verbose_option
def build(
    model,
    target_name,
    eval_data,
    calibration_data,
    output,
    backend,
    precision,
    pick,
    text_column,
    text_pair_column,
    label_column,
    max_length,
    trust_remote_code,
    max_accuracy_drop,
    min_agreement,
    max_class_drop,
    backend_options,
    no_verify,
    distill_student,
    train_data,
    validation_data,
    unlabeled,
    distill_options,
    distill_device,
    min_retention,
    force,
    archive,
    targets_files,
    as_json,
):
    """Compile MODEL (a fine-tuned Hugging Face classifier folder) into a verified package.

    \b
    Steps: load -> export ONNX (checked against PyTorch) -> compile for the
    target's backend and precision -> verify accuracy parity and tokenizer
    consistency on --eval-data -> write the package atomically.

    \b
    Examples:
      edgec build ./teacher --target x86-cpu --eval-data test.csv -o dist/sentiment
      edgec build ./teacher --backend onnxruntime,openvino --precision int8,fp32 \\
          --pick fastest --eval-data test.csv -o dist/fastest
      edgec build ./teacher --distill layers:3 --train-data train.csv \\
          --eval-data test.csv -o dist/student
    """
    from edgec.pipeline import BuildRequest, DataOptions
    from edgec.pipeline import build as run_build
    from edgec.targets import get_target

    ctx = click.get_current_context()
    given = [
        f"--{name.replace('_', '-')}"
        for name in (
            "train_data",
            "validation_data",
            "unlabeled",
            "distill_options",
            "distill_device",
            "min_retention",
        )  # fmt: skip
        if ctx.get_parameter_source(name) == click.core.ParameterSource.COMMANDLINE
    ]
    if given and not distill_student:
        raise BadInput(f"{', '.join(given)} only apply with --distill STUDENT: add it or drop them")
    request = BuildRequest(
        model=model,
        target=get_target(target_name, targets_files),
        output=output,
        eval_data=eval_data,
        calibration_data=calibration_data,
        backend=backend,
        precision=precision,
        pick=pick,
        data=DataOptions(text_column, text_pair_column, label_column),
        max_length=max_length,
        trust_remote_code=trust_remote_code,
        thresholds={
            "max_accuracy_drop": max_accuracy_drop,
            "min_agreement": min_agreement,
            "max_class_drop": max_class_drop,
        },
        options=parse_options(backend_options),
        verify=not no_verify,
        force=force,
        archive=archive,
        distill=distill_student,
        train_data=train_data,
        validation_data=validation_data,
        unlabeled=unlabeled,
        min_retention=min_retention,
        distill_options=distill_hyperparameters(distill_options),
        distill_device=distill_device,
    )
    manifest = run_build(request, RichUI(quiet=as_json))
    if as_json:
        print_json(
            {"package": str(output), **dict(summary_rows(manifest, output)), "manifest": manifest}
        )
    else:
        render_candidates(manifest)
        render_rows("edgec build", summary_rows(manifest, output))


def render_candidates(manifest: dict) -> None:
    """The comparison table of a build with several backends or precisions."""
    selection = manifest.get("selection")
    if not selection:
        return
    from rich.table import Column, Table

    def f(x, fmt):
        return "-" if x is None else fmt.format(x)

    table = Table(
        Column("candidate", no_wrap=True),
        "verification",
        "size MB",
        "accuracy delta",
        "agreement",
        "p50 ms (b1)",
        title=f"candidates (pick: {selection['rule']})",
        title_justify="left",
    )
    for row in selection["candidates"]:
        status = row["status"].upper() + (
            "" if row["status"] != "failed" else f": {row['failures'][0][:60]}"
        )
        table.add_row(
            ("> " if row["picked"] else "  ") + f"{row['backend']}:{row['precision']}",
            plain(status),
            f(row["size_mb"], "{:.1f}"),
            f(row["accuracy_delta"], "{:+.2f} pts"),
            f(row["agreement"], "{:.4f}"),
            f(row["p50_ms"], "{:.2f}"),
            style="bold green" if row["picked"] else None,
        )
    console().print(table)


# ---------------------------------------------------------------- predict


def _read_inputs(input_file, text_column, pair_column):
    from edgec.data import load_text_set

    data = load_text_set(input_file, text_column=text_column, pair_column=pair_column)
    return data.texts, data.pairs


@cli.command()
@click.argument("package", type=click.Path(path_type=Path))
@click.argument("texts", nargs=-1)
@click.option(
    "--input",
    "input_file",
    type=click.Path(path_type=Path),
    help="Read texts from a data file instead.",
)
@click.option("--text-column", help="Text column of --input.")
@click.option("--text-pair-column", help="Second-text column of --input, for pair models.")
@click.option("--threads", type=int, help="Override the package's thread count.")
@json_option
@verbose_option
def predict(package, texts, input_file, text_column, text_pair_column, threads, as_json):
    """Classify TEXTS with a package (no torch needed).

    \b
    Examples:
      edgec predict dist/sentiment "a gorgeous, witty, seductive movie"
      edgec predict dist/sentiment --input reviews.csv --json
    """
    import warnings

    from edgec.runtime import load

    if bool(texts) == bool(input_file):
        raise BadInput("give texts as arguments or --input FILE (one of them)")
    pairs = None
    if input_file:
        texts, pairs = _read_inputs(input_file, text_column, text_pair_column)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        predictor = load(package, threads=threads)
    for w in caught:
        click.secho(f"warning: {w.message}", err=True, fg="yellow")
    results = predictor.predict(list(texts), pairs)
    if as_json:
        for text, result in zip(texts, results, strict=True):
            click.echo(json.dumps({"text": text, **result}))
        return
    from rich.table import Table

    table = Table("text", "label", "score")
    for text, result in zip(texts, results, strict=True):
        table.add_row(
            plain(text if len(text) < 80 else text[:77] + "..."),
            plain(result["label"]),
            f"{result['score']:.3f}",
        )
    console().print(table)


# ---------------------------------------------------------------- backends / targets


def backend_rows() -> list[dict]:
    from edgec.plugins import BROKEN, backends

    rows = []
    for backend in backends().values():
        reason = backend.available()
        rows.append(
            {
                "name": backend.name,
                "precisions": list(backend.precisions),
                "devices": list(backend.devices),
                "available": reason is None,
                "reason": reason or "",
                "description": backend.description,
            }
        )
    for name, reason in BROKEN.items():
        rows.append(
            {
                "name": name,
                "precisions": [],
                "devices": [],
                "available": False,
                "reason": f"plugin broken: {reason}",
                "description": "",
            }
        )
    return rows


@cli.command("backends")
@json_option
@verbose_option
def list_backends(as_json):
    """List compiler backends, their precisions, and whether they run here (and if not, why)."""
    rows = backend_rows()
    if as_json:
        print_json(rows)
        return
    from rich.table import Table

    table = Table("backend", "precisions", "devices", "available", "why not / fix")
    for r in rows:
        table.add_row(
            r["name"],
            ", ".join(r["precisions"]),
            ", ".join(r["devices"]),
            "[green]yes[/]" if r["available"] else "[red]no[/]",
            plain(r["reason"]),
        )
    console().print(table)


@cli.command("targets")
@targets_option
@json_option
@verbose_option
def list_targets(targets_files, as_json):
    """List device profiles: backend, precision, device, threads; `host` says why it chose."""
    from edgec.targets import host_isa, load_targets

    targets = load_targets(targets_files)
    if as_json:
        print_json({"targets": [t.describe() for t in targets.values()], "host_isa": host_isa()})
        return
    from rich.table import Table

    table = Table("target", "backend", "precision", "device", "threads", "description")
    for t in targets.values():
        description = t.description + (f" — {t.reason}" if t.reason else "")
        table.add_row(
            t.name, t.backend, t.precision, t.device, str(t.threads or "all"), plain(description)
        )
    console().print(table)
    isa = host_isa()
    flags = ", ".join(k for k in ("avx2", "avx512", "vnni", "amx", "dotprod") if isa[k]) or "none"
    click.echo(f"host: {isa['machine']}, {isa['cores']} cores, ISA: {flags}")


# ---------------------------------------------------------------- inspect


@cli.command()
@click.argument("package", type=click.Path(path_type=Path))
@json_option
@verbose_option
def inspect(package, as_json):
    """Show a package's manifest and check every file's hash (exit 1 if one differs)."""
    from edgec.errors import VerificationFailed
    from edgec.package import integrity_problems, opened, read_manifest

    with opened(package) as directory:
        manifest = read_manifest(directory)
        problems = integrity_problems(directory, manifest)
    if as_json:
        print_json({"manifest": manifest, "integrity": {"ok": not problems, "problems": problems}})
    else:
        rows = summary_rows(manifest, package)
        pre = manifest["preprocessing"]
        rows += [
            (
                "source model",
                f"{manifest['source_model']['architecture']} ({manifest['source_model']['path']})",
            ),
            ("source sha256", manifest["source_model"]["sha256"][:16] + "..."),
            ("labels", ", ".join(manifest["labels"])),
            (
                "preprocessing",
                f"max_length {pre['max_length']}, truncation {pre['truncation_side']}, "
                f"lowercase {pre['do_lower_case']}, pairs {pre['text_pair']}",
            ),
            ("inputs", ", ".join(manifest["io"]["input_names"])),
            (
                "files",
                ", ".join(f"{n} ({r['size'] / 1e6:.1f} MB)" for n, r in manifest["files"].items()),
            ),
            (
                "integrity",
                "OK: every hash matches" if not problems else "FAILED: " + "; ".join(problems),
            ),
        ]
        if manifest["verification"]["status"] != "passed":
            rows.append(("WARNING", "this package is UNVERIFIED: built with --no-verify"))
        render_rows(f"edgec inspect {package}", rows)
    if problems:
        raise VerificationFailed(f"{package} failed its integrity check: {'; '.join(problems)}")


# ---------------------------------------------------------------- bench


def _int_list(_ctx, _param, value):
    if value is None:
        return None
    try:
        out = [int(v) for v in str(value).split(",") if v.strip()]
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a comma-separated list of integers") from None
    if not out or min(out) < 1:
        raise click.BadParameter(f"{value!r}: give positive integers, e.g. 1,8")
    return out


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--backend",
    "backends",
    multiple=True,
    metavar="NAME[:PRECISION]",
    help="Packages: only these backends. MODEL: compile for each (default onnxruntime:fp32 "
    "and onnxruntime:int8). Repeatable.",
)
@click.option("--batch", default="1,8", show_default=True, callback=_int_list, help="Batch sizes.")
@click.option(
    "--seq-len",
    default="32,128",
    show_default=True,
    callback=_int_list,
    help="Model-only mode: synthetic sequence lengths.",
)
@click.option(
    "--lengths-from",
    type=click.Path(path_type=Path),
    help="End-to-end mode (tokenize + infer + postprocess) on the texts of this data file, "
    "at their real lengths.",
)
@click.option("--text-column", help="Text column of --lengths-from.")
@click.option(
    "--runs", default=30, show_default=True, type=click.IntRange(1), help="Timed runs per shape."
)
@click.option(
    "--warmup", default=3, show_default=True, type=click.IntRange(0), help="Untimed runs first."
)
@click.option("--threads", type=click.IntRange(1), help="Threads (default: every core).")
@click.option(
    "--cold-runs",
    default=3,
    show_default=True,
    type=click.IntRange(0),
    help="New processes started to time cold start (0 skips it).",
)
@click.option(
    "--baseline/--no-baseline",
    default=True,
    show_default=True,
    help="Time the source model in PyTorch FP32 eager next to the packages.",
)
@click.option("--json", "json_out", type=click.Path(path_type=Path), help="Write the report here.")
@click.option("--plot", "plot_out", type=click.Path(path_type=Path), help="Write a PNG here.")
@verbose_option
def bench(
    paths,
    backends,
    batch,
    seq_len,
    lengths_from,
    text_column,
    runs,
    warmup,
    threads,
    cold_runs,
    baseline,
    json_out,
    plot_out,
):
    """Measure latency of PACKAGEs (or a MODEL folder, compiled on the fly) next to the
    source model in PyTorch FP32 eager, all in one run.

    \b
    Figures: p50/p90/p95/p99, mean, std, throughput, each also as a speedup over
    PyTorch (dynamic padding and padded to max_length); cold start in a new process;
    peak RSS; the CPU model, ISA and how busy the CPU was (/proc/stat).

    \b
    Examples:
      edgec bench dist/sentiment --seq-len 32,128 --batch 1,8
      edgec bench dist/sentiment-* --lengths-from test.csv --json b.json --plot b.png
      edgec bench ./model --backend onnxruntime:int8 --backend openvino:int8
    """
    import os
    import tempfile

    # Before torch loads OpenMP: spinning OpenMP threads make the PyTorch baseline 5-30x
    # slower on a busy CPU, which would flatter every ratio (benchmarks/NOTES.md).
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    from edgec.bench import BenchConfig, collect_subjects, measure, plot, render_table, write_json

    texts = None
    if lengths_from is not None:
        from edgec.data import load_text_set

        texts = [t for t in load_text_set(lengths_from, text_column=text_column).texts if t]
        if not texts:
            raise BadInput(f"{lengths_from} holds no texts")
    for out in (json_out, plot_out):
        if out is not None and not out.parent.exists():
            raise BadInput(f"the folder {out.parent} does not exist: create it first")
    ui = RichUI()
    with tempfile.TemporaryDirectory(prefix="edgec-bench-") as tmp:
        with ui.step("preparing"):
            subjects = collect_subjects(
                list(paths),
                list(backends),
                threads,
                baseline=baseline,
                workdir=Path(tmp),
                calibration_texts=texts,
                progress=ui.note,
            )
        config = BenchConfig(
            batches=batch,
            seq_lens=seq_len,
            texts=texts,
            texts_source=str(lengths_from) if lengths_from else None,
            runs=runs,
            warmup=warmup,
            threads=threads,
            cold_runs=cold_runs,
        )
        try:
            with ui.step(f"timing {len(subjects)} subjects ({config.mode})"):
                report = measure(subjects, config)
        finally:
            for subject in subjects:
                if subject.close:
                    subject.close()
    render_table(report, console())
    if json_out:
        write_json(report, json_out)
        click.echo(f"wrote {json_out}")
    if plot_out:
        plot(report, plot_out)
        click.echo(f"wrote {plot_out}")


# ---------------------------------------------------------------- distill


@cli.command()
@click.argument("teacher", type=click.Path(path_type=Path))
@click.option(
    "--student",
    required=True,
    help="layers:N (keep N of the teacher's layers, evenly spread) or a pretrained model folder.",
)
@click.option(
    "--train-data",
    required=True,
    type=click.Path(path_type=Path),
    help="Training texts; labels are used for the CE term when present.",
)
@click.option(
    "--validation-data",
    type=click.Path(path_type=Path),
    help="Texts for early stopping (default: 10% held out of the training data).",
)
@click.option(
    "--eval-data",
    type=click.Path(path_type=Path),
    help="Labeled texts for the report's accuracy and retention (default: validation).",
)
@click.option(
    "--unlabeled",
    type=click.Path(path_type=Path),
    help="Extra texts the teacher labels (KD term only).",
)
@click.option("-o", "--output", required=True, type=click.Path(path_type=Path))
@data_options
@click.option("--epochs", type=float, default=3.0, show_default=True)
@click.option("--max-steps", type=int, help="Stop after this many optimizer steps.")
@click.option("--batch-size", type=int, default=32, show_default=True)
@click.option("--learning-rate", "--lr", type=float, default=5e-5, show_default=True)
@click.option("--warmup-ratio", type=float, default=0.1, show_default=True)
@click.option("--weight-decay", type=float, default=0.01, show_default=True)
@click.option("--max-grad-norm", type=float, default=1.0, show_default=True)
@click.option("--grad-accum", type=int, default=1, show_default=True)
@click.option(
    "--alpha", type=float, default=0.5, show_default=True, help="Weight of KD (1 - alpha: CE)."
)
@click.option("--temperature", "-T", type=float, default=2.0, show_default=True)
@click.option("--hidden-weight", type=float, default=0.0, help="Hidden-state MSE weight.")
@click.option(
    "--attention-weight", type=float, default=0.0, help="MiniLM attention-transfer weight."
)
@click.option("--layer-map", help="STUDENT:TEACHER layer pairs for the two above, e.g. 1:2,2:4.")
@click.option("--patience", type=int, default=2, show_default=True, help="Early stopping.")
@click.option("--eval-steps", type=int, help="Validate every N steps (default: each epoch).")
@click.option("--logging-steps", type=int, default=10, show_default=True)
@click.option("--seed", type=int, default=42, show_default=True)
@click.option(
    "--device",
    type=click.Choice(["auto", "cpu", "cuda"]),
    default="auto",
    show_default=True,
    help="auto: CUDA (bf16/fp16 autocast) when present, else CPU.",
)
@click.option("--max-length", type=int, help="Token limit (default: the teacher's).")
@click.option("--trust-remote-code", is_flag=True)
@click.option("--resume", is_flag=True, help="Continue from OUTPUT/checkpoints.")
@click.option("--force", is_flag=True, help="Replace an existing OUTPUT.")
@click.option("--keep-checkpoints", is_flag=True, help="Keep OUTPUT/checkpoints when done.")
@json_option
@verbose_option
def distill(
    teacher,
    student,
    train_data,
    validation_data,
    eval_data,
    unlabeled,
    output,
    text_column,
    text_pair_column,
    label_column,
    device,
    max_length,
    trust_remote_code,
    resume,
    force,
    keep_checkpoints,
    as_json,
    **hyperparameters,
):
    """Distil TEACHER (a fine-tuned classifier folder) into a smaller student.

    \b
    Loss: alpha * T^2 * KL(teacher || student at T) + (1 - alpha) * CE(labels),
    plus optional hidden-state MSE and attention transfer. Train data without a
    label column trains on the teacher alone (KD only; an error with --alpha 0).
    OUTPUT is a standard Hugging Face model folder that `edgec build` accepts,
    with distill-report.json. --device cuda without CUDA exits 3.

    \b
    Example:
      edgec distill ./teacher --student layers:3 --train-data train.csv \\
          --validation-data val.csv --eval-data test.csv --epochs 2 -o ./student
    """
    from edgec.data import DataOptions
    from edgec.distill import DistillConfig, Hyperparameters
    from edgec.distill import distill as run_distill
    from edgec.distill.report import summary_rows as distill_rows

    config = DistillConfig(
        teacher=teacher,
        student=student,
        train_data=train_data,
        output=output,
        validation_data=validation_data,
        eval_data=eval_data,
        unlabeled=unlabeled,
        data=DataOptions(text_column, text_pair_column, label_column),
        hp=Hyperparameters(**hyperparameters),
        device=device,
        max_length=max_length,
        trust_remote_code=trust_remote_code,
        resume=resume,
        force=force,
        keep_checkpoints=keep_checkpoints,
    )
    report = run_distill(config, RichUI(quiet=as_json))
    if as_json:
        print_json(report)
    else:
        render_rows(f"edgec distill -> {output}", distill_rows(report))


# ---------------------------------------------------------------- verify


def _report_path(value: Path | None, option: str) -> Path | None:
    if value is not None and not value.parent.is_dir():
        raise BadInput(
            f"{option} {value}: the folder {value.parent} does not exist; create it first"
        )
    return value


@cli.command()
@click.argument("package", type=click.Path(path_type=Path))
@click.option(
    "--eval-data",
    required=True,
    type=click.Path(path_type=Path),
    help="Texts to verify on (labeled for accuracy checks): CSV, TSV, JSONL, Parquet or a dataset folder.",
)
@click.option(
    "--reference",
    type=click.Path(path_type=Path),
    help="The source model folder: re-run full parity against PyTorch FP32 (its weights must "
    "match the manifest's sha256). Without it, the package is checked against its manifest.",
)
@data_options
@threshold_options
@click.option(
    "--report", "report_path", type=click.Path(path_type=Path), help="Write the JSON report here."
)
@click.option(
    "--junit",
    "junit_path",
    type=click.Path(path_type=Path),
    help="Write a JUnit XML report here (one testcase per check).",
)
@click.option(
    "--summary",
    "summary_path",
    type=click.Path(path_type=Path),
    help="Write a Markdown summary here (e.g. for $GITHUB_STEP_SUMMARY).",
)
@click.option(
    "--trust-remote-code",
    is_flag=True,
    help="Allow a --reference model that runs code from its folder.",
)
@json_option
@verbose_option
def verify(
    package,
    eval_data,
    reference,
    text_column,
    text_pair_column,
    label_column,
    max_accuracy_drop,
    min_agreement,
    max_class_drop,
    report_path,
    junit_path,
    summary_path,
    trust_remote_code,
    as_json,
):
    """Check a package: integrity hashes, tokenizer consistency and accuracy parity.

    \b
    With --reference MODEL: full parity against the PyTorch FP32 source model
    (agreement, accuracy, per-class F1, logit deltas, KL, ECE, flipped examples).
    Without it: the package's accuracy and predictions on the build's eval data
    against what the build recorded; the report lists what could not be re-checked.
    Exit 0 when every check passes, 1 when one fails, 2 for bad input, 3 when the
    package's backend is not installed here.

    \b
    Example (CI):
      edgec verify dist/sentiment --eval-data test.csv --reference ./teacher \\
        --report verify.json --junit verify.xml --summary verify.md
    """
    from edgec.data import DataOptions
    from edgec.errors import VerificationFailed
    from edgec.verify.reports import failure_message, summary_lines, write_reports
    from edgec.verify.suite import verify_package

    paths = {
        "json_path": _report_path(report_path, "--report"),
        "junit_path": _report_path(junit_path, "--junit"),
        "summary_path": _report_path(summary_path, "--summary"),
    }
    report = verify_package(
        package,
        eval_data,
        reference=reference,
        data=DataOptions(text_column, text_pair_column, label_column),
        thresholds={
            "max_accuracy_drop": max_accuracy_drop,
            "min_agreement": min_agreement,
            "max_class_drop": max_class_drop,
        },
        trust_remote_code=trust_remote_code,
        ui=RichUI(quiet=True),
    )
    write_reports(report, **paths)
    if as_json:
        print_json(report)
    else:
        for line in summary_lines(report):
            click.echo(line)
    if report["status"] != "passed":
        raise VerificationFailed(failure_message(report, f"{package} failed verification"), report)


# --- commands added by later issues go above this line ---


def main() -> None:
    try:
        cli(prog_name="edgec")
    except SystemExit as e:
        sys.exit(e.code)


if __name__ == "__main__":
    sys.exit(main())
