"""The `aisdp-log` command line: parse options, call the core, print, return an exit code."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from . import __version__
from .errors import AisdpLogError


class _Group(click.Group):
    def list_commands(self, ctx):  # keep the order commands are used in
        return list(self.commands)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="aisdp-log")
def cli() -> None:
    """Keep an experiment log that a regulator can trust (EU AI Act, Annex IV).

    \b
    aisdp-log template                 write an empty experiment-log.xlsx
    aisdp-log validate LOG.xlsx        check every row against git, DVC and the artefacts
    aisdp-log codes                    list the finding codes
    """


@cli.command()
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              default=Path("experiment-log.xlsx"), show_default=True,
              help="Where to write the workbook.")
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
              help="aisdp.toml whose [template] declares params and metrics "
                   "(default: ./aisdp.toml when present).")
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
def template(output: Path, config_path: Path | None, force: bool) -> None:
    """Write an empty experiment-log workbook with the documented columns and help."""
    from .config import load_config
    from .template import write_template

    config = load_config(Path.cwd(), config_path)
    if output.exists() and not force:
        raise AisdpLogError(f"{output}: already exists; pass --force to overwrite it")
    write_template(output, config)
    params = ", ".join(p.name for p in config.template_params())
    metrics = ", ".join(m.name for m in config.template_metrics())
    click.echo(f"wrote {output} (params: {params}; metrics: {metrics})")


@cli.command()
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
              "missing from the local cache (imports DVC; slower).")
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
              help="aisdp.toml to use (default: the one at the repository root).")
def validate(logs: tuple[Path, ...], repo: Path | None, output_format: str, strict: bool,
             offline: bool, remote: bool, config_path: Path | None) -> None:
    """Check every row of LOG and report each problem at its cell.

    Exit code 0: no errors (warnings allowed unless --strict); 1: errors found;
    2: nothing could be checked. Several logs may be given (as pre-commit does); the exit
    code is then the worst of them.
    """
    from .formatters import FORMATTERS, use_colour
    from .validate import validate as run_validate

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
    sys.exit(worst)


@cli.command()
@click.argument("log", type=click.Path(path_type=Path))
@click.argument("experiment_id")
@click.option("--repo", type=click.Path(file_okay=False, path_type=Path),
              help="The repository holding the artefacts (default: the one holding LOG).")
@click.option("--force", is_flag=True, help="Write although an Excel (~$) or LibreOffice "
              "(.~lock) lock file says the log is open: for a lock left by a crash.")
def add(log: Path, experiment_id: str, repo: Path | None, force: bool) -> None:
    """Append a row for EXPERIMENT_ID from its artefact folder (run.json, metrics.json, the
    model's hash); you fill Hypothesis, Outcome and Notes."""
    from .add import add_experiment

    result = add_experiment(log, experiment_id, repo=repo, force=force)
    click.echo(f"added {result.experiment_id} to {result.log} ({result.sheet} row "
               f"{result.row}): {len(result.written)} cells")
    for header, value in result.written.items():
        click.echo(f"  {header}: {value}")
    if result.unrecorded_params:
        click.echo("  note: params without a params.<name> or 'Other params' column, not "
                   "recorded: " + ", ".join(result.unrecorded_params))
    if result.unlogged_metrics:
        click.echo("  note: metrics.json values without a metrics.<name> column: "
                   + ", ".join(result.unlogged_metrics))
    if result.missing_metrics:
        click.echo("  note: no value recorded for " + ", ".join(result.missing_metrics))
    click.echo(f"next: fill Hypothesis, Outcome and Notes in row {result.row}, then "
               f"`aisdp-log validate {result.log}`")


@cli.command()
@click.option("--format", "output_format", type=click.Choice(["text", "markdown", "json"]),
              default="text", show_default=True)
def codes(output_format: str) -> None:
    """List the finding codes: severity, meaning and where each points."""
    from .catalogue import render_codes

    click.echo(render_codes(output_format))


def main(argv: list[str] | None = None) -> None:
    """Entry point: one line and exit code 2 for anything that stops a command."""
    try:
        cli.main(args=argv, prog_name="aisdp-log", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(2)
    except click.exceptions.Abort:
        click.echo("aisdp-log: aborted", err=True)
        sys.exit(130)
    except AisdpLogError as exc:
        click.echo(f"aisdp-log: error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("aisdp-log: interrupted", err=True)
        sys.exit(130)
    except BrokenPipeError:
        sys.exit(1)
    except Exception as exc:  # noqa: BLE001 - the contract is one line, never a traceback
        if os.environ.get("AISDP_LOG_DEBUG"):
            raise
        reason = " ".join(str(exc).split())[:300] or type(exc).__name__
        click.echo(f"aisdp-log: internal error: {type(exc).__name__}: {reason} "
                   "(set AISDP_LOG_DEBUG=1 for the traceback and please report it)", err=True)
        sys.exit(2)
