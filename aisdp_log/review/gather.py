"""The quarterly model-selection review: gather the evidence for one period into a `Review`.

`gather_review` takes the open log (calamine), validates it, recomputes artefact hashes, reads
`history.csv` files and the `Reproducibility` sheet, ranks parameters against metrics and
compares rows with the last sign-off. `model` holds what it returns, `render` turns the result
into HTML and Markdown, `plots` draws the figures (SVG built by `svg`), `write` writes and signs
the files. A review imports neither scipy nor matplotlib, and `validate` imports none of this.
"""

from __future__ import annotations

import csv
import datetime as dt
import math
import re
import stat
import subprocess
from pathlib import Path

from aisdp_log import __version__, spec
from aisdp_log.artefacts.cache import NullCache, open_cache
from aisdp_log.artefacts.digests import ArtefactError, NoModelFile
from aisdp_log.artefacts.folders import artefact_folder
from aisdp_log.artefacts.hashing import artefact_hash
from aisdp_log.domain.locks import lock_entries
from aisdp_log.domain.metrics import declared_metrics, meets
from aisdp_log.domain.periods import quarter
from aisdp_log.domain.values import as_text, parse_number, parsed_or_none
from aisdp_log.errors import AisdpLogError, RepositoryError, WriteRefused
from aisdp_log.lint.runner import validate
from aisdp_log.repo.git import resolve_commit
from aisdp_log.repo.roots import config_for, find_repo_root
from aisdp_log.review.model import (
    Candidate,
    Changes,
    Curve,
    Delta,
    Interval,
    Metric,
    Provenance,
    ReproSpec,
    Review,
    latest_intervals,
    parse_period,
    period_bounds,
    tolerance_statement,
)
from aisdp_log.review.ranking import rank_parameters
from aisdp_log.signing import signoff

#: A history.csv larger than this is not plotted (a learning curve is a few hundred rows).
MAX_HISTORY_BYTES = 5 << 20
CPU_IN_ENVIRONMENT = re.compile(r"\bcpu\s+(?P<isa>[A-Za-z0-9_.]+)")

KNOWN_LIMITS = (
    "Bitwise reproduction holds only on the recorded environment: the same CPU instruction set "
    "(for example AVX-512 versus AVX2 selects different MKL/oneDNN kernels) and the same "
    "library versions (torch, MKL, oneDNN, NumPy).",
    "Thread count does not change results on CPU for the recorded setup, but GPU kernels, a "
    "different operating system image or an unpinned dependency may.",
    "Statistical reproducibility bounds the metric, not the weights: a new run is expected "
    "inside the interval at the stated confidence, not identical to the recorded run.",
)


def latest_period(log) -> str:
    """The latest quarter that has rows (by the `Date` column)."""
    dates = [d for d in (log.typed(row, "date") for row in log.rows) if d is not None]
    if not dates:
        raise AisdpLogError(f"{log.name}: no row has a readable Date, so there is no quarter "
                            "to review; fill the Date column or pass --period")
    return quarter(max(dates))


def period_rows(log, period: str) -> list:
    return [row for row in log.rows if (d := log.typed(row, "date")) is not None
            and quarter(d) == period]



# --------------------------------------------------------------------------- evidence


def gather_review(log, log_path: Path, period: str | None, root: Path, git_root: Path | None,
            config) -> Review:
    """The Review of an open log for `period` (default: the latest quarter with rows)."""

    period = parse_period(period) if period else latest_period(log)
    rows = period_rows(log, period)
    if not rows:
        raise AisdpLogError(f"{log.name}: no rows dated in {period}; the log has rows "
                            f"in {', '.join(_periods(log)) or 'no quarter'}")
    metrics = _metrics(log)
    candidates = [_candidate(log, row, metrics) for row in rows]
    mode, note, findings, errors, warnings, coverage = _validation(log_path, root, git_root,
                                                                   config, rows)
    intervals = _intervals(log)
    _, period_end = period_bounds(period)
    correlations, n_rows, skipped, together = rank_parameters(log, metrics, period_end)
    artefacts_dir = config.artefacts_dir
    return Review(
        period=period, log_path=log_path, repo=root,
        generated_at=dt.datetime.now(dt.timezone.utc).replace(microsecond=0),
        tool_version=__version__, head_commit=_head(git_root),
        validation_mode=mode, validation_note=note, findings=findings, errors=errors,
        warnings=warnings, metrics=metrics, candidates=candidates,
        deltas=_deltas(log, candidates, metrics, period),
        provenance=_provenance(log, rows, artefacts_dir, root if git_root else None),
        intervals=intervals, correlations=correlations, correlation_rows=n_rows,
        correlation_scope=f"all runs dated up to {period_end.isoformat()}",
        skipped_params=skipped, together=together, coverage=coverage,
        repro=[_repro(log, row, intervals) for row in rows
               if log.typed(row, "outcome") == "selected"],
        changes=changes_since_signoff(log),
        curves=_curves(candidates, metrics, artefacts_dir, config.id_regex),
        artefacts_dir=artefacts_dir,
    )


