"""The distillation objective, as plain functions of tensors.

loss = alpha * T^2 * KL(teacher_T || student_T) + (1 - alpha) * CE(student, label)
       + hidden_weight * MSE(hidden states, mapped layers)
       + attention_weight * KL(attention distributions, last mapped layer)   (MiniLM)

The T^2 factor keeps the soft-target gradients on the same scale as the hard-label
ones when T changes (Hinton et al. 2015). Examples without a label (label -100, e.g.
from --unlabeled) contribute to the KD term only.
"""

from __future__ import annotations

from dataclasses import dataclass

IGNORE = -100


@dataclass
class LossWeights:
    alpha: float = 0.5
    temperature: float = 2.0
    hidden_weight: float = 0.0
    attention_weight: float = 0.0


def kd_loss(student_logits, teacher_logits, temperature: float):
    """Batch-mean KL between temperature-softened distributions, times T^2."""
    import torch.nn.functional as F

    t = temperature
    log_p_student = F.log_softmax(student_logits.float() / t, dim=-1)
    log_p_teacher = F.log_softmax(teacher_logits.float() / t, dim=-1)
    kl = F.kl_div(log_p_student, log_p_teacher, log_target=True, reduction="batchmean")
    return kl * t * t


def ce_loss(student_logits, labels):
    """Cross-entropy over labeled examples only; zero when the batch has none."""
    import torch.nn.functional as F

    labeled = labels != IGNORE
    if not bool(labeled.any()):
        return student_logits.sum() * 0.0
    return F.cross_entropy(student_logits[labeled].float(), labels[labeled])


def hidden_loss(student_hidden, teacher_hidden, layer_map, attention_mask):
    """Mean squared error between mapped hidden states, over real (unpadded) tokens.

    `layer_map` pairs (student, teacher) indices into the hidden-state tuples, where 0
    is the embedding output and i the output of layer i.
    """
    mask = attention_mask.unsqueeze(-1).float()
    tokens = mask.sum() * student_hidden[0].shape[-1]
    total = 0.0
    for s, t in layer_map:
        diff = (student_hidden[s].float() - teacher_hidden[t].float()) ** 2
        total = total + (diff * mask).sum() / tokens
    return total / len(layer_map)


def attention_loss(student_attn, teacher_attn, layer_pair, attention_mask):
    """MiniLM's attention transfer: KL between the self-attention distributions of one
    mapped layer pair (the last, by default), averaged over heads and real queries.
    Head counts may differ: then the distributions are averaged over heads first."""
    import torch

    s_index, t_index = layer_pair
    s = student_attn[s_index - 1].float()  # attentions[i - 1] belongs to layer i
    t = teacher_attn[t_index - 1].float()
    if s.shape[1] != t.shape[1]:
        s, t = s.mean(dim=1, keepdim=True), t.mean(dim=1, keepdim=True)
    eps = 1e-12
    kl = (t * (torch.log(t + eps) - torch.log(s + eps))).sum(-1)  # batch, heads, queries
    queries = attention_mask.unsqueeze(1).float()
    return (kl * queries).sum() / (queries.sum() * kl.shape[1])


def distillation_loss(
    weights: LossWeights,
    student_out,
    teacher_logits,
    labels,
    teacher_out=None,
    attention_mask=None,
    layer_map=None,
):
    """The total loss and its parts (floats, for logging)."""
    kd = kd_loss(student_out.logits, teacher_logits, weights.temperature)
    ce = ce_loss(student_out.logits, labels)
    total = weights.alpha * kd + (1.0 - weights.alpha) * ce
    parts = {"kd": float(kd.detach()), "ce": float(ce.detach())}
    if weights.hidden_weight and teacher_out is not None:
        mse = hidden_loss(
            student_out.hidden_states, teacher_out.hidden_states, layer_map, attention_mask
        )
        total = total + weights.hidden_weight * mse
        parts["hidden_mse"] = float(mse.detach())
    if weights.attention_weight and teacher_out is not None:
        att = attention_loss(
            student_out.attentions, teacher_out.attentions, layer_map[-1], attention_mask
        )
        total = total + weights.attention_weight * att
        parts["attention_kl"] = float(att.detach())
    return total, parts
