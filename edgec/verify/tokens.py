"""Token classification (NER): compare two taggers' word tags, and gate the comparison.

A tagger is judged by its entities, not its tags: one flipped tag can split an entity
in two or drop it, and most words are O, so word agreement alone hides the damage.
Entities are read with seqeval's strict IOB2 scheme, the same reading for every
figure here (F1, the changed sentences, their entities), so an I- tag that follows an
O, a typical quantisation slip, is a lost entity everywhere and never a quiet repair.

Stage compare (`compare_tags`) turns the tags into a report of plain data; stage gate
(`token_checks`) turns the report into named checks. Neither loads a model.
"""

from __future__ import annotations

from collections.abc import Sequence

from edgec.gates import TASK_GATES
from edgec.metrics import entity_scores, sentence_entities
from edgec.verify.checks import check
from edgec.verify.resolution import interval_text, wilson_interval

# The gates these checks read, as edgec.gates declares them (measured there).
TOKEN_GATES = TASK_GATES["token-classification"]
# A type with fewer entities than this in the basis (gold, else the reference) moves
# by tens of points when one entity changes: its F1 drop is reported, never gated.
MIN_TYPE_SUPPORT = 5
CHANGED_KEPT = 50
ROUNDING = 1e-9  # F1 and agreement are floats: the gate's own value must pass
SCHEME = "IOB2 (seqeval strict)"
NO_GOLD = "the eval data has no gold tags"

Tags = Sequence[Sequence[str]]


def compare_tags(
    words: Tags,
    reference: Tags,
    candidate: Tags,
    gold: Tags | None,
    reference_scores: Sequence[Sequence[float]] | None = None,
    candidate_scores: Sequence[Sequence[float]] | None = None,
) -> dict:
    """Compare `candidate`'s word tags with `reference`'s (and each with `gold`).

    Every argument holds one list per sentence, one item per word, in the same order;
    the scores, when given, are each model's confidence in the tag it chose.
    """
    _check_shapes(words, reference=reference, candidate=candidate, gold=gold)
    _check_shapes(words, reference_scores=reference_scores, candidate_scores=candidate_scores)
    ref_entities, cand_entities = sentence_entities(reference), sentence_entities(candidate)
    report: dict = {
        "examples": len(words),
        "labeled": gold is not None,
        "words": sum(len(w) for w in words),
        "scheme": SCHEME,
        "vs_reference": entity_scores(reference, candidate),
    }
    missing = {}
    if gold is None:
        missing["entity F1"] = NO_GOLD
        report["type_f1"] = _type_changes_against_reference(report["vs_reference"])
    else:
        report.update(_gold_scores(reference, candidate, gold))
    report.update(tag_agreement(reference, candidate))
    changed = changed_sentences(
        words,
        reference,
        candidate,
        (ref_entities, cand_entities),
        sentence_entities(gold) if gold is not None else None,
        (reference_scores, candidate_scores),
    )
    report["changed_count"] = len(changed)
    report["changed"] = changed[:CHANGED_KEPT]
    if reference_scores is None and candidate_scores is None:
        missing["confidence ranking"] = (
            "without reference or candidate scores: changed sentences are ranked by the "
            "number of differing entities alone"
        )
    if missing:
        report["not_compared"] = missing
    return report


def _check_shapes(words: Tags, **sides) -> None:
    """Every side must have one item per word of every sentence: a misaligned side
    would compare the wrong words and still produce plausible figures."""
    for name, side in sides.items():
        if side is None:
            continue
        if len(side) != len(words):
            raise ValueError(f"{name} has {len(side)} sentences, words has {len(words)}")
        for i, (w, s) in enumerate(zip(words, side, strict=True)):
            if len(w) != len(s):
                raise ValueError(f"sentence {i}: {name} has {len(s)} items for {len(w)} words")


