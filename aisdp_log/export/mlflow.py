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

import contextlib
import datetime as dt
import hashlib
import importlib
import json
import logging
import os
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from aisdp_log import spec
from aisdp_log.artefacts.cache import open_cache
from aisdp_log.artefacts.digests import manifest_hash, manifest_text, scan_folder
from aisdp_log.artefacts.folders import artefact_folder
from aisdp_log.domain.values import as_text
from aisdp_log.errors import AisdpLogError
from aisdp_log.findings import Severity
from aisdp_log.lint.runner import validate
from aisdp_log.repo.data_versions import resolve_data_versions
from aisdp_log.repo.git import GitRepo
from aisdp_log.repo.roots import config_for, resolve_repo
from aisdp_log.review.gather import read_history
from aisdp_log.workbook.reader import load_log

INSTALL_HINT = "MLflow is not installed: pip install 'aisdp-log[mlflow]'"
ID_TAG = "aisdp.experiment_id"
COMMIT_TAG = "mlflow.source.git.commit"
NOTE_TAG = "mlflow.note.content"
#: Digests of what MLflow cannot edit in place: a change means a new run.
ARTEFACTS_TAG = "aisdp.artefacts_sha256"
EVIDENCE_TAG = "aisdp.evidence_sha256"
REPLACED_BY_TAG = "aisdp.replaced_by"
#: Tags this tool owns on a run; others (set by a person in MLflow) are never deleted.
OWNED_TAG_PREFIXES = ("aisdp.",)
OWNED_TAGS = (COMMIT_TAG, NOTE_TAG)
EVIDENCE_FILE = "aisdp/reproducibility.json"
#: `sha256sum`-style list of the exported files, so a later export can tell files added (upload
#: them) from files changed or removed (MLflow cannot delete an artefact: a new run).
MANIFEST_FILE = "aisdp/artefacts.sha256"
DATASET_SOURCE_TYPE = "dvc"
DATASET_CONTEXT = "training"
DB_NAME = "mlruns.db"
ARTEFACT_STORE = "mlartefacts"

# MLflow's limits (mlflow.utils.validation): longer values are cut, the full text stays in the log.
MAX_TAG_VALUE = 8000
MAX_PARAM_VALUE = 6000
BATCH_PARAMS_TAGS = 100
BATCH_METRICS = 1000

ACTIONS = ("create", "update", "replace", "unchanged", "skip")


class MlflowMissing(AisdpLogError):
    """The `mlflow` extra is not installed."""


class ExportError(AisdpLogError):
    """The tracking store cannot be reached or refused a write."""


# --------------------------------------------------------------------------- what a row becomes

@dataclass
class DatasetRef:
    """The data a row was trained on, as an MLflow dataset input: the DVC out's path and md5."""

    name: str
    digest: str
    source: dict

    @property
    def source_json(self) -> str:
        return json.dumps(self.source, sort_keys=True)


@dataclass
class HistoryPoint:
    key: str
    value: float
    step: int
    timestamp: int


@dataclass
class RunSpec:
    """Everything one row becomes in MLflow."""

    experiment_id: str
    row_number: int
    start_ms: int
    end_ms: int
    params: dict[str, str]
    metrics: dict[str, float]
    final_step: int
    history: list[HistoryPoint]
    tags: dict[str, str]
    datasets: list[DatasetRef]
    files: list[tuple[str, Path]]   # (artefact path in the run, local file)
    manifest: dict[str, str]        # artefact path -> sha256 hex
    evidence: str | None            # JSON text of Reruns/Reproducibility rows, or None


@dataclass
class RowResult:
    """What the export did (or, in a dry run, would do) with one row."""

    experiment_id: str | None
    row: int
    action: str
    run_id: str | None = None
    changes: list[str] = field(default_factory=list)
    reason: str = ""

    def line(self, dry_run: bool) -> str:
        label = self.experiment_id or f"row {self.row}"
        verb = ("would " + self.action) if dry_run and self.action in ("create", "update",
                                                                       "replace") else self.action
        text = f"{label}: {verb}"
        if self.run_id and self.action != "skip":
            text += f" (run {self.run_id})"
        if self.changes:
            text += ": " + "; ".join(self.changes)
        if self.reason:
            text += ": " + self.reason
        return text


