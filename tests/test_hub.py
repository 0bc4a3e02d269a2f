"""Models and data sets by Hugging Face hub id (edgec.hub), from a real hub cache.

The hub is unreachable here, so each test reads a cache laid out as huggingface_hub
writes it (`models--org--name/refs/<ref>` holding a commit, `snapshots/<commit>/` of
symlinks into `blobs/`), filled with the tiny models and a data set repo whose README
declares its configs; HF_HUB_CACHE points at it and HF_HUB_OFFLINE=1.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cli_helpers import assert_clean_error, invoke_edgec
from tiny_models import make_tiny_classifier

from edgec.package import MANIFEST
from edgec_runtime.errors import BadInput

MAIN = "a" * 40  # org/tiny-bert on main: the session's tiny_bert
V2 = "b" * 40  # org/tiny-bert on the branch v2: another seed
DATA = "c" * 40  # org/tiny-eval on main
MODEL = "org/tiny-bert"
# one format per repo, as `datasets` reads a repo: configs come from the README's YAML
CSV_README = """---
configs:
- config_name: default
  data_files:
  - split: test
    path: data/test.csv
- config_name: words
  data_files:
  - split: test
    path: words/test.csv
---
# a tiny data set
"""
PARQUET_README = """---
configs:
- config_name: default
  data_files:
  - split: test
    path: scored/test.parquet
  - split: hidden
    path: scored/hidden.parquet
- config_name: ner
  data_files:
  - split: test
    path: ner/test.parquet
---
"""


def put_in_cache(cache: Path, repo: str, kind: str, folder: Path, commit: str, *refs: str):
    """`folder`'s files as snapshot `commit` of `repo`, linked to blobs as the hub does."""
    storage = cache / f"{kind}s--{repo.replace('/', '--')}"
    snapshot = storage / "snapshots" / commit
    for file in sorted(p for p in folder.rglob("*") if p.is_file()):
        data = file.read_bytes()
        blob = storage / "blobs" / hashlib.sha256(data).hexdigest()
        blob.parent.mkdir(parents=True, exist_ok=True)
        blob.write_bytes(data)
        link = snapshot / file.relative_to(folder)
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))
    for ref in refs:
        (storage / "refs").mkdir(parents=True, exist_ok=True)
        (storage / "refs" / ref).write_text(commit)
    return snapshot


def _csv_repo(root: Path, eval_csv: Path) -> Path:
    (root / "data").mkdir(parents=True)
    (root / "data" / "test.csv").write_bytes(eval_csv.read_bytes())
    (root / "words").mkdir()
    (root / "words" / "test.csv").write_text("text,label\nNaN,class_0\nnull,class_1\n")
    (root / "README.md").write_text(CSV_README)
    return root


def _parquet_repo(root: Path) -> Path:
    import datasets

    # the data set's own label order is not the model's: ClassLabel maps by name
    label = datasets.ClassLabel(names=["class_1", "class_0"])
    features = datasets.Features({"sentence": datasets.Value("string"), "label": label})
    splits = {
        "test": {"sentence": ["a witty movie", "bad plot"], "label": [0, 1]},
        "hidden": {"sentence": ["a witty movie", "bad plot"], "label": [-1, -1]},
    }
    (root / "scored").mkdir(parents=True)
    for split, rows in splits.items():
        table = datasets.Dataset.from_dict(rows, features=features)
        table.to_parquet(root / "scored" / f"{split}.parquet")
    tags = datasets.ClassLabel(names=["O", "B-LOC", "B-PER"])
    ner_features = datasets.Features(
        {"tokens": datasets.Sequence(datasets.Value("string")), "ner_tags": datasets.Sequence(tags)}
    )
    ner = {"tokens": [["obama", "visited", "paris"], ["hello"]], "ner_tags": [[2, 0, 1], [0]]}
    (root / "ner").mkdir()
    datasets.Dataset.from_dict(ner, features=ner_features).to_parquet(root / "ner/test.parquet")
    (root / "README.md").write_text(PARQUET_README)
    return root


@pytest.fixture(scope="module")
def hub(tmp_path_factory, tiny_bert, tiny_eval_csv) -> dict:
    root = tmp_path_factory.mktemp("hub")
    cache = root / "cache"
    v2 = make_tiny_classifier("bert", root / "v2", seed=1)
    return {
        "cache": cache,
        "env": {"HF_HUB_CACHE": str(cache), "HF_HUB_OFFLINE": "1"},
        "main": put_in_cache(cache, MODEL, "model", tiny_bert, MAIN, "main"),
        "v2": put_in_cache(cache, MODEL, "model", v2, V2, "v2"),
        "data": put_in_cache(
            cache, "org/tiny-eval", "dataset", _csv_repo(root / "csv", tiny_eval_csv), DATA, "main"
        ),
        "parquet": put_in_cache(
            cache, "org/tiny-parquet", "dataset", _parquet_repo(root / "parquet"), DATA, "main"
        ),
    }


