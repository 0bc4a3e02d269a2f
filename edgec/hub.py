"""Models and data sets from the Hugging Face hub, through huggingface_hub's cache.

Wherever a model folder is taken (`edgec build MODEL`, `edgec distill TEACHER`,
`edgec verify --reference`), a hub id (`org/name`, or a bare `name`) is taken too, with
`--revision` for a branch, tag or commit; wherever a data file is taken, a hub data set
is, written `hf://datasets/ORG/NAME[:CONFIG]@SPLIT`. Either becomes its snapshot folder
in the cache (`snapshot_download`), and a model records its repo and the commit it
resolved to (`ModelSource.record`, the manifest's `source_model`).

A path that exists always wins over a hub id spelt the same. With HF_HUB_OFFLINE=1 only
the cache is read (`local_files_only`), as it is when the hub cannot be reached; what is
not there, or any error of huggingface_hub's, is one line (BadInput) naming the id and
the fix. huggingface_hub is imported only when a hub id is resolved: `edgec --help`
never loads it.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from edgec_runtime.errors import BadInput

# huggingface_hub's repo id rule (validate_repo_id): [org/]name of word characters, - and
# ., at most 96 each, no "--" or "..", not ending in .git
_PART = r"\w(?:[\w.-]{0,94}\w)?"
HUB_ID = re.compile(rf"(?:{_PART}/)?{_PART}", re.ASCII)

# What a model folder needs, as snapshot_download's fnmatch patterns (a * crosses /):
# config, tokenizer and sentence-transformers module files (JSON: config.json,
# tokenizer.json, modules.json, 1_Pooling/config.json, ...; vocab.txt, merges.txt,
# *.model sentencepiece files) and the safetensors weights, at the top or in a module
# folder (0_Transformer/ in old sentence-transformers saves).
MODEL_PATTERNS = ("*.json", "*.txt", "*.model", "model.safetensors", "*/model.safetensors")
# pickled weights only when the repo has no safetensors (edgec.model prefers those)
BIN_PATTERNS = ("pytorch_model.bin", "*/pytorch_model.bin")

DATASET_SYNTAX = "hf://datasets/ORG/NAME[:CONFIG]@SPLIT"
DATASET_EXAMPLE = "hf://datasets/stanfordnlp/sst2@validation"
# `hf://` as written, or as pathlib folds it (`hf:/`) when a CLI option made it a Path
_HF_PREFIX = re.compile(r"hf:/{1,2}")
_DATASET_BODY = re.compile(
    rf"(?P<repo>{HUB_ID.pattern})(?::(?P<config>[^@/:\s]+))?@(?P<split>[^@\s]+)", re.ASCII
)


# ---------------------------------------------------------------- the cache


def _is_true(value: str | None) -> bool:
    return (value or "").strip().upper() in {"1", "ON", "YES", "TRUE"}


def hub_cache() -> Path:
    """huggingface_hub's cache folder, read from the environment now (huggingface_hub
    reads it once, at import): HF_HUB_CACHE, else $HF_HOME/hub, else
    ~/.cache/huggingface/hub."""
    env = os.environ
    folder = env.get("HF_HUB_CACHE") or env.get("HUGGINGFACE_HUB_CACHE")
    if not folder:
        home = env.get("HF_HOME") or os.path.join(
            env.get("XDG_CACHE_HOME") or os.path.join("~", ".cache"), "huggingface"
        )
        folder = os.path.join(home, "hub")
    return Path(os.path.expandvars(os.path.expanduser(folder)))


def hub_offline() -> bool:
    """HF_HUB_OFFLINE (or TRANSFORMERS_OFFLINE) as the environment says it now, else as
    huggingface_hub read it at import."""
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        if os.environ.get(name, "").strip():
            return _is_true(os.environ[name])
    from huggingface_hub import constants

    return constants.is_offline_mode()


def _shown(folder: Path) -> str:
    """The cache folder as a user would type it (~ for the home folder)."""
    home = os.path.expanduser("~")
    text = str(folder)
    return "~" + text[len(home) :] if home not in ("", "/") and text.startswith(home) else text


def _storage(cache: Path, repo: str, kind: str) -> Path:
    return cache / f"{kind}s--{repo.replace('/', '--')}"


def cached_revisions(repo: str, kind: str = "model", cache: Path | None = None) -> list[str]:
    """What the cache holds of a repo: its refs (main, tags, branches), then the commits
    no ref names (shortened), for a message that says what else could be used."""
    storage = _storage(cache or hub_cache(), repo, kind)
    refs, named = [], set()
    if (storage / "refs").is_dir():
        for ref in sorted(p for p in (storage / "refs").rglob("*") if p.is_file()):
            refs.append(ref.relative_to(storage / "refs").as_posix())
            named.add(ref.read_text(encoding="utf-8", errors="replace").strip())
    commits = []
    if (storage / "snapshots").is_dir():
        commits = sorted(
            p.name[:12] for p in (storage / "snapshots").iterdir() if p.name not in named
        )
    return refs + commits


def _snapshot(repo: str, kind: str, revision: str | None, patterns) -> Path:
    """snapshot_download into (or only from, offline) the cache; its errors as one line."""
    from huggingface_hub import snapshot_download

    offline, cache = hub_offline(), hub_cache()
    try:
        folder = snapshot_download(
            repo,
            repo_type=kind,
            revision=revision,
            cache_dir=cache,
            local_files_only=offline,
            allow_patterns=list(patterns) if patterns else None,
        )
    except Exception as e:  # huggingface_hub's own, httpx's, OSError: all one line
        raise _hub_problem(e, repo, kind, revision, offline, cache) from None
    return Path(folder)


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _hub_problem(error, repo, kind, revision, offline, cache) -> BadInput:
    from huggingface_hub import errors as hf

    what = "model" if kind == "model" else "data set"
    name = repo if kind == "model" else f"hf://datasets/{repo}"
    download = (
        f"hf download {repo}"
        + (" --repo-type dataset" if kind == "dataset" else "")
        + (f" --revision {revision}" if revision else "")
    )
    where = f"the Hugging Face cache ({_shown(cache)})"
    if isinstance(error, hf.GatedRepoError):
        page = f"https://huggingface.co/{'datasets/' if kind == 'dataset' else ''}{repo}"
        return BadInput(
            f"{what} {name!r} is gated on the Hugging Face hub: accept its terms at {page}, "
            "then log in (hf auth login)"
        )
    if isinstance(error, hf.RepositoryNotFoundError):
        return BadInput(
            f"{what} {name!r} is neither a local path nor a repository on the Hugging Face hub "
            "(a private one needs hf auth login): check the spelling"
        )
    if isinstance(error, hf.RevisionNotFoundError):
        return BadInput(
            f"{what} {name!r} has no revision {revision!r} on the Hugging Face hub: give a "
            "branch, a tag or a full commit sha"
        )
    if isinstance(error, hf.LocalEntryNotFoundError | hf.OfflineModeIsEnabled):
        cause = error.__cause__ if error.__cause__ is not None else error
        reason = (
            "HF_HUB_OFFLINE=1"
            if offline or isinstance(cause, hf.OfflineModeIsEnabled)
            else f"the hub cannot be reached ({type(cause).__name__})"
        )
        if isinstance(error, hf.IncompleteSnapshotError):
            return BadInput(
                f"{what} {name!r} is only partly in {where} and {reason}: finish the download "
                f"online ({download})"
            )
        cached = cached_revisions(repo, kind, cache)
        if cached:
            other = " or pass --revision with one the cache holds" if kind == "model" else ""
            return BadInput(
                f"{what} {name!r} at revision {revision or 'main'!r} is not in {where}, which "
                f"holds {', '.join(cached)}, and {reason}: download it once online ({download})"
                + other
            )
        here = " a folder here nor" if kind == "model" and "/" not in repo else ""
        return BadInput(
            f"{what} {name!r} is not{here} in {where} and {reason}: download it once online "
            f"({download}) or pass a local {'folder' if kind == 'model' else 'file'}"
        )
    if isinstance(error, hf.HFValidationError):
        return BadInput(f"{name!r} is not a Hugging Face hub id ({_first_line(error)})")
    return BadInput(
        f"could not fetch {what} {name!r} from the Hugging Face hub "
        f"({type(error).__name__}: {_first_line(error)})"
    )


# ---------------------------------------------------------------- models


@dataclass(frozen=True)
class ModelSource:
    """Where a model's files are: a local folder, or a hub snapshot (repo, commit)."""

    path: Path
    repo: str | None = None
    revision: str | None = None  # the commit sha the snapshot is at

    def record(self) -> dict:
        """What the manifest's `source_model` adds for a hub model (nothing for a folder)."""
        return {"hub_repo": self.repo, "hub_revision": self.revision} if self.repo else {}


