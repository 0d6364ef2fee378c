"""The quarterly model-selection review: gather the evidence for one period into a `Review`.

`build_review` reads the log (calamine), validates it, recomputes artefact hashes, reads
`history.csv` files and the `Reproducibility` sheet, ranks parameters against metrics and
compares rows with the last sign-off. `review_render` turns the result into HTML and Markdown;
`plots` draws the figures. scipy and matplotlib are imported only in here and there, never by
`validate`.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import json
import math
import os
import re
import shutil
import stat
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from aisdp_log import __version__, spec
from aisdp_log.artefacts.cache import NullCache, open_cache
from aisdp_log.artefacts.digests import ArtefactError, NoModelFile
from aisdp_log.artefacts.folders import artefact_folder
from aisdp_log.artefacts.hashing import artefact_hash
from aisdp_log.domain.metrics import declared_metrics, meets
from aisdp_log.domain.periods import quarter
from aisdp_log.domain.values import as_text, parse_number
from aisdp_log.errors import AisdpLogError, RepositoryError, WriteRefused
from aisdp_log.findings import Finding
from aisdp_log.lint.runner import validate
from aisdp_log.repo.git import resolve_commit
from aisdp_log.repo.roots import config_for, find_repo_root
from aisdp_log.signing import signatures, signoff
from aisdp_log.signing.verify import check_signoffs
from aisdp_log.system.atomic import write_bytes
from aisdp_log.system.tooldir import remove_orphans
from aisdp_log.workbook import guard
from aisdp_log.workbook.reader import load_log

PERIOD = re.compile(r"^(\d{4})-Q([1-4])$")
#: Below this many runs a rank correlation says little; the review says so next to the figure.
SMALL_N = 8
#: Rank correlation needs at least this many runs to be computed at all.
MIN_N = 3
#: A history.csv larger than this is not plotted (a learning curve is a few hundred rows).
MAX_HISTORY_BYTES = 5 << 20
CPU_IN_ENVIRONMENT = re.compile(r"\bcpu\s+(?P<isa>[A-Za-z0-9_.]+)")
LOCK_IN_ENVIRONMENT = re.compile(r"(?P<path>[^\s;,]+)\s+sha256:(?P<hex>[0-9a-fA-F]{64})")

KNOWN_LIMITS = (
    "Bitwise reproduction holds only on the recorded environment: the same CPU instruction set "
    "(for example AVX-512 versus AVX2 selects different MKL/oneDNN kernels) and the same "
    "library versions (torch, MKL, oneDNN, NumPy).",
    "Thread count does not change results on CPU for the recorded setup, but GPU kernels, a "
    "different operating system image or an unpinned dependency may.",
    "Statistical reproducibility bounds the metric, not the weights: a new run is expected "
    "inside the interval at the stated confidence, not identical to the recorded run.",
)


@dataclass
class Metric:
    name: str
    goal: str
    threshold: float | None
    description: str
    declared: bool


@dataclass
class Candidate:
    """One row of the period, as the selection table shows it."""

    experiment_id: str
    row_number: int
    date: dt.date | None
    outcome: str | None
    hypothesis: str | None
    notes: str | None
    metrics: dict[str, float | None]
    params: dict[str, object]
    #: metric -> True (met), False (missed), None (no value or no threshold)
    met: dict[str, bool | None]
    reproducibility: str | None

    @property
    def meets_all(self) -> bool | None:
        verdicts = [v for v in self.met.values() if v is not None]
        if not verdicts:
            return None
        return all(verdicts)


@dataclass
class Delta:
    selected: str
    baseline: str
    metric: str
    selected_value: float
    baseline_value: float
    delta: float
    better: bool | None  # in the metric's goal direction; None when equal


@dataclass
class Provenance:
    experiment_id: str
    code_commit: str | None
    data_version: str | None
    seed: int | None
    environment: str | None
    artefact_hash: str | None
    files_hash: str | None
    #: `match`, `differs`, `missing`, `no model file`, `not checked`
    status: str
    detail: str = ""


@dataclass
class Interval:
    """One `Reproducibility` sheet row."""

    experiment_id: str
    date: str
    mode: str
    metric: str
    runs: int | None
    mean: float | None
    std: float | None
    low: float | None
    high: float | None
    confidence: float | None
    threshold: float | None
    verdict: str


@dataclass
class Correlation:
    param: str
    metric: str
    n: int
    rho: float | None
    p_value: float | None
    note: str = ""  # why rho is undefined, or the small-n caution


@dataclass
class ReproSpec:
    experiment_id: str
    level: str            # `bitwise`, `statistical`, `failed` or `not yet reproduced`
    level_detail: str
    seed: int | None
    code_commit: str | None
    data_version: str | None
    environment: str | None
    lock_file: str | None
    lock_hash: str | None
    #: every Reproducibility sheet row of the experiment (bitwise and statistical)
    evidence: list[Interval]
    tolerance: list[str]
    limits: list[str]
    #: the last failed reruns (sheet Reruns): `<Rerun ID>: <Status>` and the stderr tail
    failed_runs: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class Changes:
    """Rows compared with the sign-offs recorded before this review."""

    last_signoff: object | None   # signoff.SignoffRecord
    new_ids: list[str]
    changed: list                 # signoff.Change, not deleted
    deleted: list                 # signoff.Change, deleted
    outcome_changes: list         # signoff.Change whose outcome differs


@dataclass
class Curve:
    experiment_id: str
    column: str
    epochs: list[float]
    values: list[float]


@dataclass
class Review:
    period: str
    log_path: Path
    repo: Path
    generated_at: dt.datetime
    tool_version: str
    head_commit: str | None
    validation_mode: str       # `online` or `offline`
    validation_note: str
    findings: list[Finding]    # findings of the period's rows (and of the sheets' headers)
    errors: int
    warnings: int
    metrics: list[Metric]
    candidates: list[Candidate]
    deltas: list[Delta]
    provenance: list[Provenance]
    intervals: list[Interval]
    correlations: list[Correlation]
    correlation_rows: int
    correlation_scope: str
    skipped_params: list[str]
    repro: list[ReproSpec]
    changes: Changes
    curves: dict[str, list[Curve]]   # metric -> curves
    artefacts_dir: Path
    signoff: object | None = None    # the SignoffRecord written with --sign
    signature: object | None = None  # SignatureInfo of that sign-off
    #: (period, name and role, signed at, verification) of the sign-offs before this one
    signoff_history: list = field(default_factory=list)
    #: coverage.CoverageSummary of the whole log, as `validate` reports it
    coverage: object | None = None
    plots: list = field(default_factory=list)  # plots.Plot, filled by `render`
    #: numeric parameters that always changed together over the ranked runs (identical or
    #: reversed ranks), each group in log order: not ranked, since no effect can be told apart
    together: list[list[str]] = field(default_factory=list)

    @property
    def counts(self) -> dict[str, int]:
        outcomes = [c.outcome for c in self.candidates]
        return {
            "runs": len(outcomes),
            "selected": outcomes.count("selected"),
            "baseline": outcomes.count("baseline"),
            "rejected": outcomes.count("rejected"),
            "undecided": sum(1 for o in outcomes if o not in spec.OUTCOMES),
        }

    def selected(self) -> list[Candidate]:
        return [c for c in self.candidates if c.outcome == "selected"]


# --------------------------------------------------------------------------- periods

def parse_period(text: str) -> str:
    """`2026-Q3` checked; AisdpLogError (exit 2) for anything else."""
    cleaned = str(text).strip().upper()
    if not PERIOD.match(cleaned):
        raise AisdpLogError(f"--period {text!r}: write a quarter as YYYY-Qn, e.g. 2026-Q3")
    return cleaned


def period_bounds(period: str) -> tuple[dt.date, dt.date]:
    """First and last day of a quarter."""
    match = PERIOD.match(period)
    year, number = int(match[1]), int(match[2])
    # quarters end on the 31st (Q1, Q4) or the 30th (Q2, Q3): no date past the quarter is
    # made, which for 9999-Q4 would not exist
    return dt.date(year, 3 * number - 2, 1), dt.date(year, 3 * number, 30 + (number in (1, 4)))


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

def build_review(log_path: Path | str, *, period: str | None = None,
                 repo: Path | str | None = None, config=None) -> Review:
    """Gather the evidence for `period` (default: the latest quarter with rows)."""

    log_path = Path(log_path)
    root, git_root, config = resolve_setting(log_path, repo, config)
    log = load_log(log_path, config)
    try:
        return _gather(log, log_path, period, root, git_root, config)
    finally:
        log.workbook.close()


def _gather(log, log_path: Path, period: str | None, root: Path, git_root: Path | None,
            config) -> Review:
    """The Review of an open log (see `build_review`)."""

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
    correlations, n_rows, skipped, together = _correlations(log, metrics, period_end)
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
        changes=_changes(log),
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


def _number(value: object) -> float | None:

    if value is None:
        return None
    try:
        return parse_number(value)
    except ValueError:
        return None


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
            value = row.get(columns[header])
            return "" if value is None else as_text(value).strip()

        def number(header: str) -> float | None:
            return _number(row.get(columns[header]))

        runs = number("Runs")
        result.append(Interval(
            experiment_id=text("Experiment ID"), date=text("Date"), mode=text("Mode").casefold(),
            metric=text("Metric"), runs=int(runs) if runs is not None else None,
            mean=number("Mean"), std=number("Std"), low=number("CI low"),
            high=number("CI high"), confidence=number("Confidence"),
            threshold=number("Threshold"), verdict=text("Verdict").casefold()))
    return result


def latest_intervals(intervals: list[Interval], experiment_id: str) -> dict[str, Interval]:
    """Metric (case-folded) -> the last statistical interval recorded for the experiment."""
    result = {}
    for interval in intervals:
        if interval.experiment_id == experiment_id and interval.low is not None and \
                interval.high is not None:
            result[interval.metric.casefold()] = interval
    return result


def _correlations(log, metrics: list[Metric], until: dt.date):
    """Spearman rank correlation of every numeric parameter with every metric, over all runs
    dated up to the end of the period."""
    import warnings

    from scipy import stats

    rows = [r for r in log.rows if (d := log.typed(r, "date")) is not None and d <= until]
    skipped = []
    numeric: dict[str, list] = {}
    for name in log.params:
        values = [log.typed(r, spec.PARAMS_PREFIX + name) for r in rows]
        present = [v for v in values if v is not None]
        if not present or not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                  for v in present):
            skipped.append(name)
            continue
        numeric[name] = values
    together = varied_together(numeric)
    grouped = {name for group in together for name in group}
    result = []
    for name, values in numeric.items():
        if name in grouped:
            continue  # its rho would be its partners' too: which one mattered is unknowable
        for metric in metrics:
            pairs = [(float(p), m) for p, m in
                     zip(values, (log.typed(r, spec.METRICS_PREFIX + metric.name)
                                  for r in rows))
                     if p is not None and m is not None]
            n = len(pairs)
            rho = p_value = None
            if n < MIN_N:
                note = f"undefined: needs at least {MIN_N} runs with both values"
            elif len({p for p, _ in pairs}) < 2:
                note = "undefined: the parameter never varied"
            elif len({m for _, m in pairs}) < 2:
                note = "undefined: the metric never varied"
            else:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    outcome = stats.spearmanr([p for p, _ in pairs], [m for _, m in pairs])
                rho, p_value = float(outcome.statistic), float(outcome.pvalue)
                if not math.isfinite(rho):
                    rho = p_value = None
                    note = "undefined"
                elif n < SMALL_N:
                    note = f"caution: n = {n} is small (< {SMALL_N}); treat as indicative only"
                else:
                    note = ""
            result.append(Correlation(name, metric.name, n, rho, p_value, note))
    return result, len(rows), skipped, together


def varied_together(params: dict[str, list]) -> list[list[str]]:
    """Groups of parameters whose values rise and fall together over the runs: over the runs
    where both have a value (at least MIN_N, both varying), their ranks are identical or exactly
    reversed (Spearman rho of +1 or -1). Their rank correlations with a metric are then equal
    up to sign, so ranking each would credit one with what the others did. `params` maps a
    name to its values, one per run (None where empty), in log order."""
    from scipy.stats import rankdata

    names = list(params)
    group_of = {name: name for name in names}

    def leader(name: str) -> str:
        while group_of[name] != name:
            name = group_of[name]
        return name

    for i, first in enumerate(names):
        for second in names[i + 1:]:
            pairs = [(a, b) for a, b in zip(params[first], params[second])
                     if a is not None and b is not None]
            if len(pairs) < MIN_N or len({a for a, _ in pairs}) < 2 \
                    or len({b for _, b in pairs}) < 2:
                continue
            ranks_a = rankdata([float(a) for a, _ in pairs]).tolist()
            ranks_b = rankdata([float(b) for _, b in pairs]).tolist()
            reversed_b = [len(pairs) + 1 - r for r in ranks_b]
            if ranks_a == ranks_b or ranks_a == reversed_b:
                group_of[leader(second)] = leader(first)
    groups: dict[str, list[str]] = {}
    for name in names:
        groups.setdefault(leader(name), []).append(name)
    return [group for group in groups.values() if len(group) > 1]


def together_text(group: list[str]) -> str:
    """The review's one line for a group of parameters that changed together."""
    return f"{', '.join(group)} changed together; their effects cannot be separated"


