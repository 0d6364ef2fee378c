"""Planning an export: what each row of a validated log becomes in MLflow (a RunSpec with its
params, metrics, history, tags, data and files), or why the row is skipped."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path

from aisdp_log import spec
from aisdp_log.artefacts.cache import open_cache
from aisdp_log.artefacts.digests import manifest_hash, scan_folder
from aisdp_log.artefacts.folders import artefact_folder
from aisdp_log.domain.values import as_text
from aisdp_log.errors import AisdpLogError
from aisdp_log.export.runs import (
    ARTEFACTS_TAG,
    COMMIT_TAG,
    EVIDENCE_TAG,
    ID_TAG,
    MAX_PARAM_VALUE,
    MAX_TAG_VALUE,
    NOTE_TAG,
    DatasetRef,
    HistoryPoint,
    RowResult,
    RunSpec,
)
from aisdp_log.findings import Severity
from aisdp_log.repo.data_versions import resolve_data_versions
from aisdp_log.repo.git import GitRepo
from aisdp_log.review.gather import read_history


def blocking_findings(report) -> dict[int | None, list]:
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


def plan_runs(log, config, root: Path, blocking: dict, force: bool
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
        # the threshold verdict, and (sheets from 0.3 on) the recorded value's consistency
        verdicts = sorted({f"{r.get('Mode')} {r.get('Metric')}: {r.get('Verdict')}"
                           + (f", {r['Consistency']}" if r.get("Consistency") else "")
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

    valid: Callable[[str], object]  # MLflow's check, or this module's where it lacks one
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
    # "found" sets the sha; the second test says so to the type checker
    return {name: lookup.sha for name, lookup in found.items()
            if lookup.status == "found" and lookup.sha is not None}


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

