"""Training progress in edgec's voice: one rich bar with the latest loss and the ETA.

The transformers Trainer's own reporting (tqdm bars, one nested per evaluation, and
`print(logs)` of raw dicts when tqdm is off) is replaced by `TrainingProgress`;
`quiet_trainer` takes the Trainer's printer off so nothing else reaches stdout.
"""

from __future__ import annotations

import math
import os
import time

from transformers import TrainerCallback

LOSS_PARTS = ("kd", "ce", "mse", "cosine_distance", "hidden_mse", "attention_kl")
# Test-only (tests/test_distill_processes.py): seconds to wait after each checkpoint, so
# a test can signal a run at a checkpoint however loaded the machine is.
PAUSE_ENV = "EDGEC_TEST_PAUSE_AFTER_SAVE"


class PauseAfterSave(TrainerCallback):
    def __init__(self, seconds: float):
        self.seconds = seconds

    def on_save(self, args, state, control, **kwargs):
        time.sleep(self.seconds)


def quiet_trainer(trainer, console=None, **progress) -> None:
    """No raw log dicts on stdout; a `TrainingProgress` bar when there is a console."""
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    trainer.remove_callback(PrinterCallback)
    trainer.remove_callback(ProgressCallback)
    if console is not None:
        trainer.add_callback(TrainingProgress(console, **progress))
    if os.environ.get(PAUSE_ENV):
        trainer.add_callback(PauseAfterSave(float(os.environ[PAUSE_ENV])))


def _grad_norm(logs) -> str:
    grad = logs.get("grad_norm")
    return f"{grad:.3f}" if isinstance(grad, float) and math.isfinite(grad) else "-"


class TrainingProgress(TrainerCallback):
    """A bar of optimizer steps with the latest loss (and validation metric) and ETA.

    `log_lines` also prints a line per log, which `edgec distill` wants (the loss's
    parts, lr, grad norm: what one looks at to tune a recipe); `transient` removes the
    bar when training ends. `metric` is the key of the task's validation metric (logged
    as eval_<metric>: edgec.distill.tasks), `metric_name` how it reads, shown as a
    percentage when `percent`.
    """

    def __init__(
        self,
        console,
        description="distilling",
        log_lines=True,
        transient=True,
        metric="accuracy",
        metric_name="accuracy",
        percent=True,
    ):
        self.console = console
        self.description = description
        self.log_lines = log_lines
        self.transient = transient
        self.metric, self.metric_name, self.percent = metric, metric_name, percent
        self.progress = None
        self.task = None
        self.loss = self.validation = ""

    def on_train_begin(self, args, state, control, **kwargs):
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.progress = Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            MofNCompleteColumn(),
            "{task.fields[status]}",
            TimeElapsedColumn(),
            "ETA",
            TimeRemainingColumn(),
            console=self.console,
            transient=self.transient,
        )
        self.progress.start()
        self.task = self.progress.add_task(
            self.description, total=state.max_steps, completed=state.global_step, status=""
        )

    def on_step_end(self, args, state, control, **kwargs):
        if self.progress is not None:
            self.progress.update(self.task, completed=state.global_step)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if self.progress is None or not logs:
            return
        if "loss" in logs:
            self.loss = f"loss {logs['loss']:.4f}"
            if self.log_lines:
                parts = "  ".join(f"{k} {logs[k]:.4f}" for k in LOSS_PARTS if k in logs)
                self.console.print(
                    f"step {state.global_step}/{state.max_steps}  loss {logs['loss']:.4f}  "
                    f"{parts}  lr {logs.get('learning_rate', 0):.2e}  "
                    f"grad-norm {_grad_norm(logs)}"
                )
        elif f"eval_{self.metric}" in logs:
            value = logs[f"eval_{self.metric}"]
            short = f"{value * 100:.1f}%" if self.percent else f"{value:.4f}"
            self.validation = f"validation {short}"
            if self.log_lines:
                shown = f"{value * 100:.2f}%" if self.percent else f"{value:.4f}"
                self.console.print(
                    f"[bold]validation[/] step {state.global_step}: "
                    f"{self.metric_name} {shown}  loss {logs.get('eval_loss', 0):.4f}"
                )
        status = "  ".join(s for s in (self.loss, self.validation) if s)
        self.progress.update(self.task, status=status)

    def on_train_end(self, args, state, control, **kwargs):
        if self.progress is not None:
            self.progress.update(self.task, completed=state.global_step)
            self.progress.stop()
            self.progress = None
