"""The distillation objectives, one per task, as plain functions of tensors.

Sequence classification (one distribution per text):
  loss = alpha * T^2 * KL(teacher_T || student_T) + (1 - alpha) * CE(student, label)
Token classification (one distribution per word): the same two terms per token, over
  the positions the tagger labels (each word's first subword, never padding or special
  tokens), averaged over those positions; CE only where the data has gold tags.
Sentence embeddings (one vector per text, after the folder's pooling):
  loss = MSE(student, teacher) + cosine_weight * (1 - cos(student, teacher))
  the sentence-transformers distillation recipe (the student regresses on the
  teacher's vector); the cosine term keeps normalized vectors, whose MSE is tiny,
  learning direction at a useful scale.
Any task, with a student that shares the teacher's tokenizer, may add
  + hidden_weight * MSE(hidden states, mapped layers)   (on by default for classifiers, taggers)
  + attention_weight * KL(attention distributions, last mapped layer)   (MiniLM)

The T^2 factor keeps the soft-target gradients on the same scale as the hard-label
ones when T changes (Hinton et al. 2015). Examples without a label (label -100, e.g.
from --unlabeled) contribute to the KD term only.

Terms averaged over a count that differs between batch halves (labelled rows, tagged
words, real tokens) divide by `per_process(count)`, the count averaged over the
processes, so that N processes, whose gradients DDP averages, train the student one
process trains on the whole batch.
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
    cosine_weight: float = 1.0


def per_process(count):
    """`count` (a tensor) averaged over the data-parallel processes while gradients are
    being computed; `count` itself in one process or without gradients (evaluation).

    DDP averages the processes' gradients, so process r dividing its sum by this mean
    count makes the step sum(all sums) / sum(all counts): the one-process loss. Every
    process must call it the same number of times per step (it is a collective): call
    it before any early return.
    """
    import torch

    dist = torch.distributed
    if not (torch.is_grad_enabled() and dist.is_available() and dist.is_initialized()):
        return count
    if dist.get_world_size() == 1:
        return count
    total = count.detach().float().clone()
    dist.all_reduce(total)
    return total / dist.get_world_size()


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
    count = per_process(labeled.sum())
    if not bool(labeled.any()):
        return student_logits.sum() * 0.0
    ce = F.cross_entropy(student_logits[labeled].float(), labels[labeled], reduction="sum")
    return ce / count


def hidden_loss(student_hidden, teacher_hidden, layer_map, attention_mask):
    """Mean squared error between mapped hidden states, over real (unpadded) tokens.

    `layer_map` pairs (student, teacher) indices into the hidden-state tuples, where 0
    is the embedding output and i the output of layer i.
    """
    mask = attention_mask.unsqueeze(-1).float()
    tokens = per_process(mask.sum()) * student_hidden[0].shape[-1]
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
    return (kl * queries).sum() / (per_process(queries.sum()) * kl.shape[1])


def classification_loss(weights: LossWeights, logits, teacher_logits, labels):
    """KD at temperature T plus CE on the labels, weighted by alpha; and its parts."""
    kd = kd_loss(logits, teacher_logits, weights.temperature)
    ce = ce_loss(logits, labels)
    total = weights.alpha * kd + (1.0 - weights.alpha) * ce
    return total, {"kd": float(kd.detach()), "ce": float(ce.detach())}


def token_kd_loss(student_logits, teacher_logits, mask, temperature: float):
    """`kd_loss` per token over the positions `mask` keeps (batch, sequence), averaged
    over them: a long sentence weighs by its words, and padding, special tokens and
    continuation subwords weigh nothing. Zero when the batch keeps none."""
    keep = mask.bool()
    count = per_process(keep.sum())
    if not bool(keep.any()):
        return student_logits.sum() * 0.0
    kd = kd_loss(student_logits[keep], teacher_logits[keep], temperature)
    return kd * keep.sum() / count  # batchmean over this process's words, made global


def tagging_loss(weights: LossWeights, logits, teacher_logits, kd_mask, labels):
    """Per-token KD on the labelled positions plus per-token CE on the gold tags."""
    kd = token_kd_loss(logits, teacher_logits, kd_mask, weights.temperature)
    ce = ce_loss(logits.flatten(0, 1), labels.flatten())
    total = weights.alpha * kd + (1.0 - weights.alpha) * ce
    return total, {"kd": float(kd.detach()), "ce": float(ce.detach())}


def embedding_loss(weights: LossWeights, embedding, teacher_embedding):
    """MSE of the student's sentence vectors to the teacher's, plus cosine_weight times
    their mean cosine distance."""
    import torch.nn.functional as F

    student, teacher = embedding.float(), teacher_embedding.float()
    mse = F.mse_loss(student, teacher)
    distance = (1.0 - F.cosine_similarity(student, teacher, dim=-1)).mean()
    total = mse + weights.cosine_weight * distance
    return total, {"mse": float(mse.detach()), "cosine_distance": float(distance.detach())}


def transfer_loss(weights: LossWeights, student_out, teacher_out, attention_mask, layer_map):
    """The optional hidden-state and attention terms (zero and no parts without them)."""
    total, parts = 0.0, {}
    if weights.hidden_weight:
        mse = hidden_loss(
            student_out.hidden_states, teacher_out.hidden_states, layer_map, attention_mask
        )
        total = total + weights.hidden_weight * mse
        parts["hidden_mse"] = float(mse.detach())
    if weights.attention_weight:
        att = attention_loss(
            student_out.attentions, teacher_out.attentions, layer_map[-1], attention_mask
        )
        total = total + weights.attention_weight * att
        parts["attention_kl"] = float(att.detach())
    return total, parts
