"""The texts a distillation reads, and the rows the Trainer is fed.

The teacher labels every training and validation text once, here, before training:
it is frozen and in eval mode, so its logits are exact, and each training step is
spared a teacher forward pass. The rows are the student's own tokenization of the
raw text, so a student with another tokenizer learns from what it will be given.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgec.distill.losses import IGNORE
from edgec.distill.predict import predict_logits
from edgec_runtime.errors import BadInput

VALIDATION_SHARE = 0.1


@dataclass
class DistillData:
    """The loaded text sets (`edgec.data.TextSet`); `eval_set` is `validation` unless
    --eval-data was given, `unlabeled` is None without --unlabeled."""

    train: Any
    validation: Any
    eval_set: Any
    unlabeled: Any = None
    augmented: Any = None  # teacher-labelled copies of the training texts (--augment)

    def extra(self) -> list:
        """The text sets beyond the training set that train the KD term only."""
        return [s for s in (self.unlabeled, self.augmented) if s is not None]


def load_data(config, teacher, ui) -> DistillData:
    """Read every data file of `config` with the teacher's label names."""
    from edgec.data import DataOptions

    options = config.data or DataOptions()
    hp = config.hp
    train = options.load(config.train_data, teacher.label2id)
    if train.labels is None:
        if hp.alpha == 0:
            raise BadInput(
                f"{config.train_data} has no label column and --alpha 0 trains on labels only: "
                "add labels (--label-column) or raise --alpha to learn from the teacher"
            )
        ui.note(f"{config.train_data} has no labels: training on the teacher's soft labels only")
    unlabeled = options.load(config.unlabeled, None) if config.unlabeled else None
    if config.validation_data:
        validation = options.load(config.validation_data, teacher.label2id)
    else:
        train, validation = split_validation(train, hp.seed)
    eval_set = options.load(config.eval_data, teacher.label2id) if config.eval_data else validation
    if len(train) == 0:
        raise BadInput(f"{config.train_data} gives an empty training set: add examples")
    return DistillData(train, validation, eval_set, unlabeled, augmented_texts(train, teacher, hp))


def augmented_texts(train, teacher, hp):
    """A TextSet of --augment copies of the training texts (their pairs unchanged, no
    labels: the teacher labels them), or None without --augment or without a word to
    swap. `train` is any set with `texts` and `pairs` (a TaggedSet's texts are its words
    joined by spaces, and a copy has as many words as its source)."""
    if not hp.augment:
        return None
    from edgec.data import TextSet
    from edgec.distill import augment

    copies = augment.augment_texts(
        train.texts,
        hp.augment,
        hp.augment_rate,
        hp.seed,
        augment.teacher_neighbours(teacher.tokenizer, teacher.model),
        augment.vocabulary_spelling(teacher.tokenizer),
    )
    if not copies:
        return None
    pairs = [train.pairs[i] for i, _ in copies] if train.pairs is not None else None
    return TextSet(f"{train.source} (augmented)", [text for _, text in copies], pairs)


def split_validation(train, seed: int, share: float = VALIDATION_SHARE):
    """Hold out a seeded share of the training set when no validation file is given."""
    if len(train) < 10:
        return train, train
    order = list(range(len(train)))
    random.Random(seed).shuffle(order)
    cut = max(1, round(len(train) * share))
    held_out = train.subset(sorted(order[:cut]))
    held_out.source = f"{train.source} ({share:.0%} held out)"
    return train.subset(sorted(order[cut:])), held_out


def teacher_logits(teacher, texts, device: str):
    """The teacher's logits for a text set, each text in the teacher's tokenization."""
    return predict_logits(
        teacher.model,
        teacher.tokenizer,
        teacher.max_length,
        texts.texts,
        texts.pairs,
        device=device,
    )


def encode_examples(tokenizer, max_length, texts, pairs, labels, logits) -> list[dict]:
    """Trainer rows: the student's inputs (unpadded), the label (or IGNORE) and the
    teacher's logits."""
    enc = tokenizer(
        list(texts),
        list(pairs) if pairs is not None else None,
        truncation=True,
        max_length=max_length,
    )
    keys = [k for k in enc if k in ("input_ids", "attention_mask", "token_type_ids")]
    return [
        {
            **{k: enc[k][i] for k in keys},
            "labels": labels[i] if labels is not None else IGNORE,
            "teacher_logits": logits[i].tolist(),
        }
        for i in range(len(texts))
    ]


def training_rows(data: DistillData, teacher, student, device: str):
    """(training rows, validation rows), labelled by the teacher on `device`."""
    teacher.model.to(device)

    def rows(texts, labels, logits):
        return encode_examples(
            student.tokenizer, student.max_length, texts.texts, texts.pairs, labels, logits
        )

    train = rows(data.train, data.train.labels, teacher_logits(teacher, data.train, device))
    val_logits = teacher_logits(teacher, data.validation, device)
    for extra in data.extra():
        train += rows(extra, None, teacher_logits(teacher, extra, device))
    # Validation scores accuracy on true labels, or agreement with the teacher without them.
    val_labels = data.validation.labels or val_logits.argmax(-1).tolist()
    return train, rows(data.validation, val_labels, val_logits)


def data_fingerprint(path: Path | None) -> dict | None:
    """Path and sha256 of a data file (or of a dataset folder's files, in order); for a
    hub data set, its spec, its snapshot's files and the commit they are at."""
    if path is None:
        return None
    from edgec.hub import hub_dataset

    hub = hub_dataset(path)
    folder = hub.folder() if hub is not None else Path(path)
    digest = hashlib.sha256()
    files = sorted(p for p in folder.rglob("*") if p.is_file()) if folder.is_dir() else [folder]
    for f in files:
        with f.open("rb") as handle:
            for chunk in iter(lambda h=handle: h.read(1 << 20), b""):
                digest.update(chunk)
    if hub is not None:
        return {"path": str(hub), "sha256": digest.hexdigest(), "hub_revision": folder.name}
    return {"path": str(folder), "sha256": digest.hexdigest()}


def data_record(config, data: DistillData) -> dict:
    """The recipe's `data` section: which files, byte for byte, the student learnt from."""
    return {
        "train": {**data_fingerprint(config.train_data), "rows": len(data.train)},
        "validation": data_fingerprint(config.validation_data)
        or f"held out: {VALIDATION_SHARE:.0%} of the training data",
        "unlabeled": data_fingerprint(config.unlabeled),
        "eval": data_fingerprint(config.eval_data),
    }
