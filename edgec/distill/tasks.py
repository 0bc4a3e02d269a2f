"""What distillation does differently per task, behind one interface (`Recipe`).

The run (edgec.distill.run), the Trainer (edgec.distill.trainer) and the report are
the same for every task; a recipe supplies the parts that are not:

* which data files it reads and how the teacher labels them once, before training
  (logits per text, logits per word, a vector per text);
* the rows and the collator that batch them, and which row fields are the teacher's
  targets rather than model inputs;
* the tensor the loss reads off the student's forward pass, and the loss itself
  (edgec.distill.losses);
* the validation metric the Trainer logs, and the figure the retention gate reads:
  accuracy for classifiers, entity F1 for taggers, the rank correlation of pairwise
  similarities for embedders;
* any file the student folder needs beyond `save_pretrained` (an embedder's
  sentence-transformers modules).

`recipe_for` picks the recipe of a loaded teacher; this module holds the classifier's.
"""

from __future__ import annotations

import numpy as np

from edgec.distill.data import load_data, teacher_logits, training_rows
from edgec.distill.losses import classification_loss
from edgec.distill.predict import predict_logits
from edgec_runtime import iospec


class Recipe:
    """One task's distillation; subclasses fill in every attribute and method."""

    task = ""
    metric = ""  # what retention is the ratio of, as reports name it
    metric_key = ""  # its key in the report's teacher and student sections
    metric_format = "percent"  # percent (0..100), points (0..100) or share (0..1)
    agreement_meaning = ""  # what the report's `agreement` share counts
    validation_metric = ""  # the Trainer's validation metric, logged as eval_<name>
    validation_name = ""  # how the progress lines name it
    validation_percent = True  # shown as a percentage (else as a 4-digit share)
    target_keys: tuple[str, ...] = ()  # row fields that are targets, not model inputs
    label_names: tuple[str, ...] = ("labels",)  # what the Trainer hands compute_metrics
    uses_labels = True  # gold labels feed a CE term weighted by 1 - alpha
    # Defaults measured per task (benchmarks/NOTES.md, section 9). --hidden-weight left
    # at its default, for a student that can take the term (the teacher's tokenizer and
    # width): on only where it was measured to help.
    default_hidden_weight = 0.0
    default_alpha = 0.5  # --alpha left at its default: KD and CE weigh the same
    layers_from_top = False  # layers:N spreads down from the last layer, else up from 0

    def load_data(self, config, teacher, ui):
        """The DistillData of `config`'s files, read for this task."""
        raise NotImplementedError

    def training_rows(self, data, teacher, student, device: str):
        """(training rows, validation rows), the teacher's targets in each."""
        raise NotImplementedError

    def collator(self, tokenizer):
        raise NotImplementedError

    def prediction(self, student_out, inputs):
        """The tensor of the student's forward pass that the loss and metric read."""
        return student_out.logits

    def loss(self, weights, prediction, targets: dict):
        """(total, parts) of the task's own terms (hidden/attention transfer is added
        by the Trainer for every task)."""
        raise NotImplementedError

    def compute_metrics(self, eval_pred) -> dict[str, float]:
        raise NotImplementedError

    preprocess_logits = None  # the Trainer's preprocess_logits_for_metrics

    def validation_basis(self, validation) -> str:
        """What the validation metric is measured against (gold, or the teacher)."""
        return "gold labels" if self.has_gold(validation) else "agreement with the teacher"

    def has_gold(self, texts) -> bool:
        return getattr(texts, "labels", None) is not None

    def score(self, teacher, student, eval_set, device: str) -> dict:
        """Teacher and student on the eval set: {"teacher": {...}, "student": {...},
        "retention", "agreement"} (and any further figures)."""
        raise NotImplementedError

    def save_extra(self, config, teacher, student, out) -> None:
        """Files the student folder needs beyond the model and tokenizer (none here)."""


class ClassificationRecipe(Recipe):
    task = iospec.SEQUENCE_CLASSIFICATION
    metric = "accuracy"
    metric_key = "accuracy"
    agreement_meaning = "same predictions"
    validation_metric = "accuracy"
    validation_name = "accuracy"
    target_keys = ("labels", "teacher_logits")
    # the sentiment teacher, 3 seeds, layers 1, 3, 5 (benchmarks/NOTES.md, section 9):
    # KD only (alpha 1: with --augment 4 the gold labels are a fifth of the rows) and the
    # hidden-state term at weight 3 kept 97.99 +/- 0.71 % (worst 97.44); at weight 1
    # 97.59 +/- 1.17 % (worst 96.84); with CE beside it 97.04 +/- 0.71 % (worst 96.24)
    default_hidden_weight = 3.0
    default_alpha = 1.0
    layers_from_top = True

    def load_data(self, config, teacher, ui):
        return load_data(config, teacher, ui)

    def training_rows(self, data, teacher, student, device: str):
        return training_rows(data, teacher, student, device)

    def collator(self, tokenizer):
        from edgec.distill.trainer import DistillationCollator

        return DistillationCollator(tokenizer)

    def loss(self, weights, prediction, targets: dict):
        return classification_loss(
            weights, prediction, targets["teacher_logits"], targets["labels"]
        )

    def compute_metrics(self, eval_pred) -> dict[str, float]:
        from edgec.distill.trainer import accuracy_metric

        return accuracy_metric(eval_pred)

    def score(self, teacher, student, eval_set, device: str) -> dict:
        teacher_eval = teacher_logits(teacher, eval_set, device)
        student_eval = predict_logits(
            student.model,
            student.tokenizer,
            student.max_length,
            eval_set.texts,
            eval_set.pairs,
            device=device,
        )
        t_acc = accuracy(teacher_eval, eval_set.labels)
        s_acc = accuracy(student_eval, eval_set.labels)
        out = {
            "teacher": {"accuracy": t_acc},
            "student": {"accuracy": s_acc},
            "retention": (s_acc / t_acc) if t_acc else None,
            "agreement": float((teacher_eval.argmax(-1) == student_eval.argmax(-1)).mean()),
        }
        if out["retention"] is None:
            out["retention_note"] = (
                f"{eval_set.source} has no labels"
                if t_acc is None
                else f"the teacher scores {t_acc:.2f}% on {eval_set.source} (check that its "
                "labels match the model's id2label)"
            )
        return out


def accuracy(logits: np.ndarray, labels) -> float | None:
    if labels is None:
        return None
    return float((logits.argmax(-1) == np.asarray(labels)).mean()) * 100


def recipe_for(teacher) -> Recipe:
    """The recipe of a loaded teacher (`edgec.model.SourceModel`)."""
    if teacher.task == iospec.TOKEN_CLASSIFICATION:
        from edgec.distill.tagging import TaggingRecipe

        return TaggingRecipe(teacher.labels)
    if teacher.task == iospec.SENTENCE_EMBEDDING:
        from edgec.distill.embedding import EmbeddingRecipe

        return EmbeddingRecipe(teacher.task_facts)
    return ClassificationRecipe()
