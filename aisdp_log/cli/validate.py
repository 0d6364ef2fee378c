"""`aisdp-log validate`: check logs, print the report, and with --annotate write the
findings into the log."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from aisdp_log.errors import AisdpLogError


@click.command()
@click.argument("logs", metavar="LOG.xlsx...", nargs=-1, required=True,
                type=click.Path(path_type=Path))
@click.option("--repo", type=click.Path(file_okay=False, path_type=Path),
              help="The git repository the log describes (default: the one holding LOG).")
@click.option("--format", "output_format", type=click.Choice(["text", "json", "github"]),
              default="text", show_default=True,
              help="Output format (json: one object per log, one per line).")
@click.option("--strict", is_flag=True, help="Fail (exit 1) on warnings too.")
@click.option("--offline", is_flag=True, help="Check the workbook alone: no git, DVC or "
              "artefact checks.")
@click.option("--remote", is_flag=True, help="Also ask the default DVC remote for data "
              "missing from the local cache (imports DVC; slower), and the container engine "
              "(docker or podman) whether each image an Environment cell names is local or "
              "pullable (G009).")
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
              help="aisdp.toml to use (default: the one at the repository root).")
@click.option("--annotate", is_flag=True, help="Also write the findings into LOG: a note on "
              "each finding's cell, a highlight, and sheet Findings (replacing the last ones).")
@click.option("--force", is_flag=True, help="With --annotate: write although an Excel (~$) or "
              "LibreOffice (.~lock) lock file says the log is open (a lock left by a crash).")
def validate(logs: tuple[Path, ...], repo: Path | None, output_format: str, strict: bool,
             offline: bool, remote: bool, config_path: Path | None, annotate: bool,
             force: bool) -> None:
    """Check every row of LOG and report each problem at its cell.

    Exit code 0: no errors (warnings allowed unless --strict); 1: errors found;
    2: nothing could be checked. Several logs may be given (as pre-commit does); the exit
    code is then the worst of them.
    """
    from aisdp_log.lint.formatters import FORMATTERS, use_colour
    from aisdp_log.lint.runner import validate as run_validate

    worst = 0
    for log in logs:
        try:
            report = run_validate(log, repo=repo, offline=offline, config=config_path,
                                  remote=remote, progress=sys.stderr.isatty())
        except AisdpLogError as exc:
            if len(logs) == 1:
                raise
            click.echo(f"aisdp-log: error: {exc}", err=True)
            worst = max(worst, exc.exit_code)
            continue
        click.echo(FORMATTERS[output_format](report, use_colour() and output_format == "text"))
        worst = max(worst, report.exit_code(strict))
        if annotate:
            worst = max(worst, _annotate(log, report, force=force, output_format=output_format,
                                         alone=len(logs) == 1))
    sys.exit(worst)


def _annotate(log: Path, report, *, force: bool, output_format: str, alone: bool) -> int:
    """`validate --annotate`'s write: 0, or the exit code of a refused write (raised when
    LOG is the only log, so it is the one-line error)."""
    from aisdp_log.lint.annotate import annotate

    try:
        written = annotate(log, report, force=force)
    except AisdpLogError as exc:
        if alone:
            raise
        click.echo(f"aisdp-log: error: {exc}", err=True)
        return exc.exit_code
    for line in written.lines():  # stderr for json and github: stdout stays the report
        click.echo(line, err=output_format != "text")
    return 0
