"""`aisdp-log hash`: print the Artefact hash of a folder or a file, as the cell wants it."""

from __future__ import annotations

import sys
from pathlib import Path

import click


@click.command("hash")
@click.argument("path", type=click.Path(path_type=Path))
def hash_command(path: Path) -> None:
    """Print the Artefact hash of an artefact folder or a file, as the cell wants it
    (sha256:<hex>; several files: the hash of their sha256sum-style list)."""
    from aisdp_log.artefacts.hashing import hash_for_cell

    click.echo(hash_for_cell(path, show_progress=sys.stderr.isatty()))
