"""Word-tagged data files: every format loads the same sentences, tags map by name or
id, each mistake names the file and the line, and a broken IOB2 sequence is warned
about but kept."""

import json

import pytest

from edgec.data import TextSet, load_text_set
from edgec.data.tagged import TaggedSet, load_tagged_set
from edgec_runtime.errors import EXIT_BAD_INPUT, BadInput

LABELS = ["O", "B-person", "I-person", "B-geo-loc", "I-geo-loc"]
LABEL2ID = {name: i for i, name in enumerate(LABELS)}
WORDS = [["Alice", "lives", "in", "New", "York"], ["Hi", "Bob"]]
TAGS = [["B-person", "O", "O", "B-geo-loc", "I-geo-loc"], ["O", "B-person"]]
IDS = [[1, 0, 0, 3, 4], [0, 1]]

CONLL = (
    "Alice\tB-person\nlives\tO\nin\tO\nNew\tB-geo-loc\nYork\tI-geo-loc\n\nHi\tO\nBob\tB-person\n"
)


def records(tags=TAGS) -> str:
    return "".join(
        json.dumps({"tokens": w, "ner_tags": t}) + "\n" for w, t in zip(WORDS, tags, strict=True)
    )


def load(tmp_path, name: str, content: str | bytes, **kwargs) -> TaggedSet:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return load_tagged_set(path, **{"label2id": LABEL2ID, **kwargs})


def bad_input(tmp_path, name: str, content: str | bytes, **kwargs) -> str:
    """The one-line message of the BadInput that loading ``content`` raises."""
    with pytest.raises(BadInput) as caught:
        load(tmp_path, name, content, **kwargs)
    assert caught.value.exit_code == EXIT_BAD_INPUT
    message = str(caught.value)
    assert "\n" not in message and name in message
    return message


@pytest.mark.parametrize(
    "name, content",
    [
        ("tab.conll", CONLL),
        ("space.txt", CONLL.replace("\t", " ")),
        ("docstart.iob", "-DOCSTART- -X- O O\n\n" + CONLL + "\n\n"),
        ("conll2003.bio", CONLL.replace("\t", " NNP B-NP ")),
        ("crlf.txt", CONLL.replace("\n", "\r\n")),
        ("bom.txt", "\ufeff" + CONLL),
        ("whitespace-separator.txt", CONLL.replace("\n\n", "\n\t\n")),  # as in WNUT-16
        ("names.jsonl", records()),
        ("ids.json", records(IDS)),
    ],
)
def test_formats_agree(tmp_path, name, content):
    data = load(tmp_path, name, content, require_tags=True)
    assert data.words == WORDS
    assert data.tags == IDS
    assert data.tag_names(LABELS) == TAGS
    assert data.warnings == []


def test_dataset_folder_with_class_labels(tmp_path):
    import datasets

    # the folder's own label order differs from the model's: names must map by name
    own = ["O", "B-geo-loc", "I-geo-loc", "B-person", "I-person"]
    features = datasets.Features(
        {
            "tokens": datasets.Sequence(datasets.Value("string")),
            "ner_tags": datasets.Sequence(datasets.ClassLabel(names=own)),
        }
    )
    rows = {"tokens": WORDS, "ner_tags": [[own.index(t) for t in s] for s in TAGS]}
    datasets.Dataset.from_dict(rows, features=features).save_to_disk(tmp_path / "ds")
    data = load_tagged_set(tmp_path / "ds", label2id=LABEL2ID, require_tags=True)
    assert data.words == WORDS and data.tags == IDS


def test_dataset_dict_folder_with_string_tags(tmp_path):
    import datasets

    split = datasets.Dataset.from_dict({"tokens": WORDS, "ner_tags": TAGS})
    datasets.DatasetDict({"train": split, "test": split.select([1])}).save_to_disk(tmp_path / "dd")
    data = load_tagged_set(tmp_path / "dd", label2id=LABEL2ID)
    assert data.words == [WORDS[1]] and data.tags == [IDS[1]]  # the test split


