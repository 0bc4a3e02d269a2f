"""Prepare the sentiment example: fetch the model and corpus, split, train the teacher.

    python examples/sentiment/prepare.py [--recipe full|quick] [--distill] [--json] [--verbose]

Everything is cached under $EDGEC_CACHE (default ~/.cache/edgec), so a second run is
instant.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from rich.console import Console

sys.path.insert(0, str(Path(__file__).resolve().parent))

import sentiment  # noqa: E402


@click.command()
@click.option(
    "--recipe",
    type=click.Choice(sorted(sentiment.RECIPES)),
    default="full",
    show_default=True,
    help="full: 3 epochs, 83 % test accuracy (~4 min); quick: 1 epoch, 80 % (~70 s), for tests.",
)
@click.option(
    "--distill",
    is_flag=True,
    help="Also distil the full teacher into a 3-layer student with edgec's defaults "
    "(about 15 minutes on 2 cores: --augment multiplies the training rows by 5).",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of text.")
@click.option("--verbose", is_flag=True, help="Show the libraries' own output as well.")
def main(recipe: str, distill: bool, as_json: bool, verbose: bool) -> None:
    """Fetch MiniLM and the Pang & Lee sentences, split them, train the teacher."""
    console = Console(stderr=as_json, highlight=False)  # stdout stays JSON with --json
    base = sentiment.fetch_base_model()
    corpus = sentiment.fetch_corpus()
    splits = sentiment.prepare_splits()
    teacher = sentiment.train_teacher(recipe, console=console, verbose=verbose)
    metrics = sentiment.teacher_metrics(teacher)
    result = {
        "cache": str(sentiment.cache_dir()),
        "base_model": str(base),
        "corpus": str(corpus),
        "splits": {name: str(path) for name, path in splits.items()},
        "teacher": str(teacher),
        "recipe": recipe,
        "test_accuracy": metrics["test_accuracy"],
        "training_seconds": metrics["training_seconds"],
    }
    if distill:
        student = sentiment.distill_student(console=console)
        report = json.loads((student / "distill-report.json").read_text())
        result["student"] = str(student)
        result["student_accuracy"] = report["student"]["accuracy"] / 100
        result["retention"] = report["retention"]
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    click.echo(f"base model   {base}")
    click.echo(f"corpus       {corpus}")
    for name, path in splits.items():
        click.echo(f"{name:<12} {path}")
    click.echo(f"teacher      {teacher}")
    click.echo(
        f"test accuracy {metrics['test_accuracy']:.2%} ({metrics['test_size']} sentences, "
        f"recipe {recipe}, trained in {metrics['training_seconds']:.0f} s)"
    )
    if distill:
        click.echo(
            f"student      {result['student']}: {result['student_accuracy']:.2%}, "
            f"{result['retention']:.1%} of the full teacher"
        )


if __name__ == "__main__":
    main()
