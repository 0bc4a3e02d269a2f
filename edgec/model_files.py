"""What a model folder's files say, read without loading any weights: config.json,
the task (a head's architecture, or a sentence-transformers modules.json), the
pooling an embedder declares and the tag scheme a tagger uses.

A build reads these first, so a folder it cannot build, or data that does not match
the model's labels, is refused in a second, before torch loads the weights
(edgec.model does that).
"""

from __future__ import annotations

import json
from pathlib import Path

from edgec_runtime import iospec
from edgec_runtime.errors import BadInput
from edgec_runtime.iospec import SUPPORTED_FAMILIES


def read_config(path: Path, trust_remote_code: bool) -> dict:
    if not path.exists():
        raise BadInput(
            f"model path {path} does not exist: pass a Hugging Face model directory or a "
            "hub id (org/name)"
        )
    if not (path / "config.json").is_file():
        raise BadInput(
            f"{path} is not a Hugging Face model directory (no config.json): "
            "pass the folder written by save_pretrained()"
        )
    try:
        config = json.loads((path / "config.json").read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise BadInput(
            f"{path / 'config.json'} is not valid JSON ({e}): re-save the model"
        ) from None
    if not isinstance(config, dict):
        kind = "null" if config is None else f"a JSON {type(config).__name__}"
        raise BadInput(
            f"{path / 'config.json'} holds {kind}, not the model's settings (a JSON object): "
            "re-save the model with save_pretrained()"
        )
    _check_id2label(path / "config.json", config)
    if config.get("auto_map") and not trust_remote_code:
        raise BadInput(
            f"{path} runs custom code from its directory (auto_map in config.json): "
            "review that code, then pass --trust-remote-code"
        )
    family = config.get("model_type")
    if family not in SUPPORTED_FAMILIES:
        raise BadInput(
            f"{path} is a {family!r} model; edgec supports {', '.join(SUPPORTED_FAMILIES)}"
        )
    return config


def _check_id2label(file: Path, config: dict) -> None:
    """id2label maps the ids 0..N-1 to names; transformers reads its keys as integers,
    so anything else would surface later as a failure to load the weights."""
    id2label = config.get("id2label")
    if id2label is None:
        return
    example = '{"0": "negative", "1": "positive"}'
    if not isinstance(id2label, dict) or not id2label:
        raise BadInput(
            f"{file}: id2label = {id2label!r} is not a map of ids to names, e.g. {example}"
        )
    for key in id2label:
        try:
            int(str(key).strip())
        except ValueError:
            raise BadInput(
                f"{file}: id2label key {key!r} is not an integer id; id2label maps the ids "
                f"0..N-1 to label names, e.g. {example}: fix config.json id2label"
            ) from None
    ids = sorted(int(str(k).strip()) for k in id2label)
    if ids != list(range(len(ids))):
        raise BadInput(
            f"{file}: id2label has the ids {', '.join(map(str, ids))}; they must be "
            f"0..{len(ids) - 1}, one per output of the head: fix config.json id2label"
        )


def check_head(path: Path, config: dict, task: str) -> None:
    """A labeled task needs distinct label names, and a classifier a classification
    head: refused from config.json alone, before the weights are loaded."""
    if not iospec.task_spec(task).labeled:
        return
    file = path / "config.json"
    id2label = {int(str(k).strip()): v for k, v in (config.get("id2label") or {}).items()}
    num_labels = len(id2label) or config.get("num_labels", 2)
    regression = config.get("problem_type") == "regression"
    if task == iospec.SEQUENCE_CLASSIFICATION and (regression or num_labels == 1):
        why = "problem_type regression" if regression else "num_labels 1"
        raise BadInput(
            f"{path}: a regression head is not a classifier ({why} in config.json); edgec "
            "builds classifiers with two or more labels: fine-tune a classification head"
        )
    first: dict = {}
    for i in sorted(id2label):
        name = id2label[i]
        if name in first:
            raise BadInput(
                f"{file}: id2label names ids {first[name]} and {i} both {name!r}; every label "
                "needs its own name (data files give labels by name): fix config.json id2label"
            )
        first[name] = i


# ---------------------------------------------------------------- tasks


def sentence_transformer_modules(path: Path) -> list[dict] | None:
    """modules.json of a sentence-transformers folder, or None when there is none."""
    file = path / "modules.json"
    if not file.is_file():
        return None
    try:
        modules = json.loads(file.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise BadInput(f"{file} is not valid JSON ({e}): re-save the model") from None
    if not isinstance(modules, list) or not all(isinstance(m, dict) for m in modules):
        raise BadInput(f"{file} is not a list of modules: re-save it with sentence-transformers")
    return modules


def _module_kind(module: dict) -> str:
    return str(module.get("type", "")).rsplit(".", 1)[-1]


def detect_task(path: Path, config: dict) -> str | None:
    """The task a model folder was fine-tuned for: a sentence-transformers folder with a
    Pooling module embeds; otherwise config.json's architecture says."""
    modules = sentence_transformer_modules(path) or []
    if any(_module_kind(m) == "Pooling" for m in modules):
        return iospec.SENTENCE_EMBEDDING
    architectures = config.get("architectures") or []
    for spec in iospec.TASKS.values():
        if spec.architecture and any(a.endswith(spec.architecture) for a in architectures):
            return spec.name
    return None


def resolve_task(path: Path, config: dict, requested: str | None) -> str:
    """`--task` when given (it must be one edgec supports), else the detected task."""
    if requested is not None:
        if requested not in iospec.TASKS:
            raise BadInput(
                f"--task {requested!r} is not a task edgec builds: choose one of "
                f"{', '.join(iospec.SUPPORTED_TASKS)}"
            )
        return requested
    task = detect_task(path, config)
    if task is None:
        architectures = ", ".join(config.get("architectures") or []) or "base model"
        raise BadInput(
            f"{path} is a {architectures} with no task edgec builds (a *ForSequenceClassification "
            "or *ForTokenClassification head, or a sentence-transformers modules.json with "
            f"Pooling): fine-tune it first, or pass --task ({', '.join(iospec.SUPPORTED_TASKS)})"
        )
    return task


def transformer_dir(path: Path, modules: list[dict]) -> Path:
    """Where the Transformer module's weights and tokenizer are: the folder itself in
    what sentence-transformers saves today, `0_Transformer/` in older saves."""
    inner = path / str(modules[0].get("path", ""))
    if path.resolve() not in (inner.resolve(), *inner.resolve().parents):
        raise BadInput(f"{path}/modules.json points outside the model folder: re-save it")
    return inner


def embedding_facts(path: Path) -> tuple[dict, int | None]:
    """Pooling mode, normalization and dimension from a sentence-transformers folder,
    and its max_seq_length: the graph pools exactly as `encode` does."""
    modules = sentence_transformer_modules(path)
    if modules is None:
        raise BadInput(
            f"{path} has no modules.json: a sentence-embedding model is the folder "
            "sentence-transformers saves (Transformer, Pooling, optionally Normalize)"
        )
    kinds = [_module_kind(m) for m in modules]
    unsupported = [k for k in kinds if k not in ("Transformer", "Pooling", "Normalize")]
    if unsupported or kinds[:2] != ["Transformer", "Pooling"] or kinds.count("Pooling") != 1:
        raise BadInput(
            f"{path}/modules.json chains {' -> '.join(kinds)}; edgec puts Transformer -> "
            "Pooling [-> Normalize] into the graph: remove or fold the other modules"
        )
    pooling_file = path / modules[1].get("path", "") / "config.json"
    try:
        pooling = json.loads(pooling_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise BadInput(f"{pooling_file} is unreadable ({e}): re-save the model") from None
    modes = [m for m, flag in iospec.POOLING_MODES.items() if pooling.get(flag)]
    others = [k for k, v in pooling.items() if k.startswith("pooling_mode") and v]
    if len(modes) != 1 or len(others) != 1:
        raise BadInput(
            f"{pooling_file} pools with {', '.join(others) or 'nothing'}; edgec supports "
            f"exactly one of {', '.join(iospec.POOLING_MODES.values())}"
        )
    st_config = transformer_dir(path, modules) / "sentence_bert_config.json"
    max_seq = None
    if st_config.is_file():
        try:
            max_seq = json.loads(st_config.read_text(encoding="utf-8")).get("max_seq_length")
        except ValueError:
            raise BadInput(f"{st_config} is not valid JSON: re-save the model") from None
    facts = {
        "pooling": modes[0],
        "normalize": "Normalize" in kinds,
        "dimension": pooling.get("word_embedding_dimension"),
    }
    return facts, (int(max_seq) if max_seq else None)


def tagging_facts(labels: list[str], path: Path) -> dict:
    """A tagger's labels must be IOB2 (O, B-TYPE, I-TYPE): entity grouping and
    seqeval's strict matching read that scheme."""
    odd = [t for t in labels if t != "O" and not (t[:2] in ("B-", "I-") and len(t) > 2)]
    if odd:
        raise BadInput(
            f"{path}: the tags {', '.join(odd[:5])} are not IOB2 (O, B-TYPE, I-TYPE); "
            "edgec groups and scores entities in IOB2: rename id2label in config.json"
        )
    types = sorted({t[2:] for t in labels if t != "O"})
    return {"scheme": iospec.TAGGING_SCHEME, "entity_types": types}


def model_folder(path: str | Path) -> Path:
    """Where config.json and the weights are: the folder itself, or a
    sentence-transformers folder's Transformer module (0_Transformer/ in old saves)."""
    root = Path(path)
    modules = sentence_transformer_modules(root) if root.is_dir() else None
    if modules and _module_kind(modules[0]) == "Transformer":
        return transformer_dir(root, modules)
    return root


def peek_task(path: str | Path, requested: str | None, trust_remote_code: bool = False) -> str:
    """The model's task from its files alone (no weights loaded): a build refuses what
    it cannot do for that task before any work."""
    root = Path(path)
    inner = model_folder(root)
    config = read_config(inner, trust_remote_code)
    task = resolve_task(root, config, requested)
    check_head(inner, config, task)
    return task


def peek_label2id(path: str | Path, task: str) -> dict[str, int] | None:
    """The labels' ids from config.json alone, so data files are checked before the
    weights load; None when config.json names no labels (the model's defaults then)."""
    if not iospec.task_spec(task).labeled:
        return {}
    config = json.loads((Path(path) / "config.json").read_text(encoding="utf-8"))
    id2label = config.get("id2label")
    if not isinstance(id2label, dict) or not id2label:
        return None
    label2id = {str(name): int(str(i).strip()) for i, name in id2label.items()}
    if task == iospec.TOKEN_CLASSIFICATION:  # tags that are not IOB2: said before the data
        tagging_facts(sorted(label2id, key=label2id.get), Path(path))
    return label2id
