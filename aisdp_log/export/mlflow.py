"""`aisdp-log export mlflow`: carry every validated row of the log into MLflow, one run per row.

The way out for a team that outgrows the spreadsheet: the evidence moves with it. Each row
becomes an MLflow run found again by its `aisdp.experiment_id` tag, so exporting twice updates
runs instead of duplicating them, and an export that finds nothing changed writes nothing.

What MLflow can change in place is updated in place: tags, the latest value of a metric (a new
value is appended to its history, so the edit stays visible), the end time, the evidence file.
What MLflow keeps immutable (params, the start time, dataset inputs, logged metric histories,
uploaded files) cannot be edited; a row whose immutable parts changed gets a new run and the
old one is tagged `aisdp.replaced_by` and moved to MLflow's deleted stage (restorable).

Only `MlflowClient` is used, never the fluent API's global active run, so nothing leaks from
one call (or one test) into the next. `import mlflow` costs seconds; it happens inside
`export_mlflow` only, so the rest of the tool never pays for it.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from aisdp_log.errors import AisdpLogError
from aisdp_log.export.plan import blocking_findings, plan_runs
from aisdp_log.export.runs import DB_NAME, ExportReport
from aisdp_log.export.store import Store, quiet_mlflow
from aisdp_log.lint.runner import validate
from aisdp_log.repo.roots import config_for, resolve_repo
from aisdp_log.workbook.reader import load_log

INSTALL_HINT = "MLflow is not installed: pip install 'aisdp-log[mlflow]'"


class MlflowMissing(AisdpLogError):
    """The `mlflow` extra is not installed."""


def default_tracking_uri(log_path: Path) -> str:
    """A SQLite store next to the log, so the export works with no server."""
    return f"sqlite:///{(log_path.resolve().parent / DB_NAME).as_posix()}"


def export_mlflow(log_path: Path | str, *, tracking_uri: str | None = None,
                  experiment: str | None = None, dry_run: bool = False, force: bool = False,
                  repo: Path | str | None = None) -> ExportReport:
    """Export every row of the log at `log_path` to MLflow and return what was done per row.

    `tracking_uri` defaults to `sqlite:///<log folder>/mlruns.db` (artefacts in
    `<log folder>/mlartefacts`); `experiment` to `<repository folder>/<log name>`. Rows with
    error findings are skipped unless `force`. `dry_run` reads the store and writes nothing.
    Raises MlflowMissing without the `mlflow` extra, AisdpLogError where nothing can be done."""
    try:
        with quiet_mlflow():
            # fail early, before any work, with the install hint
            importlib.import_module("mlflow")
    except ImportError:
        raise MlflowMissing(INSTALL_HINT) from None

    log_path = Path(log_path)
    root = resolve_repo(log_path, repo, offline=False)
    config = config_for(log_path, root)
    report = validate(log_path, repo=root, config=config)
    blocking = blocking_findings(report)
    tracking_uri = tracking_uri or default_tracking_uri(log_path)
    experiment = experiment or f"{root.name}/{log_path.stem}"

    log = load_log(log_path, config)
    try:
        plans = plan_runs(log, config, root, blocking, force)
    finally:
        log.workbook.close()

    with quiet_mlflow():
        store = Store.open(tracking_uri, experiment, create=not dry_run)
        results = []
        for result, run_spec in plans:
            if run_spec is not None:
                result = store.sync(result, run_spec, dry_run=dry_run)
            results.append(result)
    return ExportReport(str(log_path), tracking_uri, experiment, dry_run, results)

