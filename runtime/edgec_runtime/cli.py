"""`edgec-run`: predict with, inspect and verify edgec packages on a device.

Errors are one line on stderr and an exit code (0 ok, 1 verification failed or
incomplete, 2 bad input, 3 backend unavailable here); --verbose shows tracebacks.
Nothing heavy is imported before a command runs.
"""

from __future__ import annotations

import json
import sys

import click

from edgec_runtime.errors import EdgecError

package_argument = click.argument("package", type=click.Path(exists=False))
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON for machines.")
digest_option = click.option(
    "--digest", help="Refuse the package unless its digest is this (sha256:..., from inspect)."
)


def _echo_json(value) -> None:
    click.echo(json.dumps(value, indent=2, ensure_ascii=False, default=float))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", is_flag=True, help="Show tracebacks.")
@click.version_option(package_name="edgec-runtime")
@click.pass_context
def cli(ctx, verbose):
    """Run edgec packages: numpy, tokenizers and one backend; no torch.

    \b
      edgec-run predict dist/sentiment "a gorgeous, witty, seductive movie"
      edgec-run inspect dist/sentiment
      edgec-run verify dist/sentiment --eval-data test.csv   # CI, no torch
    """
    ctx.obj = {"verbose": verbose}


@cli.command()
@package_argument
@click.argument("texts", nargs=-1)
@click.option("--input", "input_file", type=click.Path(), help="A text file, one text per line.")
@click.option("--aggregation", help="Taggers: none, simple, first, average or max.")
@click.option("--threads", type=click.IntRange(min=0), help="Intra-op threads (0: all cores).")
@digest_option
@json_option
def predict(package, texts, input_file, aggregation, threads, digest, as_json):
    """Run PACKAGE on TEXTS (or --input FILE): labels, entity spans or vectors."""
    from edgec_runtime.errors import BadInput
    from edgec_runtime.loading import load

    texts = list(texts)
    if input_file:
        try:
            with open(input_file, encoding="utf-8") as f:
                texts += [line.rstrip("\n") for line in f if line.strip()]
        except OSError as e:
            raise BadInput(f"cannot read --input {input_file}: {e.strerror}") from None
    if not texts:
        raise BadInput("give texts to predict: edgec-run predict PACKAGE 'some text' (or --input FILE)")
    with load(package, threads=threads, digest=digest) as model:
        name = model.task["name"]
        if name == "token-classification":
            answers = model.predict(texts, aggregation=aggregation)
        elif name == "sentence-embedding":
            answers = [{"dimension": len(v), "vector": v.tolist()} for v in model.embed(texts)]
        else:
            answers = model.predict(texts)
    if as_json:
        _echo_json([{"text": t, "prediction": a} for t, a in zip(texts, answers, strict=True)])
        return
    for text, answer in zip(texts, answers, strict=True):
        if isinstance(answer, list):  # entity spans
            spans = ", ".join(f"{e['text']!r} {e.get('entity_group', e.get('label'))} {e['score']:.2f}" for e in answer)
            click.echo(f"{text}\t{spans or '(no entities)'}")
        elif "vector" in answer:
            head = ", ".join(f"{x:.4f}" for x in answer["vector"][:4])
            click.echo(f"{text}\t[{head}, ...] ({answer['dimension']} dims)")
        else:
            click.echo(f"{text}\t{answer['label']}\t{answer['score']:.4f}")


@cli.command()
@package_argument
@json_option
def inspect(package, as_json):
    """Check PACKAGE's files against its manifest and show what it is."""
    from edgec_runtime.archive import opened
    from edgec_runtime.manifest import check_integrity, package_digest, read_manifest

    with opened(package) as directory:
        manifest = read_manifest(directory)
        check_integrity(directory, manifest)
    summary = {
        "package": str(package),
        "digest": package_digest(manifest),
        "task": (manifest.get("task") or {}).get("name", "sequence-classification"),
        "labels": manifest.get("labels"),
        "backend": manifest["backend"].get("name"),
        "precision": manifest["backend"].get("precision"),
        "target": (manifest.get("target") or {}).get("name"),
        "max_length": manifest["preprocessing"].get("max_length"),
        "verification": (manifest.get("verification") or {}).get("status"),
        "integrity": "every file's sha256 matches",
    }
    if as_json:
        _echo_json(summary)
        return
    for key, value in summary.items():
        click.echo(f"{key:<13} {value}")


@cli.command()
@package_argument
@click.option("--eval-data", required=True, type=click.Path(), help="The build's eval data: CSV, TSV, JSONL, or CoNLL for taggers.")
@click.option("--text-column", default="text", show_default=True)
@click.option("--text-pair-column", default=None)
@click.option("--label-column", default="label", show_default=True)
@digest_option
@json_option
def verify(package, eval_data, text_column, text_pair_column, label_column, digest, as_json):
    """Check PACKAGE against what its build recorded, without torch.

    Integrity, the tokens this machine's tokenizer makes of the eval data, the
    package's answers against the reference's recorded ones, and accuracy against
    the build's gates. Exit 0 passed, 1 failed or incomplete (the eval data is not
    the build's, so nothing could be compared), 2 bad input, 3 backend missing.
    """
    from edgec_runtime.errors import VerificationFailed
    from edgec_runtime.loading import load
    from edgec_runtime.verify import read_eval, verify_recorded

    with load(package, digest=digest) as model:
        data = read_eval(eval_data, model.task["name"], text_column, text_pair_column, label_column)
        report = verify_recorded(model, data)
    if as_json:
        _echo_json(report)
    else:
        for c in report["checks"]:
            click.echo(f"{c['status']:<8} {c['name']:<12} {c['message']}")
        click.echo(f"{report['status'].upper()}")
    if report["status"] != "passed":
        failed = [c["message"] for c in report["checks"] if c["status"] == "failed"]
        reason = failed[0] if failed else "nothing could be compared: pass the build's eval data"
        raise VerificationFailed(f"{package}: verification {report['status']}: {reason}", report)


def main(argv=None) -> int:
    """One line and an exit code for a user's mistake; a traceback only with --verbose."""
    verbose = "-v" in (argv or sys.argv[1:]) or "--verbose" in (argv or sys.argv[1:])
    try:
        cli.main(args=argv, standalone_mode=False)
    except click.exceptions.Exit as e:
        return e.exit_code
    except click.ClickException as e:
        e.show()
        return e.exit_code
    except click.Abort:
        click.echo("interrupted", err=True)
        return 130
    except EdgecError as e:
        if verbose:
            raise
        click.echo(f"error: {e}", err=True)
        return e.exit_code
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
