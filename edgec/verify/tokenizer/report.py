"""`tokenizer_report`: every tokenizer check on one package, as one report.

The expected side is a transformers tokenizer (the source model's, or the one saved in
the package when there is no reference); the package side is the runtime tokenizer
built from `tokenizer.json` and the manifest's preprocessing, exactly as the device
builds it. The report keeps the measurements next to the named checks, so a failure
can be traced to the texts and token positions that caused it.
"""

from __future__ import annotations

import json
from pathlib import Path

from edgec.gates import DEFAULT_GATES
from edgec.model import position_limit
from edgec.verify.checks import check
from edgec.verify.tokenizer.checks import (
    compare_encodings,
    domain_gap,
    domain_warnings,
    max_length_warnings,
    model_problems,
    normalizer_flags,
    normalizer_problems,
    padded_batch_problems,
    pair_problems,
    runtime_vocab_problems,
    settings_of,
    settings_problems,
    slow_variant,
    training_max_length,
    unk_rate_problems,
)
from edgec.verify.tokenizer.probes import GENERATED_EXAMPLES, generated_inputs, probe_inputs
from edgec_runtime.iospec import ENCODING_FIELDS
from edgec_runtime.tokenizer import runtime_tokenizer

SLOW_EVAL_TEXTS = 300  # the pure-Python second opinion is slow; a sample of eval texts
NO_HYPOTHESIS = (
    "hypothesis is not installed (pip install hypothesis): no generated strings were compared"
)
NO_MODEL_CONFIG = (
    "no source model: max_length vs position embeddings, vocabulary vs embedding rows "
    "and special-token ids vs the model config were not checked"
)


def tokenizer_report(
    tokenizer,
    tokenizer_path: Path,
    preprocessing: dict,
    texts,
    pairs=None,
    *,
    config=None,
    model_type: str | None = None,
    expected_from: str = "the source model's tokenizer",
    generated: int = GENERATED_EXAMPLES,
    max_unk_rate: float | None = None,
) -> dict:
    """Compare the runtime tokenizer (`tokenizer_path` + `preprocessing`) with `tokenizer`.

    `config` (the source model's) enables the checks against the embeddings; without it
    the report says they were not run. `max_unk_rate` is the gate on the eval texts'
    UNK rate (default: edgec.gates').
    """
    if max_unk_rate is None:
        max_unk_rate = DEFAULT_GATES["max_unk_rate"]
    texts = list(texts)
    pairs = list(pairs) if pairs is not None else None
    tokenizer_path = Path(tokenizer_path)
    text_pair = bool(preprocessing.get("text_pair"))
    fields = [f for f in preprocessing["input_names"] if f in ENCODING_FIELDS]
    limit = position_limit(config) if config is not None else None
    trained = training_max_length(tokenizer, preprocessing["max_length"], limit)
    expected = settings_of(tokenizer, trained, list(preprocessing["input_names"]), text_pair)
    runtime = runtime_tokenizer(tokenizer_path, preprocessing)
    tokenizer_json = json.loads(tokenizer_path.read_text(encoding="utf-8"))

    settings = settings_problems(expected, preprocessing) + pair_problems(
        pairs is not None, text_pair
    )
    static = _static_problems(tokenizer, tokenizer_json, runtime, preprocessing, config)

    eval_pairs = pairs if text_pair else None
    generated_input = generated_inputs(generated, text_pair)
    inputs = {
        "eval": (texts, eval_pairs),
        "probes": probe_inputs(text_pair),
        "generated": generated_input or ([], [] if text_pair else None),
    }
    comparisons = compare_encodings(tokenizer, runtime, inputs, trained, fields)
    padding = padded_batch_problems(tokenizer, runtime, preprocessing, texts, eval_pairs, trained)
    slow_section, slow_warnings = _second_opinion(
        tokenizer,
        runtime,
        inputs,
        trained,
        fields,
        model_type or getattr(config, "model_type", None),
    )
    gap = domain_gap(tokenizer, texts)
    warnings = (
        slow_warnings
        + domain_warnings(gap, len(texts), tokenizer.unk_token, max_unk_rate)
        + max_length_warnings(tokenizer, limit)
    )

    def differs(name: str) -> list[str]:
        return _mismatch_problems(comparisons[name], name, expected_from)

    checks = [
        check("tokenizer-settings", settings),
        check("tokenizer-static", static),
        check("tokenizer-eval-texts", differs("eval") + padding),
        check("tokenizer-probes", differs("probes")),
        check(
            "tokenizer-generated",
            differs("generated"),
            skipped=NO_HYPOTHESIS if generated_input is None else None,
        ),
        check(
            "tokenizer-unk-rate",
            unk_rate_problems(gap, len(texts), tokenizer.unk_token, max_unk_rate),
            info=(
                f"{gap['unk_rate']:.2%} of eval tokens are {tokenizer.unk_token} "
                f"(max_unk_rate {max_unk_rate})"
                if tokenizer.unk_token_id is not None
                else "the vocabulary has no UNK token: no text is unknown to it"
            ),
        ),
    ]
    if config is None:
        checks.append(check("tokenizer-vs-model-config", [], skipped=NO_MODEL_CONFIG))
    return {
        "expected_from": expected_from,
        "expected_tokenizer": f"{type(tokenizer).__name__} ({type(tokenizer).__mro__[1].__name__})",
        "settings": {"training": expected, "package": preprocessing},
        "settings_problems": settings,
        "static_problems": static,
        "normalizer": normalizer_flags(tokenizer_json),
        "comparisons": comparisons,
        "slow_variant": slow_section,
        "texts_compared": sum(c["compared"] for c in comparisons.values()),
        "mismatches": sum(c["mismatches"] for c in comparisons.values()),
        **gap,
        "warnings": warnings,
        "checks": checks,
        "passed": all(c["status"] != "failed" for c in checks),
    }


