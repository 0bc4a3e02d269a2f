"""Knowledge distillation: a smaller student learns a fine-tuned teacher's outputs.

One module per job: `config` (the request and its checks), `students` (building the
student), `data` (the texts, labelled once by the teacher), `losses` (the objective),
`trainer` (the KD Trainer), `training` (running it and saving the student),
`progress` (the terminal bar), `predict` (logits for raw texts), `report` (what the
student kept), `processes` (several data-parallel processes: ranks, the launcher);
`run.distill` calls them in order.
"""

from edgec.distill.config import DistillConfig, Hyperparameters
from edgec.distill.run import distill

__all__ = ["DistillConfig", "Hyperparameters", "distill"]