@dataclass
class ExportReport:
    """The outcome of one export; `exit_code` is 1 when a row was skipped for its errors."""

    log: str
    tracking_uri: str
    experiment_name: str
    dry_run: bool
    rows: list[RowResult]

    def count(self, action: str) -> int:
        return sum(1 for r in self.rows if r.action == action)

    @property
    def exit_code(self) -> int:
        return 1 if self.count("skip") else 0

    @property
    def lines(self) -> list[str]:
        lines = [r.line(self.dry_run) for r in self.rows]
        done = {"create": "created", "update": "updated", "replace": "replaced",
                "unchanged": "unchanged", "skip": "skipped"}
        if self.dry_run:
            done.update(create="to create", update="to update", replace="to replace")
        counts = ", ".join(f"{self.count(a)} {done[a]}" for a in ACTIONS if self.count(a))
        where = f"experiment {self.experiment_name!r} at {self.tracking_uri}"
        if self.dry_run:
            lines.append(f"dry run, nothing written: {counts or 'no rows'} ({where})")
        else:
            lines.append(f"exported {self.log} to {where}: {counts or 'no rows'}")
        if self.count("skip"):
            lines.append("skipped rows have errors: fix them (`aisdp-log validate`) or pass "
                         "--force to export them as they are")
        return lines


# --------------------------------------------------------------------------- the entry point

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
        with _quiet_mlflow():
            # fail early, before any work, with the install hint
            importlib.import_module("mlflow")
    except ImportError:
        raise MlflowMissing(INSTALL_HINT) from None

    log_path = Path(log_path)
    root = resolve_repo(log_path, repo, offline=False)
    config = config_for(log_path, root)
    report = validate(log_path, repo=root, config=config)
    blocking = _blocking_findings(report)
    tracking_uri = tracking_uri or default_tracking_uri(log_path)
    experiment = experiment or f"{root.name}/{log_path.stem}"

    log = load_log(log_path, config)
    try:
        plans = _plan(log, config, root, blocking, force)
    finally:
        log.workbook.close()

    with _quiet_mlflow():
        store = _Store.open(tracking_uri, experiment, create=not dry_run)
        results = []
        for result, run_spec in plans:
            if run_spec is not None:
                result = store.sync(result, run_spec, dry_run=dry_run)
            results.append(result)
    return ExportReport(str(log_path), tracking_uri, experiment, dry_run, results)


def _blocking_findings(report) -> dict[int | None, list]:
    """Error findings by Experiments row number; None holds those outside any data row (a
    missing column, the Metrics sheet), which block every row."""

    # a finding names the sheet as the workbook spells it (`find_sheet` matches any case)
    experiments = spec.normalise_header(spec.SHEET_EXPERIMENTS)
    blocking: dict[int | None, list] = {}
    for finding in report.findings:
        if finding.severity != Severity.ERROR:
            continue
        key = finding.row if spec.normalise_header(finding.sheet) == experiments and \
            finding.row > 1 else None
        blocking.setdefault(key, []).append(finding)
    return blocking


# --------------------------------------------------------------------------- planning

def _plan(log, config, root: Path, blocking: dict, force: bool
          ) -> list[tuple[RowResult, RunSpec | None]]:
    """Per row: its result so far (a skip with its reason) and, for a row to export, what it
    becomes in MLflow."""

    plans: list[tuple[RowResult, RunSpec | None]] = []
    seen: set[str] = set()
    pending = []
    for row in log.rows:
        experiment_id = log.experiment_id(row)
        result = RowResult(experiment_id, row.number, "skip")
        errors = blocking.get(row.number, []) + blocking.get(None, [])
        if experiment_id is None:
            result.reason = "no Experiment ID, so no run can carry it"
        elif experiment_id in seen:
            result.reason = "Experiment ID used twice; only its first row is exported"
        elif errors and not force:
            result.reason = "errors " + ", ".join(f"{f.code} {f.cell}" for f in errors[:6]) + \
                ("" if len(errors) <= 6 else f" and {len(errors) - 6} more")
        else:
            try:
                folder = artefact_folder(config.artefacts_dir, experiment_id)
            except AisdpLogError as exc:
                folder = None
                result.reason = str(exc)
            if folder is not None:
                pending.append((result, row, folder))
        if experiment_id is not None:
            seen.add(experiment_id)
        plans.append((result, None))

    datasets = _datasets(log, config, root, [row for _, row, _ in pending])
    commits = _full_commits(root, [log.typed(row, "code_commit") for _, row, _ in pending])
    evidence = _evidence(log)
    cache = open_cache(root)
    specs: dict[int, RunSpec | None] = {}
    for result, row, folder in pending:
        try:
            specs[row.number] = _run_spec(log, row, folder, config, datasets, commits,
                                          evidence, cache)
        except _RowProblem as exc:
            result.reason = str(exc)
            specs[row.number] = None
    cache.save()
    return [(result, specs.get(result.row)) for result, _ in plans]


