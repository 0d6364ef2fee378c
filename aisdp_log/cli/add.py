"""`aisdp-log add`: append a row for a recorded run and say what was written."""

from __future__ import annotations

from pathlib import Path

import click


@click.command()
@click.argument("log", type=click.Path(path_type=Path))
@click.argument("experiment_id")
@click.option("--repo", type=click.Path(file_okay=False, path_type=Path),
              help="The repository holding the artefacts (default: the one holding LOG).")
@click.option("--force", is_flag=True, help="Write although an Excel (~$) or LibreOffice "
              "(.~lock) lock file says the log is open (a lock left by a crash).")
def add(log: Path, experiment_id: str, repo: Path | None, force: bool) -> None:
    """Append a row for EXPERIMENT_ID from its artefact folder (run.json, metrics.json, the
    model's hash); you fill Hypothesis, Outcome and Notes."""
    from aisdp_log.record.add import add_experiment

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