@pytest.fixture
def offline(hub, monkeypatch):
    for name, value in hub["env"].items():
        monkeypatch.setenv(name, value)
    return hub


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _build(model, data, out, *args, env):
    return invoke_edgec(
        "build", model, "--target", "x86-cpu", "--eval-data", data, "-o", out, *args, env=env
    )


# ---------------------------------------------------------------- builds


def test_build_a_hub_id_on_a_hub_data_set_offline(hub, tiny_bert, tmp_path):
    out = tmp_path / "pkg"
    r = _build(MODEL, "hf://datasets/org/tiny-eval@test", out, env=hub["env"])
    assert r.returncode == 0, r.stderr
    manifest = json.loads((out / MANIFEST).read_text())
    source = manifest["source_model"]
    assert source["hub_repo"] == MODEL and source["hub_revision"] == MAIN
    assert source["sha256"] == _sha256(tiny_bert / "model.safetensors")
    assert Path(source["path"]) == hub["main"].resolve()
    assert manifest["verification"]["eval_data"] == "hf://datasets/org/tiny-eval@test"
    assert manifest["verification"]["status"] == "passed"
    shown = invoke_edgec("inspect", out, env=hub["env"])
    assert shown.returncode == 0 and f"hub {MODEL} at {MAIN[:12]}" in shown.stdout


def test_revision_by_branch_then_verify_by_commit(hub, tmp_path):
    out = tmp_path / "pkg"
    r = _build(MODEL, hub["data"] / "data/test.csv", out, "--revision", "v2", env=hub["env"])
    assert r.returncode == 0, r.stderr
    source = json.loads((out / MANIFEST).read_text())["source_model"]
    assert source["hub_revision"] == V2
    assert source["sha256"] == _sha256(hub["v2"] / "model.safetensors")
    data = hub["data"] / "data/test.csv"
    r = invoke_edgec(
        "verify", out, "--eval-data", data, "--reference", MODEL, "--revision", V2, "--json",
        env=hub["env"],
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["reference"]["path"] == str(hub["v2"].resolve())
    # main's weights are not the ones this package was built from
    r = invoke_edgec(
        "verify", out, "--eval-data", data, "--reference", MODEL, "--tokenizer-only",
        env=hub["env"],
    )  # fmt: skip
    assert r.returncode == 1 and "not the model this package was built from" in r.stdout + r.stderr


# ---------------------------------------------------------------- refusals, one line


def test_a_model_missing_offline_is_one_line(hub, tiny_eval_csv, tmp_path):
    out = tmp_path / "pkg"
    r = _build("org/absent", tiny_eval_csv, out, env=hub["env"])
    assert_clean_error(
        r,
        2,
        "model 'org/absent' is not in the Hugging Face cache",
        "HF_HUB_OFFLINE=1",
        "hf download org/absent",
        "or pass a local folder",
    )
    assert not out.exists()
    r = invoke_edgec(
        "distill", "absent", "--student", "layers:1", "--train-data", tiny_eval_csv, "-o", out,
        env=hub["env"],
    )  # fmt: skip
    assert_clean_error(r, 2, "model 'absent' is not a folder here nor in the Hugging Face cache")


@pytest.mark.parametrize("revision", ["nope", "d" * 40])
def test_a_revision_missing_offline_is_one_line(hub, tiny_eval_csv, tmp_path, revision):
    r = _build(MODEL, tiny_eval_csv, tmp_path / "pkg", "--revision", revision, env=hub["env"])
    assert_clean_error(
        r,
        2,
        f"model 'org/tiny-bert' at revision '{revision}' is not in the Hugging Face cache",
        "which holds main, v2, and HF_HUB_OFFLINE=1",
        f"hf download org/tiny-bert --revision {revision}",
    )


def test_revision_needs_a_hub_id(hub, tiny_bert, tiny_eval_csv, tmp_path):
    r = _build(tiny_bert, tiny_eval_csv, tmp_path / "pkg", "--revision", "v2", env=hub["env"])
    assert_clean_error(r, 2, "--revision v2", "is a local path: drop --revision")
    r = invoke_edgec("verify", tmp_path, "--eval-data", tiny_eval_csv, "--revision", "v2")
    assert_clean_error(r, 2, "add --reference")


def test_an_unreachable_hub_falls_back_to_the_cache(hub):
    code = (
        "from edgec.hub import resolve_model\n"
        "from edgec_runtime.errors import BadInput\n"
        f"print(resolve_model({MODEL!r}).revision)\n"
        "try:\n    resolve_model('org/absent')\n"
        "except BadInput as e:\n    print(e)\n"
    )
    env = {**os.environ, **hub["env"], "HF_HUB_OFFLINE": "0", "HF_ENDPOINT": "http://127.0.0.1:9"}
    r = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )
    assert r.returncode == 0, r.stderr
    commit, message = r.stdout.splitlines()
    assert commit == MAIN
    assert "'org/absent' is not in the Hugging Face cache" in message
    assert "the hub cannot be reached" in message


