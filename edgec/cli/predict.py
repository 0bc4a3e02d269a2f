"""`edgec predict`: run a package on texts (no torch needed): labels for classifiers,
entity spans for taggers, vectors for embedders."""

from __future__ import annotations

from pathlib import Path

import click

from edgec.cli import render
from edgec.cli.options import (
    column_options,
    data_file_option,
    digest_option,
    json_option,
    package_argument,
    threads_option,
    verbose_option,
)
from edgec_runtime.errors import BadInput
from edgec_runtime.iospec import AGGREGATION_STRATEGIES, SENTENCE_EMBEDDING, TOKEN_CLASSIFICATION


@click.command()
@package_argument
@click.argument("texts", nargs=-1)
@data_file_option("--input", "input_file", help="Read texts from a data file instead.")
@column_options("--input", labels=False)
@threads_option("Override the package's thread count (0: every core).", minimum=0)
@click.option(
    "--aggregation",
    type=click.Choice(AGGREGATION_STRATEGIES),
    help="Taggers: how word tags become entities, as in transformers' token-classification "
    "pipeline (default: the package's, simple).",
)
@click.option(
    "--output",
    "output_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Embedders: write the vectors to this .npy file (float32, one row per text).",
)
@digest_option
@json_option
@verbose_option
def predict(
    package,
    texts,
    input_file,
    text_column,
    text_pair_column,
    threads,
    aggregation,
    output_file,
    digest,
    as_json,
):
    """Run a package on TEXTS (no torch needed).

    \b
    A classifier prints a label and score per text; a tagger the entities
    (label, score, start and end character offsets, the exact text); an
    embedder the vectors (--json) or writes them (--output vectors.npy).

    \b
    Examples:
      edgec predict dist/sentiment "a gorgeous, witty, seductive movie"
      edgec predict dist/sentiment --input reviews.csv --json
      edgec predict dist/ner "Obama visited Paris on Monday" --aggregation first
      edgec predict dist/embedder --input corpus.csv --output vectors.npy
      edgec predict dist/sentiment --digest sha256:9f2c... "pinned: refused if changed"
    """
    import warnings

    from edgec.views import predictions
    from edgec_runtime import load

    if bool(texts) == bool(input_file):
        raise BadInput("give texts as arguments or --input FILE (one of them)")
    if output_file is not None and output_file.suffix != ".npy":
        raise BadInput(f"--output {output_file}: write vectors to a .npy file")
    pairs = None
    if input_file:
        texts, pairs = _read_inputs(input_file, text_column, text_pair_column)
    refuse_undecodable(texts, "--input" if input_file else "text")
    if pairs is not None:
        refuse_undecodable(pairs, "--input (text pair)")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        predictor = load(package, threads=threads, digest=digest)
    for w in caught:
        click.secho(f"warning: {w.message}", err=True, fg="yellow")
    task = predictor.task["name"]
    if task == SENTENCE_EMBEDDING:
        pairs = None  # an embedder reads each text alone; a pair column is only data
    if aggregation and task != TOKEN_CLASSIFICATION:
        raise BadInput(f"--aggregation is for token-classification packages; this is {task}")
    if output_file is not None and task != SENTENCE_EMBEDDING:
        raise BadInput(f"--output writes embeddings; this package is {task}: use --json")
    texts = list(texts)
    if task == TOKEN_CLASSIFICATION:
        results = predictor.predict(texts, pairs, aggregation=aggregation)
    else:
        results = predictor.predict(texts, pairs)
    if output_file is not None:
        save_vectors(output_file, results)
        click.echo(f"wrote {len(texts)} x {results.shape[1]} vectors to {output_file}", err=True)
        return
    records = predictions(task, texts, results)
    if as_json:
        render.print_json_lines(records)  # one object per line: streams into jq
    else:
        render.predictions_table(task, records)


def refuse_undecodable(texts, source: str) -> None:
    """Python decodes argv bytes that are not UTF-8 as lone surrogates (U+DC80-U+DCFF
    for the byte 0x80-0xFF); no tokenizer can encode them, so say which text and byte
    before loading anything rather than fail inside the tokenizer."""
    for number, text in enumerate(texts, 1):
        if not isinstance(text, str):
            continue
        bad = next((c for c in text if "\ud800" <= c <= "\udfff"), None)
        if bad is not None:
            what = f"byte 0x{ord(bad) - 0xDC00:02x}" if ord(bad) >= 0xDC80 else f"U+{ord(bad):04X}"
            raise BadInput(
                f"{source} {number} is not valid UTF-8 ({what}): pass texts encoded as UTF-8"
            )


def save_vectors(path: Path, vectors) -> None:
    """np.save to a temporary name, then rename: a crash leaves no half-written file."""
    import os
    import tempfile

    import numpy as np

    if not path.parent.is_dir():
        raise BadInput(f"--output {path}: the folder {path.parent} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".npy", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            np.save(f, np.asarray(vectors, dtype=np.float32))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _read_inputs(input_file: Path, text_column, pair_column):
    from edgec.data import load_text_set

    data = load_text_set(input_file, text_column=text_column, pair_column=pair_column)
    return data.texts, data.pairs
