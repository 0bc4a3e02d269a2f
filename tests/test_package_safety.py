"""What must never happen to a user's files, whatever -o, --force and signals do.

The model folder and the data files are never written over; --force replaces only
what edgec wrote; a mistaken -o is a one-line exit 2 before any work; two builds
never write one output at once; a replaced package is at every instant the old one
or the new one, complete, whether the build is stopped by an error, SIGTERM or
SIGKILL; and what a killed build leaves is cleared by the next build, never what a
live one is using.

The signal tests run the real console script and stop it at a named step of the
replace with the test-only hook EDGEC_TEST_PAUSE_AT (edgec.package.PAUSE_ENV).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from cli_helpers import EDGEC, assert_clean_error, invoke_edgec

import edgec.package
from edgec.package import MANIFEST, PAUSE_ENV, integrity_problems, read_manifest

# The old package is built with the target's int8, every new one with fp32: the
# manifest tells which one is at -o.
OLD, NEW = "int8", "fp32"
# Where each step of a --force replace leaves -o when the build is stopped there.
OUTCOME = {"staged": OLD, "swapped": NEW, "moved-old": OLD, "placed": NEW}
EXCHANGE_STEPS = ("staged", "swapped")  # Linux renameat2
FALLBACK_STEPS = ("moved-old", "placed")  # without it: move aside, move in, remove
# The real CLI with renameat2 unavailable, as on another OS or filesystem.
FALLBACK_MAIN = (
    "import edgec.package as p\n"
    "p._renameat2 = lambda *a: False\n"
    "from edgec.cli import main\n"
    "main()\n"
)


def _build(model, eval_csv, out, *extra):
    return invoke_edgec("build", model, "-t", "x86-cpu", "--eval-data", eval_csv, "-o", out, *extra)


def _tree(path: Path) -> dict[str, str]:
    """Every file under `path` (or `path` itself) with its sha256: to prove it untouched."""
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    return {str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def _precision(package: Path) -> str:
    """The precision of the complete package at `package`; fails if it is not complete."""
    manifest = read_manifest(package)
    assert integrity_problems(package, manifest) == [], package
    return manifest["backend"]["precision"]


def _dead_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


@pytest.fixture(scope="module")
def old_package(tiny_bert, tiny_eval_csv, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("old") / "pkg"
    r = _build(tiny_bert, tiny_eval_csv, out, "--archive")
    assert r.returncode == 0, r.stderr
    assert _precision(out) == OLD
    return out


@pytest.fixture
def model(tiny_bert, tmp_path) -> Path:
    """A copy of the tiny model: a bug here must not destroy the session's fixture."""
    return Path(shutil.copytree(tiny_bert, tmp_path / "model"))


@pytest.fixture
def eval_csv(tiny_eval_csv, tmp_path) -> Path:
    return Path(shutil.copy(tiny_eval_csv, tmp_path / "eval.csv"))


def _place_old(old_package: Path, folder: Path, archive: bool = False) -> Path:
    out = Path(shutil.copytree(old_package, folder / "pkg"))
    if archive:
        shutil.copy(old_package.with_name("pkg.tar.gz"), folder / "pkg.tar.gz")
    return out


# --- 1. never the source model or a data file --------------------------------------


@pytest.mark.parametrize("force", [False, True])
@pytest.mark.parametrize("where", ["is", "lies inside", "contains", "symlink"])
def test_output_never_touches_the_model_folder(model, eval_csv, tmp_path, where, force):
    out = {
        "is": model,
        "lies inside": model / "pkg",
        "contains": tmp_path,
        "symlink": tmp_path / "link",
    }[where]
    if where == "symlink":
        out.symlink_to(model, target_is_directory=True)
    before, listing = _tree(model), sorted(os.listdir(tmp_path))
    r = _build(model, eval_csv, out, *(["--force"] if force else []))
    assert_clean_error(r, 2, "the model folder", "--force or not", "choose an -o outside it")
    assert _tree(model) == before and sorted(os.listdir(tmp_path)) == listing


