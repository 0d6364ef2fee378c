"""`aisdp-log bundle`: write the one evidence archive an assessor checks with standard tools."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("bundle")
@click.argument("log", metavar="LOG.xlsx", type=click.Path(path_type=Path))
@click.option("--period", help="Only this quarter's rows and artefacts (default: every "
              "signed period); every sign-off's statement and review files are bundled "
              "whatever the period, as verify requires them.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="The zip file to write.")
@click.option("--reviews", "reviews_dir", type=click.Path(file_okay=False, path_type=Path),
              multiple=True, help="Folder holding review-<period>*.html/.md; repeat it for "
              "reviews kept in several folders (default: the log's folder, its reviews/ "
              "folder, then the current folder).")
@click.option("--repo", type=click.Path(file_okay=False, path_type=Path),
              help="The repository the log describes (default: the one holding LOG).")
def bundle_command(log: Path, period: str | None, output: Path,
                   reviews_dir: tuple[Path, ...], repo: Path | None) -> None:
    """Write one evidence archive: the log, the signed reviews, each reviewed row's artefact
    folder, the lock files at the rows' commits, the allowed signers, SHA256SUMS and
    VERIFY.md (how to check it with sha256sum and ssh-keygen alone)."""
    from aisdp_log.review.bundle import write_bundle

    result = write_bundle(log, output, period=period, reviews_dir=list(reviews_dir) or None,
                          repo=repo)
    for note in result.notes:
        click.echo(f"aisdp-log: note: {note}", err=True)
    click.echo(f"wrote {output}: {len(result.files)} files, "
               f"{sum(result.files.values())} bytes; check it with `sha256sum -c SHA256SUMS` "
               f"(see VERIFY.md) or `aisdp-log verify {output}`")
