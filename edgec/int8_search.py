"""Precision `int8-auto`: the int8 graph that passes the gates, found by measurement.

Quantizing every MatMul of an encoder is fast but not always accurate, and which nodes
to keep in float depends on the model (benchmarks/NOTES.md, section 10). Instead of a
rule, the search measures, on texts held apart from the eval set:

1. **Calibration method** (static int8 only): every method of edgec.backends.qdq with
   every group quantized; the one with the smallest output damage on the validation
   texts wins.
2. **The whole graph in int8**: if it passes the gates on the validation texts, done.
3. **Sensitivity**: each node group (edgec.backends.groups) quantized alone, the rest
   float; its damage (KL of the outputs, or 1 - cosine for embeddings) and agreement
   with the float model on the calibration texts rank the groups.
4. **Fewest groups in float**: the most damaging groups go back to float one by one
   until the validation gates pass (tightened by `search_margin`, so the eval set has
   room), then each kept group is tried back in int8, the most expensive first, and
   stays int8 if the gates still pass.

Each searched precision (`Backend.searched`: ONNX Runtime's int8-static and dynamic
int8, TensorRT's symmetric Q/DQ graph) goes through these steps; the fastest result
that passes wins (of results within 5 % of it, the one that lost least on the
validation texts), timed with what each group kept in float costs. The eval set is
never read here: it stays the test set that the build's verification then gates on.
The search is bounded in trials and seconds, and its scores are cached by the hash of
the source model (its weights and preprocessing) and the calibration texts, so a
rebuild does not redo them.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgec.backends.derived import samples_digest
from edgec.backends.qdq import CALIBRATION_METHODS
from edgec_runtime.errors import VerificationFailed
from edgec_runtime.iospec import SENTENCE_EMBEDDING, TOKEN_CLASSIFICATION
from edgec_runtime.paths import cache_dir

SEARCH_VERSION = 1  # part of the cache key: scores of an older search are not reused
LATENCY_RUNS = 30  # batch-1 calls per finalist, interleaved
# finalists this close in p50 are one speed: the harness's noise on one graph
SPEED_TIE = 1.05


@dataclass
class Trials:
    """What the build hands the search: a way to compile one trial and to gate it.

    `compile(precision, options, name)` compiles and loads one trial (options such as
    keep_float and calibration override the build's); `verify(candidate)` runs the
    build's verification with the tightened gates on the validation texts and returns
    its report. The batches are tokenized model inputs.
    """

    compile: Callable[[str, dict, str], object]
    verify: Callable[[object], dict]
    float_outputs: Callable[[list[dict]], list[np.ndarray]]
    calibration: list[dict]
    validation: list[dict]
    texts: list[str]  # the validation texts, for timing
    task: str
    model_key: str  # the source model's weights and preprocessing: what scores are of
    max_trials: int
    max_seconds: float
    started: float = field(default_factory=time.perf_counter)
    count: int = 0
    share: int | None = None  # the trial count the current precision may reach

    def left(self) -> bool:
        limit = min(self.max_trials, self.share or self.max_trials)
        return self.count < limit and self.elapsed() < self.max_seconds

    def share_among(self, precisions: int) -> None:
        """Give the next precision its share of the trials left, so that one precision's
        long search cannot starve the others (on the NER teacher, static int8 alone
        used all 80 trials of the first budget)."""
        self.share = self.count + max(1, (self.max_trials - self.count) // precisions)

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def run(self, precision: str, options: dict, name: str):
        self.count += 1
        return self.compile(precision, options, name)


# ---------------------------------------------------------------- output damage


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def damage(reference: list[np.ndarray], outputs: list[np.ndarray], batches, task) -> dict:
    """How far `outputs` moved from the float `reference`, per batch of `batches`.

    Classifiers: mean KL(float || int8) of the class distribution, and argmax agreement.
    Taggers: the same per real token (attention mask). Embedders: mean 1 - cosine, and
    the mean cosine as the agreement.
    """
    kls, agree = [], []
    for ref, out, batch in zip(reference, outputs, batches, strict=True):
        ref, out = np.asarray(ref, np.float64), np.asarray(out, np.float64)
        if task == SENTENCE_EMBEDDING:
            cos = (ref * out).sum(-1) / (
                np.linalg.norm(ref, axis=-1) * np.linalg.norm(out, axis=-1) + 1e-12
            )
            kls.append(1.0 - cos)
            agree.append(cos)
            continue
        p, q = _softmax(ref), _softmax(out)
        kl = (p * (np.log(p + 1e-12) - np.log(q + 1e-12))).sum(-1)
        same = ref.argmax(-1) == out.argmax(-1)
        if task == TOKEN_CLASSIFICATION:
            real = np.asarray(batch["attention_mask"]).astype(bool)[:, : kl.shape[1]]
            kl, same = kl[real], same[real]
        kls.append(kl.ravel())
        agree.append(same.ravel())
    return {
        "damage": round(float(np.concatenate(kls).mean()), 6),
        "agreement": round(float(np.concatenate(agree).mean()), 6),
    }


def trial_damage(trials: Trials, candidate, batches, reference) -> dict:
    run = candidate.predictor.runner.run
    return damage(reference, [run(b) for b in batches], batches, trials.task)


# ---------------------------------------------------------------- the cache


def scores_cache(trials: Trials, backend: str, precision: str, method) -> Path:
    """Where the sensitivity scores of this model, calibration set and variant live.

    Keyed by the model's hash, not the exported file's: torch's exporter names some
    constants with fresh UUIDs, so two exports of one model differ byte for byte.
    """
    digest = hashlib.sha256(trials.model_key.encode())
    digest.update(samples_digest(trials.calibration).encode())
    digest.update(json.dumps([SEARCH_VERSION, backend, precision, method]).encode())
    return cache_dir("int8-search") / f"{digest.hexdigest()[:32]}.json"


def _read_cache(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _write_cache(path: Path, value: dict) -> None:
    partial = path.with_suffix(".partial")
    partial.write_text(json.dumps(value, indent=1), encoding="utf-8")
    partial.replace(path)


# ---------------------------------------------------------------- one precision


def passed(report: dict) -> bool:
    return report.get("status") == "passed"


def _summary(report: dict) -> dict:
    headline = report.get("headline") or {}
    return {
        "passed": passed(report),
        "agreement": headline.get("agreement"),
        "quality_delta": headline.get("quality_delta"),
        "quality_metric": headline.get("quality_metric"),
        "failures": report.get("failures", [])[:2],
    }


def choose_calibration(trials: Trials, precision: str, reference_validation, ui) -> tuple:
    """(method, its candidate, the table of methods): the least validation damage."""
    table, best = [], None
    for method in CALIBRATION_METHODS:
        if not trials.left():
            break
        with ui.step(f"int8-auto: {precision} calibrated with {method}"):
            cand = trials.run(precision, {"keep_float": [], "calibration": method}, method)
            scored = trial_damage(trials, cand, trials.validation, reference_validation)
        table.append({"method": method, **scored})
        if best is None or scored["damage"] < best[1]["damage"]:
            best = (method, scored, cand)
    return best[0], best[2], table


def sensitivity(trials: Trials, precision: str, options: dict, groups, reference_calib, ui):
    """Each group quantized alone: {group: {damage, agreement}} on the calibration texts."""
    scores = {}
    names = list(groups)
    for group in ui.track(names, f"int8-auto: scoring {len(names)} node groups ({precision})"):
        if not trials.left():
            break
        others = [g for g in names if g != group]
        cand = trials.run(precision, {**options, "keep_float": others}, f"alone-{group}")
        scores[group] = trial_damage(trials, cand, trials.calibration, reference_calib)
    return scores


def fewest_float(trials: Trials, precision, options, ranked, weights, ui) -> tuple:
    """Greedy: groups back to float, most damaging first, until the validation gates
    pass; then each kept group back to int8, the largest first, while they still pass.
    Returns (kept groups or None, the validation summary, the steps taken)."""
    kept, steps, verdict = [], [], None
    for group in ranked:
        if not trials.left():
            break
        kept.append(group)
        cand = trials.run(precision, {**options, "keep_float": list(kept)}, f"float-{len(kept)}")
        verdict = trials.verify(cand)
        steps.append({"keep_float": list(kept), **_summary(verdict)})
        ui.info(f"int8-auto: {len(kept)} group(s) in float: {_summary(verdict)['agreement']}")
        if passed(verdict):
            break
    if verdict is None or not passed(verdict):
        return None, (_summary(verdict) if verdict else None), steps
    for group in sorted(kept[:-1], key=lambda g: -weights.get(g, 0)):
        if not trials.left():
            break
        fewer = [g for g in kept if g != group]
        cand = trials.run(precision, {**options, "keep_float": fewer}, f"without-{group}")
        report = trials.verify(cand)
        steps.append({"keep_float": fewer, **_summary(report)})
        if passed(report):
            kept, verdict = fewer, report
    return kept, _summary(verdict), steps


def search_precision(trials: Trials, backend, precision: str, refs, ui) -> dict:
    """The steps of the module docstring for one searched precision; a result dict."""
    reference_calib, reference_validation = refs
    calibrated = precision in backend.calibrated
    result: dict = {"precision": precision}
    if calibrated:
        method, base, result["calibration_methods"] = choose_calibration(
            trials, precision, reference_validation, ui
        )
        options = {"calibration": method}
        result["calibration"] = method
    else:
        options = {}
        base = trials.run(precision, {"keep_float": []}, "all-int8")
    groups = base.manifest["backend"]["quantization"]["node_groups"]
    weights = {g: facts["weights"] for g, facts in groups.items()}
    verdict = trials.verify(base)
    result["all_int8"] = _summary(verdict)
    if passed(verdict):
        return {**result, "options": {**options, "keep_float": []}, "validation": _summary(verdict)}

    cache = scores_cache(trials, backend.name, precision, options.get("calibration"))
    cached = _read_cache(cache) or {}
    scores = cached.get("scores") if set(cached.get("scores") or {}) == set(groups) else None
    result["scores_cached"] = scores is not None
    if scores is None:
        scores = sensitivity(trials, precision, options, groups, reference_calib, ui)
        if set(scores) == set(groups):  # a search cut short by its budget is not cached
            _write_cache(cache, {"scores": scores})
    ranked = sorted(scores, key=lambda g: (-scores[g]["damage"], weights.get(g, 0)))
    result["scores"] = {g: {**scores[g], "weights": weights.get(g, 0)} for g in ranked}
    kept, summary, result["steps"] = fewest_float(trials, precision, options, ranked, weights, ui)
    if kept is None:
        return {**result, "options": None, "validation": summary}
    return {**result, "options": {**options, "keep_float": kept}, "validation": summary}


# ---------------------------------------------------------------- the whole search


def time_finalists(trials: Trials, finalists: dict, ui) -> dict[str, float]:
    """Batch-1 p50 ms of each named candidate, interleaved, on the validation texts."""
    from edgec.timing import sentence_latency

    predicts = {name: cand.predictor.predict for name, cand in finalists.items()}
    with ui.step(f"int8-auto: timing {len(predicts)} finalists (batch 1)"):
        return sentence_latency(predicts, trials.texts, runs=LATENCY_RUNS)


def float_costs(trials: Trials, result: dict, winner, ui) -> dict:
    """What each group the winner keeps in float costs: its p50 minus the p50 with that
    group in int8 too (which fails the gates; measured for the record)."""
    kept = result["options"]["keep_float"]
    finalists = {"chosen": winner}
    for group in kept:
        if not trials.left():
            break
        fewer = [g for g in kept if g != group]
        options = {**result["options"], "keep_float": fewer}
        finalists[group] = trials.run(result["precision"], options, f"cost-{group}")
    if len(finalists) == 1:
        return {}
    p50 = time_finalists(trials, finalists, ui)
    return {g: round(p50["chosen"] - p50[g], 3) for g in finalists if g != "chosen"}


def search_int8(trials: Trials, backend, ui) -> tuple[str, dict, dict]:
    """(precision, options, record) of the fastest searched result that passes
    (`pick_result`)."""
    calib_ref = trials.float_outputs(trials.calibration)
    validation_ref = trials.float_outputs(trials.validation)
    results = []
    for i, precision in enumerate(backend.searched):
        trials.share_among(len(backend.searched) - i)
        if not trials.left():
            break
        results.append(
            search_precision(trials, backend, precision, (calib_ref, validation_ref), ui)
        )
    record = {
        "method": "sensitivity search",
        "results": results,
        "budget": {"max_trials": trials.max_trials, "max_seconds": trials.max_seconds},
    }
    good = [r for r in results if r["options"] is not None]
    if not good:
        record.update(trials=trials.count, seconds=round(trials.elapsed(), 1))
        reasons = "; ".join(
            f"{r['precision']}: {(r.get('validation') or {}).get('failures') or 'budget spent'}"
            for r in results
        )
        raise VerificationFailed(
            f"int8-auto found no int8 graph of {backend.name} that passes the gates on the "
            f"validation texts within {trials.count} trials ({reasons}); keep a float "
            "precision, or raise -O search_trials / -O search_seconds",
            report={"status": "failed", "failures": [reasons], "search": record},
        )
    trials.share = None  # what is left is for the finalists and their costs
    finalists = {
        r["precision"]: trials.run(r["precision"], r["options"], f"final-{r['precision']}")
        for r in good
    }
    p50 = time_finalists(trials, finalists, ui) if len(finalists) > 1 else {}
    for r in good:
        r["p50_ms"] = round(p50[r["precision"]], 3) if p50 else None
    best, reason = pick_result(good, p50)
    for r in good:
        r["float_cost_ms"] = float_costs(trials, r, finalists[r["precision"]], ui)
    record.update(
        picked=best["precision"],
        picked_because=reason,
        options=best["options"],
        trials=trials.count,
        seconds=round(trials.elapsed(), 1),
    )
    return best["precision"], best["options"], record


def _validation_quality(result: dict) -> tuple[float, float]:
    summary = result.get("validation") or {}
    return (summary.get("quality_delta") or 0.0, summary.get("agreement") or 0.0)


def pick_result(good: list[dict], p50: dict[str, float]) -> tuple[dict, str]:
    """(the passing result to build, why): the fastest, unless others are as fast within
    SPEED_TIE; among those, the one that lost least on the validation texts. On the NER
    tagger static int8 timed 1-3 % ahead of dynamic int8 and lost 1.1 entity F1 more on
    the test split (benchmarks/NOTES.md, section 15): a difference inside the timing's
    noise is no reason to take the less accurate graph."""
    if len(good) == 1 or not p50:
        return good[0], "the only result that passed"
    fastest = min(p50[r["precision"]] for r in good)
    tied = [r for r in good if p50[r["precision"]] <= fastest * SPEED_TIE]
    best = max(tied, key=_validation_quality)
    if len(tied) == 1:
        return best, "the fastest that passed"
    return best, (
        f"within {SPEED_TIE - 1:.0%} of the fastest, the least loss on the validation texts"
    )


def search_gates(gates: dict, margin: float) -> dict:
    """The gates a trial must pass on the validation texts: each allowance (a drop, or
    the gap of a floor below 1) scaled by `margin`, so the result keeps room to pass the
    eval set's untightened gates. The tokenizer's UNK gate is not the quantizer's."""
    from edgec.gates import resolve_gates

    tightened = {}
    for name, value in resolve_gates(gates).items():
        if name.endswith("_drop"):
            value = value * margin
        elif name.startswith("min_"):
            value = 1.0 - (1.0 - value) * margin
        tightened[name] = round(value, 6)
    return tightened