def resolve_setting(log_path: Path, repo, config):
    """(root, git root or None, Config): `--repo`, else the git repository holding the log,
    else the log's folder; the config read from that root unless one is given."""

    if repo is not None:
        if not Path(repo).is_dir():
            raise AisdpLogError(f"{repo}: --repo is not a folder")
        git_root = find_repo_root(Path(repo))  # a folder inside a repository means its root
        root = git_root or Path(repo).resolve()
    else:
        git_root = find_repo_root(log_path.resolve().parent)
        root = git_root or log_path.resolve().parent
    return root, git_root, config_for(log_path, root, config)


def _periods(log) -> list[str]:
    return sorted({quarter(d) for d in (log.typed(r, "date") for r in log.rows) if d})


def _metrics(log) -> list[Metric]:
    declared = declared_metrics(log)
    result = []
    for name in log.metrics:
        metric = declared.get(name.casefold())
        if metric is None:
            result.append(Metric(name, "max", None, "", False))
        else:
            result.append(Metric(name, metric.goal, metric.threshold, metric.description, True))
    return result


def _candidate(log, row, metrics: list[Metric]) -> Candidate:
    values = {m.name: log.typed(row, spec.METRICS_PREFIX + m.name) for m in metrics}
    met = {}
    for metric in metrics:
        value = values[metric.name]
        met[metric.name] = None if value is None or metric.threshold is None else \
            meets(value, spec.MetricSpec(metric.name, metric.goal, metric.threshold))
    outcome = log.typed(row, "outcome")
    return Candidate(
        experiment_id=log.experiment_id(row) or f"(row {row.number})", row_number=row.number,
        date=log.typed(row, "date"), outcome=outcome, hypothesis=log.typed(row, "hypothesis"),
        notes=log.typed(row, "notes"), metrics=values,
        params={name: log.typed(row, spec.PARAMS_PREFIX + name) for name in log.params},
        met=met, reproducibility=log.typed(row, "reproducibility"))


def _validation(log_path: Path, root: Path, git_root: Path | None, config, rows):
    """Validate the whole log (online inside a git repository), keep the period's findings."""

    note = ""
    if git_root is not None:
        try:
            report = validate(log_path, repo=root, offline=False, config=config)
            mode = "online"
            note = f"git, DVC and artefact checks against {root}"
        except RepositoryError as exc:
            report = validate(log_path, repo=root, offline=True, config=config)
            mode, note = "offline", f"workbook checks only: {exc}"
    else:
        report = validate(log_path, repo=root, offline=True, config=config)
        mode = "offline"
        note = "workbook checks only: the log is not inside a git repository"
    numbers = {row.number for row in rows}
    experiment_sheet = spec.normalise_header(spec.SHEET_EXPERIMENTS)
    findings = [f for f in report.findings
                if (spec.normalise_header(f.sheet) == experiment_sheet and
                    (f.row in numbers or f.row == 1))
                or spec.normalise_header(f.sheet) != experiment_sheet]
    errors = sum(1 for f in findings if f.severity.value == "error")
    return mode, note, findings, errors, len(findings) - errors, report.coverage


def _better(delta: float, goal: str) -> bool | None:
    if delta == 0:
        return None
    return delta > 0 if goal == "max" else delta < 0


def _deltas(log, candidates: list[Candidate], metrics: list[Metric], period: str) -> list[Delta]:
    """Each selected row against each baseline of the period (or, without one, the latest
    earlier baseline)."""
    baselines = [c for c in candidates if c.outcome == "baseline"]
    if not baselines:
        first, _ = period_bounds(period)
        earlier = [(log.typed(r, "date"), r) for r in log.rows
                   if log.typed(r, "outcome") == "baseline" and log.typed(r, "date") and
                   log.typed(r, "date") < first]
        if earlier:
            row = max(earlier, key=lambda pair: (pair[0], pair[1].number))[1]
            baselines = [_candidate(log, row, metrics)]
    result = []
    for chosen in (c for c in candidates if c.outcome == "selected"):
        for baseline in baselines:
            for metric in metrics:
                a, b = chosen.metrics.get(metric.name), baseline.metrics.get(metric.name)
                if a is None or b is None:
                    continue
                delta = a - b
                result.append(Delta(chosen.experiment_id, baseline.experiment_id, metric.name,
                                    a, b, delta, _better(delta, metric.goal)))
    return result