class _RowProblem(Exception):
    """A row that cannot become a run (a name MLflow refuses); it is skipped with the reason."""


def _run_spec(log, row, folder: Path, config, datasets: dict, commits: dict, evidence: dict,
              cache) -> RunSpec:

    experiment_id = log.experiment_id(row)
    date = log.typed(row, "date")
    start = dt.datetime.combine(date, dt.time(0), dt.timezone.utc) if date else None
    start_ms = int(start.timestamp() * 1000) if start else 0
    minutes = log.typed(row, "training_duration")
    end_ms = start_ms + round((minutes or 0.0) * 60_000)

    params: dict[str, str] = {}
    for name in log.params:
        value = log.typed(row, spec.PARAMS_PREFIX + name)
        if value is not None:
            params[name] = _param_text(value)
    for name, text in (log.typed(row, "other_params") or {}).items():
        params.setdefault(name, text)  # a declared column wins over a repeat in Other params
    metrics: dict[str, float] = {}
    for name in log.metrics:
        value = log.typed(row, spec.METRICS_PREFIX + name)
        if value is not None:
            metrics[name] = float(value)
    for kind, names in (("param", params), ("metric", metrics)):
        for name in names:
            _check_key(kind, name)


    files, escapes = _artefact_files(folder, config.artefacts_dir)
    manifest = _file_digests(files, cache)
    history, final_step = _history(folder, start_ms, end_ms, metrics)
    commit = log.typed(row, "code_commit")
    version = log.typed(row, "data_version")
    row_evidence = evidence.get(experiment_id)
    evidence_text = None
    if row_evidence:
        evidence_text = json.dumps(row_evidence, indent=2, sort_keys=True, default=str) + "\n"

    tags = {
        ID_TAG: experiment_id,
        "aisdp.log": log.path.name,
        "aisdp.hypothesis": log.typed(row, "hypothesis"),
        "aisdp.outcome": log.typed(row, "outcome"),
        "aisdp.notes": log.typed(row, "notes"),
        "aisdp.seed": log.typed(row, "random_seed"),
        "aisdp.environment": log.typed(row, "environment"),
        "aisdp.artefact_hash": log.typed(row, "artefact_hash"),
        "aisdp.data_version": version,
        "aisdp.code_commit": commit,
        "aisdp.training_duration_min": minutes,
        "aisdp.reproducibility": log.typed(row, "reproducibility"),
        COMMIT_TAG: commits.get(commit) or commit,
        NOTE_TAG: _note(log.typed(row, "hypothesis"), log.typed(row, "notes")),
        ARTEFACTS_TAG: manifest_hash([(h, rel) for rel, h in manifest.items()]) if files
        else None,
        EVIDENCE_TAG: hashlib.sha256(evidence_text.encode()).hexdigest() if evidence_text
        else None,
    }
    if row_evidence:
        tags["aisdp.reruns"] = len(row_evidence.get("reruns", []))
        verdicts = sorted({f"{r.get('Mode')} {r.get('Metric')}: {r.get('Verdict')}"
                           for r in row_evidence.get("reproducibility", [])})
        tags["aisdp.reproducibility_verdicts"] = "; ".join(verdicts) or None
    if escapes:
        tags["aisdp.artefacts_not_exported"] = ", ".join(escapes)
    tags = {key: _cut(as_text(value) if not isinstance(value, str) else value, MAX_TAG_VALUE)
            for key, value in tags.items() if value is not None and value != ""}
    return RunSpec(experiment_id, row.number, start_ms, end_ms, params, metrics, final_step,
                   history, tags, datasets.get(row.number, []), files, manifest, evidence_text)