def _gold_scores(reference: Tags, candidate: Tags, gold: Tags) -> dict:
    """Both models against gold, and the candidate's change in points (candidate minus
    reference), overall and for each type either side scored."""
    ref, cand = entity_scores(gold, reference), entity_scores(gold, candidate)
    types = sorted(set(ref["per_type"]) | set(cand["per_type"]))
    per_type = {
        t: (cand["per_type"].get(t, {}).get("f1", 0.0) - ref["per_type"].get(t, {}).get("f1", 0.0))
        for t in types
    }
    support = {t: (ref["per_type"].get(t) or cand["per_type"][t])["support"] for t in types}
    return {
        "reference": ref,
        "candidate": cand,
        "delta": {k: cand[k] - ref[k] for k in ("precision", "recall", "f1")}
        | {"per_type_f1": per_type},
        "type_f1": {"basis": "gold", "delta": per_type, "support": support},
    }


def _type_changes_against_reference(vs_reference: dict) -> dict:
    """Without gold, the reference's entities are the truth: each type's change is its
    F1 against the reference less the 100 an identical tagger scores."""
    per_type = vs_reference["per_type"]
    return {
        "basis": "reference",
        "delta": {t: s["f1"] - 100.0 for t, s in per_type.items()},
        "support": {t: s["support"] for t, s in per_type.items()},
    }


def tag_agreement(reference: Tags, candidate: Tags) -> dict:
    """Share of words tagged the same (1.0 for no words, like classification)."""
    pairs = [
        (r, c)
        for rs, cs in zip(reference, candidate, strict=True)
        for r, c in zip(rs, cs, strict=True)
    ]
    differing = sum(r != c for r, c in pairs)
    return {
        "tag_agreement": 1 - differing / len(pairs) if pairs else 1.0,
        # words are counted as independent trials, which a sentence's words are not:
        # the interval is a lower bound on the uncertainty
        "tag_agreement_interval": wilson_interval(len(pairs) - differing, len(pairs)),
        "differing_tags": differing,
    }


def changed_sentences(words, reference, candidate, entities, gold_entities, scores) -> list[dict]:
    """Every sentence whose entities changed, worst first: most differing entities, then
    (when scores are given) the largest summed confidence of the words whose tag
    changed, since a confident change is the one a user will notice."""
    ref_entities, cand_entities = entities
    rows = []
    for i, (ref, cand) in enumerate(zip(ref_entities, cand_entities, strict=True)):
        differing = len(set(ref) ^ set(cand))
        if not differing:
            continue
        moved = [
            j for j, (r, c) in enumerate(zip(reference[i], candidate[i], strict=True)) if r != c
        ]
        confidence = _confidence(scores, i, moved)
        row = {
            "index": i,
            "text": " ".join(words[i]),
            "reference": _named(ref, words[i]),
            "candidate": _named(cand, words[i]),
            "differing_entities": differing,
            "confidence": confidence,
        }
        if gold_entities is not None:
            row["gold"] = _named(gold_entities[i], words[i])
        rows.append(row)
    rows.sort(key=lambda r: (-r["differing_entities"], -(r["confidence"] or 0.0)))
    return rows


def _confidence(scores, i: int, moved: list[int]) -> float | None:
    """Both models' summed confidence on the words whose tag changed; a side without
    scores adds nothing, and without any scores there is no confidence (None)."""
    given = [s for s in scores if s is not None]
    if not given:
        return None
    return float(sum(side[i][j] for side in given for j in moved))


def _named(entities, words) -> list[tuple[str, int, int, str]]:
    return [(t, start, end, " ".join(words[start : end + 1])) for t, start, end in entities]


# ---------------------------------------------------------------- gate


def _gate(gates: dict | None, name: str) -> float:
    return (gates or {}).get(name, TOKEN_GATES[name])