def artefact_folder_or_none(artefacts_dir: Path, experiment_id: str, id_regex) -> Path | None:
    """The experiment's folder, or None where the ID could leave the artefacts root (the
    rule `add` and `export` apply) or does not match the ID pattern."""
    if not experiment_id or not id_regex.match(experiment_id):
        return None
    try:
        return artefact_folder(artefacts_dir, experiment_id)
    except WriteRefused:
        return None


def _provenance(log, rows: list, artefacts_dir: Path, cache_root: Path | None
                ) -> list[Provenance]:
    """Each row's artefact folder re-hashed and compared with its cell; through the digest
    cache of `cache_root` (the git repository), which the validation just filled, so a model
    is read once per review, not twice."""

    cache = open_cache(cache_root) if cache_root is not None else NullCache()
    return [_row_provenance(log, row, artefacts_dir, cache) for row in rows]


def _row_provenance(log, row, artefacts_dir: Path, cache) -> Provenance:

    experiment_id = log.experiment_id(row) or ""
    recorded = log.typed(row, "artefact_hash")
    result = Provenance(
        experiment_id=experiment_id or f"(row {row.number})",
        code_commit=log.typed(row, "code_commit"), data_version=log.typed(row, "data_version"),
        seed=log.typed(row, "random_seed"), environment=log.typed(row, "environment"),
        artefact_hash=recorded, files_hash=None, status="not checked")
    folder = artefact_folder_or_none(artefacts_dir, experiment_id, log.config.id_regex)
    if folder is None:
        result.detail = "the ID is not a safe folder name"
        return result
    if not folder.is_dir():
        result.status, result.detail = "missing", f"no folder {folder}"
        return result
    try:
        result.files_hash = artefact_hash(folder, cache=cache)
    except NoModelFile:
        result.status = "no model file"
        return result
    except ArtefactError as exc:  # a link leading out of the root, an unreadable file
        result.detail = f"cannot hash the files ({exc})"
        return result
    result.status = "match" if recorded == result.files_hash else "differs"
    return result


def _intervals(log) -> list[Interval]:

    sheet = log.workbook.find_sheet(spec.SHEET_REPRODUCIBILITY)
    if sheet is None:
        return []
    table = log.workbook.table(sheet)
    columns = {h: table.column(h) for h in spec.REPRODUCIBILITY_COLUMNS}
    if columns["Experiment ID"] is None or columns["Metric"] is None:
        return []
    result = []
    for row in table.rows:
        def text(header: str) -> str:
            # columns added in 0.3 are absent from older sheets: row.get(None) is None
            value = row.get(columns[header])  # noqa: B023 -- called in this iteration only
            return "" if value is None else as_text(value).strip()

        def number(header: str) -> float | None:
            value = row.get(columns[header])  # noqa: B023 -- called in this iteration only
            return parsed_or_none(parse_number, value)

        runs = number("Runs")
        result.append(Interval(
            experiment_id=text("Experiment ID"), date=text("Date"), mode=text("Mode").casefold(),
            metric=text("Metric"), runs=int(runs) if runs is not None else None,
            mean=number("Mean"), std=number("Std"), low=number("CI low"),
            high=number("CI high"), confidence=number("Confidence"),
            threshold=number("Threshold"), verdict=text("Verdict").casefold(),
            recorded=number("Recorded"), consistency=text("Consistency").casefold(),
            bounds=text("Consistency bounds")))
    return result



def _repro(log, row, intervals: list[Interval]) -> ReproSpec:
    experiment_id = log.experiment_id(row) or f"(row {row.number})"
    level = log.typed(row, "reproducibility")
    environment = log.typed(row, "environment")
    locks = lock_entries(str(environment or ""))
    mine = [i for i in intervals if i.experiment_id == experiment_id]
    statistical = [i for i in mine if i.mode == "statistical"]
    tolerance = []
    if level == "bitwise":
        detail = ("bitwise: a rerun at the recorded commit, data version and seed produced an "
                  "artefact with the identical sha256, on the recorded environment")
        tolerance.append("zero: the artefact hash must be identical")
    elif level == "statistical":
        detail = "statistical: independent reruns with distinct seeds; per metric a t interval"
    elif level == "failed":
        detail = "failed: the last rerun did not reproduce the run"
    else:
        level = "not yet reproduced"
        detail = "no rerun recorded in the Reproducibility column"
    tolerance += [tolerance_statement(i) for i in
                  latest_intervals(statistical, experiment_id).values()]
    limits = list(KNOWN_LIMITS)
    isa = CPU_IN_ENVIRONMENT.search(environment or "")
    if isa:
        limits.insert(0, f"Recorded CPU instruction set: {isa['isa']}; a bitwise rerun needs a "
                         "CPU with the same one (or the same forced MKL/ATen kernel setting).")
    return ReproSpec(experiment_id, level, detail, log.typed(row, "random_seed"),
                     log.typed(row, "code_commit"), log.typed(row, "data_version"),
                     environment, locks[0][0] if locks else None,
                     ("sha256:" + locks[0][1]) if locks else None,
                     mine, tolerance, limits, _failed_reruns(log, experiment_id))


