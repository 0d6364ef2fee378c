"""The quarterly model-selection review: gather the evidence for one period into a `Review`.

`build_review` reads the log (calamine), validates it, recomputes artefact hashes, reads
`history.csv` files and the `Reproducibility` sheet, ranks parameters against metrics and
compares rows with the last sign-off. `review_render` turns the result into HTML and Markdown;
`plots` draws the figures. scipy and matplotlib are imported only in here and there, never by
`validate`.
"""

from __future__ import annotations

import csv
import datetime as dt
import math
import re
import stat
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from . import spec
from .checks.review import declared_metrics, meets, quarter
from .errors import AisdpLogError
from .findings import Finding

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
    plots: list = field(default_factory=list)  # plots.Plot, filled by `render`

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
    from .workbook import load_log

    log_path = Path(log_path)
    if signer is not None:  # refuse or wait before gathering and rendering, not after
        guard.preflight(log_path, force=force)
    root, git_root, config = resolve_setting(log_path, repo, config)
    log = load_log(log_path, config)
    try:
        return _gather(log, log_path, period, root, git_root, config)
    finally:
        log.workbook.close()


def _gather(log, log_path: Path, period: str | None, root: Path, git_root: Path | None,
            config) -> Review:
    """The Review of an open log (see `build_review`)."""
    from . import __version__

    period = parse_period(period) if period else latest_period(log)
    rows = period_rows(log, period)
    if not rows:
        raise AisdpLogError(f"{log.name}: no rows dated in {period}; the log has rows "
                            f"in {', '.join(_periods(log)) or 'no quarter'}")
    metrics = _metrics(log)
    candidates = [_candidate(log, row, metrics) for row in rows]
    mode, note, findings, errors, warnings = _validation(log_path, root, git_root,
                                                         config, rows)
    intervals = _intervals(log)
    _, period_end = period_bounds(period)
    correlations, n_rows, skipped = _correlations(log, metrics, period_end)
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
        skipped_params=skipped,
        repro=[_repro(log, row, intervals) for row in rows
               if log.typed(row, "outcome") == "selected"],
        changes=_changes(log),
        curves=_curves(candidates, metrics, artefacts_dir, config.id_regex),
        artefacts_dir=artefacts_dir,
    )


def resolve_setting(log_path: Path, repo, config):
    """(root, git root or None, Config): `--repo`, else the git repository holding the log,
    else the log's folder; the config read from that root unless one is given."""
    from .config import Config, load_config
    from .validate import find_repo_root

    if repo is not None:
        if not Path(repo).is_dir():
            raise AisdpLogError(f"{repo}: --repo is not a folder")
        git_root = find_repo_root(Path(repo))
        root = Path(repo).resolve()
    else:
        git_root = find_repo_root(log_path.resolve().parent)
        root = git_root or log_path.resolve().parent
    if not isinstance(config, Config):
        config = load_config(root, config)
    return root, git_root, config


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
    from .errors import RepositoryError
    from .validate import validate

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
    return mode, note, findings, errors, len(findings) - errors


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


def artefact_folder(artefacts_dir: Path, experiment_id: str, id_regex) -> Path | None:
    """The experiment's folder, or None where the ID could leave the artefacts root (the
    rule `add` and `export` apply) or does not match the ID pattern."""
    from .add import artefact_folder as folder_of
    from .errors import WriteRefused

    if not experiment_id or not id_regex.match(experiment_id):
        return None
    try:
        return folder_of(artefacts_dir, experiment_id)
    except WriteRefused:
        return None


def _provenance(log, rows: list, artefacts_dir: Path, cache_root: Path | None
                ) -> list[Provenance]:
    """Each row's artefact folder re-hashed and compared with its cell; through the digest
    cache of `cache_root` (the git repository), which the validation just filled, so a model
    is read once per review, not twice."""
    from .hashcache import NullCache, open_cache

    cache = open_cache(cache_root) if cache_root is not None else NullCache()
    return [_row_provenance(log, row, artefacts_dir, cache) for row in rows]


