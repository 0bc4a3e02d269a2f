"""Eval data as a device reads it, with the standard library only: CSV/TSV and JSON Lines
of texts (with labels, optionally pairs), and CoNLL for taggers (a `word<TAB>tag` per
line, a blank line between sentences). The compiler reads more formats (Parquet,
dataset folders) through `datasets`; these are the ones a CI job without it has.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

from edgec_runtime.errors import BadInput

TABLE_SUFFIXES = {".csv": ",", ".tsv": "\t"}
TAGGED_SUFFIXES = (".conll", ".txt", ".iob", ".bio")
DOCSTART = "-DOCSTART-"  # CoNLL-2003 document separators are not sentences


@dataclass
class EvalData:
    source: str
    texts: list[str]
    pairs: list[str] | None = None
    labels: list[str] | None = None  # label names as the file spells them
    words: list[list[str]] | None = None  # tagged sets: words and tags per sentence
    tags: list[list[str]] | None = None


def _read(path: Path) -> str:
    if not path.is_file():
        raise BadInput(f"eval data {path} does not exist: pass a CSV, TSV, JSONL or CoNLL file")
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as e:
        raise BadInput(f"{path} is not UTF-8 ({e.reason} at byte {e.start}): re-save it as UTF-8") from None


def _rows(path: Path, text: str) -> list[dict]:
    if path.suffix.lower() in (".jsonl", ".json"):
        rows = []
        for number, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except ValueError as e:
                    raise BadInput(f"{path} line {number} is not JSON ({e}): one object per line") from None
        return rows
    delimiter = TABLE_SUFFIXES.get(path.suffix.lower())
    if delimiter is None:
        raise BadInput(f"{path}: read .csv, .tsv, .jsonl or CoNLL ({', '.join(TAGGED_SUFFIXES)}) files")
    return list(csv.DictReader(text.splitlines(), delimiter=delimiter))


def _column(path: Path, rows: list[dict], name: str | None, required: bool) -> list | None:
    if name is None:
        return None
    if rows and name not in rows[0]:
        if not required:
            return None
        raise BadInput(f"{path} has no column {name!r} (it has {', '.join(rows[0])}): pass --text-column")
    return [str(r[name]) if r.get(name) is not None else "" for r in rows]


def read_texts(path, text_column="text", pair_column=None, label_column="label") -> EvalData:
    path = Path(path)
    rows = _rows(path, _read(path))
    if not rows:
        raise BadInput(f"{path} holds no rows")
    return EvalData(
        source=str(path),
        texts=_column(path, rows, text_column, True),
        pairs=_column(path, rows, pair_column, True),
        labels=_column(path, rows, label_column, False),
    )


def conll_fields(line: str) -> tuple[str, str]:
    """(token, tag) of one line: tab-separated if it has a tab, else whitespace; the
    first field is the token and the last the tag (CoNLL-2003 has POS and chunk
    columns between them). The compiler's reader splits lines with this too."""
    fields = [f.strip() for f in line.split("\t")] if "\t" in line else line.split()
    return fields[0], fields[-1] if len(fields) > 1 else ""


def read_conll(path) -> EvalData:
    path = Path(path)
    words, tags, sentence, sentence_tags = [], [], [], []
    for number, line in enumerate(_read(path).splitlines(), 1):
        if not line.strip():
            if sentence:
                words.append(sentence)
                tags.append(sentence_tags)
                sentence, sentence_tags = [], []
            continue
        token, tag = conll_fields(line)
        if token == DOCSTART:
            continue
        if not tag:
            raise BadInput(f"{path} line {number}: a token without a tag; write `token<TAB>tag`")
        sentence.append(token)
        sentence_tags.append(tag)
    if sentence:
        words.append(sentence)
        tags.append(sentence_tags)
    if not words:
        raise BadInput(f"{path} holds no sentences")
    return EvalData(source=str(path), texts=[" ".join(w) for w in words], words=words, tags=tags)
