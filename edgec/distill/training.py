"""Training the student: the output folder, the Trainer's arguments, the run itself,
and the saved model folder that `edgec build` accepts.

`trainer.DistillationTrainer` holds the loss; this module decides how it is run
(schedule, evaluation and checkpointing, mixed precision, early stopping), keeps the
best checkpoint and removes the rest.
"""

from __future__ import annotations

import math
import os
import shutil
import time
from pathlib import Path

from edgec.distill.losses import LossWeights
from edgec_runtime.errors import BadInput

CHECKPOINTS = "checkpoints"


def offline_and_quiet() -> None:
    """Never ask the hub (set before transformers loads); in the CLI's quiet mode
    (TQDM_DISABLE) draw no loading or saving bars either."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if os.environ.get("TQDM_DISABLE"):
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()


def seed_everything(seed: int) -> None:
    """Python, NumPy and torch: the student's new weights depend on it."""
    from transformers import set_seed

    set_seed(seed)


def check_output(config) -> Path:
    """Refuse an output folder the run may not use, before any work (read-only, so
    every process of a multi-process run can check it)."""
    out = Path(config.output)
    checkpoints = out / CHECKPOINTS
    if config.resume:
        if resume_checkpoint(out) is None:
            partial = any(checkpoints.glob("checkpoint-*"))
            held = "only incomplete checkpoints" if partial else "no checkpoint"
            raise BadInput(f"--resume: {checkpoints} holds {held} to resume from; drop --resume")
        return out
    if out.exists() and any(out.iterdir()) and not config.force:
        hint = (
            "pass --resume to continue the interrupted run or --force to start over"
            if checkpoints.is_dir()
            else "pass --force to replace it or choose another -o"
        )
        raise BadInput(f"{out} already exists and is not empty: {hint}")
    return out


def prepare_output(config) -> Path:
    """The output folder, empty, or holding the checkpoints that --resume continues
    (then without the incomplete ones a kill left behind). Rank 0's job."""
    out = check_output(config)
    if config.resume:
        for folder in (out / CHECKPOINTS).glob("checkpoint-*"):
            if not complete_checkpoint(folder):
                shutil.rmtree(folder, ignore_errors=True)
        return out
    if out.exists() and any(out.iterdir()):
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    return out


def complete_checkpoint(folder: Path) -> bool:
    """Did the Trainer finish writing this checkpoint? It writes the weights, the
    optimizer, scheduler and RNG states, then `trainer_state.json` last; a run killed
    (SIGKILL) or interrupted (SIGINT) while saving leaves a folder without a readable
    state file, which the Trainer's own `resume_from_checkpoint=True` would pick."""
    import json

    try:
        json.loads((folder / "trainer_state.json").read_text(encoding="utf-8"))
        names = {p.name for p in folder.iterdir()}
    except (OSError, ValueError):
        return False
    weights = {"model.safetensors", "pytorch_model.bin"} & names
    return bool(weights) and {"optimizer.pt", "scheduler.pt"} <= names


def resume_checkpoint(out: Path) -> Path | None:
    """The last complete checkpoint under `out`, or None."""
    folders = []
    for folder in (Path(out) / CHECKPOINTS).glob("checkpoint-*"):
        step = folder.name.rsplit("-", 1)[1]
        if step.isdigit() and complete_checkpoint(folder):
            folders.append((int(step), folder))
    return max(folders)[1] if folders else None


