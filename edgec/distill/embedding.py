"""Distilling a sentence embedder (a sentence-transformers folder: Transformer ->
Pooling [-> Normalize]): the student's sentence vector regresses on the teacher's.

The sentence-transformers distillation recipe: the teacher embeds every training
text once, and the student, pooled exactly as the teacher's folder pools (the same
edgec.heads.pool the package's graph runs), learns MSE to that vector plus a cosine
term. No labels are needed; a file of scored pairs contributes both of its texts.
The student is written as a sentence-transformers folder with the teacher's Pooling
(and Normalize) modules, so `edgec build` and sentence-transformers load it as they
load the teacher.

Retention is what embeddings are used for, similarities: the Spearman correlation of
all pairwise similarities of the eval texts under the student against the same under
the teacher (the teacher's own is 1.0), with the top-10 neighbour overlap reported
next to it (edgec.metrics, the figures verification gates a package on).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from edgec.data import TextSet
from edgec.distill.data import DistillData, augmented_texts, split_validation
from edgec.distill.losses import embedding_loss
from edgec.distill.predict import predict_embeddings
from edgec.distill.tasks import Recipe
from edgec.gates import NEIGHBOURS
from edgec.metrics import neighbour_overlap, row_cosines, similarity_rank
from edgec_runtime import iospec

TEACHER_EMBEDDING = "teacher_embedding"
ST_CONFIG = "sentence_bert_config.json"
ST_VERSIONS = "config_sentence_transformers.json"


class EmbeddingRecipe(Recipe):
    task = iospec.SENTENCE_EMBEDDING
    metric = "similarity Spearman"
    metric_key = "similarity_spearman"
    metric_format = "share"
    agreement_meaning = "mean cosine to the teacher's vectors"
    validation_metric = "cosine"
    validation_name = "cosine to the teacher"
    validation_percent = False
    target_keys = (TEACHER_EMBEDDING,)
    label_names = (TEACHER_EMBEDDING,)
    uses_labels = False
    # all-MiniLM-L6-v2 on the sentiment sentences, seed 42, layers 0, 2, 4: Spearman
    # 0.842 without the hidden-state term, 0.848 with it at 1.7x the training time
    # (neighbour overlap 0.407 / 0.408, mean cosine 0.803 / 0.801): not worth its cost
    default_hidden_weight = 0.0
    layers_from_top = False

    def __init__(self, facts: dict):
        self.facts = dict(facts)  # pooling, normalize, dimension (edgec.model_files)

    def has_gold(self, texts) -> bool:
        return False

    def validation_basis(self, validation) -> str:
        return "cosine to the teacher's vectors"

    # ------------------------------------------------------------ data

    def load_data(self, config, teacher, ui) -> DistillData:
        from edgec.data import DataOptions

        options = config.data or DataOptions()

        def texts(path):
            return options.load_for(self.task, path, None)

        train = corpus(texts(config.train_data))
        if config.validation_data:
            validation = corpus(texts(config.validation_data))
        else:
            train, validation = split_validation(train, config.hp.seed)
        eval_set = texts(config.eval_data) if config.eval_data else validation
        unlabeled = corpus(texts(config.unlabeled)) if config.unlabeled else None
        augmented = augmented_texts(train, teacher, config.hp)
        return DistillData(train, validation, eval_set, unlabeled, augmented)

    def training_rows(self, data, teacher, student, device: str):
        teacher.model.to(device)

        def rows(texts):
            vectors = predict_embeddings(
                teacher.model,
                teacher.tokenizer,
                teacher.max_length,
                texts.texts,
                teacher.task_facts,
                device=device,
            )
            return encode_texts(student.tokenizer, student.max_length, texts.texts, vectors)

        train = rows(data.train)
        for extra in data.extra():
            train += rows(extra)
        return train, rows(data.validation)

    def collator(self, tokenizer):
        return EmbeddingCollator(tokenizer)

    # ------------------------------------------------------------ training

    def prediction(self, student_out, inputs):
        from edgec.heads import pool

        return pool(student_out.last_hidden_state, inputs["attention_mask"], self.facts)

    def loss(self, weights, prediction, targets: dict):
        return embedding_loss(weights, prediction, targets[TEACHER_EMBEDDING])

    def compute_metrics(self, eval_pred) -> dict[str, float]:
        student, teacher = eval_pred
        return {"cosine": float(row_cosines(student, teacher).mean())}

    # ------------------------------------------------------------ report

    def score(self, teacher, student, eval_set, device: str) -> dict:
        texts = eval_set.texts

        def vectors(model):
            return predict_embeddings(
                model.model, model.tokenizer, model.max_length, texts, self.facts, device=device
            ).astype(np.float64)

        t_vec = vectors(teacher)
        s_vec = vectors(student)
        overlap = neighbour_overlap(t_vec, s_vec, NEIGHBOURS) if len(texts) > 1 else None
        rank = similarity_rank(t_vec, s_vec) if len(texts) > 1 else {"spearman": None}
        rho = rank["spearman"]
        out = {
            # against itself the teacher keeps every neighbour and every similarity's rank
            "teacher": {"similarity_spearman": 1.0, "neighbour_overlap": 1.0},
            "student": {
                "similarity_spearman": rho,
                "neighbour_overlap": overlap["mean_overlap"] if overlap else None,
                "neighbours": overlap["k"] if overlap else 0,
                "mse_to_teacher": float(((s_vec - t_vec) ** 2).mean()),
            },
            "retention": rho,
            "agreement": float(row_cosines(t_vec, s_vec).mean()),
        }
        if rho is None:
            why = rank.get("note") or "one text has no pairs"
            out["retention_note"] = f"the similarity rank is undefined on {eval_set.source} ({why})"
        return out

    def save_extra(self, config, teacher, student, out) -> None:
        write_sentence_transformer(Path(config.teacher), Path(out), student.max_length)


def corpus(texts: TextSet) -> TextSet:
    """Every text of a file as one training text: a scored pair's two sides both."""
    both = list(texts.texts) + list(texts.pairs or [])
    return TextSet(texts.source, both)


