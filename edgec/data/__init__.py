"""Labeled text sets for evaluation, calibration and training.

Files are read with `datasets` (CSV, TSV, JSON Lines, Parquet, a directory made by
`save_to_disk`, or one split of a hub data set, `hf://datasets/ORG/NAME[:CONFIG]@SPLIT`,
through its cached snapshot: edgec.hub). Every problem a user can cause is reported
with the file, the row (1-based, not counting a header) and the column, because a bad
cell in a 50,000-row file is otherwise hard to find.

Word-level tags (token classification) live in `edgec.data.tagged`.
"""

from __future__ import annotations

import json
import math
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from edgec.hub import DATASET_SYNTAX, HubDataset, hub_dataset
from edgec_runtime.errors import BadInput

TEXT_COLUMNS = ("text", "sentence", "sentence1", "review", "content")
PAIR_COLUMNS = ("text_pair", "sentence2")
LABEL_COLUMNS = ("label", "labels", "gold")
SCORE_COLUMNS = ("score", "similarity", "similarity_score")
FORMATS = {".csv": "csv", ".tsv": "csv", ".jsonl": "json", ".json": "json", ".parquet": "parquet"}


@dataclass
class TextSet:
    source: str
    texts: list[str]
    pairs: list[str] | None = None
    labels: list[int] | None = None
    scores: list[float] | None = None  # a regression target, e.g. a similarity score

    def __len__(self) -> int:
        return len(self.texts)

    def subset(self, indices) -> TextSet:
        pick = list(indices)
        return TextSet(
            self.source,
            [self.texts[i] for i in pick],
            [self.pairs[i] for i in pick] if self.pairs is not None else None,
            [self.labels[i] for i in pick] if self.labels is not None else None,
            [self.scores[i] for i in pick] if self.scores is not None else None,
        )


def _check_text_file(path: Path) -> None:
    """Catch empty, header-only and non-UTF-8 files before `datasets` gives a vaguer error."""
    raw = path.read_bytes()
    if not raw.strip():
        raise BadInput(f"{path} is empty: it needs a header row and at least one example")
    if path.suffix == ".parquet":
        return
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise BadInput(
            f"{path} line {line} is not valid UTF-8: re-save the file as UTF-8"
        ) from None
    if (
        path.suffix.lower() in (".csv", ".tsv")
        and len([x for x in text.splitlines() if x.strip()]) < 2
    ):
        raise BadInput(f"{path} has a header but no rows: add at least one example")
    if path.suffix.lower() in (".jsonl", ".json"):
        _check_json_lines(path, text)


def _check_json_lines(path: Path, text: str) -> None:
    """One JSON object per line, checked here to name the line: `datasets` says only
    that an error occurred, and reads a line holding a list as rows of a made-up column."""
    if path.suffix.lower() == ".json":
        try:
            json.loads(text)  # a whole-file JSON document: `datasets` reads it as it is
            return
        except ValueError:
            pass
    example = '{"text": "...", "label": "..."}'
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError as e:
            raise BadInput(
                f"{path} line {number} is not valid JSON ({getattr(e, 'msg', e)}): "
                f"write one JSON object per line, e.g. {example}"
            ) from None
        if not isinstance(record, dict):
            raise BadInput(
                f"{path} line {number} is a JSON {_json_kind(record)}, not an object: "
                f"write one JSON object per line, e.g. {example}"
            )


