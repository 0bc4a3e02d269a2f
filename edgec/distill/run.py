"""`distill()`: teacher + student spec + data -> a trained student folder and a report.

Read it top to bottom: check the request, load the teacher, build the student, let the
teacher label the data, train with `DistillationTrainer`, keep the best checkpoint,
save a standard Hugging Face model folder that `edgec build` accepts, and measure what
the student kept. Each step is a function of the module named for its job; what
differs per task (classifier, tagger, embedder) comes from its recipe
(edgec.distill.tasks).
"""

from __future__ import annotations

from dataclasses import replace

from edgec.distill import processes, training
from edgec.distill.config import (
    DistillConfig,
    check_hyperparameters,
    parse_layer_map,
    resolve_alpha,
    resolve_device,
    resolve_transfer,
)
from edgec.distill.report import build_report, plan_note, training_record, write_report
from edgec.distill.students import build_student, parse_student_spec
from edgec.distill.tasks import recipe_for
from edgec.model import load_source_model, num_layers
from edgec.model_files import peek_task
from edgec.ui import SilentUI
from edgec_runtime.errors import BadInput
from edgec_runtime.iospec import task_spec


def preflight(config: DistillConfig) -> str:
    """The checks that need no model or data (the recipe, the student spec, the device,
    the output folder); the device to train on. `edgec distill --processes` runs them
    before it launches anything."""
    check_hyperparameters(config.hp)
    parse_student_spec(config.student)
    device = resolve_device(config.device)
    training.check_output(config)
    return device


def distill(config: DistillConfig, ui=None, callbacks=None) -> dict | None:
    """Train the student, save it to `config.output`, return (and save) the report.

    Under a launcher (torchrun, accelerate launch, `edgec distill --processes`) every
    process calls this; they train together, and rank 0 alone writes the student and
    the report and speaks through `ui`. The other ranks return None.
    """
    training.offline_and_quiet()
    main = processes.is_main()
    ui = (ui or SilentUI()) if main else SilentUI()
    hp = config.hp
    device = processes.local_device(preflight(config))
    spec = parse_student_spec(config.student)

    task = peek_task(config.teacher, None, config.trust_remote_code)
    if not task_spec(task).distillable:
        raise BadInput(f"distillation does not support {task} models; {config.teacher} is one")
    teacher = load_source_model(
        config.teacher,
        trust_remote_code=config.trust_remote_code,
        max_length=config.max_length,
        task=task,
    )
    recipe = recipe_for(teacher)
    training.seed_everything(hp.seed)
    student = build_student(spec, teacher, config.max_length, recipe.layers_from_top)
    hp = resolve_transfer(hp, teacher, student, recipe.default_hidden_weight)
    hp = resolve_alpha(hp, recipe.default_alpha)
    config = replace(config, hp=hp)
    data = recipe.load_data(config, teacher, ui)
    if len(data.train) == 0:
        raise BadInput(f"{config.train_data} gives an empty training set: add examples")
    ui.info(plan_note(teacher, student))
    if data.augmented is not None:
        ui.info(
            f"--augment {hp.augment}: {len(data.augmented)} copies of the {len(data.train)} "
            "training texts with words swapped, labelled by the teacher (KD term only)"
        )

    rows = recipe.training_rows(data, teacher, student, device)
    layer_map = parse_layer_map(
        hp.layer_map,
        num_layers(teacher.config),
        num_layers(student.model.config),
        student.kept_layers,
    )
    out = training.check_output(config)
    args = training.training_arguments(
        hp, out, device, len(rows[0]), processes.world_size(), recipe.label_names
    )
    with args.main_process_first(desc="preparing the output folder"):
        if main:
            training.prepare_output(config)
    resume_from = training.resume_checkpoint(out) if config.resume else None
    trainer = training.build_trainer(
        hp, args, student, teacher, rows, layer_map, recipe, getattr(ui, "console", None), callbacks
    )
    seconds = training.train(trainer, resume_from)
    training.save_student(trainer, student, out, config.keep_checkpoints, main)
    if not main:
        return None
    recipe.save_extra(config, teacher, student, out)  # e.g. an embedder's modules.json

    record = training_record(trainer, seconds, resume_from, data.validation, recipe)
    report = build_report(config, teacher, student, data, record, layer_map, recipe)
    write_report(report, out)
    return report


__all__ = ["distill", "preflight"]
