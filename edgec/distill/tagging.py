"""Distilling a token classifier (NER tagger): per-word KD on the teacher's tag
distribution, CE on gold tags where the data has them, retention in entity F1.

A tagger is trained and read at one position per word, its first subword (every
other subword, the special tokens and the padding carry no label: examples/ner and
edgec.verify align the same way). The teacher tags every sentence's words once,
before training, in its own tokenization; each row then puts the teacher's word
logits on the student's first subword of the same word. So a student with another
tokenizer learns the same words' tags, and a word one of the two truncates is left
out of the KD term instead of being matched with some other word.

Retention is the student's entity F1 over the teacher's, both against the gold tags
of the eval set (seqeval, strict IOB2: edgec.metrics, the figure verification gates).
"""

from __future__ import annotations

import numpy as np

from edgec.distill.data import DistillData, augmented_texts, split_validation
from edgec.distill.losses import IGNORE, tagging_loss
from edgec.distill.predict import first_subwords, predict_word_logits
from edgec.distill.tasks import Recipe
from edgec.metrics import entity_scores, sentence_entities, tag_agreement_share
from edgec_runtime import iospec
from edgec_runtime.errors import BadInput

TEACHER_LOGITS, KD_MASK = "teacher_logits", "kd_mask"


class TaggingRecipe(Recipe):
    task = iospec.TOKEN_CLASSIFICATION
    metric = "entity F1"
    metric_key = "entity_f1"
    metric_format = "points"
    agreement_meaning = "same word tags"
    validation_metric = "entity_f1"
    validation_name = "entity F1"
    target_keys = ("labels", TEACHER_LOGITS, KD_MASK)
    # the WNUT-16 tagger, seed 42, entity F1 retention: layers 0, 2, 4 95.9 % with the
    # hidden-state term, 95.3 % without; layers 1, 3, 5 90.4 % with it, 86.0 % without
    default_hidden_weight = 1.0
    layers_from_top = False

    def __init__(self, labels: list[str]):
        self.labels = list(labels)
        self.label2id = {name: i for i, name in enumerate(self.labels)}

    def has_gold(self, texts) -> bool:
        return getattr(texts, "tags", None) is not None

    # ------------------------------------------------------------ data

    def load_data(self, config, teacher, ui) -> DistillData:
        from edgec.data.tagged import load_tagged_set

        train = load_tagged_set(config.train_data, label2id=self.label2id)
        if train.tags is None:
            if config.hp.alpha == 0:
                raise BadInput(
                    f"{config.train_data} has no tags and --alpha 0 trains on tags only: "
                    "add a tag to every word or raise --alpha to learn from the teacher"
                )
            ui.note(f"{config.train_data} has no tags: training on the teacher's soft tags only")
        if config.validation_data:
            validation = load_tagged_set(config.validation_data, label2id=self.label2id)
        else:
            train, validation = split_validation(train, config.hp.seed)
        eval_set = (
            load_tagged_set(config.eval_data, label2id=self.label2id)
            if config.eval_data
            else validation
        )
        unlabeled = load_words(config.unlabeled, config.data) if config.unlabeled else None
        for warning in dict.fromkeys([*train.warnings, *validation.warnings, *eval_set.warnings]):
            ui.note(warning)  # each file's IOB2 warning once, in file order
        copies = augmented_texts(train, teacher, config.hp)
        augmented = untagged(copies) if copies is not None else None
        return DistillData(train, validation, eval_set, unlabeled, augmented)

    def training_rows(self, data, teacher, student, device: str):
        teacher.model.to(device)

        def word_logits(tagged):
            return predict_word_logits(
                teacher.model, teacher.tokenizer, teacher.max_length, tagged.words, device=device
            )

        def rows(tagged, tags, logits):
            return encode_tagged(student.tokenizer, student.max_length, tagged.words, tags, logits)

        train = rows(data.train, data.train.tags, word_logits(data.train))
        for extra in data.extra():
            train += rows(extra, None, word_logits(extra))
        val_logits = word_logits(data.validation)
        # Validation scores entity F1 on gold tags, or against the teacher's tags without them.
        val_tags = data.validation.tags or [argmax_ids(rows) for rows in val_logits]
        return train, rows(data.validation, val_tags, val_logits)

    def collator(self, tokenizer):
        return TaggingCollator(tokenizer, len(self.labels))

    # ------------------------------------------------------------ training

    def loss(self, weights, prediction, targets: dict):
        return tagging_loss(
            weights, prediction, targets[TEACHER_LOGITS], targets[KD_MASK], targets["labels"]
        )

    @staticmethod
    def preprocess_logits(logits, labels):
        """Only the tag ids are kept between validation batches, not [n, seq, tags]."""
        return logits.argmax(-1)

    def compute_metrics(self, eval_pred) -> dict[str, float]:
        """Entity F1 (a share) at the labelled positions: gold, or the teacher's tags."""
        predicted_ids, label_ids = eval_pred
        gold, predicted = [], []
        for ids, labels in zip(predicted_ids, label_ids, strict=True):
            keep = labels != IGNORE
            gold.append([self.labels[int(t)] for t in labels[keep]])
            predicted.append([self.labels[int(t)] for t in ids[keep]])
        return {"entity_f1": entity_scores(gold, predicted)["f1"] / 100}

    # ------------------------------------------------------------ report

    def score(self, teacher, student, eval_set, device: str) -> dict:
        t_logits = predict_word_logits(
            teacher.model, teacher.tokenizer, teacher.max_length, eval_set.words, device=device
        )
        s_logits = predict_word_logits(
            student.model, student.tokenizer, student.max_length, eval_set.words, device=device
        )
        t_tags, s_tags = self.word_tags(t_logits), self.word_tags(s_logits)
        gold = eval_set.tag_names(self.labels) if eval_set.tags is not None else None
        t_f1 = entity_scores(gold, t_tags)["f1"] if gold is not None else None
        s_f1 = entity_scores(gold, s_tags)["f1"] if gold is not None else None
        out = {
            "teacher": {"entity_f1": t_f1},
            "student": {
                "entity_f1": s_f1,
                "entity_f1_vs_teacher": entity_scores(t_tags, s_tags)["f1"],
                "kl_to_teacher": word_kl(t_logits, s_logits),
            },
            "retention": (s_f1 / t_f1) if t_f1 else None,
            "agreement": tag_agreement_share(t_tags, s_tags),
            "gold_entities": sum(map(len, sentence_entities(gold))) if gold else None,
        }
        if out["retention"] is None:
            out["retention_note"] = (
                f"{eval_set.source} has no gold tags"
                if gold is None
                else f"the teacher's entity F1 is 0 on {eval_set.source} "
                "(check that its tags match the model's id2label)"
            )
        return out

    def word_tags(self, word_logits: list[np.ndarray]) -> list[list[str]]:
        """Each word's tag name; a word truncation cut off (a NaN row) is O, so it still
        counts against recall, as verification counts it."""
        outside = "O" if "O" in self.label2id else self.labels[0]
        return [
            [outside if np.isnan(row).any() else self.labels[int(row.argmax())] for row in rows]
            for rows in word_logits
        ]