def token_checks(report: dict, gates: dict | None) -> list[dict]:
    """The NER gates on `report` (from `compare_tags`), as named checks."""
    return [
        entity_f1_check(report, gates),
        type_f1_check(report, gates),
        tag_agreement_check(report, gates),
        vs_reference_check(report),
    ]


def entity_f1_check(report: dict, gates: dict | None) -> dict:
    """The candidate's entity F1 against gold may fall at most max_entity_f1_drop points
    below the reference's."""
    if not report["labeled"]:
        why = f"{report['not_compared']['entity F1']}: entity F1 was not checked"
        return check("ner-entity-f1", [], skipped=why)
    ref, cand = report["reference"]["f1"], report["candidate"]["f1"]
    drop, limit = ref - cand, _gate(gates, "max_entity_f1_drop")
    problems = []
    if drop > limit + ROUNDING:
        problems.append(
            f"entity F1 fell {drop:.2f} points ({ref:.2f} -> {cand:.2f}), "
            f"over max_entity_f1_drop {limit}"
        )
    return check(
        "ner-entity-f1", problems, info=f"entity F1 {ref:.2f} -> {cand:.2f} ({cand - ref:+.2f} pts)"
    )


def type_f1_check(report: dict, gates: dict | None) -> dict:
    """No entity type's F1 may fall more than max_type_f1_drop points (against gold,
    else against the reference); types under MIN_TYPE_SUPPORT entities are not gated."""
    changes, limit = report["type_f1"], _gate(gates, "max_type_f1_drop")
    basis = "gold" if changes["basis"] == "gold" else "reference"
    gated = {t: d for t, d in changes["delta"].items() if changes["support"][t] >= MIN_TYPE_SUPPORT}
    small = sorted(set(changes["delta"]) - set(gated))
    note = (
        f"; not gated, under {MIN_TYPE_SUPPORT} {basis} entities: {', '.join(small)}"
        if small
        else ""
    )
    if not gated:
        why = f"no entity type has {MIN_TYPE_SUPPORT} {basis} entities: per-type F1 was not checked"
        return check("ner-type-f1", [], skipped=why)
    problems = [
        f"type {t!r} F1 fell {-d:.2f} points against the {basis}, over max_type_f1_drop {limit}"
        for t, d in gated.items()
        if -d > limit
    ]
    worst = min(gated, key=gated.get)
    info = (
        f"{len(gated)} types within {limit} pts against the {basis} "
        f"(worst {worst!r} {gated[worst]:+.2f} pts){note}"
    )
    if problems:
        problems[-1] += note
    return check("ner-type-f1", problems, info=info)


def tag_agreement_check(report: dict, gates: dict | None) -> dict:
    agreement, limit = report["tag_agreement"], _gate(gates, "min_tag_agreement")
    counts = (
        f"{report['differing_tags']} of {report['words']} words tagged differently, "
        f"{report['changed_count']} of {report['examples']} sentences' entities changed"
    )
    interval = interval_text(report.get("tag_agreement_interval"))
    counts += f"; {interval} over words" if interval else ""
    problems = []
    if agreement < limit - ROUNDING:
        problems.append(
            f"tag agreement {agreement:.4f} is below min_tag_agreement {limit} ({counts})"
        )
    return check("ner-tag-agreement", problems, info=f"tag agreement {agreement:.4f} ({counts})")


def vs_reference_check(report: dict) -> dict:
    """The candidate's entity F1 with the reference's entities as truth: information,
    not a gate. A disagreement is not always damage (the candidate may be right where
    the reference was wrong): with gold, ner-entity-f1 gates what matters; without it,
    ner-type-f1 already gates each type against the reference, and no measured figure
    yet says how far overall agreement may fall."""
    s = report["vs_reference"]
    info = (
        f"entity F1 against the reference {s['f1']:.2f} "
        f"(P {s['precision']:.2f}, R {s['recall']:.2f}; {s['support']} reference entities)"
    )
    return check("ner-entity-f1-vs-reference", [], info=info)