def is_hub_id(text: str) -> bool:
    """`org/name` or `name`, as the hub spells repo ids (a path like ./x or /x is not)."""
    return (
        HUB_ID.fullmatch(text) is not None
        and "--" not in text
        and ".." not in text
        and not text.endswith(".git")
    )


def resolve_model(spec: str | Path, revision: str | None = None) -> ModelSource:
    """A model folder, or a hub id's snapshot in the cache (downloaded when online).

    A path that exists is the folder, whatever a hub id spelt the same would be; a spec
    that is no hub id is a path too (edgec.model_files says what is wrong with it).
    """
    text = str(spec)
    if revision is not None and not revision.strip():
        raise BadInput("--revision is empty: give a branch, a tag or a commit sha")
    if os.path.exists(text) or not is_hub_id(text):
        if revision is not None:
            raise BadInput(
                f"--revision {revision} picks a revision of a Hugging Face hub id, and {text} "
                "is a local path: drop --revision"
            )
        return ModelSource(Path(spec))
    folder = _snapshot(text, "model", revision, MODEL_PATTERNS)
    if not any(folder.rglob("model.safetensors")):
        # no safetensors in the repo: its pickled weights, at the commit just resolved
        folder = _snapshot(text, "model", folder.name, MODEL_PATTERNS + BIN_PATTERNS)
    return ModelSource(folder, text, folder.name)


