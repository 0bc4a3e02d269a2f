"""Typed backend settings: declared options, -O validation, calibration need as data,
the one candidate grammar, and the manifest record the runtime rebuilds runners from."""

from __future__ import annotations

import json

import pytest

from edgec.backends.settings import (
    Option,
    check_keys,
    parse_pairs,
    resolve_options,
    with_defaults,
)
from edgec.package import MANIFEST
from edgec.pipeline import BuildRequest, build, parse_candidate, requested_pairs
from edgec.plugins import backends, get_backend
from edgec.targets import get_target
from edgec_runtime.errors import BadInput
from edgec_runtime.settings import BackendSettings, DeviceSettings, ModelFacts


@pytest.mark.parametrize(
    ("option", "raw", "value"),
    [
        (Option("fast", bool, False, "h"), "true", True),
        (Option("fast", bool, False, "h"), False, False),
        (Option("n", int, 1, "h"), "3", 3),
        (Option("x", float, 1.0, "h"), "2", 2.0),
        (Option("s", str, "a", "h"), "123", "123"),
        (Option("ops", list, [], "h"), '["MatMul"]', ["MatMul"]),
        (Option("d", dict, {}, "h"), '{"a": 1}', {"a": 1}),
        (Option("maybe", float, None, "h"), "null", None),
    ],
)
def test_option_values_are_typed(option, raw, value):
    assert option.parse(raw, "mine") == value


@pytest.mark.parametrize(
    ("option", "raw", "expected"),
    [
        (Option("fast", bool, False, "go fast"), "yes", "fast='yes': give true or false"),
        (Option("n", int, 1, "count"), "1.5", "n='1.5': give an integer"),
        (Option("n", int, 1, "count"), "true", "give an integer"),
        (Option("h", str, "A", "hint", choices=("A", "B")), "C", "choose one of A, B"),
    ],
)
def test_option_values_of_the_wrong_type_are_refused(option, raw, expected):
    with pytest.raises(BadInput, match=expected.replace("(", r"\(")):
        option.parse(raw, "mine")


def test_pairs_must_be_key_value():
    assert parse_pairs(["a=1", "b=x=y"]) == {"a": "1", "b": "x=y"}
    with pytest.raises(BadInput, match="is not KEY=VALUE"):
        parse_pairs(["novalue"])


def test_every_builtin_backend_declares_its_options_and_calibration():
    for backend in backends().values():
        names = [o.name for o in backend.options]
        assert len(names) == len(set(names)), backend.name
        assert all(o.help for o in backend.options), backend.name
        assert set(backend.calibrated) <= set(backend.precisions), backend.name
        json.dumps([o.describe() for o in backend.options])  # listable as JSON
    assert get_backend("onnxruntime").needs_calibration("int8-static")
    assert not get_backend("onnxruntime").needs_calibration("int8")
    assert get_backend("openvino").needs_calibration("int8")


def test_options_resolve_default_then_target_then_user_then_gate():
    openvino = get_backend("openvino")
    options = resolve_options(
        openvino,
        {"performance_hint": "THROUGHPUT", "sequence_bucket": 8},
        {"sequence_bucket": "32"},
        {"max_accuracy_drop": 0.7},
    )
    assert options["performance_hint"] == "THROUGHPUT"  # the target's
    assert options["sequence_bucket"] == 32  # the user's, typed
    assert options["static_shapes"] is False  # the default
    assert options["max_accuracy_drop"] == 0.7  # nobody set it: the build's gate


def test_unknown_keys_name_the_valid_ones():
    onnxruntime = get_backend("onnxruntime")
    with pytest.raises(BadInput) as e:
        check_keys({"nosuchkey": "1"}, [onnxruntime], "-O")
    message = str(e.value)
    assert "unknown option 'nosuchkey'" in message and "\n" not in message
    for option in onnxruntime.options:
        assert option.name in message
    assert "edgec backends --options onnxruntime" in message


