"""`aisdp-log export`: the group of exporters, and `export mlflow`."""

from __future__ import annotations

import sys
from pathlib import Path

import click


@click.group()
def export() -> None:
    """Carry the log into an experiment tracker when the team outgrows the spreadsheet."""


@export.command("mlflow")
@click.argument("log", metavar="LOG.xlsx", type=click.Path(path_type=Path))
@click.option("--tracking-uri", envvar="MLFLOW_TRACKING_URI", metavar="URI",
              help="MLflow tracking URI: a server (http://host:5000) or a database "
                   "(default: $MLFLOW_TRACKING_URI, else sqlite:///<log folder>/mlruns.db with "
                   "artefacts in <log folder>/mlartefacts).")
@click.option("--experiment", metavar="NAME",
              help="MLflow experiment (default: <repository folder>/<log name>).")
@click.option("--dry-run", is_flag=True, help="List what would be created, updated or "
              "replaced per row; write nothing.")
@click.option("--force", is_flag=True, help="Export rows with error findings too.")
@click.option("--repo", type=click.Path(file_okay=False, path_type=Path),
              help="The git repository the log describes (default: the one holding LOG).")
def export_mlflow_command(log: Path, tracking_uri: str | None, experiment: str | None,
                          dry_run: bool, force: bool, repo: Path | None) -> None:
    """One MLflow run per row: params, metrics (and history.csv per epoch), commit, data
    version as a dataset input, tags, the artefact folder and the rerun evidence.

    Exporting again updates the runs (found by their aisdp.experiment_id tag) and changes
    nothing where nothing changed. Exit code 0: every row exported or unchanged; 1: rows with
    errors were skipped; 2: nothing could be exported. Needs: pip install 'aisdp-log[mlflow]'.
    """
    from aisdp_log.export.mlflow import export_mlflow

    report = export_mlflow(log, tracking_uri=tracking_uri, experiment=experiment,
                           dry_run=dry_run, force=force, repo=repo)
    for line in report.lines:
        click.echo(line)
    sys.exit(report.exit_code)
