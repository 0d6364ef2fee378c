"""The `aisdp-log` command line: parse options, call the core, print, return an exit code."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from aisdp_log import __version__
from aisdp_log.errors import AisdpLogError

#: The order `--help` lists commands in: the order a team uses them.
COMMAND_ORDER = ("demo", "template", "validate", "hash", "add", "rerun", "review", "verify",
                 "bundle", "export", "codes")


class _Group(click.Group):
    def list_commands(self, ctx):
        order = {name: i for i, name in enumerate(COMMAND_ORDER)}
        return sorted(self.commands, key=lambda name: (order.get(name, len(order)), name))


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="aisdp-log")
def cli() -> None:
    """Keep an experiment log that a regulator can trust (EU AI Act, Annex IV).

    \b
    aisdp-log demo DIR                 build a complete example project, then explore it
    aisdp-log template                 write an empty experiment-log.xlsx
    aisdp-log validate LOG.xlsx        check every row against git, DVC and the artefacts
    aisdp-log add LOG.xlsx ID          append a row from a recorded run
    aisdp-log rerun LOG.xlsx --id ID   reproduce a run and append the evidence
    aisdp-log review LOG.xlsx --sign   write and sign the quarterly model-selection review
    aisdp-log verify LOG.xlsx|ZIP      check the signed sign-offs (and a bundle's files)
    aisdp-log bundle LOG.xlsx -o ZIP   one archive an assessor checks with standard tools
    aisdp-log export mlflow LOG.xlsx   carry the log into MLflow
    """


@cli.command()
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              default=Path("experiment-log.xlsx"), show_default=True,
              help="Where to write the workbook.")
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
              help="aisdp.toml whose [template] declares params and metrics "
                   "(default: ./aisdp.toml when present).")
@click.option("--force", is_flag=True, help="Overwrite an existing file (with --upgrade: "
              "write although a lock file says the log is open).")
@click.option("--upgrade", "upgrade", metavar="LOG", type=click.Path(path_type=Path),
              help="Instead: bring LOG, made by an older template, to the current one (new "
              "columns, validations, marks, Guide), keeping every row and column.")
def template(output: Path, config_path: Path | None, force: bool,
             upgrade: Path | None) -> None:
    """Write an empty experiment-log workbook with the documented columns and help."""
    from aisdp_log.config import load_config
    from aisdp_log.workbook.template import write_template

    if upgrade is not None:
        from aisdp_log.workbook.upgrade import upgrade_log

        for line in upgrade_log(upgrade, force=force).lines():
            click.echo(line)
        return
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


@cli.command()
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


@cli.command()
@click.argument("log", type=click.Path(path_type=Path))
@click.option("--period", help="The quarter to review, e.g. 2026-Q3 (default: the latest "
              "quarter with rows).")
@click.option("-o", "--output", "output_dir", type=click.Path(file_okay=False, path_type=Path),
              default=Path("."), show_default=True, help="Folder for review-<period>.html/.md.")
@click.option("--sign", "signer", metavar='"NAME, ROLE"', help="Record your approval in sheet "
              "Sign-off with a hash of every reviewed row; later edits become R006.")
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
    from aisdp_log.review.write import write_review

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
    if result.review.signoff is not None:
        info = result.review.signature
        if result.statement_path is not None:
            click.echo(f"wrote {result.statement_path}")
        if result.signature_path is not None:
            click.echo(f"wrote {result.signature_path} (key {info.key})")
        click.echo(f"signed {result.review.period} as {result.review.signoff.name_and_role} "
                   f"in {log} (sheet Sign-off row {result.review.signoff.row_number})")
        if info is None or info.key is None:
            click.echo("aisdp-log: warning: the sign-off is recorded but not cryptographically "
                       "signed (no SSH key: pass --key, or set git's gpg.format=ssh and "
                       "user.signingkey)", err=True)
        elif info.allowed is not None and not info.principals:
            click.echo(f"aisdp-log: warning: the allowed signers ({info.allowed}) do not list "
                       f"key {info.key}: `aisdp-log verify` will report R008", err=True)


@cli.command("verify")
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


@cli.command("bundle")
@click.argument("log", metavar="LOG.xlsx", type=click.Path(path_type=Path))
@click.option("--period", help="Only this quarter's sign-offs and rows (default: every "
              "signed period).")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="The zip file to write.")
@click.option("--reviews", "reviews_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Folder holding review-<period>.html/.md (default: the log's folder, "
                   "then the current folder).")
@click.option("--repo", type=click.Path(file_okay=False, path_type=Path),
              help="The repository the log describes (default: the one holding LOG).")
def bundle_command(log: Path, period: str | None, output: Path, reviews_dir: Path | None,
                   repo: Path | None) -> None:
    """Write one evidence archive: the log, the signed reviews, each reviewed row's artefact
    folder, the lock files at the rows' commits, the allowed signers, SHA256SUMS and
    VERIFY.md (how to check it with sha256sum and ssh-keygen alone)."""
    from aisdp_log.review.bundle import write_bundle

    result = write_bundle(log, output, period=period, reviews_dir=reviews_dir, repo=repo)
    for note in result.notes:
        click.echo(f"aisdp-log: note: {note}", err=True)
    click.echo(f"wrote {output}: {len(result.files)} files, "
               f"{sum(result.files.values())} bytes; check it with `sha256sum -c SHA256SUMS` "
               f"(see VERIFY.md) or `aisdp-log verify {output}`")


@cli.command("hash")
@click.argument("path", type=click.Path(path_type=Path))
def hash_command(path: Path) -> None:
    """Print the Artefact hash of an artefact folder or a file, as the cell wants it
    (sha256:<hex>; several files: the hash of their sha256sum-style list)."""
    from aisdp_log.artefacts.hashing import hash_for_cell

    click.echo(hash_for_cell(path, show_progress=sys.stderr.isatty()))


@cli.command()
@click.option("--format", "output_format", type=click.Choice(["text", "markdown", "json"]),
              default="text", show_default=True)
def codes(output_format: str) -> None:
    """List the finding codes: severity, meaning and where each points."""
    from aisdp_log.lint.catalogue import render_codes

    click.echo(render_codes(output_format))


@cli.command()
@click.argument("directory", metavar="DIR", type=click.Path(file_okay=False, path_type=Path))
def demo(directory: Path) -> None:
    """Build a complete example project in DIR (new or empty): git, DVC-tracked data,
    train.py, aisdp.toml, a filled experiment-log.xlsx and artefacts/, then validate it.

    Needs the torch extra: pip install 'aisdp-log[torch]'.
    """
    from aisdp_log.demo.project import build_demo

    build_demo(directory, echo=click.echo)


@cli.command()
@click.argument("log", type=click.Path(path_type=Path))
@click.option("--id", "ids", multiple=True, metavar="ID",
              help="Experiment ID of a row to reproduce (repeatable).")
@click.option("--flagged", is_flag=True, help="Reproduce every row marked in the Rerun column.")
@click.option("--runs", type=click.IntRange(1, 100),
              help="Runs for a statistical verdict (default: [rerun] runs, else 5).")
@click.option("--mode", type=click.Choice(["auto", "bitwise", "statistical"]), default="auto",
              show_default=True, help="auto: bitwise, then statistical if bitwise fails.")
@click.option("--jobs", type=click.IntRange(1, 64), default=1, show_default=True,
              help="Runs at the same time.")
@click.option("--dry-run", is_flag=True, help="Print what would run; run and write nothing.")
@click.option("--repo", type=click.Path(file_okay=False, path_type=Path),
              help="The git repository the log describes (default: the one holding LOG).")
@click.option("--force", is_flag=True, help="Write even though an Excel/LibreOffice lock file "
              "says the workbook is open (a stale lock).")
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
              help="aisdp.toml to use (default: the one at the repository root).")
@click.option("--env", "env_mode", type=click.Choice(["current", "lock"]), default="current",
              show_default=True, help="current: the command's interpreter as found on PATH, "
              "checked first for the packages the row records; lock: an environment built "
              "with uv from the row's lock file at its commit (cached, reused).")
def rerun(log: Path, ids: tuple[str, ...], flagged: bool, runs: int | None, mode: str,
          jobs: int, dry_run: bool, repo: Path | None, force: bool,
          config_path: Path | None, env_mode: str) -> None:
    """Reproduce rows of LOG in fresh git worktrees and append the evidence.

    Exit code 0: every requested row reproduced (dry run: every row can run); 1: a row did not
    reproduce or could not run; 2: bad arguments or an unreadable log.
    """
    from aisdp_log.rerun.runner import rerun as run_rerun

    def progress(text: str) -> None:
        click.echo(text, err=True)

    report = run_rerun(log, ids=ids, flagged=flagged, runs=runs, mode=mode, jobs=jobs,
                       dry_run=dry_run, repo=repo, force=force, config=config_path,
                       progress=progress if sys.stderr.isatty() else None, env=env_mode)
    for line in report.lines:
        click.echo(line)
    sys.exit(report.exit_code)


@cli.group(cls=_Group)
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


def main(argv: list[str] | None = None) -> None:
    """Entry point: one line and exit code 2 for anything that stops a command."""
    # Cell text may hold characters a non-UTF-8 stdout cannot encode (a pipe on Windows):
    # print them escaped rather than fail the report.
    if getattr(sys.stdout, "reconfigure", None) is not None:
        sys.stdout.reconfigure(errors="backslashreplace")
    try:
        cli.main(args=argv, prog_name="aisdp-log", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.UsageError as exc:
        # One line, like every other error: what is wrong and where help is.
        command = exc.ctx.command_path if exc.ctx else "aisdp-log"
        click.echo(f"{command}: error: {exc.format_message()} (see '{command} --help')",
                   err=True)
        sys.exit(2)
    except click.ClickException as exc:
        click.echo(f"aisdp-log: error: {exc.format_message()}", err=True)
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
    except OSError as exc:  # disk full, quota, I/O error where no module named the file
        where = f"{exc.filename}: " if exc.filename else ""
        click.echo(f"aisdp-log: error: {where}{exc.strerror or exc}", err=True)
        sys.exit(2)
    except Exception as exc:  # noqa: BLE001 - the contract is one line, never a traceback
        if os.environ.get("AISDP_LOG_DEBUG"):
            raise
        reason = " ".join(str(exc).split())[:300] or type(exc).__name__
        click.echo(f"aisdp-log: internal error: {type(exc).__name__}: {reason} "
                   "(set AISDP_LOG_DEBUG=1 for the traceback and please report it)", err=True)
        sys.exit(2)
