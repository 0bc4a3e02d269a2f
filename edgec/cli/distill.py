"""`edgec distill`: a fine-tuned teacher -> a smaller student model folder.

Its hyperparameter options come from `edgec.distill.Hyperparameters` (see
edgec.cli.hyperparameters); the options here are the run's, not the recipe's.
"""

from __future__ import annotations

from pathlib import Path

import click

from edgec.cli import render
from edgec.cli.hyperparameters import HyperparameterCommand
from edgec.cli.options import (
    column_options,
    data_file_option,
    device_option,
    force_option,
    is_verbose,
    json_option,
    max_length_option,
    output_option,
    revision_option,
    trust_remote_code_option,
    verbose_option,
)

ARGV_KEY = "edgec.distill.argv"


class DistillCommand(HyperparameterCommand):
    """Keeps the command's own arguments: `--processes` hands them to each worker."""

    def parse_args(self, ctx, args):
        ctx.meta[ARGV_KEY] = list(args)
        return super().parse_args(ctx, args)


def _process_count(_ctx, param, value):
    try:
        return int(str(value).strip())
    except ValueError:
        from edgec_runtime.errors import BadInput

        raise BadInput(f"--processes {value!r} is not a whole number: give 1 or more") from None


@click.command(cls=DistillCommand, hyperparameters_before="device")
@click.argument("teacher", type=click.Path(path_type=Path))
@click.option(
    "--student",
    required=True,
    help="layers:N (keep N of the teacher's layers, evenly spread: 6 -> 3 keeps 1,3,5 of "
    "a classifier, 0,2,4 of a tagger or embedder), layers:0,2,4 (keep those, 0-based; "
    "one: layers:0,) or a pretrained model folder.",
)
@data_file_option(
    "--train-data",
    required=True,
    help="Training texts (a tagger: tagged words, CoNLL/JSON Lines; an embedder: any "
    "texts); labels or tags feed the CE term when present.",
)
@data_file_option(
    "--validation-data",
    help="Texts for early stopping (default: 10% held out of the training data).",
)
@data_file_option(
    "--eval-data",
    help="Labeled texts (tagged words for a tagger, any texts for an embedder) for the "
    "report's metric and retention (default: validation).",
)
@data_file_option("--unlabeled", help="Extra texts the teacher labels (KD term only).")
@output_option("Student model folder to write.")
@column_options("the data files")
@device_option("--device", help="auto: CUDA (bf16/fp16 autocast) when present, else CPU.")
@max_length_option("Token limit (default: the teacher's).")
@revision_option("With a Hugging Face hub id as TEACHER: the branch, tag or commit sha.")
@trust_remote_code_option()
@click.option(
    "--processes",
    default="1",
    show_default=True,
    metavar="N",
    callback=_process_count,
    help="Train with N local CPU processes (data parallel, gloo; torch's launcher). "
    "--batch-size is per process.",
)
@click.option(
    "--resume",
    is_flag=True,
    help="Continue from the last complete checkpoint in OUTPUT/checkpoints.",
)
@force_option("Replace an existing OUTPUT.")
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
    revision,
    trust_remote_code,
    processes,
    resume,
    force,
    keep_checkpoints,
    as_json,
    **hyperparameters,
):
    """Distil TEACHER (a fine-tuned classifier or NER tagger folder, a
    sentence-transformers folder, or the Hugging Face hub id of one) into a smaller
    student. A data option takes hf://datasets/ORG/NAME[:CONFIG]@SPLIT.

    \b
    Loss, per task (plus optional hidden-state MSE and attention transfer):
      classifier: alpha * T^2 * KL(teacher || student at T) + (1 - alpha) * CE(labels)
      tagger:     the same per word (first subword; no padding or special tokens),
                  CE on gold tags where the data has them
      embedder:   MSE(student, teacher vector) + cosine-weight * (1 - cosine)
    Retention (what `edgec build --min-retention` gates), on --eval-data:
      classifier: student accuracy / teacher accuracy
      tagger:     student entity F1 / teacher entity F1 (seqeval, strict IOB2)
      embedder:   Spearman of the student's pairwise similarities against the
                  teacher's (the teacher's own is 1.0); top-10 neighbour overlap
                  is reported next to it
    Train data without labels (tags) trains on the teacher alone (KD only; an
    error with --alpha 0); an embedder needs no labels. OUTPUT is a standard
    Hugging Face model folder (an embedder's: a sentence-transformers folder with
    the teacher's pooling) that `edgec build` accepts, with distill-report.json.
    --device cuda without CUDA exits 3.

    \b
    Several processes (data parallel; rank 0 writes OUTPUT and reports):
      edgec distill ... --processes 2
      torchrun --nproc-per-node 2 -m edgec distill ...
      accelerate launch --multi_gpu --num_processes 2 -m edgec distill ...

    \b
    Example:
      edgec distill ./teacher --student layers:3 --train-data train.csv \\
          --validation-data val.csv --eval-data test.csv --epochs 2 -o ./student
    """
    from edgec.data import DataOptions
    from edgec.distill import DistillConfig, Hyperparameters
    from edgec.distill import distill as run_distill
    from edgec.distill import processes as procs
    from edgec.distill.report import summary_rows
    from edgec.hub import resolve_model
    from edgec.ui import RichUI
    from edgec_runtime.errors import EdgecError

    ctx = click.get_current_context()
    procs.check_processes(processes, device)
    teacher = resolve_model(teacher, revision).path  # a hub id: its cached snapshot

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
    if processes > 1 and not procs.launched_by_edgec():
        from edgec.distill.run import preflight

        preflight(config)  # a mistake is one line here, not one per process
        try:
            procs.launch(processes, [*ctx.meta[ARGV_KEY], "--device", "cpu"], is_verbose(ctx))
        except procs.ProcessesFailed as e:
            if str(e):
                click.secho(f"error: {e}", err=True, fg="red")
            ctx.exit(e.exit_code)
        return
    try:
        report = run_distill(config, RichUI(quiet=as_json or not procs.is_main()))
    except EdgecError as e:
        # rank 0 prints the one line; under --processes the launcher prints it
        if procs.settle_error(e):
            ctx.exit(e.exit_code)
        raise
    except KeyboardInterrupt:
        if procs.launched_by_edgec() or not procs.is_main():
            ctx.exit(130)
        raise
    if report is None:  # not rank 0: it only trained
        return
    if as_json:
        render.print_json(report)
    else:
        render.rows_table(f"edgec distill -> {output}", summary_rows(report))