def _failed_reruns(log, experiment_id: str, last: int = 3) -> list[tuple[str, str]]:
    """The failed runs of the experiment's latest rerun in sheet Reruns: (`<Rerun ID>:
    <Status>`, the `Error` column: the end of the run's stderr)."""

    sheet = log.workbook.find_sheet(spec.SHEET_RERUNS)
    if sheet is None:
        return []
    table = log.workbook.table(sheet)
    columns = {h: table.column(h) for h in ("Rerun ID", "Experiment ID", "Status", "Error")}
    if columns["Experiment ID"] is None or columns["Status"] is None:
        return []

    def text(row, header: str) -> str:
        value = row.get(columns[header]) if columns[header] is not None else None
        return "" if value is None else as_text(value).strip()

    mine = [row for row in table.rows if text(row, "Experiment ID") == experiment_id]
    # Only the latest invocation's runs (the Rerun ID's middle part is its timestamp): an old
    # failure that a later rerun put right is no reason to show here.
    latest = text(mine[-1], "Rerun ID").split("/")[-2:-1] if mine else []
    failed = [(f"{text(row, 'Rerun ID')}: {text(row, 'Status')}", text(row, "Error"))
              for row in mine if text(row, "Rerun ID").split("/")[-2:-1] == latest
              and text(row, "Status").casefold().startswith("failed")]
    return failed[-last:]


def changes_since_signoff(log, records: list | None = None,
                          trusted: set[int] | None = None) -> Changes:
    """Changes since the last sign-off; given `trusted` (verified Sign-off rows), since the
    last trusted one, as `verify` counts them."""

    records = signoff.read_signoffs(log.workbook) if records is None else records
    current = signoff.current_fingerprints(log)
    found = signoff.changes(log, records, current, trusted)
    signed = set(signoff.latest_signatures(records, trusted))
    return Changes(
        last_signoff=records[-1] if records else None,
        new_ids=[i for i in current if i not in signed],
        changed=[c for c in found if not c.deleted],
        deleted=[c for c in found if c.deleted],
        outcome_changes=[c for c in found if not c.deleted and c.old_outcome != c.new_outcome],
    )


def _history_column(header: list[str], metric: str) -> int | None:
    wanted = metric.casefold()
    folded = [h.strip().casefold() for h in header]
    for candidate in (wanted, "val_" + wanted, "test_" + wanted, "valid_" + wanted):
        if candidate in folded[1:]:
            return folded.index(candidate, 1)
    return None


def read_history(path: Path, max_bytes: int | None = MAX_HISTORY_BYTES
                 ) -> tuple[list[str], list[list[float | None]]]:
    """history.csv as (header, rows of numbers, None where a cell is no finite number); the
    epoch column first. Missing, unreadable, larger than `max_bytes`, or not a regular file
    (a symlink could lead out of the artefacts root, a FIFO would block) -> ([], [])."""
    try:
        info = path.lstat()
        if not stat.S_ISREG(info.st_mode) or (max_bytes is not None and
                                               info.st_size > max_bytes):
            return [], []
        with open(path, newline="", encoding="utf-8", errors="replace") as fh:
            reader = csv.reader(fh)
            header = next(reader, [])
            rows = [[_float(v) for v in line] for line in reader if line]
    except (OSError, csv.Error):
        return [], []
    return header, rows


def _float(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _curves(candidates: list[Candidate], metrics: list[Metric], artefacts_dir: Path,
            id_regex) -> dict[str, list[Curve]]:
    result: dict[str, list[Curve]] = {m.name: [] for m in metrics}
    for candidate in candidates:
        folder = artefact_folder_or_none(artefacts_dir, candidate.experiment_id, id_regex)
        if folder is None:
            continue
        header, rows = read_history(folder / "history.csv")
        if len(header) < 2:
            continue
        for metric in metrics:
            index = _history_column(header, metric.name)
            if index is None:
                continue
            points = [(r[0], value) for r in rows
                      if len(r) > index and r[0] is not None and (value := r[index]) is not None]
            if points:
                result[metric.name].append(Curve(candidate.experiment_id, header[index].strip(),
                                                 [p[0] for p in points],
                                                 [p[1] for p in points]))
    return result


def _head(git_root: Path | None) -> str | None:
    if git_root is None:
        return None
    try:
        return resolve_commit(git_root, "HEAD", timeout=10)
    except (AisdpLogError, OSError, subprocess.SubprocessError):
        return None
