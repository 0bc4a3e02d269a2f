"""The read-only commands: `edgec backends`, `edgec targets`, `edgec inspect`."""

from __future__ import annotations

import click

from edgec.cli import render
from edgec.cli.options import (
    digest_option,
    json_option,
    package_argument,
    targets_option,
    verbose_option,
)


@click.command("backends")
@click.option(
    "--options",
    "options_of",
    metavar="NAME",
    help="List backend NAME's -O options instead: name, type, default and help.",
)
@json_option
@verbose_option
def list_backends(options_of, as_json):
    """List compiler backends, their precisions, and whether they run here (and if not, why)."""
    from edgec.views import backend_options, backend_rows

    if options_of:
        options = backend_options(options_of)  # an unknown NAME: exit 2, naming the backends
        if as_json:
            render.print_json(options)
        else:
            render.backend_options_table(options_of, options)
        return
    rows = backend_rows()
    if as_json:
        render.print_json(rows)
    else:
        render.backends_table(rows)


@click.command("targets")
@targets_option
@json_option
@verbose_option
def list_targets(targets_files, as_json):
    """List device profiles: backend, precision, device, threads; `host` says why it chose."""
    from edgec.targets import host_isa, load_targets
    from edgec.views import host_facts, targets_payload

    payload = targets_payload(load_targets(targets_files), host_isa())
    if as_json:
        render.print_json(payload)
    else:
        render.targets_table(payload["targets"], host_facts(payload["host_isa"]))


@click.command()
@package_argument
@digest_option
@json_option
@verbose_option
def inspect(package, digest, as_json):
    """Show a package's manifest and digest, and check every file's hash (exit 1 if one
    differs, a file is not listed, or the package does not match --digest)."""
    from edgec.views import inspect_payload, int8_search, package_details
    from edgec_runtime.archive import opened
    from edgec_runtime.errors import VerificationFailed
    from edgec_runtime.manifest import (
        digest_problem,
        integrity_problems,
        package_digest,
        read_manifest,
    )

    with opened(package) as directory:
        manifest = read_manifest(directory)
        problems = integrity_problems(directory, manifest)
    pinned = digest_problem(manifest, digest)
    if as_json:
        render.print_json(inspect_payload(manifest, problems))
    else:
        render.facts_table(f"edgec inspect {package}", package_details(manifest, package, problems))
        render.search_table(int8_search(manifest))
        click.echo(f"digest {package_digest(manifest)}")  # whole, for copying into a pin
    if pinned:
        raise VerificationFailed(f"{package}: {pinned}")
    if problems:
        raise VerificationFailed(f"{package} failed its integrity check: {'; '.join(problems)}")
