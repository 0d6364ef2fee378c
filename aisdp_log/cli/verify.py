"""`aisdp-log verify`: check the signed sign-offs of a log, or a whole evidence bundle."""

from __future__ import annotations

import sys
from pathlib import Path

import click


@click.command("verify")
@click.argument("path", metavar="LOG.xlsx|BUNDLE.zip", type=click.Path(path_type=Path))
@click.option("--allowed-signers", type=click.Path(dir_okay=False, path_type=Path),
              help="OpenSSH allowed signers file (default: git's gpg.ssh.allowedSignersFile, "
                   "else .aisdp/allowed_signers in the repository; for a bundle, its own).")
@click.option("--format", "output_format", type=click.Choice(["text", "json", "github"]),
              default="text", show_default=True, help="Output format, as for validate.")
def verify_command(path: Path, allowed_signers: Path | None, output_format: str) -> None:
    """Check every sign-off's SSH signature, the chain of sign-offs and the signed rows of a
    log, or all of that and every file's sha256 of a bundle.

    Exit code 0: everything verifies (warnings allowed); 1: a check failed; 2: nothing could
    be checked.
    """
    from aisdp_log.lint.formatters import FORMATTERS, use_colour
    from aisdp_log.signing.verify import verify

    notes: list[str] = []
    report = verify(path, allowed_signers=allowed_signers, notes=notes)
    for note in notes:
        click.echo(f"aisdp-log: {note}", err=True)
    click.echo(FORMATTERS[output_format](report, use_colour() and output_format == "text"))
    sys.exit(report.exit_code())
