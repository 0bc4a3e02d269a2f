"""The package digest users pin, and what loading refuses: every way to tamper with a
package (or break it by accident) that a hash check alone let through.

The digest is sha256 over the canonical manifest, which holds every file's hash, so
an attacker who edits a file and fixes its hash in the manifest still changes it. What
no digest is needed for (a manifest of the wrong shape, a path outside the package,
an unlisted file) is refused on every load.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tarfile

import pytest
from cli_helpers import EDGEC, assert_clean_error, invoke_edgec

from edgec_runtime import load
from edgec_runtime.errors import BadInput, VerificationFailed
from edgec_runtime.manifest import MANIFEST, package_digest, read_manifest, sha256_of


def build_package(tiny_bert, tiny_eval_csv, out, *extra):
    r = invoke_edgec(
        "build",
        tiny_bert,
        "--backend",
        "onnxruntime:fp32",
        "--eval-data",
        tiny_eval_csv,
        "-o",
        out,
        "--json",
        *extra,
    )
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


@pytest.fixture(scope="module")
def built(tiny_bert, tiny_eval_csv, tmp_path_factory):
    """A verified package (and its archive) and the `edgec build --json` output."""
    out = tmp_path_factory.mktemp("digest") / "pkg"
    return out, build_package(tiny_bert, tiny_eval_csv, out, "--archive")


@pytest.fixture(scope="module")
def package(built):
    return built[0]


@pytest.fixture(scope="module")
def digest(package):
    return package_digest(read_manifest(package))


@pytest.fixture(scope="module")
def unverified(tiny_bert, tiny_eval_csv, tmp_path_factory):
    out = tmp_path_factory.mktemp("digest-unverified") / "pkg"
    build_package(tiny_bert, tiny_eval_csv, out, "--no-verify")
    return out


def copy_of(package, tmp_path, edit_manifest=None, edit_files=None):
    """A copy of `package`; `edit_files(copy)` returns the files it changed, whose
    hashes are then fixed in the manifest, so no hash check can notice."""
    copy = shutil.copytree(package, tmp_path / "copy", symlinks=True)
    manifest = json.loads((copy / MANIFEST).read_text())
    for name in edit_files(copy) if edit_files else ():
        manifest["files"][name] = {
            "sha256": sha256_of(copy / name),
            "size": (copy / name).stat().st_size,
        }
    if edit_manifest:
        manifest = edit_manifest(manifest)
        if manifest is None:
            pytest.fail("edit_manifest must return the manifest")
    (copy / MANIFEST).write_text(json.dumps(manifest, indent=2))
    return copy


def refused_everywhere(copy, eval_csv, code, *fragments, digest=None):
    """inspect, predict, verify and load() all refuse `copy` with `code` and one line."""
    pin = ("--digest", digest) if digest else ()
    assert_clean_error(invoke_edgec("inspect", copy, *pin), code, *fragments)
    assert_clean_error(invoke_edgec("predict", copy, "a witty movie", *pin), code, *fragments)
    verify = invoke_edgec("verify", copy, "--eval-data", eval_csv, *pin)
    assert verify.returncode == code, (verify.stdout, verify.stderr)
    assert "Traceback" not in verify.stdout + verify.stderr
    for fragment in fragments:
        assert fragment in verify.stdout + verify.stderr
    error = BadInput if code == 2 else VerificationFailed
    with pytest.raises(error) as caught:
        load(copy, digest=digest).close()
    assert "\n" not in str(caught.value)
    for fragment in fragments:
        assert fragment in str(caught.value)


# ------------------------------------------------------------------ the digest


def test_the_digest_is_sha256_of_the_canonical_manifest(package, digest):
    manifest = json.loads((package / MANIFEST).read_text())
    canonical = json.dumps(manifest, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert digest == "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()
    # stable across loads and formatting: re-indenting the manifest changes nothing
    assert package_digest(read_manifest(package)) == digest
    assert package_digest(json.loads(json.dumps(manifest, indent=7))) == digest


def test_build_inspect_and_verify_print_the_digest(built, digest, tiny_eval_csv, tmp_path):
    package, build_json = built
    assert build_json["digest"] == digest
    inspected = invoke_edgec("inspect", package, "--json")
    assert inspected.returncode == 0, inspected.stderr
    assert json.loads(inspected.stdout)["digest"] == digest
    table = invoke_edgec("inspect", package)
    assert table.returncode == 0 and f"digest {digest}" in table.stdout
    verified = invoke_edgec("verify", package, "--eval-data", tiny_eval_csv, "--json")
    assert verified.returncode == 0, verified.stderr
    assert json.loads(verified.stdout)["digest"] == digest
    verified = invoke_edgec("verify", package, "--eval-data", tiny_eval_csv)
    assert f"digest {digest}" in verified.stdout


def test_the_archive_has_the_same_digest(package, digest, tmp_path):
    archive = package.with_name(package.name + ".tar.gz")
    inspected = invoke_edgec("inspect", archive, "--json")
    assert json.loads(inspected.stdout)["digest"] == digest
    with load(archive, digest=digest) as model:
        assert model.predict(["a witty movie"])[0]["label"] in ("class_0", "class_1")


def test_load_with_the_right_digest_runs_and_with_another_refuses(package, digest):
    with load(package, digest=digest) as model:
        expected = model.predict(["a witty movie"])
    with load(package, digest=digest.upper().replace("SHA256:", "sha256:")) as model:
        assert model.predict(["a witty movie"]) == expected
    other = "sha256:" + "0" * 64
    with pytest.raises(VerificationFailed, match="not the pinned sha256:0000"):
        load(package, digest=other)
    with pytest.raises(BadInput, match="not a package digest"):
        load(package, digest="sha256:abc")


def test_predict_and_verify_take_a_digest(package, digest, tiny_eval_csv):
    ok = invoke_edgec("predict", package, "a witty movie", "--digest", digest)
    assert ok.returncode == 0, ok.stderr
    other = "sha256:" + "f" * 64
    assert_clean_error(
        invoke_edgec("predict", package, "a witty movie", "--digest", other), 1, "not the pinned"
    )
    assert_clean_error(invoke_edgec("predict", package, "x", "--digest", "md5:1"), 2, "sha256:")
    passed = invoke_edgec("verify", package, "--eval-data", tiny_eval_csv, "--digest", digest)
    assert passed.returncode == 0, passed.stdout + passed.stderr
    failed = invoke_edgec(
        "verify", package, "--eval-data", tiny_eval_csv, "--digest", other, "--json"
    )
    assert failed.returncode == 1
    report = json.loads(failed.stdout)
    assert report["digest"] == digest
    assert [c["name"] for c in report["checks"] if c["status"] == "failed"] == ["digest"]


# ------------------------------------------------ tampering the digest catches


def test_an_edited_model_with_its_hash_fixed_passes_the_hashes_but_not_the_pin(
    tiny_eval_csv, package, digest, tmp_path
):
    def edit(copy):
        data = bytearray((copy / "model.onnx").read_bytes())
        data[len(data) // 2] ^= 0xFF
        (copy / "model.onnx").write_bytes(bytes(data))
        return ["model.onnx"]

    copy = copy_of(package, tmp_path, edit_files=edit)
    assert invoke_edgec("inspect", copy).returncode == 0  # every hash "matches"
    refused_everywhere(copy, tiny_eval_csv, 1, "not the pinned", digest=digest)


def test_an_edited_max_length_changes_the_digest(tiny_eval_csv, package, digest, tmp_path):
    def edit(manifest):
        manifest["preprocessing"]["max_length"] = 8
        return manifest

    copy = copy_of(package, tmp_path, edit_manifest=edit)
    assert invoke_edgec("inspect", copy).returncode == 0
    refused_everywhere(copy, tiny_eval_csv, 1, "not the pinned", digest=digest)


def test_an_unverified_package_marked_passed_changes_the_digest(
    tiny_eval_csv, unverified, tmp_path
):
    pinned = package_digest(read_manifest(unverified))

    def edit(manifest):
        assert manifest["verification"]["status"] == "unverified"
        manifest["verification"]["status"] = "passed"
        return manifest

    copy = copy_of(unverified, tmp_path, edit_manifest=edit)
    assert package_digest(read_manifest(copy)) != pinned
    refused_everywhere(copy, tiny_eval_csv, 1, "not the pinned", digest=pinned)


# ------------------------------------------------- refused with or without a pin


def without(name):
    def edit(manifest):
        del manifest["files"][name]
        return manifest

    return edit


@pytest.mark.parametrize(
    "edit, fragment",
    [
        (lambda m: {**m, "files": {}}, "'files' is empty"),
        (lambda m: [], "holds a JSON list, not an object"),
        (lambda m: "edgec", "holds a JSON str, not an object"),
        (lambda m: {**m, "files": [list(m["files"])]}, "'files' section is missing or not"),
        (
            lambda m: {**m, "files": {**m["files"], "model.onnx": "abc"}},
            "files['model.onnx'] is not a record",
        ),
        (
            lambda m: {**m, "files": {**m["files"], "model.onnx": {"sha256": 5, "size": 1}}},
            "files['model.onnx'] is not a record",
        ),
        (
            lambda m: {
                **m,
                "files": {**m["files"], "model.onnx": {**m["files"]["model.onnx"], "size": "9"}},
            },
            "files['model.onnx'] is not a record",
        ),
        (without("tokenizer.json"), "does not list tokenizer.json"),
        (without("model.onnx"), "does not list model.onnx"),
        (lambda m: {k: v for k, v in m.items() if k != "preprocessing"}, "'preprocessing'"),
        (lambda m: {k: v for k, v in m.items() if k != "labels"}, "'labels'"),
        (lambda m: {**m, "backend": {**m["backend"], "files": "model.onnx"}}, "backend.files"),
        (
            lambda m: {**m, "backend": {k: v for k, v in m["backend"].items() if k != "name"}},
            "backend.name",
        ),
        (
            lambda m: {**m, "preprocessing": {**m["preprocessing"], "max_length": "64"}},
            "preprocessing.max_length",
        ),
    ],
    ids=[
        "empty-files",
        "manifest-list",
        "manifest-string",
        "files-a-list",
        "file-record-a-string",
        "file-record-bad-sha256",
        "file-record-size-a-string",
        "no-tokenizer-record",
        "no-backend-file-record",
        "no-preprocessing",
        "no-labels",
        "backend-files-a-string",
        "no-backend-name",
        "max-length-a-string",
    ],
)
def test_a_manifest_of_the_wrong_shape_is_bad_input(
    tiny_eval_csv, package, tmp_path, edit, fragment
):
    copy = copy_of(package, tmp_path, edit_manifest=edit)
    refused_everywhere(copy, tiny_eval_csv, 2, fragment)


def moved_outside(name):
    """model.onnx moved next to the package and named in the manifest by `name`, so
    a runtime that followed the manifest would load (and hash-check) it from there."""

    def edit_files(copy):
        (copy.parent / "elsewhere").mkdir(exist_ok=True)
        shutil.move(copy / "model.onnx", copy.parent / "elsewhere" / "model.onnx")
        return []

    def edit_manifest(manifest):
        manifest["files"][name] = manifest["files"].pop("model.onnx")
        manifest["backend"]["files"] = [name]
        return manifest

    return edit_files, edit_manifest


@pytest.mark.parametrize(
    "name, fragment",
    [
        ("../elsewhere/model.onnx", "leaves the package ('..')"),
        ("sub/../../elsewhere/model.onnx", "leaves the package ('..')"),
        ("{tmp}/elsewhere/model.onnx", "is absolute"),
    ],
    ids=["dot-dot", "nested-dot-dot", "absolute"],
)
def test_a_path_outside_the_package_is_refused(tiny_eval_csv, package, tmp_path, name, fragment):
    edit_files, edit_manifest = moved_outside(name.format(tmp=tmp_path))
    copy = copy_of(package, tmp_path, edit_files=edit_files, edit_manifest=edit_manifest)
    assert (tmp_path / "elsewhere" / "model.onnx").is_file()
    refused_everywhere(copy, tiny_eval_csv, 2, "not a valid edgec manifest", fragment)


def test_a_link_to_a_file_outside_the_package_is_refused(tiny_eval_csv, package, tmp_path):
    def edit(copy):
        outside = tmp_path / "outside.onnx"
        shutil.move(copy / "model.onnx", outside)
        os.symlink(outside, copy / "model.onnx")
        return []

    copy = copy_of(package, tmp_path, edit_files=edit)
    refused_everywhere(copy, tiny_eval_csv, 1, "model.onnx is a link to", "outside the package")


def test_an_unlisted_file_is_refused(tiny_eval_csv, package, tmp_path):
    def edit(copy):
        (copy / "evil.py").write_text("import os; os.system('echo owned')\n")
        (copy / "extra").mkdir()
        (copy / "extra" / "notes.txt").write_text("hi")
        return []

    copy = copy_of(package, tmp_path, edit_files=edit)
    refused_everywhere(copy, tiny_eval_csv, 1, "evil.py is not listed in the manifest")
    assert "extra/notes.txt is not listed" in invoke_edgec("inspect", copy).stderr


def test_an_unlisted_file_in_an_archive_is_refused(package, tmp_path):
    copy = copy_of(package, tmp_path)
    (copy / "evil.py").write_text("print('owned')\n")
    archive = tmp_path / "pkg.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(copy, arcname="pkg")
    assert_clean_error(invoke_edgec("predict", archive, "hi"), 1, "evil.py is not listed")


def test_a_key_given_twice_is_refused(tiny_eval_csv, package, tmp_path):
    """Parsers disagree on which of two equal keys wins; the manifest checked must be
    the one every reader sees."""
    copy = copy_of(package, tmp_path)
    text = (copy / MANIFEST).read_text()
    (copy / MANIFEST).write_text(text.replace('"files": {', '"files": {}, "files": {', 1))
    refused_everywhere(copy, tiny_eval_csv, 2, "is not valid JSON", "'files' appears twice")


def test_a_manifest_that_is_not_json_is_refused(tiny_eval_csv, package, tmp_path):
    copy = copy_of(package, tmp_path)
    (copy / MANIFEST).write_bytes(b"\xff\xfe{")
    refused_everywhere(copy, tiny_eval_csv, 2, "is not valid JSON")


def test_a_malformed_digest_is_bad_input(package):
    for pin in ("abc", "sha256:" + "g" * 64, "sha512:" + "0" * 64):
        assert_clean_error(
            invoke_edgec("inspect", package, "--digest", pin), 2, "not a package digest"
        )


# ---------------------------------------------------------------- command line


def test_text_that_is_not_utf8_is_one_line_and_exit_2(package):
    r = subprocess.run(
        [EDGEC, "predict", str(package), "fine", b"caf\xff"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert_clean_error(r, 2, "text 2 is not valid UTF-8", "0xff")


def test_an_archive_holding_two_packages_is_refused(package, tmp_path):
    """Which of two packages would run is a guess: refused, exit 2."""
    import tarfile

    archive = tmp_path / "two.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(package, arcname="first")
        tar.add(package, arcname="second")
    result = invoke_edgec("inspect", archive)
    assert_clean_error(result, 2, "holds 2 entries", "exactly one package folder")
