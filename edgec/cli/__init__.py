"""The `edgec` command line: one Click group; each command (a module here) parses its
options, calls the library and renders what it returns (edgec.views, .render).
Heavy libraries are imported inside commands so `edgec --help` stays fast and never
imports torch or a backend runtime.

Errors: a user mistake (`EdgecError`) prints one line and exits with its code; any
other exception is a bug, shown with its traceback under --verbose.
"""

from __future__ import annotations

import signal
import sys
import traceback

import click

from edgec import __version__
from edgec.cli.bench import bench
from edgec.cli.build import build
from edgec.cli.distill import distill
from edgec.cli.info import inspect, list_backends, list_targets
from edgec.cli.options import is_verbose, verbose_option
from edgec.cli.predict import predict
from edgec.cli.verify import verify
from edgec_runtime.errors import EdgecError

EXIT_INTERNAL = 4
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report it
EXIT_CODES_HELP = """\b
Exit codes:
  0  success
  1  verification failed (parity, tokenizer, retention or integrity); nothing written
  2  bad usage or bad input (paths, files, columns, options)
  3  backend or device unavailable on this machine
  4  internal error (a bug: rerun with --verbose and report it)
  130  interrupted (Ctrl-C or SIGTERM); the message says what is at -o"""


class EdgecGroup(click.Group):
    """Turns library errors into one-line messages and documented exit codes."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except EdgecError as e:
            if is_verbose(ctx):
                traceback.print_exc()
            click.secho(f"error: {e}", err=True, fg="red")
            ctx.exit(e.exit_code)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except KeyboardInterrupt as e:
            # what an interrupted package write left, when it had begun (edgec.package)
            left = getattr(e, "edgec_left", None)
            click.secho(
                f"interrupted: {left}"
                if left
                else "interrupted: a build leaves nothing behind and keeps a package already "
                "at -o; an interrupted distill keeps its checkpoints (continue with --resume)",
                err=True,
                fg="red",
            )
            ctx.exit(EXIT_INTERRUPTED)
        except Exception as e:
            if is_verbose(ctx):
                traceback.print_exc()
            click.secho(
                f"internal error: {type(e).__name__}: {e} (rerun with --verbose for the traceback "
                "and report it)",
                err=True,
                fg="red",
            )
            ctx.exit(EXIT_INTERNAL)


@click.group(
    cls=EdgecGroup, epilog=EXIT_CODES_HELP, context_settings={"help_option_names": ["-h", "--help"]}
)
@click.version_option(__version__, prog_name="edgec")
@verbose_option
def cli():
    """edgec compiles a fine-tuned Hugging Face text classifier into a verified,
    self-contained package for an edge device.

    \b
    Typical use:
      edgec targets                                  # which devices edgec knows
      edgec build ./model --target x86-cpu --eval-data test.csv -o dist/model
      edgec predict dist/model "a gorgeous, witty, seductive movie"
      edgec verify dist/model --eval-data test.csv   # the parity check for CI
      edgec bench dist/model --lengths-from test.csv

    The build refuses to write a package that loses accuracy or tokenizes
    differently from training. Run `edgec COMMAND --help` for each command.
    """


# Every command takes `verbose_option`: besides --verbose, it is what quiets the
# libraries' logs and bars before the command runs.
for command in (build, predict, list_backends, list_targets, inspect, bench, distill, verify):
    cli.add_command(command)


def _interrupt(signum, _frame) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


def main() -> None:
    # SIGTERM (kill, a CI timeout, a container stop) ends a run as Ctrl-C does: the
    # KeyboardInterrupt unwinds through each cleanup (a build's temporary folders, the
    # package replace) and exits 130 with the same message.
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        cli(prog_name="edgec")
    except SystemExit as e:
        sys.exit(e.code)
