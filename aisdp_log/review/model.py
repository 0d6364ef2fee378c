"""The review's data: the `Review` and the records it holds, and the small rules on them
(quarters, thresholds of the statistics) that gathering, figures and rendering share.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from pathlib import Path

from aisdp_log import spec
from aisdp_log.errors import AisdpLogError
from aisdp_log.findings import Finding

PERIOD = re.compile(r"^(\d{4})-Q([1-4])$")
#: Below this many runs a rank correlation says little; the review says so next to the figure.
SMALL_N = 8
#: Rank correlation needs at least this many runs to be computed at all.
MIN_N = 3


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
    verdict: str                       # the threshold verdict: pass, fail, no threshold
    #: Added in 0.3 (issue 27); empty in sheets written before: not tested then.
    recorded: float | None = None
    consistency: str = ""              # consistent, not reproduced, too few runs
    bounds: str = ""                   # the Consistency bounds cell: bounds and their source


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
    if match is None:  # callers pass parse_period's result
        raise AisdpLogError(f"--period {period!r}: write a quarter as YYYY-Qn, e.g. 2026-Q3")
    year, number = int(match[1]), int(match[2])
    # quarters end on the 31st (Q1, Q4) or the 30th (Q2, Q3): no date past the quarter is
    # made, which for 9999-Q4 would not exist
    return dt.date(year, 3 * number - 2, 1), dt.date(year, 3 * number, 30 + (number in (1, 4)))


def latest_intervals(intervals: list[Interval], experiment_id: str) -> dict[str, Interval]:
    """Metric (case-folded) -> the last statistical interval recorded for the experiment (a row
    with an interval, or with a consistency verdict)."""
    result = {}
    for interval in intervals:
        if interval.experiment_id == experiment_id and (
                interval.low is not None and interval.high is not None or interval.consistency):
            result[interval.metric.casefold()] = interval
    return result


def tolerance_statement(interval: Interval) -> str:
    """The review's statement of the tolerance bounds applied to one metric's latest
    statistical rerun, and where they came from, as read from the Reproducibility sheet (the
    rerun computed them; nothing is recomputed here)."""
    confidence = f"{interval.confidence:.0%}" if interval.confidence is not None else "?"
    runs = f"{interval.runs} runs" if interval.runs is not None else "? runs"
    if interval.low is not None and interval.high is not None:
        spread = f"{confidence} confidence interval [{interval.low:.4g}, {interval.high:.4g}]"
    else:
        spread = "no confidence interval"
    threshold = f"threshold {interval.threshold:g}: {interval.verdict or '?'}" \
        if interval.threshold is not None else "no threshold declared"
    if not interval.consistency:
        claim = ("the recorded value was not tested against the reruns (a rerun before "
                 "aisdp-log 0.3)")
    else:
        recorded = "no value" if interval.recorded is None else f"{interval.recorded:.6g}"
        claim = (f"recorded {recorded}, consistency bounds {interval.bounds or '?'}: "
                 f"{interval.consistency}")
    return f"{interval.metric} over {runs}: {claim}; {spread}; {threshold}"


def together_text(group: list[str]) -> str:
    """The review's one line for a group of parameters that changed together."""
    return f"{', '.join(group)} changed together; their effects cannot be separated"


@dataclass
class SignatureInfo:
    """How this review's sign-off is signed, as the review shows it (known before signing)."""

    key: str | None            # the key's fingerprint, SHA256:...; None: not signed
    principals: list[str]      # allowed signers listing the key (empty: untrusted or unknown)
    allowed: str | None        # the allowed signers file consulted, if any
    statement_file: str        # review-<period>.json
    previous: str | None       # sha256 of the previous statement of this log
    key_path: Path | None = None