def test_settings_round_trip_through_the_manifest_record():
    settings = BackendSettings(
        device=DeviceSettings("CPU", 2, {"batch": [1, 1, 4], "sequence": [1, 32, 64]}),
        model=ModelFacts("bert", 2, 32, 64, 48, 0),
        options={"performance_hint": "LATENCY"},
    )
    record = json.loads(json.dumps(settings.record()))
    assert BackendSettings.from_record(record) == settings
    assert settings.with_device(threads=1).device.threads == 1
    assert settings.device.threads == 2  # frozen: a copy changed, not the original


def test_candidate_grammar():
    assert parse_candidate("openvino:int8") == ("openvino", "int8")
    assert parse_candidate(" onnxruntime ") == ("onnxruntime", None)
    for bad in ("", ":int8", "openvino:"):
        with pytest.raises(BadInput, match="BACKEND\\[:PRECISION\\]"):
            parse_candidate(bad)
    target = get_target("x86-cpu")
    pairs = requested_pairs(target, "onnxruntime:int8-static,openvino", "fp32,int8")
    assert [(b.name, p) for b, p in pairs] == [
        ("onnxruntime", "int8-static"),
        ("openvino", "fp32"),
        ("openvino", "int8"),
    ]
    assert [(b.name, p) for b, p in requested_pairs(target, None, None)] == [
        ("onnxruntime", "int8")
    ]


def _request(model, out, **kw) -> BuildRequest:
    return BuildRequest(model=model, target=get_target("x86-cpu"), output=out, **kw)


def test_build_refuses_an_unknown_option_before_any_work(tiny_bert, tiny_eval_csv, tmp_path):
    out = tmp_path / "pkg"
    request = _request(tiny_bert, out, eval_data=tiny_eval_csv, options={"nosuchkey": "1"})
    with pytest.raises(BadInput, match="unknown option 'nosuchkey'.*valid keys"):
        build(request)
    assert not out.exists()


def test_build_refuses_a_wrong_option_type(tiny_bert, tiny_eval_csv, tmp_path):
    request = _request(
        tiny_bert, tmp_path / "pkg", eval_data=tiny_eval_csv, options={"fuse": "maybe"}
    )
    with pytest.raises(BadInput, match="onnxruntime option fuse='maybe': give true or false"):
        build(request)


def test_static_int8_without_texts_is_refused_before_any_work(tiny_bert, tmp_path):
    request = _request(tiny_bert, tmp_path / "pkg", precision="int8-static", verify=False)
    with pytest.raises(BadInput, match="int8-static needs calibration texts"):
        build(request)


def test_manifest_records_the_settings_and_old_manifests_still_load(
    tiny_bert, tiny_eval_csv, tmp_path
):
    from edgec_runtime import load
    from edgec_runtime.loading import runtime_settings

    out = tmp_path / "pkg"
    manifest = build(_request(tiny_bert, out, eval_data=tiny_eval_csv, options={"fuse": "false"}))
    record = manifest["backend"]["settings"]
    assert record["options"]["fuse"] is False
    assert record["model"]["max_length"] == manifest["preprocessing"]["max_length"]
    assert record["device"]["device"] == "cpu"
    onnxruntime = get_backend("onnxruntime")
    assert runtime_settings(manifest).options["fuse"] is False
    texts = ["a gorgeous, witty, seductive movie", "ok"]
    with load(out) as package:
        expected = package.logits(texts)

    # the same package as a schema-1 build wrote it: only the user's -O pairs recorded
    old = json.loads((out / MANIFEST).read_text())
    old["schema_version"] = 1
    del old["task"]  # before schema 3 every package was a classifier
    del old["backend"]["settings"]
    old["backend"]["options"] = {"fuse": False}
    (out / MANIFEST).write_text(json.dumps(old))
    legacy = with_defaults(onnxruntime, runtime_settings(old))
    assert legacy.options["fuse"] is False and legacy.options["per_channel"] is True
    assert legacy.model.max_length == manifest["preprocessing"]["max_length"]
    with load(out) as package:
        assert (package.logits(texts) == expected).all()


def test_missing_options_take_their_declared_defaults():
    onnxruntime = get_backend("onnxruntime")
    filled = with_defaults(onnxruntime, BackendSettings())
    assert {o.name for o in onnxruntime.options} <= set(filled.options)
