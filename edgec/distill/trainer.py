"""A transformers `Trainer` that optimizes the distillation loss.

The Trainer supplies what a training loop needs and nobody wants to rewrite: AdamW with
linear warm-up and decay, gradient clipping and accumulation, mixed precision on CUDA,
evaluation with early stopping, keeping the best checkpoint, and resuming an
interrupted run. This module only adds the loss (`compute_loss`, the same for every
task: the task's own terms come from its recipe, edgec.distill.tasks), the
classifier's collator that carries the teacher's logits next to the student's
inputs, its metric and two callbacks; `training` configures and runs it, `progress`
draws it.
"""

from __future__ import annotations

from transformers import Trainer, TrainerCallback

from edgec.distill.losses import IGNORE, LossWeights, transfer_loss

TEACHER_LOGITS = "teacher_logits"


class DistillationCollator:
    """Pads the student's inputs per batch; stacks labels and the teacher's logits."""

    def __init__(self, tokenizer):
        from transformers import DataCollatorWithPadding

        self.pad = DataCollatorWithPadding(tokenizer)

    def __call__(self, features: list[dict]) -> dict:
        import torch

        batch = self.pad(
            [{k: v for k, v in f.items() if k not in ("labels", TEACHER_LOGITS)} for f in features]
        )
        batch["labels"] = torch.tensor([f["labels"] for f in features], dtype=torch.long)
        batch[TEACHER_LOGITS] = torch.tensor(
            [f[TEACHER_LOGITS] for f in features], dtype=torch.float32
        )
        return batch


class DistillationTrainer(Trainer):
    """`Trainer` whose loss is the task's distillation loss (KD + CE for classifiers
    and taggers, MSE + cosine for embedders) plus hidden-state and attention transfer.

    The teacher's targets arrive precomputed in each batch (the teacher is frozen and
    in eval mode, so computing them once is exact and saves a teacher forward pass per
    step). The teacher itself runs per batch only when hidden states or attention
    maps are transferred, which also requires both models to share a tokenizer.
    """

    # The loss is a per-batch mean: let the Trainer divide it by the accumulation steps.
    loss_is_scaled_for_ga = False

    def __init__(self, *args, teacher=None, weights: LossWeights, recipe, layer_map=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.weights = weights
        self.recipe = recipe
        self.layer_map = layer_map
        self.teacher = teacher
        self.uses_internals = bool(weights.hidden_weight or weights.attention_weight)
        if self.uses_internals:
            self.teacher.to(self.args.device).eval()
            for p in self.teacher.parameters():
                p.requires_grad_(False)
        self._parts: dict[str, list[float]] = {}

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        import torch
        from transformers.modeling_outputs import SequenceClassifierOutput

        targets = {key: inputs.pop(key) for key in self.recipe.target_keys}
        internals = self.uses_internals and model.training
        flags = {
            "output_hidden_states": internals and bool(self.weights.hidden_weight),
            "output_attentions": internals and bool(self.weights.attention_weight),
        }
        student_out = model(**inputs, **flags)
        prediction = self.recipe.prediction(student_out, inputs)
        loss, parts = self.recipe.loss(self.weights, prediction, targets)
        if internals:
            with torch.no_grad():
                teacher_out = self.teacher(**inputs, **flags)
            extra, extra_parts = transfer_loss(
                self.weights,
                student_out,
                teacher_out,
                inputs.get("attention_mask"),
                self.layer_map,
            )
            loss, parts = loss + extra, {**parts, **extra_parts}
        if model.training:
            for name, value in parts.items():
                self._parts.setdefault(name, []).append(value)
        # Only the prediction goes back: hidden states of ragged batches cannot be concatenated.
        if return_outputs:
            return loss, SequenceClassifierOutput(loss=loss, logits=prediction)
        return loss

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        if "loss" in logs and self._parts:
            for name, values in self._parts.items():
                logs[name] = round(sum(values) / len(values), 4)
            self._parts = {}
        super().log(logs, start_time)


def accuracy_metric(eval_pred) -> dict[str, float]:
    logits, labels = eval_pred
    keep = labels != IGNORE
    return {"accuracy": float((logits.argmax(-1)[keep] == labels[keep]).mean())}


class FinalEvaluation(TrainerCallback):
    """Evaluate and save at the last step too, so the best-checkpoint choice sees it
    even when the run length is not a multiple of the evaluation interval."""

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step >= state.max_steps:
            control.should_evaluate = True
            control.should_save = True
        return control


class InterruptAt(TrainerCallback):
    """Raise KeyboardInterrupt after a given step: how tests simulate a killed run."""

    def __init__(self, step: int):
        self.step = step

    def on_save(self, args, state, control, **kwargs):
        if state.global_step >= self.step:
            raise KeyboardInterrupt(f"interrupted after step {state.global_step}")
