"""`edgec build`: MODEL -> a verified package, optionally distilled first."""

from __future__ import annotations

from pathlib import Path

import click

from edgec.cli import hyperparameters, render
from edgec.cli.options import (
    HUB_DATA,
    column_options,
    data_file_option,
    device_option,
    force_option,
    gate_option,
    json_option,
    key_value_option,
    max_length_option,
    output_option,
    revision_option,
    targets_option,
    task_option,
    threshold_options,
    thresholds,
    trust_remote_code_option,
    verbose_option,
)
from edgec.gates import DEFAULT_MIN_RETENTION
from edgec_runtime.errors import BadInput

# Options that mean something only with --distill; giving one without it is a mistake.
DISTILL_ONLY = (
    "train_data",
    "unlabeled",
    "distill_options",
    "distill_device",
    "min_retention",
)


def _refuse_distill_options_without_distill(ctx: click.Context, student: str | None) -> None:
    given = [
        f"--{name.replace('_', '-')}"
        for name in DISTILL_ONLY
        if ctx.get_parameter_source(name) == click.core.ParameterSource.COMMANDLINE
    ]
    if given and not student:
        raise BadInput(f"{', '.join(given)} only apply with --distill STUDENT: add it or drop them")


@click.command()
@click.argument("model", type=click.Path(path_type=Path))
@click.option(
    "--target",
    "-t",
    "target_name",
    default="host",
    show_default=True,
    help="Device profile (see `edgec targets`); `host` detects this machine.",
)
@data_file_option(
    "--eval-data",
    help="Labeled (or unlabeled) texts the package is verified on: CSV, TSV, JSONL, "
    f"Parquet, a dataset folder, {HUB_DATA} (e.g. hf://datasets/stanfordnlp/sst2@validation).",
)
@data_file_option(
    "--calibration-data",
    help="Texts for static int8's activation ranges and dynamic int8's smoothing "
    "(default: the eval data).",
)
@output_option("Package folder to write.")
@click.option(
    "--backend",
    metavar="NAME[:PRECISION][,...]",
    help="Override the target's backend (see `edgec backends`). Several, comma-separated, "
    "build and verify one candidate each (see --pick); NAME:PRECISION names a candidate "
    "exactly, e.g. onnxruntime:int8,openvino:int8.",
)
@click.option(
    "--precision",
    metavar="P[,P...]",
    help="Override the target's precision, e.g. fp32, int8, int8-static, or int8-auto (which "
    "node groups stay float, measured on --calibration-data / --validation-data, never on "
    "--eval-data); a comma list builds one candidate per backend and precision.",
)
@click.option(
    "--pick",
    type=click.Choice(["target", "fastest"]),
    default="target",
    show_default=True,
    help="With several candidates: package the target's own backend and precision, or "
    "the fastest one that passes verification (batch-1 latency on the eval texts).",
)
@column_options("the data files")
@max_length_option(
    "Token limit, for tokenizers that record none (default: the tokenizer's "
    "model_max_length, capped by the position embeddings). A limit other than the one "
    "training used fails the tokenizer check: that is what it is for."
)
@revision_option(
    "With a Hugging Face hub id as MODEL: the branch, tag or commit sha (default: main)."
)
@trust_remote_code_option()
@task_option
@threshold_options
@gate_option
@key_value_option(
    "-O",
    "--option",
    "backend_options",
    help="Backend option, e.g. -O symmetric=true for TensorRT-ready static int8 "
    "(`edgec backends --options NAME` lists a backend's options).",
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
@data_file_option("--train-data", help="Training texts for --distill.")
@data_file_option(
    "--validation-data",
    help="Labelled texts held apart from --eval-data: the gates each int8-auto trial must "
    "pass (default: the odd rows of --calibration-data), and with --distill, early "
    "stopping (default: 10% held out of --train-data).",
)
@data_file_option(
    "--unlabeled", help="With --distill: extra texts the teacher labels (KD term only)."
)
@key_value_option(
    "--distill-option",
    "distill_options",
    help="A hyperparameter of `edgec distill` for --distill, e.g. epochs=2 or seed=1 "
    "(names as in `edgec distill --help`, with _ for -).",
)
@device_option(
    "--distill-device",
    help="Where --distill trains: auto is CUDA (bf16/fp16) when present, else the CPU.",
)
@click.option(
    "--min-retention",
    type=float,
    default=DEFAULT_MIN_RETENTION,
    show_default=True,
    help="With --distill: refuse (exit 1) when the student's retention is below this: "
    "student/teacher accuracy (classifiers) or entity F1 (taggers); for embedders the "
    "Spearman of the student's pairwise similarities against the teacher's (its own is 1.0).",
)
@force_option()
@click.option("--archive", is_flag=True, help="Also write OUTPUT.tar.gz.")
@targets_option
@json_option
@verbose_option
@click.pass_context
def build(
    ctx,
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
    revision,
    trust_remote_code,
    task,
    max_accuracy_drop,
    min_agreement,
    max_class_drop,
    gate_pairs,
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
    """Compile MODEL (a fine-tuned Hugging Face classifier, NER tagger or
    sentence-transformers folder, or its Hugging Face hub id) into a verified package.

    \b
    MODEL as a hub id (org/name or name; a folder of that name wins) comes from
    the Hugging Face cache, downloaded there first when online: only the cache
    with HF_HUB_OFFLINE=1 or when the hub cannot be reached. Any data option
    takes one split of a hub data set too: hf://datasets/ORG/NAME[:CONFIG]@SPLIT.

    \b
    Steps: load -> export ONNX (checked against PyTorch) -> compile for the
    target's backend and precision -> verify parity (accuracy; entity F1 for
    taggers; cosine and neighbours for embedders) and tokenizer consistency on
    --eval-data -> write the package atomically.

    \b
    --eval-data per task: labeled texts (CSV, TSV, JSONL, Parquet, dataset
    folder) for classifiers; CoNLL (token TAB tag per line), JSON Lines with
    tokens and ner_tags, or a dataset folder for taggers; any text file for
    embedders (text pairs with a score column add a Spearman check).
    A hub data set is read as its data files are (a ClassLabel column maps by
    label name); a tagger's needs tokens and ner_tags columns.

    \b
    Examples:
      edgec build ./teacher --target x86-cpu --eval-data test.csv -o dist/sentiment
      edgec build ./teacher --backend onnxruntime:int8,openvino:int8 \\
          --pick fastest --eval-data test.csv -o dist/fastest
      edgec build ./teacher --backend onnxruntime,openvino --precision int8,fp32 \\
          --eval-data test.csv -o dist/compared
      edgec build ./teacher --precision int8-auto --calibration-data train.csv \\
          --validation-data val.csv --eval-data test.csv -o dist/auto
      edgec build ./teacher --distill layers:3 --train-data train.csv \\
          --eval-data test.csv -o dist/student
      edgec build ./ner-tagger --eval-data test.conll -o dist/ner
      edgec build ./all-MiniLM-L6-v2 --eval-data corpus.csv -o dist/embedder
      edgec build distilbert-base-uncased-finetuned-sst-2-english \\
          --eval-data hf://datasets/stanfordnlp/sst2@validation -o dist/sst2
    """
    from edgec.backends.settings import parse_pairs
    from edgec.pipeline import BuildRequest, DataOptions
    from edgec.pipeline import build as run_build
    from edgec.targets import get_target
    from edgec.ui import RichUI
    from edgec.views import build_payload, candidates, package_summary
    from edgec_runtime.manifest import package_digest

    _refuse_distill_options_without_distill(ctx, distill_student)
    request = BuildRequest(
        model=model,
        target=get_target(target_name, targets_files),
        output=output,
        eval_data=eval_data,
        calibration_data=calibration_data,
        backend=backend,  # the pipeline reads NAME[:PRECISION] lists (parse_candidate)
        precision=precision,
        pick=pick,
        data=DataOptions(text_column, text_pair_column, label_column),
        max_length=max_length,
        revision=revision,
        trust_remote_code=trust_remote_code,
        task=task,
        thresholds=thresholds(max_accuracy_drop, min_agreement, max_class_drop, gate_pairs),
        options=parse_pairs(backend_options),  # typed and checked by the chosen backends
        verify=not no_verify,
        force=force,
        archive=archive,
        distill=distill_student,
        train_data=train_data,
        validation_data=validation_data,
        unlabeled=unlabeled,
        min_retention=min_retention,
        distill_options=hyperparameters.parse(distill_options),
        distill_device=distill_device,
    )
    manifest = run_build(request, RichUI(quiet=as_json))
    if as_json:
        render.print_json(build_payload(manifest, output))
    else:
        render.candidates_table(candidates(manifest))
        render.facts_table("edgec build", package_summary(manifest, output))
        click.echo(f"digest {package_digest(manifest)}")  # whole, for copying into a pin
        for warning in manifest["verification"].get("warnings", []):
            click.echo(f"warning: {warning}", err=True)
