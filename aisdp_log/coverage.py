"""Verification coverage: which evidence cells a witness confirmed, and which none could.

An evidence cell is a non-empty `params.*`, `metrics.*`, `Other params`, `Random seed`,
`Code commit`, `Data version` or `Artefact hash` cell, or an `Environment` cell that names a
lock file by hash. Each is either verified (a witness was compared with it: git, DVC's
records, a params file, `run.json`, `metrics.json`, the files' digests) or unverified.

Checks record what they compared, typed, through `ctx.coverage` (never by wording of
messages); `conclude` then counts. A cell with an error finding counts as verified: it was
checked and found wrong (an S003 cell cannot be compared with anything, and its error already
stops the log from passing). A cell whose witness exists but lacks its key gets A008 when no
other witness verified it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .findings import Finding, Severity

if TYPE_CHECKING:
    from .workbook import Column, Log

#: Standard columns that are evidence whenever they hold a value.
EVIDENCE_KEYS = ("code_commit", "data_version", "random_seed", "artefact_hash", "other_params")


class Coverage:
    """What the checks of one validation verified: column index -> row numbers (sets, so a
    10,000-row log is counted with set operations, not a tuple per cell)."""

    def __init__(self) -> None:
        self.verified: dict[int, set[int]] = {}
        #: (row number, column index) -> (column, the A008 message): the witness exists but
        #: lacks the cell's key
        self.lacking: dict[tuple[int, int], tuple[Column, str]] = {}

    def verify(self, row: int, column: Column) -> None:
        """A witness was compared with this cell (whatever the comparison found)."""
        self.verified.setdefault(column.index, set()).add(row)

    def verify_rows(self, column_index: int, rows) -> None:
        """Many rows of one column at once (a cached verdict, a whole family's answer)."""
        self.verified.setdefault(column_index, set()).update(rows)

    def lack(self, row: int, column: Column, message: str) -> None:
        """A witness exists but does not hold this cell's key."""
        self.lacking.setdefault((row, column.index), (column, message))


@dataclass
class CoverageSummary:
    """The figure the report shows: `N of N+M evidence cells verified`."""

    verified: int = 0
    unverified: int = 0
    unverified_cells: list[str] = field(default_factory=list)
    offline: bool = False

    def to_dict(self) -> dict:
        return {"verified": self.verified, "unverified": self.unverified,
                "unverified_cells": list(self.unverified_cells)}

    @property
    def total(self) -> int:
        return self.verified + self.unverified

    def line(self) -> str:
        text = f"{self.verified} of {self.total} evidence cells verified"
        if self.offline and self.unverified:
            text += " (--offline: nothing was compared with git, DVC or the artefact folders)"
        return text


def evidence_cells(log: Log) -> list[tuple[Column, set[int]]]:
    """(column, the row numbers where it holds evidence) for every evidence column."""
    from .checks.git import lock_entries

    columns = [log.columns[key] for key in EVIDENCE_KEYS if key in log.columns]
    columns += list(log.params.values()) + list(log.metrics.values())
    result = []
    for column in columns:
        result.append((column, {number for number, (value, error)
                                in log.parse_column(column).items()
                                if value is not None or error is not None}))
    environment = log.columns.get("environment")
    if environment is not None:
        result.append((environment, {
            number for number, (value, _) in log.parse_column(environment).items()
            if isinstance(value, str) and "sha256:" in value.lower() and lock_entries(value)}))
    return result


def conclude(log: Log, ctx, findings: list[Finding]) -> tuple[list[Finding], CoverageSummary]:
    """A008 for each unverified cell whose witness lacks its key, and the summary."""
    from .workbook import cell_ref

    coverage: Coverage = ctx.coverage
    _from_git(log, ctx, coverage)
    errors = {f.cell for f in findings if f.severity is Severity.ERROR and f.sheet == log.sheet}
    summary = CoverageSummary(offline=ctx.offline)
    unverified: list[tuple[int, Column]] = []
    for column, rows in evidence_cells(log):
        missed = rows - coverage.verified.get(column.index, set())
        summary.verified += len(rows) - len(missed)
        for number in missed:
            if cell_ref(number, column.index) in errors:
                summary.verified += 1  # checked, and found wrong
            else:
                unverified.append((number, column))
    unverified.sort(key=lambda cell: (cell[0], cell[1].index))
    by_number = {row.number: row for row in log.rows} if unverified else {}
    extra: list[Finding] = []
    for number, column in unverified:
        summary.unverified += 1
        summary.unverified_cells.append(f"{log.sheet}!{cell_ref(number, column.index)}")
        lacking = coverage.lacking.get((number, column.index))
        if lacking is not None:
            extra.append(log.finding("A008", by_number.get(number, number), column,
                                     lacking[1]))
    return extra, summary


def _from_git(log: Log, ctx, coverage: Coverage) -> None:
    """Code commits git found, and the lock files the git checks read at them (G005 reads
    every lock file named in the Environment cell of a row whose commit was found). A
    shallow clone proves nothing about history, so nothing there counts."""
    commits = ctx.cache.get("row_commits")
    repo = ctx.cache.get("git")
    if not commits or repo is None or repo.is_shallow:
        return
    found = [number for number, (_, lookup) in commits.items() if lookup.status == "found"]
    for key in ("code_commit", "environment"):
        column = log.columns.get(key)
        if column is not None:
            coverage.verify_rows(column.index, found)
