"""The cells the artefact checks compare, what they verified, and the clean verdicts that let a
warm run skip a row: a digest of every input of its check (each file's path and stat, every
compared cell, this code), stored when the row was found clean."""

from __future__ import annotations

import hashlib

from aisdp_log.artefacts.cache import HashCache
from aisdp_log.artefacts.digests import FolderScan
from aisdp_log.system.fingerprint import code_fingerprint
from aisdp_log.system.inputs import is_racy, stat_key
from aisdp_log.workbook.log import Log
from aisdp_log.workbook.table import Row


class Cells:
    """The parsed values the record checks compare, one dict per column (row number ->
    (value, error)), taken from the parse the schema check already made: a per-cell
    `log.typed` costs more than the comparisons themselves on a 10,000-row log."""

    def __init__(self, log: Log):
        self.log = log
        self.by_key = {key: self.column(log.columns.get(key)) for key in (
            "random_seed", "code_commit", "data_version", "artefact_hash", "other_params")}
        self.metrics = [(name, column, self.column(column))
                        for name, column in log.metrics.items()]
        self.params = [(name, column, self.column(column))
                       for name, column in log.params.items()]
        # what a verdict digests per row (see `row_verdict`), and once per log what they mean
        self.compared = [*self.by_key.values(), *(parsed for _, _, parsed in self.metrics),
                         *(parsed for _, _, parsed in self.params)]
        self.metric_columns = [column for _, column, _ in self.metrics]
        #: row number -> indices of the evidence columns this family verified in that row
        self.verified: dict[int, set[int]] = {}
        #: a cached verdict's verified indices (as stored) -> the rows it stood for
        self.verdict_rows: dict[str, list[int]] = {}
        #: (row number, column index) -> (column, why the row's record lacks its key: A008)
        self.lacking: dict[tuple[int, int], tuple[object, str]] = {}
        self.lacking_rows: set[int] = set()
        self._verdicts: dict[str, str] | None = None
        layout = [(key, column.index) for key, column in log.columns.items()] + \
            [(name, column.index) for name, column, _ in (*self.metrics, *self.params)]
        self.verdict_base = hashlib.blake2b(repr((
            code_version(), list(self.by_key), [name for name, _, _ in self.metrics],
            [name for name, _, _ in self.params], layout)).encode("utf-8", "surrogatepass"),
            digest_size=20)

    def column(self, column) -> dict:
        return self.log.parse_column(column) if column is not None else {}

    def typed(self, row: Row, key: str) -> object:
        return self.by_key[key].get(row.number, NOTHING)[0]

    # -- coverage: what this family compared, published to `ctx.coverage` at its end
    def verify(self, row: Row, column) -> None:
        """A record (or the files' digest) was compared with this cell."""
        if isinstance(column, str):
            column = self.log.columns.get(column)
        if column is not None:
            self.verified.setdefault(row.number, set()).add(column.index)

    def lack(self, row: Row, column, message: str) -> None:
        """The row's record exists but lacks this cell's key (A008 unless verified else)."""
        if isinstance(column, str):
            column = self.log.columns.get(column)
        if column is not None:
            self.lacking.setdefault((row.number, column.index), (column, message))
            self.lacking_rows.add(row.number)

    def publish(self, coverage) -> None:
        for number, indices in self.verified.items():
            for index in indices:
                coverage.verify_rows(index, (number,))
        for stored, numbers in self.verdict_rows.items():
            if stored:
                for index in map(int, stored.split(",")):
                    coverage.verify_rows(index, numbers)
        for (number, _), (column, message) in self.lacking.items():
            coverage.lack(number, column, message)

    def verdict_key(self, verdict: str, number: int) -> str:
        """The stored verdict: its digest, `=`, the indices of the cells it verified."""
        return verdict + "=" + ",".join(map(str, sorted(self.verified.get(number, ()))))

    def known_verdict(self, cache: HashCache, verdict: str, number: int) -> bool:
        """Whether the row was found clean with these inputs; if so the cells it verified
        then count as verified now (a verdict holds the coverage of its row)."""
        if self._verdicts is None:
            self._verdicts = {key.partition("=")[0]: key for key in cache.verdicts
                              if "=" in key}
        key = self._verdicts.get(verdict, verdict)  # unknown: asked anyway, to count a miss
        if not cache.has_verdict(key) or "=" not in key:
            return False
        indices = key.partition("=")[2]
        rows = self.verdict_rows.get(indices)
        if rows is None:
            if indices and not all(part.isdigit() for part in indices.split(",")):
                return False  # not a verdict this code wrote: check the row
            rows = self.verdict_rows[indices] = []
        rows.append(number)  # most rows share one set of cells: decoded once at the end
        return True


NOTHING = (None, None)
#: Part of every verdict, with the tool's version and the source of every module of the
#: package: a verdict remembered by other code is never trusted.
VERDICT_VERSION = "artefacts-2"


def code_version() -> str:
    """A digest of the code whose result a verdict stands for: the tool's version and every
    module of the package (the parsers in `values` decide findings as much as this module
    does), read once per process (`system.fingerprint.code_fingerprint`)."""
    return code_fingerprint(VERDICT_VERSION)


def row_verdict(cells: Cells, row: Row, folder: str, scan: FolderScan, expected: object,
             now: int) -> str | None:
    """A digest of everything A002-A006 read for this row: the folder, each model file's and
    record's path and stat (their bytes while the stat matches, as the digest cache trusts),
    and every cell compared. None when a file changed within a timestamp tick of `now`
    (`system.inputs.is_racy`: a later write might not move its stat) or a record vanished since
    the listing.

    A row whose digest was found clean before is not checked again: no input of the check
    can have changed, so neither can its result. This runs for every row of a warm run, so
    it digests one flat text (about 7 us a row, against 12 for a repr of nested tuples);
    names are repr()'d, so no file name can make two states read alike."""
    parts = [repr(folder), repr(expected)]
    append = parts.append
    for model_file in scan.files:
        info = model_file.stat
        if is_racy(info, now):
            return None
        append(f"{model_file.rel!r} {model_file.nofollow:d} {stat_key(info)}")
    records = scan.records
    for name in RECORDS_READ:
        if name in records:
            try:
                info = scan.record_stat(name)
            except OSError:
                return None
            if is_racy(info, now):
                return None
            append(f"{name} {stat_key(info)}")
    number = row.number
    append(repr([parsed.get(number, NOTHING)[0] for parsed in cells.compared]
                + [row.get(column) for column in cells.metric_columns]))
    digest = cells.verdict_base.copy()
    digest.update("\n".join(parts).encode("utf-8", "surrogatepass"))
    return digest.hexdigest()


#: The records whose content the checks compare (history.csv is not read).
RECORDS_READ = ("metrics.json", "run.json")