def _param_text(value: object) -> str:

    if isinstance(value, float):
        return repr(value)
    return _cut(as_text(value), MAX_PARAM_VALUE)


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _note(hypothesis: str | None, notes: str | None) -> str | None:
    """The run description MLflow's UI shows: the hypothesis, then the rationale."""
    parts = [f"**Hypothesis:** {hypothesis}" if hypothesis else None,
             f"**Notes:** {notes}" if notes else None]
    text = "\n\n".join(p for p in parts if p)
    return text or None


def _check_key(kind: str, name: str) -> None:
    """Refuse names MLflow would reject, before anything is written."""
    import posixpath
    import re

    try:
        from mlflow.utils.validation import validate_param_and_metric_name as valid
    except ImportError:  # MLflow before 2.15 checks this pattern itself
        def valid(text: str) -> bool:
            return re.fullmatch(r"[/\w.\- ]*", text) is not None
    # MLflow also refuses names that resolve to another path (`a//b`, `./a`, `a/../b`)
    if not name or len(name) > 250 or not valid(name) or posixpath.normpath(name) != name \
            or name == "." or name.startswith(("/", "..")):
        raise _RowProblem(f"{kind} name {name!r} is not a valid MLflow key (letters, digits, "
                          "_ - . / and spaces)")


def _artefact_files(folder: Path, artefacts_root: Path) -> tuple[list[tuple[str, Path]], list[str]]:
    """Every file of the artefact folder, records and `reruns/` included, as (path in the run,
    local path); links leading outside the artefacts root are left out and named."""

    if not folder.is_dir():
        return [], []
    root = os.path.realpath(artefacts_root)
    scan = scan_folder(folder, root, root_resolved=True)
    files = [(f.rel, Path(f.path)) for f in scan.files]
    files += [(name, Path(path)) for name, path in scan.records.items()]
    escapes = list(scan.escapes)
    reruns = folder / "reruns"
    if reruns.is_dir() and not reruns.is_symlink():
        nested = scan_folder(reruns, root, root_resolved=True)
        files += [("reruns/" + f.rel, Path(f.path)) for f in nested.files]
        files += [("reruns/" + name, Path(path)) for name, path in nested.records.items()]
        escapes += ["reruns/" + rel for rel in nested.escapes]
    return sorted(files), escapes


def _file_digests(files: list[tuple[str, Path]], cache) -> dict[str, str]:
    """Artefact path -> sha256 hex of every exported file (through the repository's
    stat-keyed digest cache, so unchanged models are not read again)."""
    digests = {}
    for rel, path in files:
        try:
            digests[rel] = cache.digest(str(path), os.stat(path), nofollow=False)
        except OSError as exc:
            raise _RowProblem(f"{path}: cannot be read ({exc.strerror or exc})") from None
    return digests


def _manifest_text(manifest: dict[str, str]) -> str:
    """The uploaded `sha256sum`-style listing of {relpath: hex}, as hashing writes it."""

    return manifest_text([(hex_digest, rel) for rel, hex_digest in manifest.items()])


def _parse_manifest(text: str) -> dict[str, str]:
    result = {}
    for line in text.splitlines():
        hex_digest, sep, rel = line.partition("  ")
        if sep:
            result[rel] = hex_digest
    return result


