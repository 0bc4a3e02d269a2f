"""Terminal rendering: the data of edgec.views as rich tables, and JSON as JSON.

Nothing here computes a fact; it decides how a fact looks (a size in MB, an accuracy
with two decimals, a hash cut to 16 characters). Text that came from users or
libraries goes through `plain`, so rich never reads it as markup.
"""

from __future__ import annotations

import json

import click


def console():
    from rich.console import Console

    return Console(highlight=False)


def plain(value) -> object:
    """Text shown as typed: rich would read '[tensorrt]' in "pip install 'edgec[tensorrt]'"
    (or '[CLS]' in a user's sentence) as a style tag and drop it."""
    from rich.text import Text

    return Text(str(value))


def print_json(data) -> None:
    click.echo(json.dumps(data, indent=2, default=str))


def print_json_lines(records) -> None:
    for record in records:
        click.echo(json.dumps(record, default=str))


def _mb(size: int) -> str:
    return f"{size / 1e6:.1f} MB"


def _list(values) -> str:
    return ", ".join(map(str, values))


# How each fact of edgec.views.package_summary / package_details reads; facts not
# named here are shown as str(value).
FACT_FORMATS = {
    "backend": lambda b: f"{b['name']} {b['version'] or ''} / {b['precision']}",
    "model size": _mb,
    "teacher accuracy": "{:.2f}%".format,
    "student accuracy": lambda s: (
        f"{s['accuracy']:.2f}% ({s['spec']}, {s['retention'] * 100:.1f}% retained)"
    ),
    "teacher entity F1": "{:.2f}".format,
    "student entity F1": lambda s: (
        f"{s['entity_f1']:.2f} ({s['spec']}, {s['retention'] * 100:.1f}% retained)"
    ),
    "teacher similarity Spearman": "{:.4f}".format,
    "student similarity Spearman": lambda s: (
        f"{s['similarity_spearman']:.4f} ({s['spec']}; pairwise similarities against the "
        "teacher's, whose own is 1.0)"
    ),
    "source accuracy": "{:.2f}%".format,
    "package accuracy": lambda p: f"{p['accuracy']:.2f}% ({p['delta']:+.2f} pts)",
    "agreement": lambda a: (
        f"{a['agreement']:.4f} on {a['examples']} examples"
        + (f" (95% CI {a['interval'][0]:.4f}-{a['interval'][1]:.4f})" if a.get("interval") else "")
    ),
    "source entity F1": "{:.2f}".format,
    "package entity F1": lambda p: f"{p['f1']:.2f} ({p['delta']:+.2f} pts)",
    "tag agreement": lambda a: f"{a['agreement']:.4f} of words on {a['examples']} sentences",
    "cosine": lambda c: f"min {c['min']:.5f}, mean {c['mean']:.5f} on {c['examples']} texts",
    "neighbour overlap": lambda n: f"{n['mean']:.4f} of the top {n['k']}",
    "task facts": lambda f: ", ".join(f"{k} {v}" for k, v in f.items()) or "-",
    "tokenizer": lambda t: f"{t['identical']}/{t['compared']} identical",
    "build time": "{:.1f} s".format,
    "source model": lambda s: (
        f"{s['architecture']} ({s['path']})"
        + (f", hub {s['hub_repo']} at {s['hub_revision'][:12]}" if "hub_repo" in s else "")
    ),
    "source sha256": lambda h: h[:16] + "...",
    "labels": _list,
    "preprocessing": lambda p: (
        f"max_length {p['max_length']}, truncation {p['truncation_side']}, "
        f"lowercase {p['do_lower_case']}, pairs {p['text_pair']}"
    ),
    "inputs": _list,
    "files": lambda files: ", ".join(f"{name} ({_mb(size)})" for name, size in files.items()),
    "integrity": lambda i: (
        "OK: every hash matches" if i["ok"] else "FAILED: " + "; ".join(i["problems"])
    ),
}


def fact_rows(facts: dict) -> list[tuple[str, str]]:
    rows = [(key, FACT_FORMATS.get(key, str)(value)) for key, value in facts.items()]
    if facts.get("verification") not in (None, "PASSED"):
        rows.append(("WARNING", "this package is UNVERIFIED: built with --no-verify"))
    return rows


def rows_table(title: str, rows) -> None:
    """Two columns, label and value: a package's or a report's facts."""
    from rich.table import Table

    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    for key, value in rows:
        table.add_row(key, plain(value))
    console().print(table)


def facts_table(title: str, facts: dict) -> None:
    rows_table(title, fact_rows(facts))


def _or_dash(value, fmt: str) -> str:
    return "-" if value is None else fmt.format(value)


def candidates_table(view: dict | None) -> None:
    """A build's candidates side by side; the picked one in bold green."""
    if not view:
        return
    from rich.table import Column, Table

    metric = view.get("quality_metric") or "accuracy"
    table = Table(
        Column("candidate", no_wrap=True),
        "verification",
        "size MB",
        f"{metric} delta",
        "top-10 overlap" if metric == "top-10 overlap" else "agreement",
        "p50 ms (b1)",
        title=f"candidates (pick: {view['rule']})",
        title_justify="left",
    )
    for row in view["candidates"]:
        status = row["status"].upper()
        if row["failure"]:
            status += f": {row['failure'][:60]}"
        table.add_row(
            ("> " if row["picked"] else "  ") + row["candidate"],
            plain(status),
            _or_dash(row["size_mb"], "{:.1f}"),
            _or_dash(row["accuracy_delta"], "{:+.2f} pts"),
            _or_dash(row["agreement"], "{:.4f}"),
            _or_dash(row["p50_ms"], "{:.2f}"),
            style="bold green" if row["picked"] else None,
        )
    console().print(table)


