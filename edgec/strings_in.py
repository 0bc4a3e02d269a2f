"""`-O tokenizer=graph`: put the tokenizer inside the compiled model, or say why not.

A strings-in package's model takes raw texts, so an app in C++, C#, Java or JavaScript
runs it from its ONNX Runtime or OpenVINO binding with no Python tokenizer. The
converters (edgec.graph_tokenizer) do not tokenize exactly as transformers does out of
the box, so before anything is merged the corrected in-graph tokenizer goes through
the check the runtime tokenizer goes through: every eval text, the probes and the
generated strings, field by field (ids, attention mask, token types; offsets for a
tagger).

A tagger keeps its Python tokenizer: its entity spans need each token's word and
character offsets, which onnxruntime-extensions gives differently from training (its
offsets index its own normalised text) and openvino-tokenizers does not give at all;
the record still says how the ids compared.

What gates is the user's own data: a difference on any eval text (or, without eval
texts, on any probe) means the package keeps its Python tokenizer, and the build says
so and records why. Differences on probes and generated strings (adversarial Unicode:
an emoji inside a word, Hangul, the Angstrom sign) are recorded with examples and shown
as warnings: the package ships, never silently. The manifest's backend section keeps
the record under `tokenizer`; its `status` tells the runtime which kind of package it is.
"""

from __future__ import annotations

import os
from importlib import import_module
from importlib.metadata import version
from pathlib import Path

from edgec.graph_tokenizer import CONVERTER_PACKAGES, load_hf_tokenizer
from edgec.graph_tokenizer.check import compare
from edgec_runtime.iospec import IN_GRAPH, STRING_INPUT, TOKEN_CLASSIFICATION

FELL_BACK = "fell back"
SET_NAMES = {"eval": "eval texts", "probes": "probe strings", "generated": "generated strings"}
MODEL_FILES = {"onnxruntime": "model.onnx", "openvino": "model.xml"}


def _summary(report: dict) -> dict:
    keep = ("texts", "mismatches", "by_field", "missing_fields", "examples")
    return {k: report[k] for k in keep}


def _merge(backend: str, graph, stage: Path, precision: str) -> None:
    """Replace the compiled model in `stage` by tokenizer -> model, under its own name."""
    model_file = stage / MODEL_FILES[backend]
    if backend == "onnxruntime":
        from edgec.graph_tokenizer.onnxruntime import merge

        merge(graph, model_file, model_file)
        return
    import openvino as ov

    from edgec.graph_tokenizer.openvino import core, merge

    merged = merge(graph, core().read_model(str(model_file)))
    # The IR's weights are memory-mapped while `merged` lives: writing over them in
    # place is a bus error. Write beside, then rename over (the mapping keeps its inode).
    staged = stage / "strings-in.xml"
    ov.save_model(merged, str(staged), compress_to_fp16=precision == "fp16")
    os.replace(staged.with_suffix(".bin"), model_file.with_suffix(".bin"))
    os.replace(staged, model_file)


def tokenizer_into_graph(
    backend: str,
    precision: str,
    stage: Path,
    tokenizer_dir: Path,
    preprocessing: dict,
    task: str,
    eval_texts: list[str],
) -> dict:
    """Check the in-graph tokenizer of `backend` and, when the eval texts tokenize as
    training did, merge it into the model in `stage`. The record for the manifest:
    status "in-graph" or "fell back", what was compared, and why."""
    from edgec.verify.tokenizer.probes import generated_texts, probe_inputs

    package = CONVERTER_PACKAGES[backend]
    record = {"converter": f"{package} {version(package)}"}
    converter = import_module(f"edgec.graph_tokenizer.{backend}")
    try:
        make = getattr(converter, "tokenizer_graph", None) or converter.tokenizer_model
        graph = make(tokenizer_dir, preprocessing)
    except (ValueError, RuntimeError) as e:
        return {**record, "status": FELL_BACK, "why": f"{package} cannot express it: {e}"}
    encode = converter.encoder(graph)
    hf = load_hf_tokenizer(tokenizer_dir)
    want_offsets = task == TOKEN_CLASSIFICATION  # entity spans are character offsets
    sets = {"eval": eval_texts, "probes": probe_inputs(False)[0], "generated": generated_texts()}
    checked = {
        name: _summary(compare(encode, hf, texts, preprocessing["max_length"], want_offsets))
        for name, texts in sets.items()
        if texts
    }
    record["checked"] = checked
    gate = "eval" if "eval" in checked else "probes"
    if want_offsets:  # the runtime's entity spans come from tokenizers' Encoding
        offsets = checked[gate]["by_field"].get("offset_mapping", 0)
        missing = "offset_mapping" in checked[gate]["missing_fields"]
        return {
            **record,
            "status": FELL_BACK,
            "why": "a strings-in tagger would need each token's word and character offsets "
            f"from the graph; {package} "
            + ("has no offsets" if missing else f"gives other offsets on {offsets} of "
               f"{checked[gate]['texts']} {gate} texts") + ", and edgec runs none yet",
        }  # fmt: skip
    if checked[gate]["mismatches"]:
        first = checked[gate]["examples"][0]
        return {
            **record,
            "status": FELL_BACK,
            "why": f"{package} tokenizes {checked[gate]['mismatches']} of "
            f"{checked[gate]['texts']} {gate} texts unlike training "
            f"({first['field']} of {first['text']!r}: {first['got']} instead of "
            f"{first['expected']})",
        }
    _merge(backend, graph, stage, precision)
    record["warnings"] = [
        f"the in-graph tokenizer ({package}) differs from training's on "
        f"{c['mismatches']} of {c['texts']} {SET_NAMES[name]} (e.g. {c['examples'][0]['text']!r}); "
        "the eval texts all match"
        for name, c in checked.items()
        if name != gate and c["mismatches"]
    ]
    return {**record, "status": IN_GRAPH, "input": STRING_INPUT}


def put_tokenizer_in_graph(candidate, compiled, tokenizer_dir: Path, common: dict, texts, ui):
    """The build's step for a candidate compiled with -O tokenizer=graph: the record goes
    into the backend section of its manifest (`compiled.metadata["tokenizer"]`)."""
    with ui.step(f"checking the in-graph tokenizer on {len(texts)} texts and probes"):
        record = tokenizer_into_graph(
            candidate.backend.name, candidate.precision, candidate.stage, tokenizer_dir,
            common["preprocessing"], common["task"]["name"], list(texts),
        )  # fmt: skip
    compiled.metadata["tokenizer"] = record
    if record["status"] == FELL_BACK:
        ui.note(f"{candidate.name}: the tokenizer stays in Python: {record['why']}")


def tokenizer_warnings(backend_record: dict) -> list[str]:
    """What the verification report says of an in-graph tokenizer: why it fell back, or
    where it differs from training's outside the eval texts."""
    record = backend_record.get("tokenizer") or {}
    if record.get("status") == FELL_BACK:
        return [f"-O tokenizer=graph: the tokenizer stays in Python: {record['why']}"]
    return list(record.get("warnings", []))
