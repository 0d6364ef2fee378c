"""`aisdp-log demo`: build a complete example project and validate it."""

from __future__ import annotations

from pathlib import Path

import click


@click.command()
@click.argument("directory", metavar="DIR", type=click.Path(file_okay=False, path_type=Path))
def demo(directory: Path) -> None:
    """Build a complete example project in DIR (new or empty): git, DVC-tracked data,
    train.py, aisdp.toml, a filled experiment-log.xlsx and artefacts/, then validate it.

    Needs the torch extra: pip install 'aisdp-log[torch]'.
    """
    from aisdp_log.demo.project import build_demo

    build_demo(directory, echo=click.echo)
