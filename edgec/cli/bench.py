"""`edgec bench`: latency of packages (or a model, compiled on the fly) next to PyTorch."""

from __future__ import annotations

from pathlib import Path

import click

from edgec.cli import render
from edgec.cli.options import (
    column_options,
    count_option,
    data_file_option,
    report_file_option,
    threads_option,
    verbose_option,
)
from edgec_runtime.errors import BadInput

# Sizes past these are typos, and would exhaust memory or time before saying so.
MAX_BATCH = 4096
MAX_RUNS = 100_000
MAX_COLD_RUNS = 1000


def _int_list(maximum: int | None = None):
    """`"1,8"` -> `[1, 8]`: Click types one value, so the comma list is split here."""

    def check(_ctx, param, value):
        if value is None:
            return None
        flag = param.opts[0]
        try:
            out = [int(v) for v in str(value).split(",") if v.strip()]
        except ValueError:
            raise BadInput(
                f"{flag} {value!r} is not a comma-separated list of whole numbers, e.g. 1,8"
            ) from None
        if not out or min(out) < 1:
            raise BadInput(f"{flag} {value!r}: give positive whole numbers, e.g. 1,8")
        if maximum is not None and max(out) > maximum:
            raise BadInput(
                f"{flag} {max(out)} is over {maximum}, the largest edgec times: lower it"
            )
        return out

    return check


def _int_list_option(flag: str, default: str, help: str, maximum: int | None = None):
    return click.option(
        flag,
        default=default,
        show_default=True,
        metavar="N[,N...]",
        callback=_int_list(maximum),
        help=help,
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
@_int_list_option("--batch", "1,8", help=f"Batch sizes (at most {MAX_BATCH}).", maximum=MAX_BATCH)
@_int_list_option(
    "--seq-len",
    "32,128",
    help="Model-only mode: synthetic sequence lengths (at most each package's max_length, "
    "a model's position embeddings).",
)
@data_file_option(
    "--lengths-from",
    help="End-to-end mode (tokenize + infer + postprocess) on the texts of this data file, "
    "at their real lengths.",
)
@column_options("--lengths-from", pairs=False, labels=False)
@count_option("--runs", 30, 1, MAX_RUNS, help="Timed runs per shape.")
@count_option("--warmup", 3, 0, MAX_RUNS, help="Untimed runs first.")
@threads_option("Threads (default: every core; at most this machine's cores).")
@count_option(
    "--cold-runs",
    3,
    0,
    MAX_COLD_RUNS,
    help="New processes started to time cold start (0 skips it).",
)
@click.option(
    "--baseline/--no-baseline",
    default=True,
    show_default=True,
    help="Time the source model in PyTorch FP32 eager next to the packages.",
)
@click.option(
    "--torch-omp-policy",
    "torch_omp_policy",
    type=click.Choice(["both", "passive", "default"], case_sensitive=False),
    default="both",
    show_default=True,
    help="OMP_WAIT_POLICY the PyTorch baseline is timed under: passive (threads sleep "
    "between ops, in this process), default (libgomp's: spin a few ms first, in a worker "
    "process started for it), or both. Each is its own row; every ratio is against the "
    "faster at that shape, and the JSON names it (vs.*.against).",
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
    torch_omp_policy,
    json_out,
    plot_out,
):
    """Measure latency of PACKAGEs (or a MODEL folder, compiled on the fly) next to the
    source model in PyTorch FP32 eager, all in one run.

    \b
    Figures: p50/p90/p95/p99, mean, std, throughput, each also as a speedup over
    PyTorch (dynamic padding and padded to max_length, under the faster of its OpenMP
    wait policies); cold start in a new process; peak RSS; the CPU model, ISA and how
    busy the CPU was (/proc/stat).

    \b
    Examples:
      edgec bench dist/sentiment --seq-len 32,128 --batch 1,8
      edgec bench dist/sentiment-* --lengths-from test.csv --json b.json --plot b.png
      edgec bench ./model --backend onnxruntime:int8 --backend openvino:int8
    """
    import os
    import tempfile

    # Before torch loads OpenMP: spinning OpenMP threads make PyTorch 5-30x slower on a
    # busy CPU, and faster on an idle one (benchmarks/NOTES.md 2). This process waits
    # passively; libgomp's default policy is timed in a worker process of its own.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    policies = {"both": ["PASSIVE", "default"], "passive": ["PASSIVE"], "default": ["default"]}
    from edgec.bench import BenchConfig, collect_subjects, measure, plot, render_table, write_json
    from edgec.ui import RichUI

    texts = None
    if lengths_from is None:  # model-only mode: every synthetic length must fit
        seq_len = _fitting_lengths(
            list(paths), seq_len, given=_given(click.get_current_context(), "seq_len")
        )
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
                torch_policies=policies[torch_omp_policy.lower()],
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


def _given(ctx: click.Context, name: str) -> bool:
    return ctx.get_parameter_source(name) is not click.core.ParameterSource.DEFAULT


def _length_limit(path: Path) -> tuple[int, str] | None:
    """The longest sequence a subject takes: a package's max_length, a model folder's
    position embeddings; None when the path is neither (collect_subjects says so)."""
    from edgec.bench.subjects import is_package

    if is_package(path):
        from edgec_runtime.archive import opened
        from edgec_runtime.manifest import read_manifest

        with opened(path) as d:
            limit = (read_manifest(d).get("preprocessing") or {}).get("max_length")
        return (int(limit), "max_length") if limit else None
    if (path / "config.json").is_file():
        from edgec.model_files import read_config
        from edgec_runtime import iospec

        config = read_config(path, trust_remote_code=True)  # reads JSON; runs nothing
        limit = iospec.position_limit(
            config["model_type"],
            config.get("max_position_embeddings", 512),
            config.get("pad_token_id"),
        )
        return limit, "position embeddings' limit"
    return None


def _fitting_lengths(paths: list[Path], lengths: list[int], given: bool) -> list[int]:
    """Synthetic lengths past a subject's limit fail inside the runtime after the
    other subjects ran: a length the user gave is exit 2 naming the limit, the
    defaults are cut to it."""
    limits = [(p, found) for p in map(Path, paths) if (found := _length_limit(p))]
    if not limits:
        return lengths
    path, (limit, what) = min(limits, key=lambda item: item[1][0])
    if max(lengths) <= limit:
        return lengths
    if given:
        raise BadInput(
            f"--seq-len {max(lengths)} is beyond {path}'s {what} of {limit} tokens: "
            f"give --seq-len up to {limit}"
        )
    return sorted({min(n, limit) for n in lengths})


def _texts_of(path: Path, text_column) -> list[str]:
    """Real texts to time with: a text file's column, or a tagged (CoNLL, JSON Lines
    with tokens) file's sentences, their words joined as a tagger package reads them."""
    from edgec.data import FORMATS, load_text_set
    from edgec.data.tagged import load_tagged_set

    if path.is_file() and path.suffix.lower() not in FORMATS:
        return load_tagged_set(path, label2id=None).texts
    return load_text_set(path, text_column=text_column).texts
