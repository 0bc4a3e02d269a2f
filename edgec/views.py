"""What the CLI shows, as data: the facts of a package, a build's candidates, the
backends and their options, the targets.

Each function is pure (manifest or report dicts, the plugin registry) and returns
plain values (numbers, strings, lists, dicts), never display strings, so `--json`
prints exactly what the tables show and the terminal rendering (edgec.cli.render)
decides how a number looks. Units are fixed: sizes in bytes, times in seconds,
accuracies in percent as the manifest records them, agreement and retention as
fractions.
"""

from __future__ import annotations

from pathlib import Path

SCORES_SHOWN = 10  # groups in `edgec inspect`'s sensitivity table, most damaging first


def _classifier_facts(parity: dict) -> dict:
    facts: dict = {}
    if parity.get("labeled"):
        facts["source accuracy"] = parity["reference"]["accuracy"]
        facts["package accuracy"] = {
            "accuracy": parity["candidate"]["accuracy"],
            "delta": parity["delta"]["accuracy"],
        }
    facts["agreement"] = {
        "agreement": parity["agreement"],
        "examples": parity["examples"],
        "interval": _interval(parity.get("agreement_interval")),
    }
    return facts


def _interval(record: dict | None) -> list[float] | None:
    """[low, high] of a recorded confidence interval (None for older packages)."""
    return [record["low"], record["high"]] if record else None


def _tagger_facts(parity: dict) -> dict:
    facts: dict = {}
    if parity.get("labeled"):
        facts["source entity F1"] = parity["reference"]["f1"]
        facts["package entity F1"] = {
            "f1": parity["candidate"]["f1"],
            "delta": parity["delta"]["f1"],
        }
    facts["tag agreement"] = {"agreement": parity["tag_agreement"], "examples": parity["examples"]}
    return facts


def _embedder_facts(parity: dict) -> dict:
    cosine, neighbours = parity["cosine"], parity.get("neighbours")
    facts: dict = {
        "cosine": {"min": cosine["min"], "mean": cosine["mean"], "examples": parity["examples"]}
    }
    if neighbours:
        facts["neighbour overlap"] = {"k": neighbours["k"], "mean": neighbours["mean_overlap"]}
    return facts


# What a build's parity report puts in the summary, per task
PARITY_FACTS = {
    "sequence-classification": _classifier_facts,
    "token-classification": _tagger_facts,
    "sentence-embedding": _embedder_facts,
}


def package_summary(manifest: dict, package: Path | str) -> dict:
    """The headline facts of a package, in display order; `edgec build` shows them.

    Keys are the labels a reader sees. `verification` is the verdict word (PASSED,
    UNVERIFIED) that CI logs and scripts match on; `digest` is what a deployment pins
    (edgec_runtime.manifest.package_digest), shown whole so it can be copied.
    """
    from edgec_runtime.manifest import package_digest

    backend = manifest["backend"]
    verification = manifest["verification"]
    parity = verification.get("parity")
    distilled = manifest.get("distillation")
    facts: dict = {
        "package": str(package),
        "digest": package_digest(manifest),
        "backend": {
            "name": backend["name"],
            "version": backend.get("version"),
            "precision": backend["precision"],
        },
        "target": manifest["target"]["name"],
        "model size": sum(manifest["files"][f]["size"] for f in backend["files"]),
    }
    if distilled:  # in the task's own retention metric (accuracy for older packages)
        name, key = distilled.get("metric", "accuracy"), distilled.get("metric_key", "accuracy")
        facts[f"teacher {name}"] = distilled["teacher"][key]
        facts[f"student {name}"] = {
            key: distilled["student"][key],
            "spec": distilled["student"]["spec"],
            "retention": distilled["retention"],
        }
    task = (manifest.get("task") or {}).get("name", "sequence-classification")
    facts["task"] = task
    if parity:
        facts.update(PARITY_FACTS[task](parity))
    tokenizer = verification.get("tokenizer")
    if tokenizer:
        facts["tokenizer"] = {
            "identical": tokenizer["texts_compared"] - tokenizer["mismatches"],
            "compared": tokenizer["texts_compared"],
        }
    if backend.get("tokenizer"):
        facts["tokenizer in graph"] = in_graph_fact(backend["tokenizer"])
    if backend.get("search"):
        facts["int8 search"] = search_fact(backend["search"])
    smoothing = (backend.get("quantization") or {}).get("smoothing")
    if smoothing:
        facts["int8 smoothing"] = smoothing_fact(smoothing)
    facts["verification"] = verification["status"].upper()
    if verification.get("checked_on"):
        facts["checked with"] = verification["checked_on"]
    if "build_seconds" in manifest:
        facts["build time"] = manifest["build_seconds"]
    return facts