def argmax_ids(rows: np.ndarray) -> list[int]:
    """The teacher's tag id per word, IGNORE for a word it truncated."""
    return [IGNORE if np.isnan(row).any() else int(row.argmax()) for row in rows]


def word_kl(teacher: list[np.ndarray], student: list[np.ndarray]) -> float | None:
    """Mean KL(teacher || student) at T = 1 over the words both models kept: how far
    the student's tag distributions are from the teacher's (0: identical)."""
    from scipy.special import log_softmax

    t = np.concatenate([rows for rows in teacher if len(rows)] or [np.zeros((0, 1))])
    s = np.concatenate([rows for rows in student if len(rows)] or [np.zeros((0, 1))])
    kept = ~(np.isnan(t).any(axis=1) | np.isnan(s).any(axis=1))
    if not kept.any():
        return None
    log_t, log_s = log_softmax(t[kept], axis=1), log_softmax(s[kept], axis=1)
    return float((np.exp(log_t) * (log_t - log_s)).sum(axis=1).mean())


def encode_tagged(tokenizer, max_length, words, tags, word_logits) -> list[dict]:
    """Trainer rows: the student's inputs for the pre-split words (unpadded); per
    token, the gold tag id at each word's first subword (IGNORE elsewhere, or
    everywhere without tags), and the teacher's logits at those positions with a
    mask of the ones the teacher kept."""
    enc = tokenizer(
        [list(w) for w in words], is_split_into_words=True, truncation=True, max_length=max_length
    )
    keys = [k for k in enc if k in ("input_ids", "attention_mask", "token_type_ids")]
    width = word_logits[0].shape[1] if word_logits else 0
    rows = []
    for i in range(len(words)):
        length = len(enc["input_ids"][i])
        labels, mask = [IGNORE] * length, [0] * length
        targets = np.zeros((length, width), dtype=np.float32)
        for position, word in first_subwords(enc.word_ids(i)):
            if tags is not None:
                labels[position] = int(tags[i][word])
            logits = word_logits[i][word]
            if not np.isnan(logits).any():
                mask[position] = 1
                targets[position] = logits
        rows.append(
            {
                **{k: enc[k][i] for k in keys},
                "labels": labels,
                KD_MASK: mask,
                TEACHER_LOGITS: targets,
            }
        )
    return rows


