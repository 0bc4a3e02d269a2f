"""Word-tagged sentences for token classification (NER), from the usual file formats.

Three formats load, all into the same `TaggedSet`:

* CoNLL-style text (``.txt``, ``.conll``, ``.iob``, ``.bio`` or any suffix that is not a
  table): one ``token<TAB>tag`` per line, or space-separated fields whose first is the
  token and last the tag; a blank line between sentences; ``-DOCSTART-`` lines skipped.
* JSON Lines (``.jsonl``, ``.json``): one object per line with ``tokens`` and
  ``ner_tags`` (tag names or the model's integer ids).
* a folder written by `datasets`' ``save_to_disk`` with the same two columns, where
  ``ner_tags`` may be a sequence of ``ClassLabel`` (its names are mapped by name), or
  one split of a hub data set with them, ``hf://datasets/ORG/NAME[:CONFIG]@SPLIT``.

Every problem is reported with the file and the line (1-based; the row, for a dataset
folder), since a bad tag among 50,000 lines is otherwise hard to find. A broken IOB2
sequence is only warned about: fixing it silently would change what the model is scored
against.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from edgec.hub import hub_dataset
from edgec_runtime.errors import BadInput
from edgec_runtime.evaldata import DOCSTART, conll_fields

TABLE_SUFFIXES = (".csv", ".tsv", ".parquet")
JSON_SUFFIXES = (".jsonl", ".json")
TOKENS_COLUMN = "tokens"
TAGS_COLUMN = "ner_tags"
SHOWN_LINES = 5  # line numbers quoted in an IOB2 warning


@dataclass
class TaggedSet:
    """Sentences as words, with one tag id (in the model's label2id) per word.

    ``texts``, ``pairs`` and ``labels`` let code written for a `TextSet` (which reads
    only the texts, e.g. calibration) take a TaggedSet unchanged.
    """

    source: str
    words: list[list[str]]
    tags: list[list[int]] | None
    warnings: list[str] = field(default_factory=list)

    @property
    def texts(self) -> list[str]:
        """Each sentence's words joined by one space: the text the runtime sees."""
        return [" ".join(words) for words in self.words]

    @property
    def pairs(self) -> None:
        return None

    @property
    def labels(self) -> None:
        return None

    @property
    def scores(self) -> None:
        return None

    def word_spans(self, i: int) -> list[tuple[int, int]]:
        """(start, end) character offsets of each word inside ``texts[i]``, which is how
        the runtime's subword offsets are mapped back to words."""
        spans, start = [], 0
        for word in self.words[i]:
            spans.append((start, start + len(word)))
            start += len(word) + 1
        return spans

    def __len__(self) -> int:
        return len(self.words)

    def subset(self, indices) -> TaggedSet:
        pick = list(indices)
        return TaggedSet(
            self.source,
            [self.words[i] for i in pick],
            [self.tags[i] for i in pick] if self.tags is not None else None,
            list(self.warnings),
        )

    def tag_names(self, label_names) -> list[list[str]]:
        """The tags as names; ``label_names[id]`` is a name (a list, or an id2label dict)."""
        if self.tags is None:
            raise BadInput(f"{self.source} has no tags: give a file with a tag for every word")
        return [[label_names[t] for t in sentence] for sentence in self.tags]


@dataclass
class _Sentence:
    """One sentence as read, before its tags are checked: ``tags`` are names or ids as
    written (None when the file has none) and ``lines`` say where each word was."""

    words: list[str]
    tags: list | None
    lines: list[int]


def load_tagged_set(
    path: str | Path, *, label2id: dict[str, int] | None, require_tags: bool = False
) -> TaggedSet:
    """Read ``path`` (CoNLL text, JSON Lines or a dataset folder) into a TaggedSet.

    Without tags in the file, ``tags`` is None, unless ``require_tags`` makes that an
    error (evaluation needs them; calibration does not).
    """
    hub = hub_dataset(path)
    if hub is not None:  # one split of a hub data set: read as a dataset folder is
        return _build(hub, _read_dataset_folder(hub), label2id, require_tags, "row")
    path = Path(path)
    if not path.exists():
        raise BadInput(f"data file {path} does not exist: check the path")
    if path.is_dir():
        sentences, unit = _read_dataset_folder(path), "row"
    elif path.suffix.lower() in TABLE_SUFFIXES:
        raise BadInput(
            f"{path}: a {path.suffix} table holds no word-level tags; use a CoNLL text file "
            "(token<TAB>tag per line: rename it .conll if it is one), JSON Lines with tokens "
            "and ner_tags, or a dataset folder"
        )
    elif path.suffix.lower() in JSON_SUFFIXES:
        sentences, unit = _read_json_lines(path), "line"
    else:
        sentences, unit = _read_conll(path), "line"
    return _build(path, sentences, label2id, require_tags, unit)


def _read_text(path: Path, expected: str) -> str:
    """The file as text; an empty or non-UTF-8 file is reported with the fix."""
    raw = path.read_bytes()
    if not raw.strip():
        raise BadInput(f"{path} is empty: it needs {expected}")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise BadInput(
            f"{path} line {line} is not valid UTF-8: re-save the file as UTF-8"
        ) from None


def _read_conll(path: Path) -> list[_Sentence]:
    text = _read_text(path, "one token and its tag per line, a blank line between sentences")
    sentences: list[_Sentence] = []
    current = _Sentence([], [], [])
    for number, line in enumerate(text.splitlines(), start=1):
        token, tag = conll_fields(line) if line.strip() else ("", "")
        if token == DOCSTART or not line.strip():
            if current.words:
                sentences.append(current)
            current = _Sentence([], [], [])
            continue
        if not token:
            raise BadInput(f"{path} line {number} has a tag but no token: write token<TAB>tag")
        _check_word(path, "line", number, token)
        current.words.append(token)
        current.tags.append(tag or None)
        current.lines.append(number)
    if current.words:
        sentences.append(current)
    return _drop_absent_tags(path, sentences)


def _drop_absent_tags(path: Path, sentences: list[_Sentence]) -> list[_Sentence]:
    """A file with no tag at all is untagged (tags None); one missing only some tags
    has a typo, reported at its first tagless line."""
    if all(tag is None for s in sentences for tag in s.tags):
        return [_Sentence(s.words, None, s.lines) for s in sentences]
    for s in sentences:
        for token, tag, number in zip(s.words, s.tags, s.lines, strict=True):
            if tag is None:
                raise BadInput(
                    f"{path} line {number} has a token ({token!r}) but no tag: write token<TAB>tag"
                )
    return sentences


def _check_word(path: Path, unit: str, number: int, word) -> None:
    """A word is a non-empty string without whitespace, so that ``texts`` (the words
    joined by spaces) splits back into exactly these words."""
    if not isinstance(word, str) or not word.strip():
        raise BadInput(
            f"{path} {unit} {number}: empty token {word!r}; every token needs at least "
            "one character"
        )
    if len(word.split()) != 1:
        raise BadInput(
            f"{path} {unit} {number}: token {word!r} contains whitespace; split it into "
            "one token per word"
        )


def _read_json_lines(path: Path) -> list[_Sentence]:
    text = _read_text(path, f"one JSON object per line with {TOKENS_COLUMN} and {TAGS_COLUMN}")
    records = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            hint = (
                "write one JSON object per line (JSON Lines), not an array"
                if line.strip() in ("[", "{")
                else "fix the JSON"
            )
            raise BadInput(f"{path} line {number} is not valid JSON ({e.msg}): {hint}") from None
        if not isinstance(record, dict):
            raise BadInput(
                f"{path} line {number} is not a JSON object: write "
                f'{{"{TOKENS_COLUMN}": [...], "{TAGS_COLUMN}": [...]}} per line'
            )
        records.append((number, record.get(TOKENS_COLUMN), record.get(TAGS_COLUMN)))
    return _from_records(path, records, "line")


def _read_dataset_folder(path) -> list[_Sentence]:
    """A save_to_disk folder (one split of a DatasetDict, as `edgec.data` picks it), or
    a hub data set's split (edgec.hub.HubDataset); ClassLabel tags become their names
    so they map onto the model's labels by name."""
    from edgec.data import _read_table

    table = _read_table(path)
    if TOKENS_COLUMN not in table.column_names:
        raise BadInput(
            f"{path} has no column {TOKENS_COLUMN!r} (columns: {', '.join(table.column_names)}): "
            f"save the words as {TOKENS_COLUMN!r}"
        )
    tags = list(table[TAGS_COLUMN]) if TAGS_COLUMN in table.column_names else [None] * len(table)
    names = _class_label_names(table.features.get(TAGS_COLUMN))
    if names is not None:
        tags = [[names[t] for t in row] if row is not None else None for row in tags]
    rows = zip(table[TOKENS_COLUMN], tags, strict=True)
    records = [(number, words, row_tags) for number, (words, row_tags) in enumerate(rows, 1)]
    return _from_records(path, records, "row")


def _class_label_names(feature) -> list[str] | None:
    """The names of a sequence-of-ClassLabel feature, or None for plain ints or strings."""
    inner = getattr(feature, "feature", None)
    return list(inner.names) if hasattr(inner, "names") else None


def _from_records(path: Path, records: list[tuple], unit: str) -> list[_Sentence]:
    """Sentences from (line, tokens, tags) records, checking each record's shape."""
    any_tags = any(tags is not None for _, _, tags in records)
    sentences = []
    for number, words, tags in records:
        if not isinstance(words, list) or not words:
            raise BadInput(
                f"{path} {unit} {number}: {TOKENS_COLUMN!r} is missing or empty; "
                "every sentence needs a list of at least one token"
            )
        for word in words:
            _check_word(path, unit, number, word)
        if any_tags:
            _check_record_tags(path, unit, number, words, tags)
        sentences.append(
            _Sentence(list(words), list(tags) if any_tags else None, [number] * len(words))
        )
    if not sentences:
        raise BadInput(f"{path} holds no sentences: add at least one")
    return sentences


def _check_record_tags(path: Path, unit: str, number: int, words: list, tags) -> None:
    if not isinstance(tags, list):
        raise BadInput(
            f"{path} {unit} {number}: {TAGS_COLUMN!r} is missing; give one tag per token "
            "on every line, or none on any"
        )
    if len(tags) != len(words):
        raise BadInput(
            f"{path} {unit} {number}: {len(words)} tokens but {len(tags)} {TAGS_COLUMN}; "
            "give exactly one tag per token"
        )


def _tag_id(tag, label2id: dict[str, int], ids: set[int]) -> int | None:
    """A tag written as a label name or as one of the model's integer ids."""
    if isinstance(tag, str) and tag in label2id:
        return label2id[tag]
    if isinstance(tag, bool):
        return None
    if isinstance(tag, int):
        return tag if tag in ids else None
    if isinstance(tag, str) and tag.strip().isdigit() and int(tag) in ids:
        return int(tag)
    return None


def _tag_ids(path: Path, sentences, label2id: dict[str, int], unit: str) -> list[list[int]]:
    ids = set(label2id.values())
    out = []
    for s in sentences:
        row = []
        for tag, number in zip(s.tags, s.lines, strict=True):
            tag_id = _tag_id(tag, label2id, ids)
            if tag_id is None:
                raise BadInput(
                    f"{path} {unit} {number}: unknown tag {tag!r}; the model's tags are "
                    f"{', '.join(label2id)} (or ids {min(ids)}..{max(ids)})"
                )
            row.append(tag_id)
        out.append(row)
    return out


def _build(path: Path, sentences, label2id, require_tags: bool, unit: str) -> TaggedSet:
    if not sentences:
        raise BadInput(f"{path} holds no sentences: add at least one token<TAB>tag line")
    tagged = sentences[0].tags is not None
    if require_tags and not tagged:
        raise BadInput(
            f"{path} {unit} {sentences[0].lines[0]}: the file has tokens but no tags; "
            f"give every token a tag (token<TAB>tag, or a {TAGS_COLUMN!r} list)"
        )
    # without a model's labels (timing, calibration texts) only the words are read
    tags = _tag_ids(path, sentences, label2id, unit) if tagged and label2id is not None else None
    warnings = [_iob2_warning(path, sentences, tags, label2id, unit)] if tags else []
    return TaggedSet(
        source=str(path),
        words=[s.words for s in sentences],
        tags=tags,
        warnings=[w for w in warnings if w],
    )


def _iob2_warning(path: Path, sentences, tags, label2id, unit: str) -> str | None:
    """One line summarising every I- tag that follows neither a B- nor an I- of its
    own type, or None. The tags are kept: a scorer in strict IOB2 mode counts such a
    span as wrong, and the user should know why."""
    id2label = {i: name for name, i in label2id.items()}
    bad: list[int] = []
    for s, row in zip(sentences, tags, strict=True):
        previous = "O"
        for tag_id, number in zip(row, s.lines, strict=True):
            name = id2label[tag_id]
            if name.startswith("I-") and previous[2:] != name[2:]:
                bad.append(number)
            previous = name if name[:2] in ("B-", "I-") else "O"
    if not bad:
        return None
    where = sorted(set(bad))
    shown = ", ".join(str(n) for n in where[:SHOWN_LINES])
    if len(where) > SHOWN_LINES:
        shown += ", ..."
    units = unit + ("s" if len(where) > 1 else "")
    tags_follow = "I- tag follows" if len(bad) == 1 else "I- tags follow"
    return (
        f"{path}: {len(bad)} {tags_follow} no B- of their type ({units} {shown}): "
        "IOB2 expects B- first; tags kept as given"
    )