# ---------------------------------------------------------------- data sets


@dataclass(frozen=True)
class HubDataset:
    """`hf://datasets/ORG/NAME[:CONFIG]@SPLIT`: one split of a no-script hub data set
    (data files, with configs in its README's YAML), loaded by `edgec.data`."""

    repo: str
    config: str | None
    split: str

    def __str__(self) -> str:
        config = f":{self.config}" if self.config else ""
        return f"hf://datasets/{self.repo}{config}@{self.split}"

    def folder(self) -> Path:
        """The data set's snapshot folder in the cache (downloaded when online)."""
        return _snapshot(self.repo, "dataset", None, None)


def hub_dataset(value) -> HubDataset | None:
    """The hub data set `value` names, or None for a path (one that exists always is)."""
    if value is None or isinstance(value, HubDataset):
        return value
    text = str(value)
    prefix = _HF_PREFIX.match(text)
    if prefix is None or os.path.exists(text):
        return None
    body = text[prefix.end() :]
    if not body.startswith("datasets/"):
        raise BadInput(
            f"{text!r}: edgec reads hub data sets as {DATASET_SYNTAX}, e.g. {DATASET_EXAMPLE} "
            "(a model is its plain id, org/name)"
        )
    body = body[len("datasets/") :]
    match = _DATASET_BODY.fullmatch(body)
    if match is None:
        missing = " (name the split, e.g. @test)" if "@" not in body else ""
        raise BadInput(
            f"{text!r} is not a hub data set{missing}: write {DATASET_SYNTAX}, "
            f"e.g. {DATASET_EXAMPLE}"
        )
    return HubDataset(match["repo"], match["config"], match["split"])