def _json_kind(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    return {str: "string", list: "list", dict: "object"}.get(type(value), type(value).__name__)


def _csv_problem(path: Path, delimiter: str) -> str | None:
    """Where the csv module stops in a file pandas could not read: `datasets` reports
    only that an error occurred. None when the csv module reads it all."""
    import csv

    width, start = None, 1
    with path.open(encoding="utf-8", newline="") as f:
        reader = csv.reader(f, delimiter=delimiter, strict=True)
        try:
            for row in reader:
                if width is None:
                    width = len(row)
                elif len(row) > width:
                    return (
                        f"line {start} has {len(row)} fields but the header has {width}: "
                        "quote a text that holds the delimiter"
                    )
                start = reader.line_num + 1
        except csv.Error as e:
            if "unexpected end of data" in str(e):
                return (
                    f'line {start} opens a quoted field (") that is never closed: close it, '
                    'or write a quote inside a text as ""'
                )
            return f"line {start}: {e}"
    return None


def _innermost(error: BaseException) -> str:
    """The first line of the deepest cause: the parser's own words, not the wrapper's."""
    for _ in range(20):  # a chain is short; a cycle must not hang the error path
        inner = error.__cause__ or error.__context__
        if inner is None:
            break
        error = inner
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


# NaN, NA, null and the like are texts here, not missing cells
CSV_AS_TEXT = {"keep_default_na": False, "na_filter": False}


@contextmanager
def _datasets_silenced():
    """`datasets` logs a line per load, which would come before edgec's own, saying less."""
    import datasets

    level = datasets.logging.get_verbosity()
    datasets.logging.set_verbosity(datasets.logging.CRITICAL)
    try:
        yield
    finally:
        datasets.logging.set_verbosity(level)


def _read_table(path):
    import datasets

    datasets.disable_progress_bars()
    datasets.logging.set_verbosity_error()
    hub = hub_dataset(path)
    if hub is not None:
        return _read_hub_table(hub)
    path = Path(path)
    if not path.exists():
        raise BadInput(f"data file {path} does not exist")
    if path.is_dir():
        try:
            loaded = datasets.load_from_disk(str(path))
        except Exception as e:
            raise BadInput(
                f"{path} is not a saved Hugging Face dataset ({str(e).splitlines()[0]})"
            ) from None
        if isinstance(loaded, datasets.DatasetDict):
            for split in ("test", "validation", "train"):
                if split in loaded:
                    return loaded[split]
            raise BadInput(f"{path} has splits {', '.join(loaded)}: point at one split's folder")
        return loaded
    kind = FORMATS.get(path.suffix.lower())
    if kind is None:
        raise BadInput(
            f"{path}: unknown data format {path.suffix!r}; use .csv, .tsv, .jsonl, .parquet or a dataset folder"
        )
    _check_text_file(path)
    extra = {}
    if kind == "csv":
        extra = dict(CSV_AS_TEXT)
        if path.suffix.lower() == ".tsv":
            extra["delimiter"] = "\t"
    try:
        with _datasets_silenced():
            table = datasets.load_dataset(kind, data_files=str(path), split="train", **extra)
    except Exception as e:
        problem = _csv_problem(path, extra.get("delimiter", ",")) if kind == "csv" else None
        raise BadInput(
            f"{path} could not be parsed as {kind}: {problem or _innermost(e)}"
        ) from None
    if len(table) == 0:
        raise BadInput(f"{path} has a header but no rows: add at least one example")
    return table


def _read_hub_table(hub: HubDataset):
    """One split of a hub data set, loaded from its snapshot folder as `datasets` loads
    a no-script data set (data files; configs from the README's YAML). A CSV is read
    as edgec reads one: NaN and the like are texts, and .tsv files split on tabs."""
    import datasets

    folder = str(hub.folder())
    try:
        with _datasets_silenced():
            builder = datasets.load_dataset_builder(folder, hub.config)
            if builder.name == "csv":
                extra = dict(CSV_AS_TEXT)
                files = [str(f) for fs in (builder.config.data_files or {}).values() for f in fs]
                if files and all(f.lower().endswith(".tsv") for f in files):
                    extra["delimiter"] = builder.config.delimiter or "\t"
                builder = datasets.load_dataset_builder(folder, hub.config, **extra)
            builder.download_and_prepare()
            table = builder.as_dataset(split=hub.split)
    except Exception as e:  # `datasets` raises many types for configs, splits, files
        raise BadInput(
            f"{hub} could not be loaded: {_innermost(e)} (write {DATASET_SYNTAX})"
        ) from None
    if len(table) == 0:
        raise BadInput(f"{hub} has no rows: pick another split")
    return table


def _pick_column(
    path: Path, columns: list[str], wanted: str | None, defaults, option: str, required: bool
):
    if wanted is not None:
        if wanted not in columns:
            raise BadInput(
                f"{path} has no column {wanted!r} (columns: {', '.join(columns)}): fix {option}"
            )
        return wanted
    for name in defaults:
        if name in columns:
            return name
    if required:
        raise BadInput(
            f"{path} has none of the columns {', '.join(defaults)} (columns: {', '.join(columns)}): "
            f"pass {option} NAME"
        )
    return None


def _strings(path: Path, table, column: str) -> list[str]:
    values = table[column]
    for row, value in enumerate(values, start=1):
        if value is None or value == "":
            raise BadInput(
                f"{path} row {row}, column {column!r}: empty cell; every row needs a text"
            )
        if isinstance(value, list | dict):
            kind = "an object" if isinstance(value, dict) else "a list"
            raise BadInput(
                f"{path} row {row}, column {column!r}: holds {kind}, not a text; "
                "every row needs one text (a string)"
            )
    return [str(v) for v in values]


def _class_label_values(table, column: str, label2id: dict[str, int]) -> list:
    """The label column's values. A ClassLabel column holds the data set's own ids: they
    become its names when the model has every one of them (exactly, else ignoring case),
    so a data set that orders its labels otherwise still scores right; with other names
    its ids are taken as the model's, as a file of ids is."""
    values = list(table[column])
    names = list(getattr(table.features.get(column), "names", None) or [])
    if not names:
        return values
    folded: dict[str, list[str]] = {}
    for label in label2id:
        folded.setdefault(label.casefold(), []).append(label)
    if all(name in label2id for name in names):
        model_names = names
    elif all(len(folded.get(name.casefold(), [])) == 1 for name in names):
        model_names = [folded[name.casefold()][0] for name in names]
    else:
        return values
    return [model_names[v] if isinstance(v, int) and 0 <= v < len(names) else v for v in values]


def _no_labels(table, column: str) -> bool:
    """A ClassLabel column of -1 only: a split whose labels are hidden (GLUE's test)."""
    if not hasattr(table.features.get(column), "names"):
        return False
    return all(v == -1 for v in table[column])


def _label_ids(path: Path, values, column: str, label2id: dict[str, int]) -> list[int]:
    """Map labels given as names or as integer ids onto the model's ids."""
    ids = set(label2id.values())
    out = []
    for row, value in enumerate(values, start=1):
        if isinstance(value, str) and value in label2id:
            out.append(label2id[value])
            continue
        try:
            as_int = int(str(value).strip())
        except ValueError:
            as_int = None
        if as_int is not None and as_int in ids and str(value).strip() == str(as_int):
            out.append(as_int)
            continue
        raise BadInput(
            f"{path} row {row}, column {column!r}: unknown label {value!r}; "
            f"the model's labels are {', '.join(label2id)} (or ids {min(ids)}..{max(ids)})"
        )
    return out


def _as_number(value) -> float | None:
    """A finite float, or None: a blank, a word, True or NaN is a typo, never a score."""
    if isinstance(value, bool):
        return None
    try:
        number = float(str(value).strip())
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _scores(path: Path, values, column: str) -> list[float]:
    """The score column as floats, naming the first row that holds no number."""
    out = []
    for row, value in enumerate(values, start=1):
        number = _as_number(value)
        if number is None:
            raise BadInput(
                f"{path} row {row}, column {column!r}: {value!r} is not a number; "
                "every row needs a numeric score"
            )
        out.append(number)
    return out


def _score_column(columns: list[str]) -> str | None:
    """The first of SCORE_COLUMNS in the file, if any: scores are optional (an embedder
    is checked on plain texts too, and on scored pairs when the file has them)."""
    return next((name for name in SCORE_COLUMNS if name in columns), None)


def load_text_set(
    path: str | Path,
    *,
    label2id: dict[str, int] | None = None,
    text_column: str | None = None,
    pair_column: str | None = None,
    label_column: str | None = None,
    require_labels: bool = False,
    want_scores: bool = False,
) -> TextSet:
    path = hub_dataset(path) or Path(path)  # messages name a hub data set as written
    table = _read_table(path)
    columns = list(table.column_names)
    text_col = _pick_column(path, columns, text_column, TEXT_COLUMNS, "--text-column", True)
    pair_col = _pick_column(path, columns, pair_column, PAIR_COLUMNS, "--text-pair-column", False)
    label_col = _pick_column(
        path, columns, label_column, LABEL_COLUMNS, "--label-column", require_labels
    )
    if label_col is not None and _no_labels(table, label_col):
        if require_labels:
            raise BadInput(
                f"{path} column {label_col!r} is -1 in every row (its labels are hidden): "
                "use a labeled split"
            )
        label_col = None
    labels = None
    if label_col is not None and label2id is not None:
        values = _class_label_values(table, label_col, label2id)
        labels = _label_ids(path, values, label_col, label2id)
    score_col = _score_column(columns) if want_scores else None
    return TextSet(
        source=str(path),
        texts=_strings(path, table, text_col),
        pairs=_strings(path, table, pair_col) if pair_col else None,
        labels=labels,
        scores=_scores(path, table[score_col], score_col) if score_col else None,
    )


@dataclass
class DataOptions:
    """Which columns of a data file hold the text, the second text and the label."""

    text_column: str | None = None
    pair_column: str | None = None
    label_column: str | None = None

    def load(self, path, label2id, require_labels=False):
        return load_text_set(
            path,
            label2id=label2id,
            text_column=self.text_column,
            pair_column=self.pair_column,
            label_column=self.label_column,
            require_labels=require_labels,
        )

    def load_for(self, task: str, path, label2id, require_labels=False):
        """The eval, calibration or test set for `task`: labeled texts for a classifier,
        tagged words for a tagger (CoNLL, JSON Lines, dataset folder), texts (with
        optional scored pairs) for an embedder, whose labels are ignored."""
        if task == "token-classification":
            from edgec.data.tagged import load_tagged_set

            return load_tagged_set(path, label2id=label2id, require_tags=require_labels)
        if task == "sentence-embedding":
            return load_text_set(
                path,
                text_column=self.text_column,
                pair_column=self.pair_column,
                want_scores=True,
            )
        return self.load(path, label2id, require_labels)
