"""`edgec verify`: the parity check of a package, for CI."""

from __future__ import annotations

from pathlib import Path

import click

from edgec.cli import render
from edgec.cli.options import (
    HUB_DATA,
    column_options,
    data_file_option,
    digest_option,
    gate_option,
    json_option,
    package_argument,
    report_file_option,
    revision_option,
    threshold_options,
    thresholds,
    trust_remote_code_option,
    verbose_option,
)


@click.command()
@package_argument
@data_file_option(
    "--eval-data",
    required=True,
    help="Texts to verify on (labeled for accuracy checks): CSV, TSV, JSONL, Parquet, "
    f"a dataset folder, {HUB_DATA}; for a tagger, CoNLL or JSON Lines with tokens and "
    "ner_tags.",
)
@click.option(
    "--reference",
    metavar="MODEL",
    type=click.Path(path_type=Path),
    help="The source model folder or Hugging Face hub id: re-run full parity against "
    "PyTorch FP32 (its weights must match the manifest's sha256). Without it, the package "
    "is checked against its manifest.",
)
@revision_option("With a hub id as --reference: the branch, tag or commit sha (default: main).")
@column_options("--eval-data")
@threshold_options
@gate_option
@report_file_option("--report", "report_path", help="Write the JSON report here.")
@report_file_option(
    "--junit", "junit_path", help="Write a JUnit XML report here (one testcase per check)."
)
@report_file_option(
    "--summary",
    "summary_path",
    help="Write a Markdown summary here (e.g. for $GITHUB_STEP_SUMMARY).",
)
@trust_remote_code_option("Allow a --reference model that runs code from its folder.")
@click.option(
    "--tokenizer-only",
    is_flag=True,
    help="Check integrity and the tokenizer only (against --reference's tokenizer when "
    "given): no parity, so the backend need not be installed; the report says parity "
    "was not requested.",
)
@digest_option
@json_option
@verbose_option
def verify(
    package,
    eval_data,
    reference,
    revision,
    text_column,
    text_pair_column,
    label_column,
    max_accuracy_drop,
    min_agreement,
    max_class_drop,
    gate_pairs,
    report_path,
    junit_path,
    summary_path,
    trust_remote_code,
    tokenizer_only,
    digest,
    as_json,
):
    """Check a package: integrity hashes, tokenizer consistency and accuracy parity.

    \b
    With --reference MODEL: full parity against the PyTorch FP32 source model
    (agreement, accuracy, per-class F1, logit deltas, KL, ECE, flipped examples;
    entity F1 and tag agreement for taggers; cosine, neighbours and similarity
    ranks for embedders).
    Without it: the package's accuracy and predictions on the build's eval data
    against what the build recorded; the report lists what could not be re-checked.
    Exit 0 when every check passes, 1 when one fails or when no parity check could
    run (status incomplete: pass --reference, or the build's eval data; or ask for
    --tokenizer-only), 2 for bad input (an eval set too small for the gates
    included), 3 when the package's backend is not installed here.

    \b
    Example (CI):
      edgec verify dist/sentiment --eval-data test.csv --reference ./teacher \\
        --report verify.json --junit verify.xml --summary verify.md
      edgec verify dist/sentiment --eval-data test.csv --digest "$EDGEC_DIGEST"
    """
    from edgec.data import DataOptions
    from edgec.ui import SilentUI
    from edgec.verify.reports import failure_message, summary_lines, write_reports
    from edgec.verify.suite import verify_package
    from edgec_runtime.errors import BadInput, VerificationFailed

    if revision is not None and reference is None:
        raise BadInput("--revision picks a revision of --reference's hub id: add --reference")
    if reference is not None:  # a hub id: its snapshot in the Hugging Face cache
        from edgec.hub import resolve_model

        reference = resolve_model(reference, revision).path
    report = verify_package(
        package,
        eval_data,
        reference=reference,
        data=DataOptions(text_column, text_pair_column, label_column),
        thresholds=thresholds(max_accuracy_drop, min_agreement, max_class_drop, gate_pairs),
        trust_remote_code=trust_remote_code,
        ui=SilentUI(),
        digest=digest,
        tokenizer_only=tokenizer_only,
    )
    write_reports(report, json_path=report_path, junit_path=junit_path, summary_path=summary_path)
    if as_json:
        render.print_json(report)
    else:
        for line in summary_lines(report):
            click.echo(line)
        click.echo(f"digest {report['digest']}")
    if report["status"] != "passed":
        headline = (
            f"{package}: verification incomplete"
            if report["status"] == "incomplete"
            else f"{package} failed verification"
        )
        raise VerificationFailed(failure_message(report, headline), report)