def encode_texts(tokenizer, max_length, texts, vectors) -> list[dict]:
    """Trainer rows: the student's inputs (unpadded) and the teacher's vector."""
    enc = tokenizer(list(texts), truncation=True, max_length=max_length)
    keys = [k for k in enc if k in ("input_ids", "attention_mask", "token_type_ids")]
    return [
        {**{k: enc[k][i] for k in keys}, TEACHER_EMBEDDING: vectors[i]} for i in range(len(texts))
    ]


class EmbeddingCollator:
    """Pads the student's inputs per batch; stacks the teacher's vectors."""

    def __init__(self, tokenizer):
        from transformers import DataCollatorWithPadding

        self.pad = DataCollatorWithPadding(tokenizer)

    def __call__(self, features: list[dict]) -> dict:
        import torch

        batch = self.pad([{k: v for k, v in f.items() if k != TEACHER_EMBEDDING} for f in features])
        batch[TEACHER_EMBEDDING] = torch.from_numpy(
            np.stack([np.asarray(f[TEACHER_EMBEDDING], dtype=np.float32) for f in features])
        )
        return batch


def write_sentence_transformer(teacher_root: Path, out: Path, max_length: int) -> None:
    """Make the saved student folder a sentence-transformers folder: the teacher's
    modules.json (the Transformer now at the folder itself), its Pooling and Normalize
    module folders, and sentence_bert_config.json truncating where the student was
    trained. The teacher's folder was checked (edgec.model_files.embedding_facts) to
    chain exactly Transformer -> Pooling [-> Normalize]."""
    from edgec.model_files import sentence_transformer_modules, transformer_dir

    modules = sentence_transformer_modules(teacher_root)
    inner = transformer_dir(teacher_root, modules)
    written = [{**modules[0], "path": ""}]
    for module in modules[1:]:
        folder = str(module.get("path", ""))
        # a module without settings (all-MiniLM-L6-v2's 2_Normalize) may have no folder
        if folder and (teacher_root / folder).is_dir():
            shutil.copytree(teacher_root / folder, out / folder, dirs_exist_ok=True)
        written.append(module)
    _write_json(out / "modules.json", written)
    settings = {"do_lower_case": False}
    if (inner / ST_CONFIG).is_file():
        settings.update(json.loads((inner / ST_CONFIG).read_text(encoding="utf-8")))
    settings["max_seq_length"] = max_length
    _write_json(out / ST_CONFIG, settings)
    for source in (teacher_root / ST_VERSIONS, inner / ST_VERSIONS):
        if source.is_file():
            shutil.copyfile(source, out / ST_VERSIONS)
            break


def _write_json(path: Path, value) -> None:
    path.write_text(json.dumps(value, indent=2) + "\n", encoding="utf-8")