# ---------------------------------------------------------------- resolution


def test_a_local_folder_wins_over_the_same_hub_id(offline, tiny_bert, tmp_path, monkeypatch):
    from edgec.hub import resolve_model

    local = tmp_path / "org" / "tiny-bert"
    local.mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    chosen = resolve_model(MODEL)
    assert chosen.path == Path(MODEL) and chosen.repo is None and chosen.record() == {}
    monkeypatch.chdir(local)
    chosen = resolve_model(MODEL)
    assert chosen.repo == MODEL and chosen.path == offline["main"].resolve()


def test_a_revision_resolves_by_commit_and_by_branch(offline):
    from edgec.hub import resolve_model

    assert resolve_model(MODEL, MAIN).path == offline["main"].resolve()
    by_branch = resolve_model(MODEL, "v2")
    assert by_branch.record() == {"hub_repo": MODEL, "hub_revision": V2}


def test_hub_data_sets_load_their_configs(offline):
    from edgec.data import load_text_set

    label2id = {"class_0": 0, "class_1": 1}
    default = load_text_set("hf://datasets/org/tiny-eval@test", label2id=label2id)
    assert len(default) == 100 and default.source == "hf://datasets/org/tiny-eval@test"
    assert len(load_text_set("hf://datasets/org/tiny-eval@test[:10]")) == 10  # a slice
    # a CSV config reads as a CSV file does: NaN and null are texts
    words = load_text_set("hf://datasets/org/tiny-eval:words@test", label2id=label2id)
    assert words.texts == ["NaN", "null"] and words.labels == [0, 1]
    # a Path folds hf:// into hf:/ (a CLI option's type does): the same data set
    scored = load_text_set(Path("hf://datasets/org/tiny-parquet@test"), label2id=label2id)
    assert scored.texts == ["a witty movie", "bad plot"]
    assert scored.labels == [1, 0]  # ClassLabel ids mapped by name, not as the model's
    assert scored.source == "hf://datasets/org/tiny-parquet@test"
    hidden = load_text_set("hf://datasets/org/tiny-parquet@hidden", label2id=label2id)
    assert hidden.labels is None  # -1 in every row: hidden labels
    with pytest.raises(BadInput, match="labels are hidden"):
        load_text_set(
            "hf://datasets/org/tiny-parquet@hidden", label2id=label2id, require_labels=True
        )


def test_class_labels_map_by_name_ignoring_case_when_unambiguous():
    import datasets

    from edgec.data import _class_label_values

    label = datasets.ClassLabel(names=["positive", "negative"])
    table = datasets.Dataset.from_dict(
        {"label": [0, 1]}, features=datasets.Features({"label": label})
    )
    assert _class_label_values(table, "label", {"NEGATIVE": 0, "POSITIVE": 1}) == [
        "POSITIVE",
        "NEGATIVE",
    ]
    # names the model does not have: the ids are the model's, as in a file of ids
    assert _class_label_values(table, "label", {"LABEL_0": 0, "LABEL_1": 1}) == [0, 1]


def test_a_tagged_hub_data_set(offline):
    from edgec.data.tagged import load_tagged_set

    label2id = {"O": 0, "B-PER": 1, "I-PER": 2, "B-LOC": 3, "I-LOC": 4}
    tagged = load_tagged_set("hf://datasets/org/tiny-parquet:ner@test", label2id=label2id)
    assert tagged.words == [["obama", "visited", "paris"], ["hello"]]
    assert tagged.tags == [[1, 0, 3], [0]]  # ClassLabel tags mapped by name
    assert tagged.source == "hf://datasets/org/tiny-parquet:ner@test"


@pytest.mark.parametrize(
    "spec, fragment",
    [
        ("hf://datasets/org/tiny-eval", "name the split, e.g. @test"),
        ("hf://org/tiny-eval@test", "hf://datasets/ORG/NAME[:CONFIG]@SPLIT"),
        ("hf://datasets/org/tiny-eval@validation", 'Unknown split "validation"'),
        ("hf://datasets/org/tiny-eval:nope@test", "BuilderConfig 'nope' not found"),
        ("hf://datasets/org/absent@test", "'hf://datasets/org/absent' is not in the Hugging"),
    ],
)
def test_hub_data_set_refusals(offline, spec, fragment):
    from edgec.data import load_text_set

    with pytest.raises(BadInput) as caught:
        load_text_set(spec)
    assert fragment in str(caught.value) and "\n" not in str(caught.value)


def test_a_bad_hub_data_set_is_exit_2_before_the_weights_load(hub, tmp_path):
    r = _build(MODEL, "hf://datasets/org/absent@test", tmp_path / "pkg", env=hub["env"])
    assert_clean_error(r, 2, "data set 'hf://datasets/org/absent'", "--repo-type dataset")