def test_dataset_folder_errors_name_the_row(tmp_path):
    import datasets

    datasets.Dataset.from_dict(
        {"tokens": WORDS, "ner_tags": [TAGS[0], ["O", "B-loc"]]}
    ).save_to_disk(tmp_path / "ds")
    with pytest.raises(BadInput, match=r"ds row 2: unknown tag 'B-loc'"):
        load_tagged_set(tmp_path / "ds", label2id=LABEL2ID)
    datasets.Dataset.from_dict({"words": WORDS}).save_to_disk(tmp_path / "nowords")
    with pytest.raises(BadInput, match=r"no column 'tokens' \(columns: words\)"):
        load_tagged_set(tmp_path / "nowords", label2id=LABEL2ID)


def test_text_view_and_spans(tmp_path):
    data = load(tmp_path, "d.conll", CONLL)
    assert data.texts == ["Alice lives in New York", "Hi Bob"]
    for i, text in enumerate(data.texts):
        assert [text[a:b] for a, b in data.word_spans(i)] == data.words[i]
    assert data.word_spans(1) == [(0, 2), (3, 6)]
    assert data.pairs is None and data.labels is None and len(data) == 2
    picked = data.subset([1])
    assert picked.words == [WORDS[1]] and picked.tags == [IDS[1]] and picked.source == data.source
    assert data.tag_names(dict(enumerate(LABELS))) == TAGS  # an id2label dict works too


def test_without_model_labels_only_words_are_read(tmp_path):
    data = load(tmp_path, "d.conll", CONLL.replace("B-person", "B-unknown"), label2id=None)
    assert data.words == WORDS and data.tags is None and data.warnings == []


def test_untagged_files(tmp_path):
    words_only = "Alice\nlives\n\nHi\n"
    data = load(tmp_path, "plain.txt", words_only)
    assert data.words == [["Alice", "lives"], ["Hi"]] and data.tags is None
    assert load(tmp_path, "plain.jsonl", '{"tokens": ["Hi", "Bob"]}\n').tags is None
    with pytest.raises(BadInput, match="has no tags"):
        data.tag_names(LABELS)
    message = bad_input(tmp_path, "plain2.txt", words_only, require_tags=True)
    assert "line 1: the file has tokens but no tags" in message


@pytest.mark.parametrize(
    "name, content, expected",
    [
        ("empty.txt", "", "is empty: it needs one token and its tag per line"),
        ("blank.conll", "\n \n\t\n", "is empty"),
        ("empty.jsonl", "", "is empty: it needs one JSON object per line"),
        ("only-docstart.txt", "-DOCSTART- O\n\n", "holds no sentences"),
        (
            "unknown.conll",
            "Alice\tB-person\nParis\tB-loc\n",
            "line 2: unknown tag 'B-loc'; the model's tags are O, B-person, I-person, "
            "B-geo-loc, I-geo-loc (or ids 0..4)",
        ),
        ("unknown-id.jsonl", records([IDS[0], [0, 9]]), "line 2: unknown tag 9"),
        ("bool.jsonl", '{"tokens": ["Hi"], "ner_tags": [true]}\n', "line 1: unknown tag True"),
        (
            "notag.txt",
            "Alice\tB-person\nlives\n",
            "line 2 has a token ('lives') but no tag: write token<TAB>tag",
        ),
        ("notoken.txt", "Alice\tB-person\n\tO\n", "line 2 has a tag but no token"),
        (
            "space-in-token.txt",
            "New York\tB-geo-loc\n",
            "line 1: token 'New York' contains whitespace",
        ),
        (
            "empty-token.jsonl",
            '{"tokens": ["Hi", ""], "ner_tags": ["O", "O"]}\n',
            "line 1: empty token ''",
        ),
        (
            "no-tokens.jsonl",
            records() + '{"tokens": [], "ner_tags": []}\n',
            "line 3: 'tokens' is missing or empty",
        ),
        (
            "count.jsonl",
            '{"tokens": ["Hi", "Bob"], "ner_tags": ["O"]}\n',
            "line 1: 2 tokens but 1 ner_tags",
        ),
        ("missing.jsonl", records() + '{"tokens": ["Hi"]}\n', "line 3: 'ner_tags' is missing"),
        ("broken.jsonl", records() + "{oops\n", "line 3 is not valid JSON"),
        (
            "array.json",
            "[\n" + json.dumps({"tokens": ["Hi"]}) + "\n]\n",
            "line 1 is not valid JSON (Expecting value): write one JSON object per line",
        ),
        ("list.jsonl", '["Hi", "O"]\n', "line 1 is not a JSON object"),
        ("table.csv", "text,label\nhi,O\n", "a .csv table holds no word-level tags"),
    ],
)
def test_errors_name_file_and_line(tmp_path, name, content, expected):
    assert expected in bad_input(tmp_path, name, content)


