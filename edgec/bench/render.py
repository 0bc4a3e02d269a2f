"""What a bench report looks like to a person: a table, a plot, a JSON file.

Kept apart from the run so a saved report can be rendered again (benchmarks/suite.py
--report-only) without timing anything; matplotlib and rich load only when asked.
"""

from __future__ import annotations

import json
from pathlib import Path

from edgec.bench.subjects import BASELINE_DYNAMIC, BASELINE_PADDED, BASELINES


def result_rows(report: dict) -> list[dict]:
    """Flat rows for a table: one per subject and shape."""
    subjects = {s["name"]: s for s in report["subjects"]}
    rows = []
    for r in report["results"]:
        s = subjects[r["subject"]]
        st = r["stats"]
        cold = s.get("cold_start") or {}
        rows.append(
            {
                "subject": r["subject"],
                "shape": f"b{r['batch']}" + (f" s{r['seq_len']}" if r["seq_len"] else " real"),
                **{k: st[k] for k in ("p50", "p90", "p95", "p99", "mean", "std", "throughput")},
                "x_dynamic": r["vs"].get(BASELINE_DYNAMIC, {}).get("speedup"),
                "x_padded": r["vs"].get(BASELINE_PADDED, {}).get("speedup"),
                "cold_s": cold.get("seconds"),
                "torch": cold.get("torch_imported") and s["kind"] == "package",
                "peak_rss_mb": cold.get("peak_rss_mb"),
                "size_mb": s.get("size_mb"),
                "busy": r["cpu"]["busy"],
                "steal": r["cpu"]["steal"],
            }
        )
    return rows


def baseline_lines(report: dict) -> list[str]:
    """Which PyTorch row each shape's ratios are against, when PyTorch was timed under
    more than one OMP_WAIT_POLICY: "b1 s128, pytorch-fp32 dynamic: OMP default
    14.80 ms (PASSIVE 26.80 ms)", one line per baseline and shape."""
    policy = {s["name"]: s.get("omp_wait_policy") for s in report["subjects"]}
    kind = {s["name"]: s.get("baseline") for s in report["subjects"]}
    if len({p for n, p in policy.items() if kind[n]}) < 2:
        return []
    lines = []
    for r in report["results"]:
        for base in BASELINES:
            against = r.get("vs", {}).get(base, {}).get("against")
            if against != r["subject"]:
                continue  # one line per shape, written at the row that was faster
            others = [
                f"{policy[o['subject']]} {o['stats']['p50']:.2f} ms"
                for o in report["results"]
                if kind.get(o["subject"]) == base
                and o["subject"] != against
                and (o["batch"], o["seq_len"]) == (r["batch"], r["seq_len"])
            ]
            shape = f"b{r['batch']}" + (f" s{r['seq_len']}" if r["seq_len"] else " real")
            lines.append(
                f"{shape}, {base}: OMP {policy[against]} {r['stats']['p50']:.2f} ms p50"
                + (f" ({', '.join(others)})" if others else "")
            )
    return lines


def render_table(report: dict, console) -> None:
    from rich.markup import escape
    from rich.table import Table
    from rich.text import Text

    def f(x, fmt="{:.1f}"):
        return "-" if x is None else fmt.format(x)

    m = report["machine"]
    cpu = report.get("cpu", {})
    title = (
        f"edgec bench ({report['config']['mode']}) on {m['cpu']}, {m['cores']} cores, "
        f"{report['config']['threads']} threads; CPU busy {f(cpu.get('busy'), '{:.0%}')}, "
        f"others {f(cpu.get('others'), '{:.0%}')}, steal {f(cpu.get('steal'), '{:.0%}')}"
    )
    if not console.is_terminal or console.width < 150:
        from rich.console import Console

        console = Console(width=170, highlight=False)
    table = Table(title=title, title_justify="left")
    for col in ("subject", "shape", "p50 ms", "p90", "p95", "p99", "mean", "std", "items/s"):
        table.add_column(col, justify="left" if col in ("subject", "shape") else "right")
    table.add_column("x torch dyn", justify="right")
    table.add_column("x torch pad", justify="right")
    table.add_column("cold s", justify="right")
    table.add_column("peak RSS MB", justify="right")
    table.add_column("size MB", justify="right")
    last_shape = None
    for row in result_rows(report):
        if last_shape is not None and row["shape"] != last_shape:
            table.add_section()
        last_shape = row["shape"]
        table.add_row(
            Text(row["subject"]),
            row["shape"],
            *(f(row[k], "{:.2f}") for k in ("p50", "p90", "p95", "p99", "mean", "std")),
            f(row["throughput"]),
            f(row["x_dynamic"], "{:.2f}x"),
            f(row["x_padded"], "{:.2f}x"),
            f(row["cold_s"], "{:.2f}") + (" (imports torch!)" if row["torch"] else ""),
            f(row["peak_rss_mb"], "{:.0f}"),
            f(row["size_mb"]),
        )
    console.print(table)
    lines = baseline_lines(report)
    if lines:
        console.print("x torch: against the faster OMP_WAIT_POLICY at each shape:")
        for line in lines:
            console.print(f"  {escape(line)}")
    for w in report["warnings"]:
        console.print(f"[yellow]warning:[/] {escape(w)}")


