"""Verification coverage: which evidence cells a witness confirmed, and which none could.

An evidence cell is a non-empty `params.*`, `metrics.*`, `Other params`, `Random seed`,
`Code commit`, `Data version` or `Artefact hash` cell, or an `Environment` cell that names a
lock file by hash or a container image by digest (verified when git read its lock files and,
with `--remote`, an engine was asked about its image). Each is either verified (a witness
was compared with it: git, DVC's records, a params file, `run.json`, `metrics.json`, the
files' digests) or unverified.

Checks record what they compared, typed, through `ctx.coverage` (never by wording of
messages); `conclude` then counts. A cell with an error finding counts as verified: it was
checked and found wrong (an S003 cell cannot be compared with anything, and its error already
stops the log from passing). A cell whose witness exists but lacks its key gets A008 when no
other witness verified it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aisdp_log.domain.images import image_entries
from aisdp_log.domain.locks import lock_entries
from aisdp_log.findings import Finding, Severity
from aisdp_log.lint.summary import CoverageSummary
from aisdp_log.spec import column_number

if TYPE_CHECKING:
    from aisdp_log.workbook.log import Log
    from aisdp_log.workbook.table import Column

#: The finding code this module emits (see `aisdp_log.lint.registry`): once every family
#: has run, for a cell none verified whose witness lacks its key.
CODES = ("A008",)
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


_EMPTY = (None, None)


class Evidence:
    """The evidence cells of one column: its parsed cells, counted in C where that serves
    (a 10,000-row log checked offline has 200,000 of them)."""

    def __init__(self, column: Column, parsed: dict, rows: set[int] | None = None):
        self.column = column
        self.parsed = parsed
        self._rows = rows

    def count(self) -> int:
        if self._rows is not None:
            return len(self._rows)
        return len(self.parsed) - list(self.parsed.values()).count(_EMPTY)

    def holds(self, number: int) -> bool:
        if self._rows is not None:
            return number in self._rows
        return self.parsed.get(number, _EMPTY) != _EMPTY

    def rows(self) -> set[int]:
        if self._rows is None:
            self._rows = {number for number, cell in self.parsed.items() if cell != _EMPTY}
        return self._rows


def evidence_cells(log: Log) -> list[Evidence]:
    """Every evidence column with its cells (filled ones; for `Environment`, those naming a
    lock file by hash or an image by digest)."""
    columns = [log.columns[key] for key in EVIDENCE_KEYS if key in log.columns]
    columns += list(log.params.values()) + list(log.metrics.values())
    result = [Evidence(column, log.parse_column(column)) for column in columns]
    environment = log.columns.get("environment")
    if environment is not None:
        parsed = log.parse_column(environment)
        hashed = [(number, value) for number, (value, _) in parsed.items()
                  if isinstance(value, str) and "sha256:" in value.lower()]
        rows: set[int] = set()
        if hashed:  # only a cell that may name a lock file is parsed
            rows = {number for number, value in hashed
                    if lock_entries(value) or pinned_images(value)}
        result.append(Evidence(environment, parsed, rows))
    return result


def conclude(log: Log, ctx, findings: list[Finding]) -> tuple[list[Finding], CoverageSummary]:
    """A008 for each unverified cell whose witness lacks its key, and the summary."""
    coverage: Coverage = ctx.coverage
    _from_git(log, ctx, coverage)
    # a cell with an error was checked and found wrong: verified (see the module's note)
    wrong: dict[int, set[int]] = {}
    for finding in findings:
        if finding.severity is Severity.ERROR and finding.sheet == log.sheet:
            wrong.setdefault(column_number(finding.cell) - 1, set()).add(finding.row)
    columns = evidence_cells(log)
    checked: dict[int, set[int]] = {}
    verified = unverified = 0
    for evidence in columns:
        index = evidence.column.index
        candidates = coverage.verified.get(index, _NONE) | wrong.get(index, _NONE)
        done = checked[index] = {number for number in candidates if evidence.holds(number)}
        verified += len(done)
        unverified += evidence.count() - len(done)

    def missed() -> dict[int, set[int]]:
        return {evidence.column.index: evidence.rows() - checked[evidence.column.index]
                for evidence in columns}

    extra = []
    if coverage.lacking:
        by_index = {evidence.column.index: evidence for evidence in columns}
        by_number = {row.number: row for row in log.rows}
        for (number, index), (column, message) in sorted(coverage.lacking.items(),
                                                         key=lambda item: item[0]):
            entry = by_index.get(index)
            if entry is not None and entry.holds(number) \
                    and number not in checked[index]:
                extra.append(log.finding("A008", by_number.get(number, number), column,
                                         message))
    return extra, CoverageSummary(verified, unverified, ctx.offline, log.sheet, missed)


_NONE: frozenset[int] = frozenset()




def pinned_images(environment: str) -> bool:
    """Whether an Environment cell names a container image by digest."""
    return any(entry.digest for entry in image_entries(environment))


def _from_git(log: Log, ctx, coverage: Coverage) -> None:
    """Code commits git found, and the lock files the git checks read at them (G005 reads
    every lock file named in the Environment cell of a row whose commit was found). A
    shallow clone proves nothing about history, so nothing there counts."""
    commits = ctx.row_commits
    repo = ctx.opened_git
    if not commits or repo is None or repo.is_shallow:
        return
    found = [number for number, (_, lookup) in commits.items() if lookup.status == "found"]
    column = log.columns.get("code_commit")
    if column is not None:
        coverage.verify_rows(column.index, found)
    column = log.columns.get("environment")
    if column is not None:  # a cell naming an image too is verified once its image was asked
        checked, cells = ctx.images_checked, log.parse_column(column)
        coverage.verify_rows(column.index, [
            number for number in found if number in checked
            or not pinned_images(str(cells.get(number, ("",))[0] or ""))])
