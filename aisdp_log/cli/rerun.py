"""`aisdp-log rerun`: reproduce rows in fresh worktrees and print the evidence appended."""

from __future__ import annotations

import sys
from pathlib import Path

import click


@click.command()
@click.argument("log", type=click.Path(path_type=Path))
@click.option("--id", "ids", multiple=True, metavar="ID",
              help="Experiment ID of a row to reproduce (repeatable).")
@click.option("--flagged", is_flag=True, help="Reproduce every row marked in the Rerun column.")
@click.option("--runs", type=click.IntRange(1, 100),
              help="Runs for a statistical verdict (default: [rerun] runs, else 5).")
@click.option("--mode", type=click.Choice(["auto", "bitwise", "statistical"]), default="auto",
              show_default=True, help="auto: bitwise, then statistical if bitwise fails.")
@click.option("--jobs", type=click.IntRange(1, 64), default=1, show_default=True,
              help="Runs at the same time (local; Slurm schedules its jobs itself).")
@click.option("--dry-run", is_flag=True, help="Print what would run; run and write nothing.")
@click.option("--repo", type=click.Path(file_okay=False, path_type=Path),
              help="The git repository the log describes (default: the one holding LOG).")
@click.option("--force", is_flag=True, help="Write even though an Excel/LibreOffice lock file "
              "says the workbook is open (a stale lock).")
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
              help="aisdp.toml to use (default: the one at the repository root).")
@click.option("--env", "env_mode", type=click.Choice(["current", "lock", "image"]),
              default="current", show_default=True, help="current: the command's interpreter "
              "as found on PATH, checked first for the packages the row records; lock: an "
              "environment built with uv from the row's lock file at its commit (cached, "
              "reused); image: inside the container image the row's Environment names "
              "(`image: NAME@sha256:<hex>`), with Docker or Podman ([rerun] engine), no "
              "network, as the calling user.")
@click.option("--executor", type=click.Choice(["local", "slurm"]),
              help="Where runs execute: local (this machine, --jobs at a time) or slurm (one "
              "Slurm job per run, options from [rerun.slurm]). Default: [rerun] executor, "
              "else local.")
@click.option("--detach", is_flag=True, help="Slurm: submit the jobs and return at once; "
              "gather the evidence later with --collect.")
@click.option("--collect", is_flag=True, help="Judge and append every finished detached "
              "submission of LOG; unfinished ones stay pending.")
@click.option("--status", "show_status", is_flag=True,
              help="List LOG's pending detached submissions and their Slurm states.")
def rerun(log: Path, ids: tuple[str, ...], flagged: bool, runs: int | None, mode: str,
          jobs: int, dry_run: bool, repo: Path | None, force: bool,
          config_path: Path | None, env_mode: str, executor: str | None, detach: bool,
          collect: bool, show_status: bool) -> None:
    """Reproduce rows of LOG in fresh git worktrees and append the evidence.

    Exit code 0: every requested row reproduced (dry run: every row can run; --detach: every
    row submitted; --collect: every collected row reproduced); 1: a row did not reproduce or
    could not run; 2: bad arguments or an unreadable log.
    """
    from aisdp_log.errors import AisdpLogError

    def progress(text: str) -> None:
        click.echo(text, err=True)

    shown = progress if sys.stderr.isatty() else None
    if collect or show_status:
        if collect and show_status:
            raise AisdpLogError("give --collect or --status, not both")
        if ids or flagged or detach or dry_run:
            raise AisdpLogError("--collect and --status take only LOG (and --repo, --config, "
                                "--force), not --id, --flagged, --detach or --dry-run")
        from aisdp_log.rerun import detached

        listing = (detached.collect(log, repo=repo, force=force, config=config_path,
                                    progress=shown) if collect else detached.status(log))
        for line in listing.lines:
            click.echo(line)
        sys.exit(listing.exit_code)
    if detach and not dry_run:
        from aisdp_log.rerun.detached import submit_detached

        listing = submit_detached(log, ids=ids, flagged=flagged, runs=runs, mode=mode,
                                  jobs=jobs, repo=repo, config=config_path, progress=shown,
                                  env=env_mode, executor=executor)
        for line in listing.lines:
            click.echo(line)
        sys.exit(listing.exit_code)
    from aisdp_log.rerun.runner import rerun as run_rerun

    report = run_rerun(log, ids=ids, flagged=flagged, runs=runs, mode=mode, jobs=jobs,
                       dry_run=dry_run, repo=repo, force=force, config=config_path,
                       progress=shown, env=env_mode, executor=executor)
    for line in report.lines:
        click.echo(line)
    sys.exit(report.exit_code)