class TaggingCollator:
    """Pads the student's inputs per batch, and the per-token labels (IGNORE), KD mask
    (0) and teacher logits (0) to the same length, on the tokenizer's padding side."""

    def __init__(self, tokenizer, num_labels: int):
        from transformers import DataCollatorWithPadding

        self.pad = DataCollatorWithPadding(tokenizer)
        self.right = tokenizer.padding_side == "right"
        self.num_labels = num_labels

    def __call__(self, features: list[dict]) -> dict:
        import torch

        targets = ("labels", KD_MASK, TEACHER_LOGITS)
        batch = self.pad([{k: v for k, v in f.items() if k not in targets} for f in features])
        length = batch["input_ids"].shape[1]
        labels = np.full((len(features), length), IGNORE, dtype=np.int64)
        mask = np.zeros((len(features), length), dtype=bool)
        logits = np.zeros((len(features), length, self.num_labels), dtype=np.float32)
        for b, f in enumerate(features):
            n = len(f["labels"])
            span = slice(0, n) if self.right else slice(length - n, length)
            labels[b, span] = f["labels"]
            mask[b, span] = f[KD_MASK]
            logits[b, span] = f[TEACHER_LOGITS]
        batch["labels"] = torch.from_numpy(labels)
        batch[KD_MASK] = torch.from_numpy(mask)
        batch[TEACHER_LOGITS] = torch.from_numpy(logits)
        return batch


def load_words(path, options=None):
    """Untagged sentences for --unlabeled: a tagged-words file (its tags, if any, are
    not read) or a table of texts, each split on whitespace as the runtime splits a
    text into words."""
    from pathlib import Path

    from edgec.data import DataOptions
    from edgec.data.tagged import TABLE_SUFFIXES, load_tagged_set

    if Path(str(path)).suffix.lower() not in TABLE_SUFFIXES:
        return load_tagged_set(path, label2id=None)
    return untagged((options or DataOptions()).load(path, None))


def untagged(texts):
    """A TextSet's texts as untagged sentences, split on whitespace as the runtime
    splits a text into words (empty texts dropped)."""
    from edgec.data.tagged import TaggedSet

    words = [text.split() for text in texts.texts]
    return TaggedSet(texts.source, [w for w in words if w], None)
