"""`edgec-run verify`: a package against what its build recorded, with no source model,
torch or transformers: the light CI job of a repository that only ships packages.

Checks, each passed, failed or skipped with the reason:
- integrity: every file's sha256 (done by loading), and the digest when pinned;
- same-data: the eval data is the build's (texts fingerprint), or nothing below can
  be compared and the result is incomplete;
- tokenizer: this machine's `tokenizers` turns the eval texts into exactly the tokens
  the build's did (a tokenizers upgrade that changes one id fails here);
- predictions: agreement with the reference's recorded answers (classes, word tags,
  or top-k neighbours) within the build's own gate;
- accuracy (labelled classifiers): the package's accuracy now against the reference
  accuracy the build recorded, within the build's max_accuracy_drop.
"""

from __future__ import annotations

import numpy as np

from edgec_runtime.errors import BadInput
from edgec_runtime.evaldata import TAGGED_SUFFIXES, read_conll, read_texts
from edgec_runtime.iospec import SENTENCE_EMBEDDING, TOKEN_CLASSIFICATION
from edgec_runtime.recorded import (
    decode_predictions,
    decode_tags,
    nearest,
    texts_fingerprint,
    tokens_fingerprint,
)


def _check(name: str, passed: bool | None, message: str) -> dict:
    status = "skipped" if passed is None else ("passed" if passed else "failed")
    return {"name": name, "status": status, "message": message}


def read_eval(path, task: str, text_column="text", pair_column=None, label_column="label"):
    tagged = task == TOKEN_CLASSIFICATION
    if tagged and not str(path).lower().endswith(TAGGED_SUFFIXES):
        raise BadInput(f"{path}: a tagger is verified on CoNLL ({', '.join(TAGGED_SUFFIXES)})")
    return read_conll(path) if tagged else read_texts(path, text_column, pair_column, label_column)


def _label_ids(labels: list[str], values: list[str]) -> np.ndarray:
    index = {name: i for i, name in enumerate(labels)}
    out = []
    for row, value in enumerate(values, 1):
        if value in index:
            out.append(index[value])
        elif value.strip().lstrip("-").isdigit() and 0 <= int(value) < len(labels):
            out.append(int(value))
        else:
            raise BadInput(
                f"row {row}: label {value!r} is not one of the package's labels ({', '.join(labels)})"
            )
    return np.array(out, dtype=np.int64)


def _classifier_checks(predictor, data, parity: dict, gates: dict) -> tuple[list, dict]:
    logits = predictor.logits(data.texts, data.pairs)
    predicted = logits.argmax(axis=1)
    figures: dict = {}
    encoded = parity.get("reference_predictions")
    if not encoded or len(encoded) != len(data.texts):
        return [_check("predictions", None, "the build recorded no reference classes")], figures
    agreement = float((decode_predictions(encoded) == predicted).mean())
    figures["agreement"] = agreement
    gate = gates.get("min_agreement")
    checks = [
        _check(
            "predictions",
            gate is None or agreement >= gate,
            f"agreement with the recorded reference {agreement:.4f} (min_agreement {gate})",
        )
    ]
    if data.labels is not None and parity.get("labeled"):
        accuracy = 100.0 * float((predicted == _label_ids(predictor.labels, data.labels)).mean())
        reference = float(parity["reference"]["accuracy"])
        built = float(parity["candidate"]["accuracy"])
        drop = reference - accuracy
        gate = gates.get("max_accuracy_drop")
        figures.update(accuracy=accuracy, reference_accuracy=reference, build_accuracy=built)
        checks.append(
            _check(
                "accuracy",
                gate is None or drop <= gate,
                f"accuracy {accuracy:.2f}% (at build {built:.2f}%; reference {reference:.2f}%, "
                f"drop {drop:+.2f} pts, max_accuracy_drop {gate})",
            )
        )
    return checks, figures


def _tagger_checks(predictor, data, parity: dict, gates: dict) -> tuple[list, dict]:
    encoded = parity.get("reference_predictions")
    if not encoded or len(encoded) != len(data.words):
        return [_check("predictions", None, "the build recorded no reference tags")], {}
    reference = decode_tags(encoded, predictor.labels)
    now = predictor.predict_tokens(data.words)
    pairs = [(a, b) for r, n in zip(reference, now, strict=True) for a, b in zip(r, n, strict=True)]
    agreement = float(np.mean([a == b for a, b in pairs])) if pairs else 1.0
    gate = gates.get("min_tag_agreement")
    message = f"word-tag agreement with the recorded reference {agreement:.5f} (min_tag_agreement {gate})"
    return [_check("predictions", gate is None or agreement >= gate, message)], {
        "tag_agreement": agreement
    }


def _embedder_checks(predictor, data, parity: dict, gates: dict) -> tuple[list, dict]:
    recorded = parity.get("reference_neighbours")
    if not recorded or len(recorded) != len(data.texts):
        return [_check("predictions", None, "the build recorded no reference neighbours")], {}
    k = len(recorded[0])
    now = nearest(predictor.embed(data.texts), k)
    overlap = float(np.mean([len(set(a) & set(b)) / k for a, b in zip(recorded, now, strict=True)]))
    gate = gates.get("min_neighbour_overlap")
    message = f"top-{k} neighbour overlap with the recorded reference {overlap:.4f} (min_neighbour_overlap {gate})"
    return [_check("predictions", gate is None or overlap >= gate, message)], {
        "neighbour_overlap": overlap
    }


TASK_CHECKS = {TOKEN_CLASSIFICATION: _tagger_checks, SENTENCE_EMBEDDING: _embedder_checks}


def verify_recorded(predictor, data) -> dict:
    """The report: status passed, failed, or incomplete (nothing could be compared)."""
    verification = predictor.manifest.get("verification") or {}
    record = verification.get("device_record")
    parity = verification.get("parity") or {}
    gates = verification.get("thresholds") or {}
    checks = [_check("integrity", True, "every file's sha256 matches the manifest")]
    figures: dict = {}
    units = data.words if data.words is not None else data.texts
    pairs = data.pairs if data.words is None else None
    if not record:
        checks.append(_check("same-data", None, "the build recorded no fingerprints (older edgec or --no-verify)"))
    elif texts_fingerprint(units, pairs) != record["texts_sha256"]:
        checks.append(_check("same-data", None, f"the eval data differs from the build's ({verification.get('eval_data')})"))
    else:
        checks.append(_check("same-data", True, f"{len(units)} examples, as the build verified"))
        encodings = predictor.encode_words(units) if record.get("pre_split") else predictor.encode(units, pairs)
        same = tokens_fingerprint(encodings) == record["tokens_sha256"]
        from importlib.metadata import version

        checks.append(
            _check(
                "tokenizer",
                same,
                "the tokens equal the build's"
                if same
                else f"tokenizers {version('tokenizers')} here encodes the eval data differently "
                f"from the build's tokenizers {record.get('tokenizers_version')}: install that version",
            )
        )
        task_checks, figures = TASK_CHECKS.get(predictor.task["name"], _classifier_checks)(
            predictor, data, parity, gates
        )
        checks += task_checks
    compared = [c for c in checks if c["name"] == "predictions" and c["status"] != "skipped"]
    failed = [c for c in checks if c["status"] == "failed"]
    status = "failed" if failed else ("passed" if compared else "incomplete")
    return {
        "status": status,
        "task": predictor.task["name"],
        "examples": len(units),
        "checks": checks,
        "figures": figures,
        "thresholds": gates,
    }