def _repro(log, row, intervals: list[Interval]) -> ReproSpec:
    experiment_id = log.experiment_id(row) or f"(row {row.number})"
    level = log.typed(row, "reproducibility")
    environment = log.typed(row, "environment")
    lock = LOCK_IN_ENVIRONMENT.search(environment or "")
    mine = [i for i in intervals if i.experiment_id == experiment_id]
    statistical = [i for i in mine if i.mode == "statistical" and i.low is not None]
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
    latest = latest_intervals(statistical, experiment_id)
    for interval in latest.values():
        confidence = f"{interval.confidence:.0%}" if interval.confidence is not None else "?"
        bound = f"[{interval.low:.4g}, {interval.high:.4g}]"
        threshold = "" if interval.threshold is None else \
            f"; threshold {interval.threshold:g}, verdict {interval.verdict or '?'}"
        tolerance.append(f"{interval.metric}: {confidence} interval {bound} over "
                         f"{interval.runs or '?'} runs{threshold}")
    limits = list(KNOWN_LIMITS)
    isa = CPU_IN_ENVIRONMENT.search(environment or "")
    if isa:
        limits.insert(0, f"Recorded CPU instruction set: {isa['isa']}; a bitwise rerun needs a "
                         "CPU with the same one (or the same forced MKL/ATen kernel setting).")
    return ReproSpec(experiment_id, level, detail, log.typed(row, "random_seed"),
                     log.typed(row, "code_commit"), log.typed(row, "data_version"),
                     environment, lock["path"] if lock else None,
                     ("sha256:" + lock["hex"].lower()) if lock else None,
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


def _changes(log, records: list | None = None, trusted: set[int] | None = None) -> Changes:
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
            points = [(r[0], r[index]) for r in rows
                      if len(r) > index and r[0] is not None and r[index] is not None]
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


# --------------------------------------------------------------------------- the command

@dataclass
class ReviewResult:
    review: Review
    html_path: Path
    markdown_path: Path
    statement_path: Path | None = None
    signature_path: Path | None = None


@dataclass
class SignatureInfo:
    """How this review's sign-off is signed, as the review shows it (known before signing)."""

    key: str | None            # the key's fingerprint, SHA256:...; None: not signed
    principals: list[str]      # allowed signers listing the key (empty: untrusted or unknown)
    allowed: str | None        # the allowed signers file consulted, if any
    statement_file: str        # review-<period>.json
    previous: str | None       # sha256 of the previous statement of this log
    key_path: Path | None = None


def write_review(log_path: Path | str, *, period: str | None = None,
                 output_dir: Path | str = ".", sign: str | None = None,
                 key: Path | str | None = None, repo: Path | str | None = None, config=None,
                 force: bool = False) -> ReviewResult:
    """Gather, optionally sign, and write `review-<period>.html` and `.md` into `output_dir`.

    With `sign`, the review files are written first, then the statement
    `review-<period>.json` (which holds their sha256) and its SSH signature `.json.sig` (with
    `key`, else git's `user.signingkey` when `gpg.format` is `ssh`), and the `Sign-off` row
    last: a process killed on the way leaves no signature without its review and no Sign-off
    row without its statement. "Changes since the last signed review" compares with the
    sign-off before this one, and the report names its own signature."""

    signer = signoff.parse_signer(sign) if sign is not None else None
    if key is not None and signer is None:
        raise AisdpLogError("--key signs a sign-off: give --sign \"Name, Role\" too")
    output_dir = Path(output_dir)
    if output_dir.exists() and not output_dir.is_dir():
        raise AisdpLogError(f"{output_dir}: -o must be a folder")
    log_path = Path(log_path)
    if signer is not None:  # refuse or wait before gathering and rendering, not after
        guard.preflight(log_path, force=force)
    root, git_root, config = resolve_setting(log_path, repo, config)
    with _scratch() as scratch:
        info: SignatureInfo | None = None
        if signer is not None:
            info = _signature_info(Path(key) if key is not None else
                                   signatures.default_signing_key(git_root or root,
                                                                  scratch / "signing.pub"),
                                   git_root or root)
        log = load_log(log_path, config)
        try:
            review = _gather(log, log_path, period, root, git_root, config)
            # the signature covers the very values the report shows: one read of the workbook
            values = signoff.signoff_values(log, review.period, period_rows(log, review.period),
                                            signer) if signer is not None else None
            records = signoff.read_signoffs(log.workbook)
            review.signoff_history, trusted = _history(log, records, git_root or root)
            if trusted is not None:
                review.changes = _changes(log, records, trusted)
        finally:
            log.workbook.close()
        record = None
        if values is not None and info is not None:
            if len(values["Row hashes"]) + 4000 > signoff.EXCEL_CELL_LIMIT:
                raise AisdpLogError(f"{log_path}: the signed statement of {review.period} "
                                    "would not fit a cell; review fewer rows per period")
            info.statement_file = f"review-{review.period}.json"
            info.previous = next((signatures.sha256_hex(r.statement.encode("utf-8"))
                                  for r in reversed(records) if r.statement), None)
            hashes, _ = signoff.parse_row_hashes(values["Row hashes"])
            record = signoff.SignoffRecord(
                0, values["Period"], values["Name and role"], values["Signed at"],
                [i.strip() for i in values["Experiment IDs"].split(",")], hashes, {})
            review.signoff, review.signature = record, info
        output_dir.mkdir(parents=True, exist_ok=True)
        html_path = output_dir / f"review-{review.period}.html"
        markdown_path = output_dir / f"review-{review.period}.md"
        from aisdp_log.review import (
            render as review_render,  # TEMPORARY: cycle, issue 12 split
        )

        html_text, markdown_text = review_render.render(review)
        html_bytes, markdown_bytes = html_text.encode("utf-8"), markdown_text.encode("utf-8")
        write_bytes(html_path, html_bytes)
        write_bytes(markdown_path, markdown_bytes)
        statement_path = signature_path = None
        if values is not None and info is not None and record is not None:
            statement = signatures.build_statement(
                period=review.period, name_and_role=values["Name and role"],
                signed_at=values["Signed at"], key=info.key,
                rows=dict(json.loads(values["Row hashes"])),
                html_sha256=signatures.sha256_hex(html_bytes),
                markdown_sha256=signatures.sha256_hex(markdown_bytes),
                previous=info.previous, tool_version=__version__, log_name=log_path.name)
            text = signatures.statement_text(statement)
            statement_path = output_dir / info.statement_file
            signature_path = output_dir / (info.statement_file + ".sig")
            armored = ""
            if info.key is not None and info.key_path is not None:
                # signed in memory first: a key that cannot sign leaves no statement behind
                armored = signatures.sign(text.encode("utf-8"), info.key_path)
            write_bytes(statement_path, text.encode("utf-8"))
            if armored:
                write_bytes(signature_path, armored.encode("ascii"))
            else:
                # a signature left from an earlier sign-off would sign another statement
                signature_path.unlink(missing_ok=True)
                signature_path = None
            values["Signature"], values["Statement"] = armored, text
            # last: a Sign-off row is never without its review, statement and signature
            record.row_number = signoff.append_signoff(log_path, values, force=force)
    return ReviewResult(review, html_path, markdown_path, statement_path, signature_path)


_SCRATCH_PREFIX = "aisdp-log-review-"


@contextlib.contextmanager
def _scratch():
    """A temp folder named with this process's pid; the folders of killed reviews (whose pid
    is gone) are removed first, so a SIGKILL leaves nothing behind for long."""
    remove_orphans(tempfile.gettempdir(), _scratch_owner, pattern=f"{_SCRATCH_PREFIX}*-*")
    with tempfile.TemporaryDirectory(prefix=f"{_SCRATCH_PREFIX}{os.getpid()}-") as folder:
        yield Path(folder)


def _scratch_owner(name: str) -> int | None:
    pid = name[len(_SCRATCH_PREFIX):].split("-", 1)[0]
    return int(pid) if pid.isdigit() else None


def _signature_info(key: Path | None, repo: Path) -> "SignatureInfo":
    """The key's fingerprint and whether the allowed signers list it, found by signing a
    probe (so a public key held by an ssh-agent works as well as a private key file)."""

    allowed, _ = signatures.allowed_signers_file(repo)
    allowed = allowed if allowed is not None and allowed.is_file() else None
    shown = None
    if allowed is not None:
        # as the team knows it: relative to the repository where it lives there
        shown = str(allowed.relative_to(repo) if allowed.is_relative_to(repo) else allowed)
    info = SignatureInfo(None, [], shown, "", None, key)
    if key is None:
        return info
    info.key = signatures.key_fingerprint(key)
    if allowed is not None:
        probe = b"aisdp-log: which allowed signer holds this key?"
        check = signatures.check_signature(probe, signatures.sign(probe, key), allowed)
        info.principals = check.principals
    return info


def _history(log, records: list, repo: Path
             ) -> tuple[list[tuple[str, str, str, str]], set[int] | None]:
    """(period, name and role, signed at, verification) for each earlier Sign-off row, and
    the rows whose signature verified (None where no allowed signers file could check them)."""

    if not records:
        return [], None
    allowed, _ = signatures.allowed_signers_file(repo)
    trusted = None
    if allowed is None or not allowed.is_file() or shutil.which("ssh-keygen") is None:
        status = {r.row_number: ("signed, not checked (no allowed signers file)" if r.signature
                                 else "not cryptographically signed") for r in records}
    else:
        checked = check_signoffs(log, records, allowed)
        status, trusted = checked.status, checked.trusted
    return [(r.period, r.name_and_role, r.signed_at, status.get(r.row_number, ""))
            for r in records], trusted
