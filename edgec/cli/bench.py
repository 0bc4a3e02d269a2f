"""`edgec bench`: latency of packages (or a model, compiled on the fly) next to PyTorch."""

from __future__ import annotations

from pathlib import Path

import click

from edgec.cli import render
from edgec.cli.options import (
    column_options,
    data_file_option,
    report_file_option,
    threads_option,
    verbose_option,
)
from edgec.errors import BadInput


def _int_list(_ctx, _param, value):
    """`"1,8"` -> `[1, 8]`: Click types one value, so the comma list is split here."""
    if value is None:
        return None
    try:
        out = [int(v) for v in str(value).split(",") if v.strip()]
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a comma-separated list of integers") from None
    if not out or min(out) < 1:
        raise click.BadParameter(f"{value!r}: give positive integers, e.g. 1,8")
    return out


def _int_list_option(flag: str, default: str, help: str):
    return click.option(
        flag, default=default, show_default=True, metavar="N[,N...]", callback=_int_list, help=help
    )


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--backend",
    "backends",
    multiple=True,
    metavar="NAME[:PRECISION]",
    help="Packages: only these backends. MODEL: compile for each (default onnxruntime:fp32 "
    "and onnxruntime:int8). Repeatable.",
)
@_int_list_option("--batch", "1,8", help="Batch sizes.")
@_int_list_option("--seq-len", "32,128", help="Model-only mode: synthetic sequence lengths.")
@data_file_option(
    "--lengths-from",
    help="End-to-end mode (tokenize + infer + postprocess) on the texts of this data file, "
    "at their real lengths.",
)
@column_options("--lengths-from", pairs=False, labels=False)
@click.option(
    "--runs", default=30, show_default=True, type=click.IntRange(1), help="Timed runs per shape."
)
@click.option(
    "--warmup", default=3, show_default=True, type=click.IntRange(0), help="Untimed runs first."
)
@threads_option("Threads (default: every core).")
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
@report_file_option("--json", "json_out", help="Write the report here.")
@report_file_option("--plot", "plot_out", help="Write a PNG here.")
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
    from edgec.ui import RichUI

    texts = None
    if lengths_from is not None:
        texts = [t for t in _texts_of(lengths_from, text_column) if t]
        if not texts:
            raise BadInput(f"{lengths_from} holds no texts")
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
                progress=ui.info,
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
    render_table(report, render.console())
    if json_out:
        write_json(report, json_out)
        click.echo(f"wrote {json_out}")
    if plot_out:
        plot(report, plot_out)
        click.echo(f"wrote {plot_out}")


def _texts_of(path: Path, text_column) -> list[str]:
    """Real texts to time with: a text file's column, or a tagged (CoNLL, JSON Lines
    with tokens) file's sentences, their words joined as a tagger package reads them."""
    from edgec.data import FORMATS, load_text_set
    from edgec.data.tagged import load_tagged_set

    if path.is_file() and path.suffix.lower() not in FORMATS:
        return load_tagged_set(path, label2id=None).texts
    return load_text_set(path, text_column=text_column).texts
