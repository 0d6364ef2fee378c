"""`aisdp-log codes`: list the finding codes."""

from __future__ import annotations

import click


@click.command()
@click.option("--format", "output_format", type=click.Choice(["text", "markdown", "json"]),
              default="text", show_default=True)
def codes(output_format: str) -> None:
    """List the finding codes: severity, meaning and where each points."""
    from aisdp_log.lint.catalogue import render_codes

    click.echo(render_codes(output_format))