def _static_problems(tokenizer, tokenizer_json, runtime, preprocessing, config) -> list[str]:
    """Facts checked without encoding anything: casing, special ids, embedding sizes."""
    problems = normalizer_problems(
        tokenizer_json,
        tokenizer.init_kwargs.get("do_lower_case"),
        tokenizer.init_kwargs.get("strip_accents"),
    )
    problems += runtime_vocab_problems(
        runtime, preprocessing, config.vocab_size if config is not None else None
    )
    if config is not None:
        problems += model_problems(tokenizer, config, preprocessing["max_length"])
    return problems


def _second_opinion(tokenizer, runtime, inputs, max_length, fields, model_type):
    """(slow_variant section, warnings): the package against the pure-Python tokenizer.

    Fast and slow transformers tokenizers are known to disagree on exotic Unicode
    (unassigned code points, some control characters): only real data is worth a
    warning; the probe and generated differences stay in the report.
    """
    slow, note = slow_variant(tokenizer, model_type)
    section: dict = {"available": slow is not None, "note": note}
    if slow is None:
        return section, []
    texts, pairs = inputs["eval"]
    sampled = {
        **inputs,
        "eval": (texts[:SLOW_EVAL_TEXTS], pairs[:SLOW_EVAL_TEXTS] if pairs else None),
    }
    section["comparisons"] = compare_encodings(slow, runtime, sampled, max_length, fields)
    on_eval = section["comparisons"]["eval"]["mismatches"]
    if not on_eval:
        return section, []
    return section, [
        f"the slow (Python) tokenizer differs from the package on {on_eval} of "
        f"{len(sampled['eval'][0])} eval texts checked (fast and slow transformers "
        "tokenizers disagree there); training used the fast one, which matches"
    ]


def _mismatch_problems(comparison: dict, name: str, expected_from: str) -> list[str]:
    if not comparison["mismatches"]:
        return []
    first = comparison["examples"][0]
    return [
        f"the package tokenizer differs from {expected_from} on {comparison['mismatches']} of "
        f"{comparison['compared']} {name} texts (first: {first['field']} at token "
        f"{first['position']} of {first['text'][:50]!r})"
    ]


def source_tokenizer_report(
    source, predictor, texts, pairs=None, max_unk_rate: float | None = None
) -> dict:
    """The package's runtime tokenizer against its source model's, as a build (or
    `edgec verify --reference`) checks it, whatever the task. `predictor` is anything
    with the package's `directory` and `preprocessing`."""
    return tokenizer_report(
        source.tokenizer,
        predictor.directory / "tokenizer.json",
        predictor.preprocessing,
        texts,
        pairs,
        config=source.config,
        max_unk_rate=max_unk_rate,
    )


def trained_max_length(source) -> int:
    """The max_length the source model was trained (or, for an embedder, pools) at:
    the reference truncates there, whatever the package does."""
    return training_max_length(source.tokenizer, source.max_length, position_limit(source.config))
