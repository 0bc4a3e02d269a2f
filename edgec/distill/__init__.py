"""Knowledge distillation: a smaller student learns a fine-tuned teacher's outputs.

One module per job: `config` (the request and its checks), `students` (building the
student), `data` (the texts, labelled once by the teacher), `losses` (the objectives),
`trainer` (the KD Trainer), `training` (running it and saving the student),
`progress` (the terminal bar), `predict` (logits or vectors for raw texts), `report`
(what the student kept), `processes` (several data-parallel processes: ranks, the
launcher); `run.distill` calls them in order. What differs per task is a recipe:
`tasks` (the interface, and the classifier's), `tagging` (NER taggers: per-word KD,
entity F1) and `embedding` (sentence embedders: MSE + cosine, similarity Spearman).
"""

from edgec.distill.config import DistillConfig, Hyperparameters
from edgec.distill.run import distill

__all__ = ["DistillConfig", "Hyperparameters", "distill"]
