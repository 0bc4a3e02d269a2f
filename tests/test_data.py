"""Data files: every format loads, labels map by name or id, and each mistake names
the file, the row and the column."""

import json

import pytest

from edgec.data import load_text_set
from edgec_runtime.errors import BadInput

LABEL2ID = {"negative": 0, "positive": 1}


def test_formats_agree(tmp_path):
    rows = [{"text": "good film", "label": "positive"}, {"text": "bad film", "label": 0}]
    (tmp_path / "d.csv").write_text("text,label\ngood film,positive\nbad film,0\n")
    (tmp_path / "d.tsv").write_text("text\tlabel\ngood film\tpositive\nbad film\t0\n")
    (tmp_path / "d.jsonl").write_text(
        "".join(json.dumps({**r, "label": str(r["label"])}) + "\n" for r in rows)
    )
    import datasets

    datasets.Dataset.from_list(
        [{"text": r["text"], "label": str(r["label"])} for r in rows]
    ).to_parquet(tmp_path / "d.parquet")
    datasets.Dataset.from_list(
        [{"text": r["text"], "label": str(r["label"])} for r in rows]
    ).save_to_disk(tmp_path / "dsdir")
    for name in ("d.csv", "d.tsv", "d.jsonl", "d.parquet", "dsdir"):
        data = load_text_set(tmp_path / name, label2id=LABEL2ID)
        assert data.texts == ["good film", "bad film"], name
        assert data.labels == [1, 0], name


def test_pairs_and_custom_columns(tmp_path):
    (tmp_path / "p.csv").write_text("premise,hypothesis,gold\na,b,positive\nc,d,negative\n")
    data = load_text_set(
        tmp_path / "p.csv",
        label2id=LABEL2ID,
        text_column="premise",
        pair_column="hypothesis",
        label_column="gold",
    )
    assert data.pairs == ["b", "d"] and data.labels == [1, 0]


@pytest.mark.parametrize(
    "content, expected",
    [
        ("", "is empty"),
        ("text,label\n", "no rows"),
        ("words,label\nhi,positive\n", "has none of the columns"),
        (
            "text,label\nfine,positive\nmeh,neutral\n",
            "row 2, column 'label': unknown label 'neutral'",
        ),
        ("text,label\nfine,positive\nmeh,7\n", "row 2, column 'label': unknown label"),
        ("text,label\n,positive\n", "row 1, column 'text': empty cell"),
    ],
)
def test_bad_files_name_the_problem(tmp_path, content, expected):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(BadInput, match=expected.replace("(", r"\(")) as info:
        load_text_set(path, label2id=LABEL2ID, require_labels=True)
    assert str(path) in str(info.value)
    assert "\n" not in str(info.value)


def test_undecodable_names_the_line(tmp_path):
    path = tmp_path / "latin1.csv"
    path.write_bytes("text,label\nfine,positive\ncaf\xe9,negative\n".encode("latin-1"))
    with pytest.raises(BadInput, match="line 3 is not valid UTF-8"):
        load_text_set(path, label2id=LABEL2ID)


def test_missing_file_and_unknown_format(tmp_path):
    with pytest.raises(BadInput, match="does not exist"):
        load_text_set(tmp_path / "nope.csv")
    (tmp_path / "x.xlsx").write_text("x")
    with pytest.raises(BadInput, match="unknown data format"):
        load_text_set(tmp_path / "x.xlsx")
    with pytest.raises(BadInput, match="no column 'body'"):
        (tmp_path / "ok.csv").write_text("text\nhi\n")
        load_text_set(tmp_path / "ok.csv", text_column="body")
