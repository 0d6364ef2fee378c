"""`aisdp-log verify`: check the signed sign-offs of a log, or a whole evidence bundle."""

from __future__ import annotations

import sys
from pathlib import Path

import click


@click.command("verify")
@click.argument("path", metavar="LOG.xlsx|BUNDLE.zip", type=click.Path(path_type=Path))
@click.option("--allowed-signers", type=click.Path(dir_okay=False, path_type=Path),
              help="OpenSSH allowed signers file you trust (default for a log: git's "
                   "gpg.ssh.allowedSignersFile, else .aisdp/allowed_signers as committed "
                   "in the repository). A bundle without it is checked, but its signers' "
                   "identity is not established (exit 1).")
@click.option("--trust-bundle-signers", is_flag=True,
              help="Accept the bundle's own allowed_signers as the trust anchor (JSON says "
                   "\"independent\": false).")
@click.option("--since", type=click.Path(dir_okay=False, path_type=Path),
              metavar="EARLIER.zip", help="An earlier bundle: every sign-off it holds must "
              "be in this one (R013).")
@click.option("--format", "output_format", type=click.Choice(["text", "json", "github"]),
              default="text", show_default=True, help="Output format, as for validate.")
def verify_command(path: Path, allowed_signers: Path | None, trust_bundle_signers: bool,
                   since: Path | None, output_format: str) -> None:
    """Check every sign-off's SSH signature against its signer's e-mail, the chain of
    sign-offs and the signed rows of a log, or all of that, every file's sha256 and the
    bundle's completeness for a bundle.

    Exit code 0: everything verifies (warnings allowed); 1: a check failed, or identity was
    not established; 2: nothing could be checked.
    """
    from aisdp_log.lint.formatters import FORMATTERS, _inert, use_colour
    from aisdp_log.signing.verify import verify

    notes: list[str] = []
    report = verify(path, allowed_signers=allowed_signers, notes=notes,
                    trust_bundle_signers=trust_bundle_signers, since=since)
    for note in notes:
        click.echo(f"aisdp-log: {note}", err=True)
    if output_format == "text":
        for entry in report.signoffs or []:
            # cell text: shown inert, so no control character reaches the terminal
            click.echo(_inert(f"sign-off {entry['period'] or '?'} (Sign-off row "
                              f"{entry['row']}): {entry['signer']}; principal "
                              f"{entry['principal'] or 'none'}; key {entry['key'] or 'none'}; "
                              f"{entry['status']}"))
        if report.trust is not None:
            independent = "independent of the evidence" if report.trust["independent"] else \
                "brought by the evidence itself, not independent"
            click.echo(f"trust anchor: {report.trust['source']} ({independent})")
    click.echo(FORMATTERS[output_format](report, use_colour() and output_format == "text"))
    sys.exit(report.exit_code())