COLORS = {"pytorch": "#7f7f7f", "fp32": "#1f77b4", "int8": "#2ca02c", "onnx-file": "#ff7f0e"}


def _color(subject: dict) -> str:
    if subject["kind"] == "pytorch":
        return COLORS["pytorch"]
    if subject["kind"] == "onnx-file":
        return COLORS["onnx-file"]
    return COLORS["int8"] if "int8" in subject["precision"] else COLORS["fp32"]


def plot(report: dict, path: str | Path, title: str | None = None) -> Path:
    """Latency distribution per subject, one panel per shape: boxes (p25-p75), whiskers
    (p5-p95), the p50 written beside each box; log scale when the spread is wide."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    subjects = {s["name"]: s for s in report["subjects"]}
    shapes: list[tuple] = []
    for r in report["results"]:
        key = (r["batch"], r["seq_len"])
        if key not in shapes:
            shapes.append(key)
    names = list(subjects)
    fig, axes = plt.subplots(
        len(shapes),
        1,
        figsize=(10, 0.55 * len(names) * len(shapes) + 1.4 * len(shapes)),
        squeeze=False,
    )
    for ax, (batch, seq) in zip(axes[:, 0], shapes, strict=True):
        rows = [r for r in report["results"] if (r["batch"], r["seq_len"]) == (batch, seq)]
        rows.sort(key=lambda r: -r["stats"]["p50"])
        data = [r["latencies_ms"] for r in rows]
        box = ax.boxplot(
            data,
            orientation="horizontal",
            whis=(5, 95),
            patch_artist=True,
            showfliers=True,
            widths=0.6,
            flierprops={"markersize": 3, "alpha": 0.5},
            medianprops={"color": "black", "linewidth": 1.5},
        )
        for patch, r in zip(box["boxes"], rows, strict=True):
            patch.set_facecolor(_color(subjects[r["subject"]]))
            patch.set_alpha(0.75)
        labels = [r["subject"] for r in rows]
        ax.set_yticks(range(1, len(rows) + 1), labels)
        lo = min(min(d) for d in data)
        hi = max(max(d) for d in data)
        if hi / max(lo, 1e-6) > 8:
            from matplotlib.ticker import FuncFormatter, LogLocator

            ax.set_xscale("log")
            plain = FuncFormatter(lambda v, _: f"{v:g}")
            ax.xaxis.set_major_formatter(plain)
            ax.xaxis.set_minor_locator(LogLocator(subs=(2, 5)))
            ax.xaxis.set_minor_formatter(plain)
        for y, r in enumerate(rows, start=1):
            p50 = r["stats"]["p50"]
            speed = r.get("vs", {}).get(BASELINE_DYNAMIC, {}).get("speedup")
            text = f"p50 {p50:.1f} ms" + (f"  ({speed:.1f}x)" if speed else "")
            ax.annotate(
                text,
                (max(r["latencies_ms"]), y),
                xytext=(6, 0),
                textcoords="offset points",
                va="center",
                fontsize=9,
            )
        ax.set_xlim(right=hi * (3 if ax.get_xscale() == "log" else 1.35))
        shape = f"batch {batch}, " + (f"seq {seq}" if seq else "real text lengths")
        ax.set_title(shape, loc="left", fontsize=11)
        ax.set_xlabel("latency per call, ms (box p25-p75, whiskers p5-p95)")
        ax.grid(axis="x", alpha=0.3, which="both")
    from matplotlib.patches import Patch

    legend = [
        Patch(color=COLORS["pytorch"], label="PyTorch FP32 eager"),
        Patch(color=COLORS["fp32"], label="package, fp32/fp16"),
        Patch(color=COLORS["int8"], label="package, int8"),
        Patch(color=COLORS["onnx-file"], label="peer model file"),
    ]
    top = 1 - 0.65 / fig.get_figheight()  # room for the title and legend, in inches
    fig.legend(
        handles=legend,
        loc="upper center",
        ncol=4,
        fontsize=9,
        bbox_to_anchor=(0.5, top + 0.3 / fig.get_figheight()),
        frameon=False,
    )
    m = report["machine"]
    fig.suptitle(
        title
        or f"edgec bench, {report['config']['mode']}: {m['cpu']}, "
        f"{report['config']['threads']} threads  (x = speedup vs PyTorch FP32 dynamic)",
        fontsize=11,
    )
    fig.tight_layout(rect=(0, 0, 1, top))
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_json(report: dict, path: str | Path) -> Path:
    path = Path(path)
    path.write_text(json.dumps(report, indent=1, default=str) + "\n", encoding="utf-8")
    return path