def in_graph_fact(record: dict) -> str:
    """-O tokenizer=graph in one line: kept (and how each set compared) or why not."""
    if record["status"] != "in-graph":
        return f"no, the tokenizer stays in Python: {record['why']}"
    compared = ", ".join(
        f"{name} {c['texts'] - c['mismatches']}/{c['texts']}"
        for name, c in record["checked"].items()
    )
    return f"yes ({record['converter']}); identical: {compared}"


def smoothing_fact(record: dict) -> str:
    """Activation smoothing in one line: how many MatMuls, which alphas, on what."""
    if not record.get("smoothed"):
        return f"none ({record.get('why') or 'no alpha cut a MatMul error by a tenth'})"
    alphas = sorted(
        {e["alpha"] for entries in record["groups"].values() for e in entries if e["alpha"]}
    )
    span = f"{alphas[0]:g}" if len(alphas) == 1 else f"{alphas[0]:g}-{alphas[-1]:g}"
    form = f" for {record['measured_for']}" if record.get("measured_for") else ""
    return (
        f"{record['smoothed']} of {record['of']} MatMuls, alpha {span}, "
        f"measured on {record['tokens']} calibration tokens{form}"
    )


def search_fact(record: dict) -> str:
    """int8-auto in one line: what won, what stayed float, what the search cost."""
    picked = next(r for r in record["results"] if r["precision"] == record["picked"])
    kept = record["options"].get("keep_float") or []
    how = f"{record['picked']}" + (
        f" ({picked['calibration']})" if picked.get("calibration") else ""
    )
    floats = f"{len(kept)} group(s) in float: {', '.join(kept)}" if kept else "all groups int8"
    why = f" ({record['picked_because']})" if record.get("picked_because") else ""
    return f"{how}{why}, {floats}; {record['trials']} trials in {record['seconds']:.0f} s"


def sensitivity_table(record: dict, limit: int = SCORES_SHOWN) -> dict | None:
    """The most damaging groups of the picked precision, or of the first that was
    scored (the picked one may have passed whole), for `edgec inspect`."""
    results = record.get("results", [])
    scored = [r for r in results if r.get("scores")]
    if not scored:
        return None
    shown = next((r for r in scored if r["precision"] == record.get("picked")), scored[0])
    kept = set((shown.get("options") or {}).get("keep_float") or [])
    rows = [{"group": g, **s, "float": g in kept} for g, s in shown["scores"].items()]
    return {
        "precision": shown["precision"],
        "calibration": shown.get("calibration"),
        "rows": rows[:limit],
    }


def int8_search(manifest: dict) -> dict | None:
    """What `int8-auto` measured, for `edgec inspect`: each searched precision's result,
    the picked one's most damaging groups, and which texts each step read; or None."""
    record = manifest["backend"].get("search")
    if not record:
        return None
    picked = next(r for r in record["results"] if r["precision"] == record["picked"])
    return {
        "picked": record["picked"],
        "calibration": picked.get("calibration"),
        "keep_float": record["options"].get("keep_float") or [],
        "trials": record["trials"],
        "seconds": record["seconds"],
        "budget": record["budget"],
        "texts": record.get("texts"),
        "results": [
            {
                "precision": r["precision"],
                "calibration": r.get("calibration"),
                "passed": r["options"] is not None,
                "keep_float": (r["options"] or {}).get("keep_float"),
                "agreement": (r.get("validation") or {}).get("agreement"),
                "quality_delta": (r.get("validation") or {}).get("quality_delta"),
                "p50_ms": r.get("p50_ms"),
            }
            for r in record["results"]
        ],
        "sensitivity": sensitivity_table(record),
        "float_cost_ms": next(
            (
                r.get("float_cost_ms")
                for r in record["results"]
                if r["precision"] == record["picked"]
            ),
            None,
        ),
    }


def build_payload(manifest: dict, package: Path | str) -> dict:
    """`edgec build --json`: the summary's facts, then the whole manifest."""
    return {**package_summary(manifest, package), "manifest": manifest}