def test_non_utf8_names_the_line(tmp_path):
    content = CONLL.encode() + "Zoë\tB-person\n".encode("latin-1")
    assert "line 9 is not valid UTF-8: re-save the file as UTF-8" in bad_input(
        tmp_path, "latin1.txt", content
    )


def test_missing_file():
    with pytest.raises(BadInput, match="does not exist"):
        load_tagged_set("/no/such/file.conll", label2id=LABEL2ID)


def test_iob2_violations_are_warned_not_fixed(tmp_path):
    content = (
        "Alice\tI-person\n"  # line 1: follows nothing
        "Smith\tI-person\n"  # fine: follows I-person
        "in\tO\n"
        "York\tI-geo-loc\n"  # line 4: follows O
        "\n"
        "Bob\tB-person\n"
        "York\tI-geo-loc\n"  # line 7: follows another type
    )
    data = load(tmp_path, "iob.txt", content)
    assert data.tags == [[2, 2, 0, 4], [1, 4]]  # kept as given
    assert len(data.warnings) == 1
    assert data.warnings[0] == (
        f"{tmp_path / 'iob.txt'}: 3 I- tags follow no B- of their type (lines 1, 4, 7): "
        "IOB2 expects B- first; tags kept as given"
    )


def test_iob2_warning_quotes_the_first_lines_only(tmp_path):
    content = "".join(f"w{i}\tI-person\n\n" for i in range(8))
    (warning,) = load(tmp_path, "many.txt", content).warnings
    assert "8 I- tags follow" in warning and "(lines 1, 3, 5, 7, 9, ...)" in warning
    (warning,) = load(
        tmp_path, "one.jsonl", '{"tokens": ["York"], "ner_tags": ["I-geo-loc"]}\n'
    ).warnings
    assert "1 I- tag follows no B- of their type (line 1)" in warning


def test_scores_column(tmp_path):
    (tmp_path / "s.csv").write_text("sentence1,sentence2,similarity\na,b,4.5\nc,d,0\n")
    data = load_text_set(tmp_path / "s.csv", want_scores=True)
    assert data.pairs == ["b", "d"] and data.scores == [4.5, 0.0]
    assert data.subset([1]).scores == [0.0]
    assert load_text_set(tmp_path / "s.csv").scores is None
    (tmp_path / "bad.csv").write_text("text,score\na,1\nb,high\n")
    with pytest.raises(BadInput, match=r"row 2, column 'score': 'high' is not a number"):
        load_text_set(tmp_path / "bad.csv", want_scores=True)
    (tmp_path / "none.csv").write_text("text,label\na,1\n")  # scores are optional
    assert load_text_set(tmp_path / "none.csv", want_scores=True).scores is None
    assert TextSet("x", ["a"]).scores is None