@pytest.mark.parametrize("option", ["--eval-data", "--calibration-data"])
def test_output_never_touches_a_data_file(model, eval_csv, tmp_path, option):
    data = Path(shutil.copy(eval_csv, tmp_path / "data.csv"))
    given = {"--eval-data": data} if option == "--eval-data" else {option: data}
    args = [arg for pair in {"--eval-data": eval_csv, **given}.items() for arg in pair]
    r = invoke_edgec("build", model, "-t", "x86-cpu", *args, "-o", data, "--force")
    assert_clean_error(r, 2, f"is {option} {data}")
    assert data.read_bytes() == eval_csv.read_bytes()


@pytest.mark.parametrize("option", ["--train-data", "--validation-data"])
def test_output_never_touches_distill_data(model, eval_csv, tmp_path, option):
    train = Path(shutil.copy(eval_csv, tmp_path / "train.csv"))
    args = ["--train-data", train] if option == "--train-data" else ["--train-data", eval_csv]
    if option == "--validation-data":
        args += ["--validation-data", train]
    r = _build(model, eval_csv, train, "--distill", "layers:1", *args, "--force")
    assert_clean_error(r, 2, f"is {option} {train}")
    assert train.read_bytes() == eval_csv.read_bytes()


def test_archive_never_touches_a_data_file(model, eval_csv, tmp_path):
    """`-o data --archive` writes data.tar.gz: refused when that is an input."""
    data = Path(shutil.copy(eval_csv, tmp_path / "data.tar.gz"))
    r = _build(model, data, tmp_path / "data", "--archive", "--force")
    assert_clean_error(r, 2, "the archive", "is --eval-data")
    assert data.read_bytes() == eval_csv.read_bytes()


def test_output_that_holds_the_data_is_refused(old_package, model, tmp_path):
    """Eval data kept inside an old package: --force must not delete it with the package."""
    out = _place_old(old_package, tmp_path)
    data = Path(shutil.copy(old_package / MANIFEST, out / "eval.jsonl"))
    before = _tree(out)
    r = _build(model, data, out, "--force")
    assert_clean_error(r, 2, "contains --eval-data")
    assert _tree(out) == before


# --- 2. --force replaces only what edgec wrote -------------------------------------


@pytest.mark.parametrize("thing", ["file", "folder", "symlink"])
def test_force_replaces_only_a_package(model, eval_csv, tmp_path, thing):
    out = tmp_path / "out"
    if thing == "file":
        out.write_text("my notes\n")
    elif thing == "folder":
        out.mkdir()
        (out / "thesis.tex").write_text("years of work\n")
    else:
        (tmp_path / "elsewhere").mkdir()
        out.symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    before = _tree(out) if thing != "symlink" else None
    listing = sorted(os.listdir(tmp_path))
    r = _build(model, eval_csv, out, "--force")
    problem = {
        "file": "is a file, not an edgec package",
        "folder": "is a folder but not an edgec package",
        "symlink": "is a symbolic link",
    }[thing]
    assert_clean_error(r, 2, str(out), problem, "--force replaces only what edgec wrote")
    assert sorted(os.listdir(tmp_path)) == listing
    if before is not None:
        assert _tree(out) == before


def test_force_replaces_an_empty_folder_and_a_package_with_its_archive(
    old_package, model, eval_csv, tmp_path
):
    empty = tmp_path / "empty"
    empty.mkdir()
    r = _build(model, eval_csv, empty, "--force", "--precision", NEW)
    assert r.returncode == 0, r.stderr
    assert _precision(empty) == NEW
    out = _place_old(old_package, tmp_path, archive=True)
    r = _build(model, eval_csv, out, "--force", "--archive", "--precision", NEW)
    assert r.returncode == 0, r.stderr
    assert _precision(out) == NEW
    with tarfile.open(tmp_path / "pkg.tar.gz") as tar:
        members = tar.getnames()
        assert members[:2] == ["pkg", f"pkg/{MANIFEST}"]  # the manifest first
        manifest = json.load(tar.extractfile(f"pkg/{MANIFEST}"))
    assert manifest["backend"]["precision"] == NEW
    assert sorted(os.listdir(tmp_path)) == sorted(
        ["empty", "eval.csv", "model", "pkg", "pkg.tar.gz"]
    )


