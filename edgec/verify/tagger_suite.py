"""Verification of a token-classification (NER) package, in the suite's three stages.

Run: the PyTorch source and the package each tag the eval sentences' pre-split words,
one tag per word from its first subword (what training labelled). Compare and gate:
edgec.verify.tokens (seqeval's strict IOB2 entity scores, tag agreement, the changed
sentences). Before any of that, the token-label alignment check: the runtime must
split every sentence into the same subwords, with the same word ids and offsets, as
transformers, or labels land on the wrong words however close the logits are.
"""

from __future__ import annotations

import time

import numpy as np

from edgec.gates import resolve_gates
from edgec.ui import SilentUI
from edgec.verify.assemble import assemble
from edgec.verify.checks import check
from edgec.verify.gate import labels_problems
from edgec.verify.tokens import compare_tags, token_checks
from edgec_runtime.predictors import softmax
from edgec_runtime.recorded import decode_tags, encode_tags


def tags_and_scores(word_logits: list[np.ndarray], labels: list[str]):
    """Per sentence, each word's tag and the model's confidence in it; a word that
    truncation cut off (a NaN row) is "O" with no confidence."""
    outside = "O" if "O" in labels else labels[0]
    tags, scores = [], []
    for rows in word_logits:
        kept = ~np.isnan(rows).any(axis=1)
        probs = np.zeros_like(rows)
        if kept.any():
            probs[kept] = softmax(rows[kept].astype(np.float64))
        tags.append(
            [labels[int(p.argmax())] if k else outside for p, k in zip(probs, kept, strict=True)]
        )
        scores.append([float(p.max()) if k else 0.0 for p, k in zip(probs, kept, strict=True)])
    return tags, scores


def headline(report: dict) -> dict:
    """The two figures a candidate table shows: tag agreement and the entity-F1 delta."""
    delta = (report.get("delta") or {}).get("f1")
    return {
        "agreement": report.get("tag_agreement"),
        "quality_delta": delta,
        "quality_metric": "entity F1",
    }


def _package_tags(predictor, tagged, ui):
    with ui.step(f"running the package on {len(tagged)} sentences"):
        return tags_and_scores(predictor.word_logits(tagged.words), predictor.labels)


def probe_sentences() -> list[list[str]]:
    """The tokenizer probes (accents, CJK, emoji, control characters, very long texts)
    as whitespace-split words: alignment must hold on them too, not only on the eval
    sentences."""
    from edgec.verify.tokenizer import PROBES

    return [words for words in (text.split() for text in PROBES) if words]


def alignment_check(align: dict) -> dict:
    info = (
        f"word ids and offsets equal transformers' on {align['sentences']} sentences and probes"
        + (
            f"; truncation dropped {align['truncated_words']} words"
            if align.get("truncated_words")
            else ""
        )
    )
    return check("ner-alignment", list(align["problems"]), info=info)


def verify_tagger(source, predictor, tagged, thresholds, ui=None) -> dict:
    """The tagger package against its PyTorch source on `tagged` (a TaggedSet)."""
    from edgec.verify.reference import reference_word_logits
    from edgec.verify.tokenizer import source_tokenizer_report, trained_max_length
    from edgec.verify.tokenizer.alignment import alignment_report

    ui = ui or SilentUI()
    started = time.perf_counter()
    gates = resolve_gates(thresholds)
    labels = source.labels
    with ui.step(f"tokenizer consistency and word alignment on {len(tagged)} sentences"):
        tok = source_tokenizer_report(
            source, predictor, tagged.texts, max_unk_rate=gates["max_unk_rate"]
        )
        align = alignment_report(
            source.tokenizer,
            predictor.tokenizer,
            [*tagged.words, *probe_sentences()],
            predictor.preprocessing["max_length"],
        )
    trained = trained_max_length(source)
    ref_logits = reference_word_logits(source, tagged.words, track=ui.track, max_length=trained)
    ref_tags, ref_scores = tags_and_scores(ref_logits, labels)
    cand_tags, cand_scores = _package_tags(predictor, tagged, ui)
    gold = tagged.tag_names(labels) if tagged.tags is not None else None
    report = compare_tags(tagged.words, ref_tags, cand_tags, gold, ref_scores, cand_scores)
    report["reference_origin"] = "the PyTorch FP32 reference"
    report["reference_predictions"] = encode_tags(ref_tags, labels)
    checks = [
        check("labels", labels_problems(labels, predictor.labels, "the source model")),
        *tok["checks"],
        alignment_check(align),
        *token_checks(report, gates),
    ]
    warnings_ = [*tok["warnings"], *tagged.warnings]
    for w in warnings_:
        ui.note(w)
    return assemble(
        checks,
        warnings_,
        gates,
        tagged,
        started,
        "token-classification",
        mode="reference",
        parity=report,
        headline=headline(report),
        tokenizer=tok,
        alignment=align,
    )


def verify_tagger_recorded(predictor, manifest, tagged, gates, ui, same_data: bool) -> dict:
    """Without --reference: the package's tags against the reference tags its build
    recorded, when the eval data is the build's (the fingerprint tells)."""
    verification = manifest.get("verification") or {}
    recorded = (verification.get("parity") or {}).get("reference_predictions")
    labels = predictor.labels
    cand_tags, cand_scores = _package_tags(predictor, tagged, ui)
    gold = tagged.tag_names(labels) if tagged.tags is not None else None
    if not same_data or not recorded or len(recorded) != len(tagged):
        why = (
            "no --reference, and the eval data differs from the build's"
            if verification.get("parity")
            else "no --reference, and the build recorded no parity (built with --no-verify)"
        )
        # a build without parity already fails `parity-recorded` (edgec.verify.gate)
        checks = [check("ner-tag-agreement", [], skipped=why)]
        report = {"examples": len(tagged), "note": why}
        if gold is not None:  # the package alone against the gold tags still tells something
            report["candidate_vs_gold"] = compare_tags(tagged.words, gold, cand_tags, None)[
                "vs_reference"
            ]
        return {"checks": checks, "warnings": [], "parity": report}
    ref_tags = decode_tags(recorded, labels)
    report = compare_tags(tagged.words, ref_tags, cand_tags, gold, None, cand_scores)
    report["reference_origin"] = "the reference tags recorded at build time"
    return {
        "checks": token_checks(report, gates),
        "warnings": [],
        "parity": report,
        "headline": headline(report),
    }