def _row_provenance(log, row, artefacts_dir: Path, cache) -> Provenance:
    from .hashing import ArtefactError, NoModelFile, artefact_hash

    experiment_id = log.experiment_id(row) or ""
    recorded = log.typed(row, "artefact_hash")
    result = Provenance(
        experiment_id=experiment_id or f"(row {row.number})",
        code_commit=log.typed(row, "code_commit"), data_version=log.typed(row, "data_version"),
        seed=log.typed(row, "random_seed"), environment=log.typed(row, "environment"),
        artefact_hash=recorded, files_hash=None, status="not checked")
    folder = artefact_folder(artefacts_dir, experiment_id, log.config.id_regex)
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
    from .values import parse_number

    if value is None:
        return None
    try:
        return parse_number(value)
    except ValueError:
        return None


def _intervals(log) -> list[Interval]:
    from .values import as_text

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
    result, skipped = [], []
    for name in log.params:
        values = [log.typed(r, spec.PARAMS_PREFIX + name) for r in rows]
        present = [v for v in values if v is not None]
        if not present or not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                  for v in present):
            skipped.append(name)
            continue
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
    return result, len(rows), skipped


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
                     mine, tolerance, limits)


def _changes(log) -> Changes:
    from . import signoff

    records = signoff.read_signoffs(log.workbook)
    current = signoff.current_fingerprints(log)
    found = signoff.changes(log, records, current)
    signed = set(signoff.latest_signatures(records))
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
        folder = artefact_folder(artefacts_dir, candidate.experiment_id, id_regex)
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
        out = subprocess.run(["git", "rev-parse", "--verify", "-q", "HEAD"], cwd=git_root,
                             capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


# --------------------------------------------------------------------------- the command

@dataclass
class ReviewResult:
    review: Review
    html_path: Path
    markdown_path: Path


def write_review(log_path: Path | str, *, period: str | None = None,
                 output_dir: Path | str = ".", sign: str | None = None,
                 repo: Path | str | None = None, config=None,
                 force: bool = False) -> ReviewResult:
    """Gather, optionally sign, and write `review-<period>.html` and `.md` into `output_dir`.

    Signing happens after the evidence is gathered, so "changes since the last signed review"
    compares with the sign-off before this one, and the report names its own signature."""
    from . import guard, review_render, signoff
    from .atomic import write_bytes
    from .workbook import load_log

    signer = signoff.parse_signer(sign) if sign is not None else None
    output_dir = Path(output_dir)
    if output_dir.exists() and not output_dir.is_dir():
        raise AisdpLogError(f"{output_dir}: -o must be a folder")
    log_path = Path(log_path)
    if signer is not None:  # refuse or wait before gathering and rendering, not after
        guard.preflight(log_path, force=force)
    root, git_root, config = resolve_setting(log_path, repo, config)
    log = load_log(log_path, config)
    try:
        review = _gather(log, log_path, period, root, git_root, config)
        # the signature covers the very values the report shows: one read of the workbook
        values = signoff.signoff_values(log, review.period, period_rows(log, review.period),
                                        signer) if signer is not None else None
    finally:
        log.workbook.close()
    if values is not None:
        row_number = signoff.append_signoff(log_path, values, force=force)
        hashes, _ = signoff.parse_row_hashes(values["Row hashes"])
        review.signoff = signoff.SignoffRecord(
            row_number, values["Period"], values["Name and role"], values["Signed at"],
            [i.strip() for i in values["Experiment IDs"].split(",")], hashes, {})
    output_dir.mkdir(parents=True, exist_ok=True)
    html_path = output_dir / f"review-{review.period}.html"
    markdown_path = output_dir / f"review-{review.period}.md"
    html_text, markdown_text = review_render.render(review)
    write_bytes(html_path, html_text.encode("utf-8"))
    write_bytes(markdown_path, markdown_text.encode("utf-8"))
    return ReviewResult(review, html_path, markdown_path)