@pytest.mark.parametrize("thing", ["folder", "file"])
def test_force_replaces_only_an_edgec_archive(model, eval_csv, tmp_path, thing):
    """Today's bug: OUT.tar.gz a folder gave exit 4 and left .OUT.tar.gz.tmp behind."""
    target = tmp_path / "out.tar.gz"
    if thing == "folder":
        target.mkdir()
        (target / "keep.txt").write_text("mine\n")
    else:
        target.write_bytes(b"not a tar at all")
    before, listing = _tree(target), sorted(os.listdir(tmp_path))
    r = _build(model, eval_csv, tmp_path / "out", "--archive", "--force")
    problem = "is a folder, not a package archive" if thing == "folder" else "is not an edgec"
    assert_clean_error(r, 2, str(target), problem)
    assert sorted(os.listdir(tmp_path)) == listing and _tree(target) == before


# --- 6. -o mistakes are exit 2 before any work -------------------------------------


def test_output_in_a_file_is_refused(model, eval_csv, tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("mine\n")
    r = _build(model, eval_csv, notes / "pkg")
    assert_clean_error(r, 2, f"{notes} is a file, not a folder")
    assert notes.read_text() == "mine\n"


def test_output_in_a_read_only_folder_is_refused(model, eval_csv, tmp_path, monkeypatch):
    """os.access decides (root passes a chmod, so the check is what is tested here)."""
    locked = tmp_path / "locked"
    locked.mkdir()
    real_access = os.access
    monkeypatch.setattr(
        os,
        "access",
        lambda p, mode, **k: False if Path(p) == locked else real_access(p, mode, **k),
    )
    r = _build(model, eval_csv, locked / "pkg")
    assert_clean_error(r, 2, f"cannot write in {locked}", "read-only")
    assert os.listdir(locked) == []


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes through a chmod")
def test_output_in_a_chmod_read_only_folder_is_refused(model, eval_csv, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o555)
    try:
        assert_clean_error(_build(model, eval_csv, locked / "pkg"), 2, "cannot write in")
    finally:
        locked.chmod(0o755)


@pytest.mark.parametrize("kernel", ["/proc", "/sys"])
def test_output_under_a_kernel_folder_is_refused(model, eval_csv, kernel):
    r = _build(model, eval_csv, f"{kernel}/edgec-pkg", "--force")
    assert_clean_error(r, 2, f"is under {kernel}, a kernel folder")


@pytest.mark.parametrize("force", [False, True])
@pytest.mark.parametrize("out", [".", "..", "sub/.."])
def test_output_that_is_the_current_folder_is_refused(
    model, eval_csv, tmp_path, monkeypatch, out, force
):
    here = tmp_path / "here"
    (here / "sub").mkdir(parents=True)
    (here / "notes.txt").write_text("mine\n")
    monkeypatch.chdir(here)
    r = _build(model, eval_csv, out, *(["--force"] if force else []))
    message = "-o . would replace the current folder" if out == "." else "current folder"
    assert_clean_error(r, 2, message)
    assert sorted(os.listdir(here)) == ["notes.txt", "sub"]


def _wait_for(marker: Path, process: subprocess.Popen, timeout=600) -> None:
    deadline = time.monotonic() + timeout
    while not marker.exists():
        if process.poll() is not None:
            pytest.fail(f"the build ended before {marker.name}: {process.communicate()}")
        assert time.monotonic() < deadline, f"no {marker.name} after {timeout}s"
        time.sleep(0.1)


def _start(args, marker: Path, step: str, tmpdir: Path, fallback=False) -> subprocess.Popen:
    """The real console script, to stop at `step` of the replace (PAUSE_ENV)."""
    env = {**os.environ, PAUSE_ENV: f"{step}@{marker}", "TMPDIR": str(tmpdir)}
    command = [sys.executable, "-c", FALLBACK_MAIN] if fallback else [EDGEC]
    return subprocess.Popen(
        [*command, *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def test_a_second_build_to_the_same_output_is_refused(old_package, model, eval_csv, tmp_path):
    """Today two builds racing to one -o end in `OSError: Directory not empty` (exit 4)."""
    folder = tmp_path / "out"
    folder.mkdir()
    out = _place_old(old_package, folder)
    marker, work = tmp_path / "paused", tmp_path / "tmp"
    work.mkdir()
    first = _start(
        ["build", model, "-t", "x86-cpu", "--eval-data", eval_csv, "-o", out, "--force",
         "--precision", NEW, "--json"],
        marker, "staged", work,
    )  # fmt: skip
    try:
        _wait_for(marker, first)
        assert (folder / ".pkg.lock").is_file()
        second = _build(model, eval_csv, out, "--force")
        assert_clean_error(second, 2, f"another edgec build is writing {out} (pid {first.pid})")
        marker.unlink()  # let the first one finish
        stdout, stderr = first.communicate(timeout=600)
    finally:
        first.kill()
    assert first.returncode == 0, stderr
    assert _precision(out) == NEW
    assert os.listdir(folder) == ["pkg"]  # the lock file is gone with the staging folder
    assert not list(work.glob("edgec-build-*"))


# --- 5. a killed build's leftovers ---------------------------------------------------


def test_the_next_build_removes_a_killed_builds_leftovers(
    old_package, model, eval_csv, tmp_path, monkeypatch
):
    folder, work = tmp_path / "out", tmp_path / "tmp"
    folder.mkdir()
    work.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(work))
    out = _place_old(old_package, folder)
    dead = _dead_pid()
    live = subprocess.Popen(["sleep", "600"])
    try:
        leftovers = {
            folder / f".pkg.edgec-stage-{dead}-abc123": "dir",
            folder / f".pkg.edgec-tar-{dead}-def456": "file",
            work / f"edgec-build-{dead}-x1y2z3": "dir",
        }
        kept = {
            folder / f".pkg.edgec-stage-{live.pid}-abc123": "dir",
            work / f"edgec-build-{live.pid}-x1y2z3": "dir",
            folder / f".pkgx.edgec-stage-{dead}-abc123": "dir",  # another output's
            work / "edgec-build-oldstyle": "dir",  # no pid: whose it is is unknown
        }
        for path, kind in {**leftovers, **kept}.items():
            if kind == "dir":
                path.mkdir()
                (path / "model.onnx").write_bytes(b"partial")
            else:
                path.write_bytes(b"partial")
        r = _build(model, eval_csv, out, "--force", "--precision", NEW)
        assert r.returncode == 0, r.stderr
        assert _precision(out) == NEW
        assert not any(p.exists() for p in leftovers)
        assert all(p.exists() for p in kept)
    finally:
        live.kill()
        live.wait()


def test_a_replace_killed_between_its_renames_is_put_back(old_package, model, eval_csv, tmp_path):
    """Without renameat2 the old package is moved aside first; if the build dies before
    the new one is in, the next build puts the old one back rather than removing it."""
    aside = tmp_path / f".pkg.edgec-old-{_dead_pid()}-0a1b2c3d"
    shutil.copytree(old_package, aside)
    r = _build(model, eval_csv, tmp_path / "pkg")
    assert_clean_error(r, 2, "already exists", "--force")
    assert _precision(tmp_path / "pkg") == OLD and not aside.exists()


# --- 3. a replace stopped at each step leaves one complete package -------------------


def _files_of(package: Path) -> tuple[dict, dict]:
    manifest = read_manifest(package)
    files = {name: package / name for name in manifest["files"]}
    kept = {k: v for k, v in manifest.items() if k not in ("files", "created")}
    return files, {**kept, "backend": {**manifest["backend"], "precision": NEW}}


@pytest.mark.parametrize("failure", [KeyboardInterrupt, OSError])
@pytest.mark.parametrize(
    "step,exchange",
    [
        *((s, True) for s in EXCHANGE_STEPS),
        ("staged", False),
        *((s, False) for s in FALLBACK_STEPS),
    ],
)
def test_write_stopped_at_each_step_leaves_one_package(
    old_package, tmp_path, monkeypatch, step, exchange, failure
):
    """In-process, every exception at every step: the old or the new package at -o,
    complete, nothing beside it, and an interrupt says which."""
    files, manifest = _files_of(old_package)
    folder = tmp_path / "out"
    folder.mkdir()
    out = _place_old(old_package, folder)
    if not exchange:
        monkeypatch.setattr(edgec.package, "_renameat2", lambda *a: False)

    def stop(at):
        if at == step:
            raise failure("stopped")

    monkeypatch.setattr(edgec.package, "_pause", stop)
    with pytest.raises(failure) as stopped:
        edgec.package.write_package(out, files, manifest, force=True)
    assert _precision(out) == OUTCOME[step]
    assert os.listdir(folder) == ["pkg"]
    if failure is KeyboardInterrupt:
        said = stopped.value.edgec_left
        assert said == (
            f"the new package is in place at {out}"
            if OUTCOME[step] == NEW
            else f"the old package at {out} is kept"
        )


def test_a_first_write_stopped_leaves_nothing(old_package, tmp_path, monkeypatch):
    files, manifest = _files_of(old_package)

    def stop(at):
        raise KeyboardInterrupt

    monkeypatch.setattr(edgec.package, "_pause", stop)
    with pytest.raises(KeyboardInterrupt) as stopped:
        edgec.package.write_package(tmp_path / "pkg", files, manifest, archive=True)
    assert stopped.value.edgec_left.startswith("nothing was written to")
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("step", EXCHANGE_STEPS)
def test_an_archive_is_replaced_only_after_the_folder(old_package, tmp_path, monkeypatch, step):
    """Stopped before the folder is in, the old archive is untouched too; after, the
    message says the archive is still the old one."""
    files, manifest = _files_of(old_package)
    out = _place_old(old_package, tmp_path, archive=True)
    archive = _tree(tmp_path / "pkg.tar.gz")

    def stop(at):
        if at == step:
            raise KeyboardInterrupt

    monkeypatch.setattr(edgec.package, "_pause", stop)
    with pytest.raises(KeyboardInterrupt) as stopped:
        edgec.package.write_package(out, files, manifest, force=True, archive=True)
    assert _precision(out) == OUTCOME[step] and _tree(tmp_path / "pkg.tar.gz") == archive
    assert sorted(os.listdir(tmp_path)) == ["pkg", "pkg.tar.gz"]
    assert stopped.value.edgec_left == (
        f"the old package at {out} is kept"
        if step == "staged"
        else f"the new package is in place at {out}; pkg.tar.gz is still the old one"
    )


CASES = [
    (step, exchange, sig)
    for sig in (signal.SIGKILL, signal.SIGTERM)
    for step, exchange in [
        *((s, True) for s in EXCHANGE_STEPS),
        *((s, False) for s in FALLBACK_STEPS),
    ]
]


def test_a_build_killed_at_each_step_of_the_replace_leaves_one_package(
    old_package, model, eval_csv, tmp_path, monkeypatch
):
    """The real CLI, --force over a package, stopped at each step by SIGKILL or SIGTERM:
    -o holds the old or the new package, complete (its hashes check out), and nothing
    else is left once the next build has run (after SIGTERM: at once)."""

    def run(case):
        index, (step, exchange, sig) = case
        root = tmp_path / f"case{index}"
        folder, work, marker = root / "out", root / "tmp", root / "paused"
        folder.mkdir(parents=True)
        work.mkdir()
        out = _place_old(old_package, folder)
        process = _start(
            ["build", model, "-t", "x86-cpu", "--eval-data", eval_csv, "-o", out, "--force",
             "--precision", NEW],
            marker, step, work, fallback=not exchange,
        )  # fmt: skip
        try:
            _wait_for(marker, process)
            process.send_signal(sig)
            _, stderr = process.communicate(timeout=300)
        finally:
            process.kill()
        marker.unlink(missing_ok=True)
        return root, out, stderr, process.returncode

    with ThreadPoolExecutor(max_workers=2) as pool:  # each build holds ~0.6 GB
        results = list(pool.map(run, enumerate(CASES)))
    for (step, exchange, sig), (root, out, stderr, code) in zip(CASES, results, strict=True):
        case = (step, "exchange" if exchange else "fallback", sig.name)
        expected = OUTCOME[step]
        if sig == signal.SIGTERM:
            assert code == 130, (case, stderr)
            said = [line for line in stderr.splitlines() if line.startswith("interrupted:")]
            assert said == [
                f"interrupted: the new package is in place at {out}"
                if expected == NEW
                else f"interrupted: the old package at {out} is kept"
            ], (case, stderr)
        else:
            assert code == -signal.SIGKILL, (case, stderr)
            if exchange:  # atomic: complete even before anything is cleaned up
                assert _precision(out) == expected, case
            with monkeypatch.context() as m:  # the next build: sweeps, then refuses
                m.setattr(tempfile, "tempdir", str(root / "tmp"))
                assert_clean_error(_build(model, eval_csv, out), 2, "already exists")
        assert _precision(out) == expected, case
        assert os.listdir(out.parent) == ["pkg"], (case, os.listdir(out.parent))
        assert not list((root / "tmp").glob("edgec-build-*")), case