def package_details(manifest: dict, package: Path | str, problems: list[str]) -> dict:
    """`edgec inspect`: the summary plus what the package was made from and holds."""
    source = manifest["source_model"]
    pre = manifest["preprocessing"]
    return {
        **package_summary(manifest, package),
        "source model": {
            "architecture": source["architecture"],
            "path": source["path"],
            **{k: source[k] for k in ("hub_repo", "hub_revision") if k in source},
        },
        "source sha256": source["sha256"],
        "labels": list(manifest["labels"]),
        "task facts": {k: v for k, v in (manifest.get("task") or {}).items() if k != "name"},
        "preprocessing": {
            "max_length": pre["max_length"],
            "truncation_side": pre["truncation_side"],
            "do_lower_case": pre["do_lower_case"],
            "text_pair": pre["text_pair"],
        },
        "inputs": list(manifest["io"]["input_names"]),
        "files": {name: record["size"] for name, record in manifest["files"].items()},
        "integrity": integrity(problems),
    }


def integrity(problems: list[str]) -> dict:
    return {"ok": not problems, "problems": list(problems)}


def inspect_payload(manifest: dict, problems: list[str]) -> dict:
    """`edgec inspect --json`: the manifest as written, its digest, and whether its
    hashes hold."""
    from edgec_runtime.manifest import package_digest

    return {
        "digest": package_digest(manifest),
        "manifest": manifest,
        "integrity": integrity(problems),
    }


def candidates(manifest: dict) -> dict | None:
    """The comparison of a build with several backends or precisions, or None.

    `failure` is the first reason a failed candidate gave; the numbers are None where
    a candidate never got that far.
    """
    selection = manifest.get("selection")
    if not selection:
        return None
    metrics = [row.get("quality_metric") for row in selection["candidates"]]
    return {
        "rule": selection["rule"],
        "quality_metric": next((m for m in metrics if m), "accuracy"),
        "candidates": [
            {
                "candidate": f"{row['backend']}:{row['precision']}",
                "picked": bool(row["picked"]),
                "status": row["status"],
                "failure": (row.get("failures") or [None])[0]
                if row["status"] == "failed"
                else None,
                "size_mb": row["size_mb"],
                "accuracy_delta": row["accuracy_delta"],
                "agreement": row["agreement"],
                "p50_ms": row["p50_ms"],
            }
            for row in selection["candidates"]
        ],
    }


def backend_rows() -> list[dict]:
    """Every registered backend, whether it runs here and, if not, the fix; plugins
    that failed to load are listed too, so a broken install is visible."""
    from edgec.plugins import BROKEN, backends

    rows = []
    for backend in backends().values():
        reason = backend.available()
        rows.append(
            {
                "name": backend.name,
                "precisions": list(backend.precisions),
                "devices": list(backend.devices),
                "available": reason is None,
                "reason": reason or "",
                "description": backend.description,
            }
        )
    for name, reason in BROKEN.items():
        rows.append(
            {
                "name": name,
                "precisions": [],
                "devices": [],
                "available": False,
                "reason": f"plugin broken: {reason}",
                "description": "",
            }
        )
    return rows


def backend_options(name: str) -> list[dict]:
    """The `-O KEY=VALUE` options backend `name` declares (name, type, default, help,
    choices); an unknown name is BadInput listing the backends."""
    from edgec.plugins import get_backend

    return [option.describe() for option in get_backend(name).options]


def targets_payload(targets: dict, isa: dict) -> dict:
    """`edgec targets --json`: every profile as data and the host's ISA facts."""
    return {"targets": [t.describe() for t in targets.values()], "host_isa": isa}


def host_facts(isa: dict) -> dict:
    """The host line under the targets table: machine, cores and the ISA extensions
    that decide `host`."""
    flags = [k for k in ("avx2", "avx512", "vnni", "amx", "dotprod") if isa.get(k)]
    return {"machine": isa["machine"], "cores": isa["cores"], "flags": flags}


def predictions(task: str, texts, results) -> list[dict]:
    """`edgec predict`: one record per text: its label and scores (classifier), its
    entities (tagger) or its vector (embedder)."""
    if task == "token-classification":
        return [{"text": t, "entities": r} for t, r in zip(texts, results, strict=True)]
    if task == "sentence-embedding":
        return [
            {"text": t, "embedding": [float(v) for v in r]}
            for t, r in zip(texts, results, strict=True)
        ]
    return [{"text": text, **result} for text, result in zip(texts, results, strict=True)]
