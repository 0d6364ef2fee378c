"""`aisdp-log review`: write (and with --sign, sign) the quarterly model-selection review."""

from __future__ import annotations

from pathlib import Path

import click


@click.command()
@click.argument("log", type=click.Path(path_type=Path))
@click.option("--period", help="The quarter to review, e.g. 2026-Q3 (default: the latest "
              "quarter with rows).")
@click.option("-o", "--output", "output_dir", type=click.Path(file_okay=False, path_type=Path),
              default=Path("."), show_default=True, help="Folder for review-<period>.html/.md.")
@click.option("--sign", "signer", metavar='"NAME, ROLE <EMAIL>"', help="Record your approval "
              "in sheet Sign-off with a hash of every reviewed row; later edits become R006. "
              "The e-mail (default: git's user.email) is the principal your key must be "
              "listed for in the allowed signers.")
@click.option("--key", type=click.Path(dir_okay=False, path_type=Path),
              help="SSH key to sign with (ssh-keygen -Y sign): a private key file, or a "
                   "public key whose private half an ssh-agent holds (default: git's "
                   "user.signingkey when gpg.format is ssh).")
@click.option("--repo", type=click.Path(file_okay=False, path_type=Path),
              help="The repository the log describes (default: the one holding LOG).")
@click.option("--force", is_flag=True, help="Sign although an Excel (~$) or LibreOffice "
              "(.~lock) lock file says the log is open: for a lock left by a crash.")
def review(log: Path, period: str | None, output_dir: Path, signer: str | None,
           key: Path | None, repo: Path | None, force: bool) -> None:
    """Write the model-selection review of one quarter as HTML (self-contained, printable)
    and Markdown; --sign records who approved it, signed with an SSH key."""
    from aisdp_log.review.model import SignatureInfo
    from aisdp_log.review.write import write_review
    from aisdp_log.signing.signoff import SignoffRecord
    from aisdp_log.system.platform import argv_text

    signer = argv_text(signer) if signer is not None else None
    result = write_review(log, period=period, output_dir=output_dir, sign=signer, key=key,
                          repo=repo, force=force)
    counts = result.review.counts
    click.echo(f"{result.review.period}: {counts['runs']} runs ({counts['selected']} selected, "
               f"{counts['baseline']} baseline, {counts['rejected']} rejected, "
               f"{counts['undecided']} undecided); validation "
               f"({result.review.validation_mode}): "
               f"{result.review.errors} error{'s' * (result.review.errors != 1)}, "
               f"{result.review.warnings} warning{'s' * (result.review.warnings != 1)}")
    click.echo(f"wrote {result.html_path} ({len(result.review.plots)} figures)")
    click.echo(f"wrote {result.markdown_path}")
    for kept in result.kept:  # a signed review's files are never overwritten
        click.echo(f"kept the earlier sign-off's file as {kept}")
    # the review model holds the sign-off and its signature as `object` (None without --sign)
    record = result.review.signoff
    if isinstance(record, SignoffRecord):
        signature = result.review.signature
        info = signature if isinstance(signature, SignatureInfo) else None
        if result.statement_path is not None:
            click.echo(f"wrote {result.statement_path}")
        if result.signature_path is not None and info is not None:  # written with the info
            click.echo(f"wrote {result.signature_path} (key {info.key})")
        click.echo(f"signed {result.review.period} as {record.name_and_role} "
                   f"in {log} (sheet Sign-off row {record.row_number})")
        for written in result.records:
            click.echo(f"wrote {written}")
        if result.records:
            click.echo("aisdp-log: commit the sign-off record so that `aisdp-log verify` can "
                       "tell if this sign-off is ever removed: git add .aisdp/signoffs && "
                       "git commit", err=True)
        if info is None or info.key is None:
            click.echo("aisdp-log: warning: the sign-off is recorded but not cryptographically "
                       "signed (no SSH key: pass --key, or set git's gpg.format=ssh and "
                       "user.signingkey)", err=True)
        elif info.allowed is None:
            click.echo(f"aisdp-log: warning: no allowed signers list key {info.key}: "
                       "`aisdp-log verify` needs one that lists it for your e-mail (commit "
                       ".aisdp/allowed_signers)", err=True)