def _history(folder: Path, start_ms: int, end_ms: int, metrics: dict[str, float]
             ) -> tuple[list[HistoryPoint], int]:
    """`history.csv` as per-step metrics (step = epoch), spread over the run's time; the
    row's own value of a metric replaces the history's value at the final epoch, since the
    row is the record. Returns the points and the final step (0 without a history)."""

    # read as the review reads it, but whole: every epoch belongs in the run's history
    header, rows = read_history(folder / "history.csv", max_bytes=None)
    if not rows or not header or header[0].strip().casefold() != "epoch":
        return [], 0
    header = [h.strip() for h in header]
    epochs = [(int(line[0]), line) for line in rows if line[0] is not None]
    if not epochs:
        return [], 0
    final_step = max(epoch for epoch, _ in epochs)
    span = max(end_ms - start_ms, 0)
    points = []
    for epoch, line in epochs:
        timestamp = start_ms + (span * epoch // final_step if final_step > 0 else span)
        for key, value in zip(header[1:], line[1:]):
            if key and value is not None and not (key in metrics and epoch == final_step):
                points.append(HistoryPoint(key, value, epoch, timestamp))
    for key in {p.key for p in points}:
        try:
            _check_key("history metric", key)
        except _RowProblem:
            points = [p for p in points if p.key != key]
    return points, final_step


def _full_commits(root: Path, commits: list) -> dict[str, str]:
    """Short SHAs as typed -> full SHAs, for `mlflow.source.git.commit`."""

    names = [c for c in dict.fromkeys(commits) if c]
    if not names:
        return {}
    try:
        with GitRepo.open(root) as repo:
            found = repo.lookup_commits(names)
    except AisdpLogError:
        return {}
    return {name: lookup.sha for name, lookup in found.items() if lookup.status == "found"}


def _datasets(log, config, root: Path, rows: list) -> dict[int, list[DatasetRef]]:
    """Row number -> the DVC outs its data version names at its commit (as the validator and
    the rerun helper resolve them); a version that resolves to nothing (exported with
    --force) becomes one dataset whose digest is the version as typed."""

    result: dict[int, list[DatasetRef]] = {}
    wanted = [(row, log.typed(row, "code_commit"), log.typed(row, "data_version"))
              for row in rows]
    try:
        with GitRepo.open(root) as repo:
            resolved = resolve_data_versions(repo, config, [(c, v) for _, c, v in wanted])
    except AisdpLogError:
        resolved = {}
    for row, commit, version in wanted:
        if not version:
            continue
        found = resolved.get((commit, version))
        outs = []
        if found is not None and found.pinned is not None:  # the commit was found
            outs = found.matched or found.ref_pins or []
        if outs:
            result[row.number] = [DatasetRef(
                name=out.path, digest=out.md5,
                source={"type": "dvc", "path": out.path, "dvc_file": out.source,
                        "md5": out.md5})
                for out in outs]
        else:
            result[row.number] = [DatasetRef(
                name="data", digest=version[:36],
                source={"type": "dvc", "data_version": version, "resolved": False})]
    # MLflow keeps one dataset per (experiment, name, digest) with the source first logged,
    # so a source holds nothing row-specific (the row's version as typed is a tag)
    return result


def _evidence(log) -> dict[str, dict]:
    """Experiment ID -> its rows of the `Reruns` and `Reproducibility` sheets (header -> value),
    for the sheets that exist."""

    evidence: dict[str, dict] = {}
    for key, sheet_name in (("reruns", spec.SHEET_RERUNS),
                            ("reproducibility", spec.SHEET_REPRODUCIBILITY)):
        name = log.workbook.find_sheet(sheet_name)
        if name is None:
            continue
        table = log.workbook.table(name)
        id_column = table.column("Experiment ID")
        if id_column is None:
            continue
        for row in table.rows:
            experiment_id = row.get(id_column)
            if experiment_id is None:
                continue
            record = {column.header: _json_value(row.get(column)) for column in table.columns
                      if row.get(column) is not None}
            record["sheet_row"] = row.number
            evidence.setdefault(as_text(experiment_id), {}).setdefault(key, []).append(record)
    return evidence


def _json_value(value: object) -> object:
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    return value


# --------------------------------------------------------------------------- the store

#: MLflow settings used unless the user set them: no progress bars in our output, and 3
#: retries instead of 7 (with MLflow's backoff, 7 retries on a wrong URI take 4 minutes).
MLFLOW_ENV_DEFAULTS = {"MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
                       "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "3"}


@contextlib.contextmanager
def _quiet_mlflow():
    """MLflow logs database migrations at INFO, warns about its own deprecations and draws
    upload progress bars: none of that is the user's business here."""
    names = ("mlflow", "alembic", "sqlalchemy", "urllib3")
    levels = {name: logging.getLogger(name).level for name in names}
    added = [key for key in MLFLOW_ENV_DEFAULTS if key not in os.environ]
    try:
        for key in added:
            os.environ[key] = MLFLOW_ENV_DEFAULTS[key]
        for name in names:
            logging.getLogger(name).setLevel(logging.ERROR)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)
        for key in added:
            os.environ.pop(key, None)


def _sqlite_path(tracking_uri: str) -> Path | None:
    prefix = "sqlite:///"
    if not tracking_uri.startswith(prefix):
        return None
    path = tracking_uri[len(prefix):]
    return None if path in ("", ":memory:") else Path(path.split("?")[0])


class _Store:
    """One MLflow experiment reached through an MlflowClient; `client` is None in a dry run
    whose store does not exist yet (every row would then be created)."""

    def __init__(self, client, experiment_id: str | None, artifact_location: str | None,
                 name: str):
        self.client = client
        self.experiment_id = experiment_id
        self.artifact_location = artifact_location
        self.name = name
        self._runs: dict[str, list] | None = None

    @classmethod
    def open(cls, tracking_uri: str, name: str, *, create: bool) -> "_Store":
        from mlflow.exceptions import MlflowException
        from mlflow.tracking import MlflowClient

        db = _sqlite_path(tracking_uri)
        location = None
        if db is not None:
            if not create and not db.exists():
                return cls(None, None, None, name)  # opening it would create the database
            db.parent.mkdir(parents=True, exist_ok=True)
            location = (db.parent / ARTEFACT_STORE).resolve().as_uri()
        try:
            client = MlflowClient(tracking_uri=tracking_uri)
            experiment = client.get_experiment_by_name(name)
            if experiment is None and create:
                experiment_id = client.create_experiment(
                    name, artifact_location=location,
                    tags={"aisdp.exported_by": "aisdp-log"})
            elif experiment is None:
                return cls(client, None, location, name)
            else:
                if experiment.lifecycle_stage != "active":
                    raise ExportError(f"MLflow experiment {name!r} is deleted; restore it or "
                                      "pass --experiment with another name")
                experiment_id = experiment.experiment_id
        except MlflowException as exc:
            if "Max retries exceeded" in str(exc) or "Connection" in type(exc.__cause__).__name__:
                raise ExportError(f"{tracking_uri}: cannot reach the MLflow tracking server "
                                  "(is it running? check --tracking-uri)") from None
            raise ExportError(f"{tracking_uri}: {_one_line(exc)}") from None
        except OSError as exc:
            raise ExportError(f"{tracking_uri}: cannot be reached ({_one_line(exc)})") from None
        return cls(client, experiment_id, location, name)

    def runs_by_id(self) -> dict[str, list]:
        """Active runs of the experiment by their `aisdp.experiment_id` tag, newest first."""
        if self._runs is None:
            self._runs = {}
            if self.client is not None and self.experiment_id is not None:
                token = None
                while True:
                    page = self.client.search_runs(
                        [self.experiment_id], filter_string=f"tags.`{ID_TAG}` != ''",
                        max_results=1000, order_by=["attributes.start_time DESC"],
                        page_token=token)
                    for run in page:
                        self._runs.setdefault(run.data.tags.get(ID_TAG), []).append(run)
                    token = page.token
                    if not token:
                        break
        return self._runs

    def sync(self, result: RowResult, run_spec: RunSpec, *, dry_run: bool) -> RowResult:
        """Bring the run of one row up to date (or, in a dry run, say what that would take)."""
        from mlflow.exceptions import MlflowException

        existing = self.runs_by_id().get(run_spec.experiment_id, [])
        try:
            if not existing:
                result.action = "create"
                if not dry_run:
                    result.run_id = self._write_new(run_spec)
                return result
            run = existing[0]
            result.run_id = run.info.run_id
            immutable, mutable, added = _differences(self.client, run, run_spec)
            if len(existing) > 1:
                result.changes.append(f"{len(existing)} runs carry this ID; the newest is used")
            if immutable:
                result.action = "replace"
                result.changes += immutable + mutable
                if not dry_run:
                    new_id = self._write_new(run_spec)
                    self.client.set_tag(run.info.run_id, REPLACED_BY_TAG, new_id)
                    self.client.delete_run(run.info.run_id)
                    result.changes.append(f"old run {run.info.run_id} deleted (restorable)")
                    result.run_id = new_id
            elif mutable:
                result.action = "update"
                result.changes += mutable
                if not dry_run:
                    self._update(run, run_spec, added)
            else:
                result.action = "unchanged"
        except MlflowException as exc:
            raise ExportError(f"MLflow refused {run_spec.experiment_id}: {_one_line(exc)} "
                              "(rows before it are exported; run the export again)") from None
        except OSError as exc:
            raise ExportError(f"{run_spec.experiment_id}: an artefact could not be stored "
                              f"({_one_line(exc)}); run the export again") from None
        return result

    def _write_new(self, run_spec: RunSpec) -> str:
        from mlflow.entities import Metric, Param, RunTag

        client = self.client
        run = client.create_run(self.experiment_id, start_time=run_spec.start_ms,
                                tags={ID_TAG: run_spec.experiment_id},
                                run_name=run_spec.experiment_id)
        run_id = run.info.run_id
        params = [Param(k, v) for k, v in run_spec.params.items()]
        tags = [RunTag(k, v) for k, v in run_spec.tags.items()]
        metrics = [Metric(p.key, p.value, p.timestamp, p.step) for p in run_spec.history]
        metrics += [Metric(k, v, run_spec.end_ms, run_spec.final_step)
                    for k, v in run_spec.metrics.items()]
        for chunk in _chunks(params, BATCH_PARAMS_TAGS):
            client.log_batch(run_id, params=chunk)
        for chunk in _chunks(tags, BATCH_PARAMS_TAGS):
            client.log_batch(run_id, tags=chunk)
        for chunk in _chunks(metrics, BATCH_METRICS):
            client.log_batch(run_id, metrics=chunk)
        if run_spec.datasets:
            client.log_inputs(run_id, datasets=[_dataset_input(d) for d in run_spec.datasets])
        for rel, path in run_spec.files:
            # the local path ends in the name listed (a symlink's own name), so MLflow
            # stores it at `rel`
            client.log_artifact(run_id, str(path), os.path.dirname(rel) or None)
        if run_spec.manifest:
            client.log_text(run_id, _manifest_text(run_spec.manifest), MANIFEST_FILE)
        if run_spec.evidence is not None:
            client.log_text(run_id, run_spec.evidence, EVIDENCE_FILE)
        # FINISHED last: a run left RUNNING by an interrupted export is replaced next time
        client.set_terminated(run_id, "FINISHED", end_time=run_spec.end_ms)
        return run_id

    def _update(self, run, run_spec: RunSpec, added: list[str]) -> None:
        from mlflow.entities import Metric, RunTag

        client = self.client
        run_id = run.info.run_id
        current = run.data.tags
        tags = [RunTag(k, v) for k, v in run_spec.tags.items() if current.get(k) != v]
        # a later timestamp at the same step makes the new value the latest; the old one
        # stays in the metric's history, so the edit is visible
        now = max(int(time.time() * 1000), run_spec.end_ms + 1)
        metrics = [Metric(k, v, now, run_spec.final_step) for k, v in run_spec.metrics.items()
                   if run.data.metrics.get(k) != v]
        # files before the digest tags that describe them: an upload cut short leaves the old
        # digests, so the next export tries again
        if added:
            local = dict(run_spec.files)
            for rel in added:
                client.log_artifact(run_id, str(local[rel]), os.path.dirname(rel) or None)
            client.log_text(run_id, _manifest_text(run_spec.manifest), MANIFEST_FILE)
        if run_spec.evidence is not None and current.get(EVIDENCE_TAG) != \
                run_spec.tags.get(EVIDENCE_TAG):
            client.log_text(run_id, run_spec.evidence, EVIDENCE_FILE)
        for chunk in _chunks(metrics, BATCH_METRICS):
            client.log_batch(run_id, metrics=chunk)
        for chunk in _chunks(tags, BATCH_PARAMS_TAGS):
            client.log_batch(run_id, tags=chunk)
        for key in current:
            if _owned(key) and key not in run_spec.tags:
                client.delete_tag(run_id, key)
        if run.info.end_time != run_spec.end_ms or run.info.status != "FINISHED":
            client.set_terminated(run_id, "FINISHED", end_time=run_spec.end_ms)


def _owned(key: str) -> bool:
    return key.startswith(OWNED_TAG_PREFIXES) or key in OWNED_TAGS


def _differences(client, run, run_spec: RunSpec) -> tuple[list[str], list[str], list[str]]:
    """(changes MLflow cannot make in place, changes it can, artefact files to add)."""
    immutable: list[str] = []
    mutable: list[str] = []
    if run.info.status not in ("FINISHED",):
        immutable.append(f"run left {run.info.status} by an interrupted export")
    if run.info.start_time != run_spec.start_ms:
        immutable.append("start date")
    params = run.data.params
    changed = sorted(k for k in set(params) | set(run_spec.params)
                     if params.get(k) != run_spec.params.get(k))
    if changed:
        immutable.append("params " + ", ".join(changed))
    logged = run.data.metrics
    removed = sorted(k for k in logged if k not in run_spec.metrics and
                     k not in {p.key for p in run_spec.history})
    if removed:
        immutable.append("metrics removed " + ", ".join(removed))
    have = {(d.dataset.name, d.dataset.digest)
            for d in (run.inputs.dataset_inputs if run.inputs else [])}
    want = {(d.name, d.digest) for d in run_spec.datasets}
    if have != want:
        immutable.append("data version")
    tags = run.data.tags
    added: list[str] = []
    if tags.get(ARTEFACTS_TAG) != run_spec.tags.get(ARTEFACTS_TAG):
        uploaded = _uploaded_manifest(client, run)
        kept = uploaded is not None and all(run_spec.manifest.get(rel) == hex_digest
                                            for rel, hex_digest in uploaded.items())
        if kept:
            added = sorted(set(run_spec.manifest) - set(uploaded))
            mutable.append("artefact files added " + ", ".join(added[:5]) +
                           (f" and {len(added) - 5} more" if len(added) > 5 else ""))
        else:
            immutable.append("artefact files changed or removed")
    if run_spec.evidence is None and EVIDENCE_TAG in tags:
        immutable.append("rerun evidence removed")
    new_history = {p.key for p in run_spec.history} - set(logged)
    if new_history:
        immutable.append("history " + ", ".join(sorted(new_history)))

    metric_changes = sorted(k for k, v in run_spec.metrics.items() if logged.get(k) != v)
    if metric_changes:
        mutable.append("metrics " + ", ".join(metric_changes))
    tag_changes = sorted(k for k in set(run_spec.tags) | {k for k in tags if _owned(k)}
                         if k != ARTEFACTS_TAG and tags.get(k) != run_spec.tags.get(k))
    if tag_changes:
        mutable.append("tags " + ", ".join(tag_changes))
    if run.info.end_time != run_spec.end_ms:
        mutable.append("end time")
    return immutable, mutable, added


def _uploaded_manifest(client, run) -> dict[str, str] | None:
    """The manifest an earlier export uploaded, or None (none, or unreadable)."""
    import tempfile

    from mlflow.exceptions import MlflowException

    with tempfile.TemporaryDirectory(prefix="aisdp-export-") as temp:
        try:
            path = client.download_artifacts(run.info.run_id, MANIFEST_FILE, temp)
            return _parse_manifest(Path(path).read_text(encoding="utf-8"))
        except (MlflowException, OSError, UnicodeDecodeError):
            return None


def _dataset_input(ref: DatasetRef):
    from mlflow.entities import Dataset, DatasetInput, InputTag

    dataset = Dataset(name=ref.name, digest=ref.digest, source_type=DATASET_SOURCE_TYPE,
                      source=ref.source_json)
    return DatasetInput(dataset, tags=[InputTag("mlflow.data.context", DATASET_CONTEXT)])


def _chunks(items: list, size: int):
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:300]
