"""`make demo`: the main job on the built-in sentiment example.

Prepares the real teacher (MiniLM fine-tuned on the Pang & Lee sentences), builds a
verified int8 ONNX Runtime package from it with the `edgec` CLI, predicts with the
package, and prints a summary. Each command is echoed so it can be copied.

    python examples/sentiment/demo.py [--verbose]

The fine-tuning shows one progress bar; transformers' own output goes to a log file
under the cache (the demo prints where), or to the terminal too with --verbose, which
is also passed on to `edgec build`.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))

import sentiment  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
OUTPUT = ROOT / "dist" / "sentiment"
EDGEC = str(Path(sys.executable).with_name("edgec"))
console = Console(highlight=False)


def edgec(*args: str, capture: bool = False) -> str:
    console.print(f"\n[bold cyan]$ edgec {shlex.join(args)}[/]")
    result = subprocess.run([EDGEC, *args], check=True, text=True, capture_output=capture)
    return result.stdout if capture else ""


@click.command()
@click.option("--verbose", is_flag=True, help="Show the libraries' own output as well.")
def main(verbose: bool) -> None:
    """Build, verify and run a package of the sentiment teacher."""
    console.rule("1. the sentiment example: real MiniLM, real Pang & Lee sentences")
    splits = sentiment.prepare_splits()
    teacher = sentiment.train_teacher("full", console=console, verbose=verbose)
    metrics = sentiment.teacher_metrics(teacher)
    correct = round(metrics["test_accuracy"] * metrics["test_size"])
    console.print(
        f"teacher {teacher}: {correct}/{metrics['test_size']} test sentences right at training time"
    )

    console.rule("2. build a verified int8 package for x86 CPUs")
    OUTPUT.parent.mkdir(exist_ok=True)
    edgec(
        "build",
        str(teacher),
        "--target",
        "x86-cpu",
        "--eval-data",
        str(splits["test"]),
        "--calibration-data",
        str(splits["validation"]),
        "-o",
        str(OUTPUT),
        "--force",
        *(["--verbose"] if verbose else []),
    )

    console.rule("3. predict from the package (no torch involved)")
    edgec(
        "predict",
        str(OUTPUT),
        "a gorgeous, witty, seductive movie",
        "the plot is thin and the acting is worse",
    )

    manifest = json.loads(edgec("inspect", str(OUTPUT), "--json", capture=True))["manifest"]
    parity = manifest["verification"]["parity"]
    package_bytes = sum(manifest["files"][f]["size"] for f in manifest["backend"]["files"])
    teacher_bytes = (teacher / "model.safetensors").stat().st_size
    table = Table(title="edgec demo summary", show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    table.add_row("teacher weights", f"{teacher_bytes / 1e6:.1f} MB")
    table.add_row(
        "package model",
        f"{package_bytes / 1e6:.1f} MB ({teacher_bytes / package_bytes:.1f}x smaller)",
    )
    table.add_row(
        "teacher accuracy (test)",
        f"{parity['reference']['accuracy']:.2f}% on {parity['examples']} sentences",
    )
    table.add_row(
        "package accuracy (test)",
        f"{parity['candidate']['accuracy']:.2f}% ({parity['delta']['accuracy']:+.2f} points)",
    )
    table.add_row("agreement", f"{parity['agreement']:.4f}")
    table.add_row("verification", manifest["verification"]["status"].upper())
    table.add_row("build time", f"{manifest['build_seconds']:.0f} s")
    table.add_row("package", str(OUTPUT))
    console.print()
    console.print(table)


if __name__ == "__main__":
    main()
