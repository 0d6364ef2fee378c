"""The `aisdp-log` group of commands (one module each in cli/) and the entry point."""

from __future__ import annotations

import sys

import click

from aisdp_log import __version__
from aisdp_log.cli.group import RootGroup


@click.group(cls=RootGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="aisdp-log")
def cli() -> None:
    """Keep an experiment log that a regulator can trust (EU AI Act, Annex IV).

    \b
    aisdp-log demo DIR                 build a complete example project, then explore it
    aisdp-log template                 write an empty experiment-log.xlsx
    aisdp-log validate LOG.xlsx        check every row against git, DVC and the artefacts
    aisdp-log add LOG.xlsx ID          append a row from a recorded run
    aisdp-log rerun LOG.xlsx --id ID   reproduce a run and append the evidence
    aisdp-log review LOG.xlsx --sign   write and sign the quarterly model-selection review
    aisdp-log verify LOG.xlsx|ZIP      check the signed sign-offs (and a bundle's files)
    aisdp-log bundle LOG.xlsx -o ZIP   one archive an assessor checks with standard tools
    aisdp-log export mlflow LOG.xlsx   carry the log into MLflow
    """


def main(argv: list[str] | None = None) -> None:
    """Entry point: one line and exit code 2 for anything that stops a command."""
    # Cell text may hold characters a non-UTF-8 stdout cannot encode (a pipe on Windows):
    # print them escaped rather than fail the report.
    # Bound once: the TextIO stub lacks `reconfigure`, and any stream that has it (a wrapper
    # of a TextIOWrapper too, not only the class itself) gets the same treatment as before.
    reconfigure = getattr(sys.stdout, "reconfigure", None)
    if reconfigure is not None:
        reconfigure(errors="backslashreplace")
    cli.main(args=argv, prog_name="aisdp-log")