def search_table(view: dict | None) -> None:
    """int8-auto's results per searched precision, then the picked one's sensitivity
    table (damage of each group quantized alone, most damaging first)."""
    if not view:
        return
    from rich.table import Column, Table

    results = Table(
        Column("precision", no_wrap=True), "calibration", "validation", "agreement", "delta", "float groups", "p50 ms",
        title=f"int8-auto: {view['trials']} trials in {view['seconds']:.0f} s "
        f"(budget {view['budget']['max_trials']} trials, {view['budget']['max_seconds']:.0f} s)",
        title_justify="left",
    )  # fmt: skip
    for r in view["results"]:
        results.add_row(
            ("> " if r["precision"] == view["picked"] else "  ") + r["precision"],
            r["calibration"] or "-",
            "PASSED" if r["passed"] else "failed",
            _or_dash(r["agreement"], "{:.4f}"),
            _or_dash(r["quality_delta"], "{:+.2f}"),
            plain(_list(r["keep_float"]) if r["keep_float"] else ("none" if r["passed"] else "-")),
            _or_dash(r["p50_ms"], "{:.2f}"),
            style="bold green" if r["precision"] == view["picked"] else None,
        )
    console().print(results)
    if view["texts"]:
        texts = view["texts"]
        console().print(
            plain(
                f"calibration and scores: {texts['calibration']['source']} "
                f"({texts['calibration']['texts']} texts); gates: "
                f"{texts['validation']['source']} ({texts['validation']['texts']}); "
                f"eval set: {texts['eval']}"
            )
        )
    shown = view["sensitivity"]
    if shown:
        costs = view["float_cost_ms"].get(shown["precision"], {})
        how = shown["precision"] + (f", {shown['calibration']}" if shown["calibration"] else "")
        table = Table(
            Column("group", no_wrap=True), "damage alone", "agreement alone", "weights", "kept float", "float cost ms",
            title=f"sensitivity ({how}): each group quantized alone, most damaging first",
            title_justify="left",
        )  # fmt: skip
        for row in shown["rows"]:
            table.add_row(
                row["group"],
                f"{row['damage']:.6f}",
                f"{row['agreement']:.4f}",
                f"{row['weights']:,}",
                "yes" if row["float"] else "",
                _or_dash(costs.get(row["group"]), "{:+.3f}"),
            )
        console().print(table)


def _short(text: str, width: int = 80) -> str:
    return plain(text if len(text) < width else text[: width - 3] + "...")


def predictions_table(task: str, records: list[dict]) -> None:
    from rich.table import Table

    if task == "token-classification":
        table = Table("text", "entity", "label", "chars", "score")
        for record in records:
            for i, e in enumerate(record["entities"] or [None]):
                cells = (
                    [
                        plain(e["text"]),
                        plain(e["label"]),
                        f"{e['start']}-{e['end']}",
                        f"{e['score']:.3f}",
                    ]
                    if e
                    else ["-", "-", "-", "-"]
                )
                table.add_row(_short(record["text"]) if i == 0 else "", *cells)
    elif task == "sentence-embedding":
        table = Table("text", "dim", "norm", "first values")
        for record in records:
            vector = record["embedding"]
            norm = sum(v * v for v in vector) ** 0.5
            head = ", ".join(f"{v:+.3f}" for v in vector[:4])
            table.add_row(_short(record["text"]), str(len(vector)), f"{norm:.3f}", head + ", ...")
    else:
        table = Table("text", "label", "score")
        for record in records:
            table.add_row(_short(record["text"]), plain(record["label"]), f"{record['score']:.3f}")
    console().print(table)


def backends_table(rows: list[dict]) -> None:
    from rich.table import Table

    table = Table("backend", "precisions", "devices", "available", "why not / fix")
    for r in rows:
        table.add_row(
            r["name"],
            _list(r["precisions"]),
            _list(r["devices"]),
            "[green]yes[/]" if r["available"] else "[red]no[/]",
            plain(r["reason"]),
        )
    console().print(table)


def backend_options_table(backend: str, options: list[dict]) -> None:
    if not options:
        click.echo(f"{backend} declares no -O options")
        return
    from rich.table import Table

    table = Table(
        "option", "type", "default", "help", title=f"{backend} -O options", title_justify="left"
    )
    for o in options:
        kind = o["type"] + (f" ({' | '.join(map(str, o['choices']))})" if o["choices"] else "")
        default = "-" if o["default"] is None else json.dumps(o["default"])  # as -O takes it
        table.add_row(o["name"], plain(kind), plain(default), plain(o["help"]))
    console().print(table)


def targets_table(targets: list[dict], host: dict) -> None:
    from rich.table import Table

    table = Table("target", "backend", "precision", "device", "threads", "description")
    for t in targets:
        description = t["description"] + (f" — {t['reason']}" if t["reason"] else "")
        table.add_row(
            t["name"],
            t["backend"],
            t["precision"],
            t["device"],
            str(t["threads"] or "all"),
            plain(description),
        )
    console().print(table)
    click.echo(
        f"host: {host['machine']}, {host['cores']} cores, ISA: {_list(host['flags']) or 'none'}"
    )
