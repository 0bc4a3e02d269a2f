"""Verification reports for people and for CI: a few lines, JSON, JUnit XML, Markdown.

The JUnit file has one testcase per check (failures as <failure>, checks that could not
run as <skipped>), which every CI system renders. The Markdown summary is meant for
$GITHUB_STEP_SUMMARY. Files are written to a temporary name and renamed into place, so
a crash never leaves half a report.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from xml.etree import ElementTree as ET

from edgec.verify.resolution import accuracy_test_text, interval_text

FLIPS_SHOWN = 10
# The testcase a JUnit file gets when no parity check ran: every check it lists may
# have passed or been skipped, and CI must still see that nothing was compared.
COMPLETENESS_CASE = "parity-ran"


def failure_message(report: dict, headline: str) -> str:
    """The 'why' in a few lines: one per failed check, then what was not checked."""
    lines = [f"{headline}:"]
    lines += [f"  - {line}" for line in report["failures"]]
    if report.get("incomplete"):
        lines.append(f"  - incomplete: {report['incomplete']}")
    if report.get("tokenizer") is None and report.get("mode") == "integrity":
        lines.append("  (tokenizer and parity were not run: the files are not the ones built)")
    return "\n".join(lines)


def _tagger_rows(parity: dict) -> list[tuple[str, str]]:
    rows = []
    if "tag_agreement" in parity:
        interval = interval_text(parity.get("tag_agreement_interval"))
        rows.append(
            (
                "tag agreement",
                f"{parity['tag_agreement']:.4f} of {parity['words']} words"
                + (f" ({interval}, Wilson, words as independent)" if interval else "")
                + f"; {parity['changed_count']} of {parity['examples']} sentences' "
                "entities changed",
            )
        )
    if parity.get("reference") and parity.get("candidate"):
        ref, cand = parity["reference"], parity["candidate"]
        rows.append(
            (
                "entity F1 (strict IOB2)",
                f"{ref['f1']:.2f} -> {cand['f1']:.2f} ({parity['delta']['f1']:+.2f} pts)",
            )
        )
    if parity.get("vs_reference"):
        rows.append(("entity F1 against the reference", f"{parity['vs_reference']['f1']:.2f}"))
    return rows


def _embedder_rows(parity: dict) -> list[tuple[str, str]]:
    rows = []
    if parity.get("cosine"):
        c = parity["cosine"]
        rows.append(("cosine min / p1 / mean", f"{c['min']:.5f} / {c['p1']:.5f} / {c['mean']:.5f}"))
    if parity.get("neighbours"):
        n = parity["neighbours"]
        rows.append(
            (
                f"top-{n['k']} neighbour overlap",
                f"mean {n['mean_overlap']:.4f}, min {n['min_overlap']:.4f}",
            )
        )
    if parity.get("similarity_rank"):
        rows.append(("similarity Spearman", f"{parity['similarity_rank']['spearman']:.5f}"))
    if parity.get("pair_scores"):
        ps = parity["pair_scores"]
        rows.append(
            (
                "pair-score Spearman",
                f"{ps['reference_spearman']:.4f} -> {ps['candidate_spearman']:.4f}",
            )
        )
    return rows


TASK_ROWS = {"token-classification": _tagger_rows, "sentence-embedding": _embedder_rows}


def headline_metrics(report: dict) -> list[tuple[str, str]]:
    """(name, value) rows for the figures a reader wants first."""
    parity = report.get("parity") or {}
    task_rows = TASK_ROWS.get(report.get("task"))
    rows = task_rows(parity) if task_rows else _classifier_rows(report, parity)
    tok = report.get("tokenizer")
    if tok:
        rows.append(
            (
                "tokenizer",
                f"{tok['texts_compared'] - tok['mismatches']}/{tok['texts_compared']} identical "
                f"(eval, probes, generated); UNK rate {tok['unk_rate']:.2%}, "
                f"fertility {tok['fertility']:.2f}",
            )
        )
    return rows


def _classifier_rows(report: dict, parity: dict) -> list[tuple[str, str]]:
    rows = []
    interval = interval_text(parity.get("agreement_interval"))
    within = f" ({interval}, Wilson)" if interval else ""
    if "max_abs_logit_delta" in parity:
        rows.append(
            ("agreement", f"{parity['agreement']:.4f} on {parity['examples']} examples{within}")
        )
        rows.append(
            (
                "max / mean |dlogit|",
                f"{parity['max_abs_logit_delta']:.4f} / {parity['mean_abs_logit_delta']:.4f}",
            )
        )
        rows.append(("mean KL", f"{parity['mean_kl']:.2e}"))
    elif "agreement_with_recorded_reference" in parity:
        rows.append(
            (
                "agreement (recorded reference)",
                f"{parity['agreement_with_recorded_reference']:.4f} on {parity['examples']} "
                f"examples{within}",
            )
        )
    if parity.get("reference") and parity.get("candidate"):
        ref, cand = parity["reference"], parity["candidate"]
        tested = accuracy_test_text(parity.get("accuracy_delta_interval"))
        rows.append(
            (
                "accuracy",
                f"{ref['accuracy']:.2f}% -> {cand['accuracy']:.2f}% "
                f"({parity['delta']['accuracy']:+.2f} pts" + (f"; {tested})" if tested else ")"),
            )
        )
        rows.append(
            (
                "macro-F1",
                f"{ref['macro_f1']:.2f} -> {cand['macro_f1']:.2f} ({parity['delta']['macro_f1']:+.2f})",
            )
        )
        rows.append(("ECE", f"{ref['ece']:.4f} -> {cand['ece']:.4f}"))
    elif parity.get("candidate"):
        rows.append(("accuracy", f"{parity['candidate']['accuracy']:.2f}%"))
        recorded = report.get("recorded_parity") or {}
        if "reference_accuracy" in recorded:
            rows.append(
                (
                    "recorded at build",
                    f"source {recorded['reference_accuracy']:.2f}%, package "
                    f"{recorded['candidate_accuracy']:.2f}%, agreement {recorded['agreement']:.4f}",
                )
            )
    return rows


def summary_lines(report: dict) -> list[str]:
    status = report["status"].upper()
    lines = [f"verification {status} ({report.get('mode', '')}, {report.get('seconds', 0):.1f} s)"]
    lines += [f"  {k}: {v}" for k, v in headline_metrics(report)]
    for c in report["checks"]:
        mark = {"passed": "ok  ", "failed": "FAIL", "skipped": "skip"}[c["status"]]
        lines.append(f"  [{mark}] {c['name']}" + (f": {c['message']}" if c["message"] else ""))
    lines += [f"  warning: {w}" for w in report.get("warnings", [])]
    if report.get("incomplete"):
        lines.append(f"  INCOMPLETE: {report['incomplete']}")
    return lines


def to_junit(report: dict) -> str:
    checks = list(report["checks"])
    if report.get("incomplete"):
        checks.append(
            {"name": COMPLETENESS_CASE, "status": "failed", "message": report["incomplete"]}
        )
    suite = ET.Element(
        "testsuite",
        name="edgec verify",
        tests=str(len(checks)),
        failures=str(sum(c["status"] == "failed" for c in checks)),
        skipped=str(sum(c["status"] == "skipped" for c in checks)),
        errors="0",
        time=f"{report.get('seconds', 0):.2f}",
    )
    props = ET.SubElement(suite, "properties")
    for key, value in headline_metrics(report):
        ET.SubElement(props, "property", name=key, value=value)
    for c in checks:
        case = ET.SubElement(suite, "testcase", classname="edgec.verify", name=c["name"], time="0")
        if c["status"] == "failed":
            ET.SubElement(
                case, "failure", message=c["message"][:500], type="VerificationFailed"
            ).text = c["message"]
        elif c["status"] == "skipped":
            ET.SubElement(case, "skipped", message=c["message"][:500])
        elif c["message"]:
            ET.SubElement(case, "system-out").text = c["message"]
    warnings = report.get("warnings") or []
    if warnings:
        ET.SubElement(suite, "system-err").text = "\n".join(warnings)
    suites = ET.Element("testsuites")
    suites.append(suite)
    ET.indent(suites)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"
    )


def _cell(text) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _with_margin(flip: dict, side: str) -> str:
    """A flipped prediction and its margin; a saved result has predictions, no margins."""
    margin = flip[f"{side}_margin"]
    return flip[side] if margin is None else f"{flip[side]} ({margin:.2f})"


def to_markdown(report: dict) -> str:
    icon = {"passed": "✅", "incomplete": "⚠️"}.get(report["status"], "❌")
    out = [f"## {icon} edgec verify: {report['status'].upper()}", ""]
    if report.get("package"):
        out.append(f"Package `{report['package']}`, eval data `{report.get('eval_data')}`.")
        out.append("")
    if report.get("incomplete"):
        out += [f"**Incomplete:** {_cell(report['incomplete'])}", ""]
    rows = headline_metrics(report)
    if rows:
        out += ["| metric | value |", "|---|---|"]
        out += [f"| {_cell(k)} | {_cell(v)} |" for k, v in rows]
        out.append("")
    out += ["| check | result | detail |", "|---|---|---|"]
    for c in report["checks"]:
        mark = {"passed": "pass", "failed": "**FAIL**", "skipped": "not run"}[c["status"]]
        out.append(f"| {c['name']} | {mark} | {_cell(c['message'])} |")
    out.append("")
    for w in report.get("warnings", []):
        out.append(f"> ⚠️ {_cell(w)}")
    if report.get("warnings"):
        out.append("")
    parity = report.get("parity") or {}
    per_class = (parity.get("candidate") or {}).get("per_class")
    if per_class and parity.get("reference"):
        out += ["| class | P | R | F1 | ΔF1 | support |", "|---|---|---|---|---|---|"]
        for name, m in per_class.items():
            d = parity["delta"]["per_class_f1"].get(name)
            out.append(
                f"| {_cell(name)} | {m['precision']:.1f} | {m['recall']:.1f} | {m['f1']:.1f} "
                f"| {'' if d is None else f'{d:+.2f}'} | {m['support']} |"
            )
        out.append("")
    flips = parity.get("flipped") or []
    if flips:
        out.append(f"Flipped predictions ({parity.get('flipped_count', len(flips))}), worst first:")
        out.append("")
        out += ["| text | gold | reference (margin) | package (margin) |", "|---|---|---|---|"]
        for f in flips[:FLIPS_SHOWN]:
            text = f["text"] if len(f["text"]) <= 100 else f["text"][:97] + "..."
            out.append(
                f"| {_cell(text)} | {f['gold'] or ''} | {_with_margin(f, 'reference')} "
                f"| {_with_margin(f, 'candidate')} |"
            )
        out.append("")
    out += _changed_sentences(parity.get("changed") or [], parity.get("changed_count"))
    return "\n".join(out) + "\n"


def _spans(entities) -> str:
    return "; ".join(f"{kind}: {text}" for kind, _start, _end, text in entities) or "-"


def _changed_sentences(changed: list[dict], count) -> list[str]:
    """A tagger's sentences whose entities changed, worst first, both span sets."""
    if not changed:
        return []
    out = [f"Sentences whose entities changed ({count}), worst first:", ""]
    out += ["| text | reference | package |", "|---|---|---|"]
    for row in changed[:FLIPS_SHOWN]:
        text = row["text"] if len(row["text"]) <= 100 else row["text"][:97] + "..."
        out.append(
            f"| {_cell(text)} | {_cell(_spans(row['reference']))} "
            f"| {_cell(_spans(row['candidate']))} |"
        )
    return [*out, ""]


def write_atomic(path: Path, text: str) -> None:
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_reports(report: dict, *, json_path=None, junit_path=None, summary_path=None) -> None:
    if json_path:
        write_atomic(json_path, json.dumps(report, indent=2, default=str) + "\n")
    if junit_path:
        write_atomic(junit_path, to_junit(report))
    if summary_path:
        write_atomic(summary_path, to_markdown(report))
