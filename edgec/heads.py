"""The part of each task that goes into the graph after the encoder, in torch.

A classifier's or tagger's graph output is the model's own logits. An embedder's is
the pooled, optionally L2-normalized sentence vector, computed exactly as
sentence-transformers' Pooling and Normalize modules compute it, so the exported
graph answers what `SentenceTransformer.encode` answers and the device runs no
pooling code of its own.

torch is imported when a head is built, never at import time.
"""

from __future__ import annotations

from edgec_runtime import iospec

# sentence-transformers clamps the token count so an all-padding row cannot divide by 0
MEAN_POOLING_EPS = 1e-9
NORMALIZE_EPS = 1e-12  # torch.nn.functional.normalize's default


def task_outputs(model, task: str, facts: dict, inputs: dict):
    """The task's graph output for one batch of torch inputs (named as the model's)."""
    if task != iospec.SENTENCE_EMBEDDING:
        return model(**inputs).logits
    return pool(model(**inputs).last_hidden_state, inputs["attention_mask"], facts)


def pool(tokens, attention_mask, facts: dict):
    """The sentence vector from the encoder's token vectors, as the model folder's
    Pooling (and Normalize) modules compute it; distillation trains a student through
    this same function, so it learns the vector the package will answer."""
    import torch

    mask = attention_mask.unsqueeze(-1).to(tokens.dtype)
    mode = facts["pooling"]
    if mode == "cls":
        pooled = tokens[:, 0]
    elif mode == "max":
        pooled = tokens.masked_fill(mask == 0, torch.finfo(tokens.dtype).min).max(dim=1).values
    else:  # mean over the tokens the attention mask keeps
        summed = (tokens * mask).sum(dim=1)
        pooled = summed / mask.sum(dim=1).clamp(min=MEAN_POOLING_EPS)
    if facts.get("normalize"):
        pooled = torch.nn.functional.normalize(pooled, p=2, dim=1, eps=NORMALIZE_EPS)
    return pooled


def graph_module(model, task: str, facts: dict, input_names: list[str]):
    """A module taking the inputs positionally (as the exporter passes them) and
    returning only the task's output."""
    import torch

    class TaskGraph(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, *args):
            return task_outputs(self.model, task, facts, dict(zip(input_names, args, strict=True)))

    return TaskGraph().eval()