def training_arguments(
    hp, out: Path, device: str, rows: int, processes: int = 1, label_names=("labels",)
):
    """The Trainer's `TrainingArguments` for the recipe `hp` on `rows` training rows,
    trained by `processes` data-parallel processes (--batch-size is per process);
    `label_names` are the batch fields validation hands the metric (the task recipe's).

    Creating them starts the processes' group (gloo on the CPU) when a launcher
    started several."""
    import torch
    from transformers import TrainingArguments

    global_batch = hp.batch_size * hp.grad_accum * processes
    steps_per_epoch = max(1, math.ceil(rows / global_batch))
    eval_steps = hp.eval_steps or steps_per_epoch
    if hp.max_steps:
        eval_steps = min(eval_steps, hp.max_steps)
    cuda = device.startswith("cuda")
    bf16 = cuda and torch.cuda.is_bf16_supported()
    return TrainingArguments(
        output_dir=str(out / CHECKPOINTS),
        num_train_epochs=hp.epochs,
        max_steps=hp.max_steps or -1,
        per_device_train_batch_size=hp.batch_size,
        per_device_eval_batch_size=max(64, hp.batch_size),
        gradient_accumulation_steps=hp.grad_accum,
        learning_rate=hp.learning_rate,
        weight_decay=hp.weight_decay,
        warmup_steps=hp.warmup_ratio,  # a float below 1 is a share of the total steps
        lr_scheduler_type="linear",
        max_grad_norm=hp.max_grad_norm,
        eval_strategy="steps",
        eval_steps=eval_steps,
        save_strategy="steps",
        save_steps=eval_steps,
        save_total_limit=2,
        load_best_model_at_end=True,
        # --resume continues early stopping where it was (its patience counter), too.
        restore_callback_states_from_checkpoint=True,
        # The distillation loss on validation, not its accuracy: on a few hundred
        # sentences accuracy moves in steps of a sentence or two and picked an early
        # checkpoint 2 points worse on test (benchmarks/NOTES.md, distillation).
        metric_for_best_model="loss",
        greater_is_better=False,
        logging_steps=hp.logging_steps,
        logging_first_step=True,
        report_to="none",
        disable_tqdm=True,
        remove_unused_columns=False,
        label_names=list(label_names),
        seed=hp.seed,
        data_seed=hp.seed,
        use_cpu=not cuda,
        bf16=bf16,
        fp16=cuda and not bf16,
        dataloader_pin_memory=cuda,
        ddp_backend="gloo" if processes > 1 and not cuda else None,
        # every parameter of a classifier or tagger student takes part in its loss, and an
        # embedder's unused pooler is frozen (edgec.distill.students.freeze_unpooled)
        ddp_find_unused_parameters=False,
    )


def build_trainer(
    hp, args, student, teacher, rows, layer_map, recipe, console=None, callbacks=None
):
    """A `DistillationTrainer` for the task `recipe` (edgec.distill.tasks) over
    (training rows, validation rows), reporting through `console` (a rich Console, or
    None for silence) and never printing raw logs."""
    from transformers import EarlyStoppingCallback

    from edgec.distill.progress import quiet_trainer
    from edgec.distill.trainer import DistillationTrainer, FinalEvaluation

    train_rows, val_rows = rows
    trainer = DistillationTrainer(
        model=student.model,
        args=args,
        train_dataset=train_rows,
        eval_dataset=val_rows,
        data_collator=recipe.collator(student.tokenizer),
        processing_class=student.tokenizer,
        compute_metrics=recipe.compute_metrics,
        preprocess_logits_for_metrics=recipe.preprocess_logits,
        callbacks=[
            FinalEvaluation(),
            EarlyStoppingCallback(early_stopping_patience=hp.patience),
            *(callbacks or []),
        ],
        teacher=teacher.model,
        weights=LossWeights(
            hp.alpha, hp.temperature, hp.hidden_weight, hp.attention_weight, hp.cosine_weight
        ),
        recipe=recipe,
        layer_map=layer_map,
    )
    quiet_trainer(
        trainer,
        console,
        metric=recipe.validation_metric,
        metric_name=recipe.validation_name,
        percent=recipe.validation_percent,
    )
    return trainer


def train(trainer, resume_from: Path | None) -> float:
    """Run (or continue, from the checkpoint `resume_from`) the training; seconds it took."""
    started = time.perf_counter()
    trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
    return time.perf_counter() - started


def save_student(trainer, student, out: Path, keep_checkpoints: bool, main: bool = True) -> None:
    """Write the best checkpoint's model and the student's tokenizer (truncating where
    training did) to `out`; `student.model` becomes that model, in eval mode. Only the
    main process writes; the others wait until every process is past training, so no
    checkpoint is removed while one still reads it."""
    from edgec.distill.processes import barrier

    student.model = trainer.model.eval()
    barrier()
    if not main:
        return
    student.model.save_pretrained(out)
    student.tokenizer.model_max_length = student.max_length
    student.tokenizer.save_pretrained(out)
    if not keep_checkpoints:
        shutil.rmtree(out / CHECKPOINTS, ignore_errors=True)
