"""`edgec predict`: classify texts with a package (no torch needed)."""

from __future__ import annotations

from pathlib import Path

import click

from edgec.cli import render
from edgec.cli.options import (
    column_options,
    data_file_option,
    json_option,
    package_argument,
    threads_option,
    verbose_option,
)
from edgec.errors import BadInput


@click.command()
@package_argument
@click.argument("texts", nargs=-1)
@data_file_option("--input", "input_file", help="Read texts from a data file instead.")
@column_options("--input", labels=False)
@threads_option("Override the package's thread count (0: every core).", minimum=0)
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
    from edgec.views import predictions

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
    records = predictions(texts, predictor.predict(list(texts), pairs))
    if as_json:
        render.print_json_lines(records)  # one object per line: streams into jq
    else:
        render.predictions_table(records)


def _read_inputs(input_file: Path, text_column, pair_column):
    from edgec.data import load_text_set

    data = load_text_set(input_file, text_column=text_column, pair_column=pair_column)
    return data.texts, data.pairs
