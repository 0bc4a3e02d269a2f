"""Knowledge distillation: a smaller student learns a fine-tuned teacher's outputs.

`students` builds the student, `losses` defines the objective, `trainer` runs it with
the transformers Trainer, `report` measures what the student kept, and `run.distill`
ties them together.
"""

from edgec.distill.run import DistillConfig, Hyperparameters, distill

__all__ = ["DistillConfig", "Hyperparameters", "distill"]
