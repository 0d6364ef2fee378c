"""A001-A007: each row against its artefact folder `<artefacts>/<Experiment ID>/`.

The folder must exist inside the artefacts root and hold the model (A001, A007), the files
must hash to the row's `Artefact hash` (A002), and the records the training helper wrote,
`metrics.json` and `run.json`, must agree with the row (A003, A004, A006). Folders no row
names are reported once each (A005).

A warm run only lists folders and stats files. Digests and the records' parsed summaries come
from the stat-keyed cache (`hashcache`), so no model byte and no JSON is read; and a row found
clean before is not compared again while a digest of every input of its check (each file's
path and stat, every compared cell, this code) is unchanged, since its result cannot differ.
On 10,000 rows that takes the family from 0.6 s to 0.3 s of CPU, most of it the listing.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import os
import re
import stat as stat_module
import sys
import time
from dataclasses import dataclass
from typing import Iterator

from aisdp_log.artefacts.cache import (
    HashCache,
    code_fingerprint,
    is_racy,
    open_cache,
    stat_key,
)
from aisdp_log.artefacts.digests import FolderScan, combine, inside, scan_folder
from aisdp_log.artefacts.folders import plain_folder_name
from aisdp_log.domain.nested import MISSING, lookup
from aisdp_log.domain.values import (
    as_text,
    decimals_typed,
    is_number,
    parse_artefact_hash,
)
from aisdp_log.findings import Finding
from aisdp_log.system.progress import Progress
from aisdp_log.workbook.log import Log
from aisdp_log.workbook.table import Row, cell_ref

#: ctx.cache key of the hash cache, so later families (and tests) see its counters.
CACHE_KEY = "artefacts.hashcache"
#: metrics.json / run.json are a few hundred bytes; anything this big is not one.
MAX_RECORD_BYTES = 16 << 20
HEX = re.compile(r"^[0-9a-f]+$")


@dataclass(slots=True)
class _Planned:
    row: Row
    experiment_id: str
    folder: str
    scan: FolderScan
    expected_hash: str | None
    verdict: str | None = None  # digest of every input, when all are out of the racy window


def run(log: Log, ctx) -> Iterator[Finding]:
    """Check every row's artefact folder; yields findings at their cells."""
    if ctx.offline:
        return
    id_column = log.columns.get("experiment_id")
    if id_column is None:
        return  # S001 already
    shown = ctx.config.artefacts.rstrip("/\\")
    root = os.path.realpath(ctx.config.artefacts_dir)
    try:
        # one listing of the root serves every row and the orphan search: a row then costs
        # no lookup syscall for its folder
        listing = {entry.name: entry for entry in os.scandir(root)}
        root_exists = True
    except OSError:
        listing, root_exists = {}, False
    cache = ctx.cache.get(CACHE_KEY)
    if cache is None:
        cache = ctx.cache[CACHE_KEY] = open_cache(ctx.repo)

    named: set[str] = set()
    planned: list[_Planned] = []
    # a file changed within a timestamp tick of now may change again without its stat
    # moving (the digest cache's racy check): no verdict may rest on it
    now = time.time_ns()
    cells = _Cells(log)
    ids = log.parse_column(id_column)
    hash_column = log.columns.get("artefact_hash")
    hashes = log.parse_column(hash_column) if hash_column is not None else {}
    for row in log.rows:
        experiment_id = ids[row.number][0]
        if experiment_id is None:
            continue  # empty (S002) or not an ID at all (S003)
        named.add(experiment_id)
        if not root_exists:
            yield log.finding("A001", row, None, f"no artefacts folder {shown}/ in the "
                              f"repository, so {experiment_id} has no artefacts (set "
                              "`artefacts` in aisdp.toml if they live elsewhere)")
            continue
        entry = listing.get(experiment_id)
        if (entry is not None and "\\" not in experiment_id
                and entry.is_dir(follow_symlinks=False)):
            # a name the root's listing holds is one plain path component: the checks of
            # `_locate` hold for it by construction (bar `\`, refused there)
            folder = root + os.sep + experiment_id
        else:
            folder, finding = _locate(log, row, root, shown, experiment_id, listing)
            if finding is not None:
                yield finding
                continue
        scan = scan_folder(folder, root, root_resolved=True)
        if scan.escapes:
            listed = ", ".join(scan.escapes[:3]) + (" ..." if len(scan.escapes) > 3 else "")
            yield log.finding("A007", row, None, f"{shown}/{experiment_id}/{listed}: a symlink "
                              f"leading outside {shown}/; it is not followed (copy the file "
                              "into the folder)")
        if not scan.files and not scan.unreadable and not scan.escapes:
            yield log.finding("A001", row, None, f"{shown}/{experiment_id}/ holds no model "
                              "file (only run.json, metrics.json, history.csv or reruns/)")
        expected = hashes.get(row.number, _NOTHING)[0]
        hashable = (scan.files or scan.unreadable) and not scan.escapes
        verdict = None
        if scan.files and not scan.unreadable and not scan.escapes:
            verdict = _verdict(cells, row, folder, scan, expected, now)
            if verdict is not None and cells.known_verdict(cache, verdict, row.number):
                continue  # every input as when this row was last found clean
        planned.append(_Planned(row, experiment_id, folder, scan,
                                expected if hashable else None, verdict))

    flagged: set[int] = set()  # rows with a finding: their verdicts are not clean
    try:
        for finding in _hash_and_compare(log, planned, cache, shown, ctx.progress, cells):
            flagged.add(finding.row)
            yield finding
        for plan in planned:
            for finding in _metrics_json(log, plan, shown, cache, cells):
                flagged.add(finding.row)
                yield finding
            for finding in _run_json(log, plan, shown, cache, cells):
                flagged.add(finding.row)
                yield finding
        for plan in planned:
            if plan.verdict is not None and plan.row.number not in flagged \
                    and plan.row.number not in cells.lacking_rows:
                # the cells this row verified travel with its verdict: a warm run that
                # skips the comparisons still counts them (see `_Cells.known_verdict`)
                cache.store_verdict(cells.verdict_key(plan.verdict, plan.row.number))
    finally:
        cache.save()
        cells.publish(ctx.coverage)
    if root_exists:
        yield from _orphans(log, id_column, listing, shown, named)


def _locate(log: Log, row: Row, root: str, shown: str, experiment_id: str,
            listing: dict) -> tuple[str | None, Finding | None]:
    """The folder of `experiment_id` inside `root`, or the finding that says why not. The ID
    is a cell value: it must name one folder directly under the root, so `..`, absolute
    paths, separators and links leading out are refused before anything is opened."""
    if (not plain_folder_name(experiment_id) or os.path.isabs(experiment_id)
            or os.path.splitdrive(experiment_id)[0]):
        return None, log.finding("A007", row, None, f"experiment ID {experiment_id!r} is not "
                                 f"a plain folder name, so it could lead outside {shown}/; "
                                 "it is not followed")
    folder = root + os.sep + experiment_id
    entry = listing.get(experiment_id)
    if entry is not None and entry.is_dir(follow_symlinks=False):
        return folder, None
    try:
        # not listed under this exact name: a case-insensitive file system may still have it
        info = os.lstat(folder)
    except FileNotFoundError:
        return None, log.finding("A001", row, None, f"no artefact folder {shown}/"
                                 f"{experiment_id}/")
    except OSError as exc:
        return None, log.finding("A001", row, None, f"{shown}/{experiment_id}/ cannot be "
                                 f"read ({exc.strerror or exc})")
    if stat_module.S_ISLNK(info.st_mode):
        target = os.path.realpath(folder)
        if not inside(target, root):
            return None, log.finding("A007", row, None, f"{shown}/{experiment_id} is a "
                                     f"symlink leading outside {shown}/; it is not followed")
        if not os.path.isdir(target):
            return None, log.finding("A001", row, None, f"{shown}/{experiment_id} is a "
                                     "symlink to no folder")
    elif not stat_module.S_ISDIR(info.st_mode):
        return None, log.finding("A001", row, None, f"{shown}/{experiment_id} is a file, "
                                 "not a folder")
    return folder, None


def _file_list(digests: list[tuple[str, str]]) -> str:
    """The files an artefact hash covers, named (the folder records no list to compare)."""
    names = sorted(rel for _, rel in digests)
    shown = ", ".join(names[:8]) + (f", ... ({len(names) - 8} more)" if len(names) > 8 else "")
    return shown if len(names) == 1 else f"{len(names)} files: {shown}"


def _hash_and_compare(log: Log, planned: list[_Planned], cache: HashCache, shown: str,
                      show_progress: bool, cells: _Cells) -> Iterator[Finding]:
    """A002 for each row whose files hash to something else than its cell. Cached digests
    are taken first, so the progress total is the bytes that really need reading."""
    work = [plan for plan in planned if plan.expected_hash is not None]
    known: dict[str, str] = {}
    to_read = 0
    for plan in work:
        for model_file in plan.scan.files:
            cached = cache.lookup(model_file.path, model_file.stat)
            if cached is None:
                to_read += model_file.stat.st_size
            else:
                known[model_file.path] = cached
    progress = Progress(to_read, label="hashing artefacts", stream=sys.stderr,
                        enabled=show_progress and to_read > 0)
    # no callback without a display: file_digest then reads the file object directly
    on_bytes = progress.advance if progress.enabled else None
    try:
        for plan in work:
            where = f"{shown}/{plan.experiment_id}/"
            if plan.scan.unreadable:
                rel, reason = plan.scan.unreadable[0]
                yield log.finding("A002", plan.row, "artefact_hash", f"{where}{rel} cannot be "
                                  f"read ({reason}), so the hash cannot be confirmed")
                continue
            digests = []
            for model_file in plan.scan.files:
                hex_digest = known.get(model_file.path)
                if hex_digest is None:
                    try:
                        hex_digest = cache.hash_file(model_file.path, on_bytes=on_bytes,
                                                     nofollow=model_file.nofollow)
                    except OSError as exc:
                        yield log.finding("A002", plan.row, "artefact_hash",
                                          f"{where}{model_file.rel} cannot be read "
                                          f"({exc.strerror or exc}), so the hash cannot be "
                                          "confirmed")
                        break
                    known[model_file.path] = hex_digest  # a duplicated ID reads it once
                digests.append((hex_digest, model_file.rel))
            else:
                actual = combine(digests)
                cells.verify(plan.row, "artefact_hash")
                if actual != plan.expected_hash:
                    yield log.finding("A002", plan.row, "artefact_hash",
                                      f"{where} ({_file_list(digests)}) hashes to {actual}, "
                                      f"not the {plan.expected_hash[:19]}... in the cell; a "
                                      "file added, removed or changed since the hash was "
                                      "taken explains it")
    finally:
        progress.close()


# --------------------------------------------------------------------------- records

class _Cells:
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
        # what a verdict digests per row (see `_verdict`), and once per log what they mean
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
            _code_version(), list(self.by_key), [name for name, _, _ in self.metrics],
            [name for name, _, _ in self.params], layout)).encode("utf-8", "surrogatepass"),
            digest_size=20)

    def column(self, column) -> dict:
        return self.log.parse_column(column) if column is not None else {}

    def typed(self, row: Row, key: str) -> object:
        return self.by_key[key].get(row.number, _NOTHING)[0]

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


_NOTHING = (None, None)
#: Part of every verdict, with the tool's version and the source of every module of the
#: package: a verdict remembered by other code is never trusted.
VERDICT_VERSION = "artefacts-2"


def _code_version() -> str:
    """A digest of the code whose result a verdict stands for: the tool's version and every
    module of the package (the parsers in `values` decide findings as much as this module
    does), read once per process (`hashcache.code_fingerprint`)."""
    return code_fingerprint(VERDICT_VERSION)


def _verdict(cells: _Cells, row: Row, folder: str, scan: FolderScan, expected: object,
             now: int) -> str | None:
    """A digest of everything A002-A006 read for this row: the folder, each model file's and
    record's path and stat (their bytes while the stat matches, as the digest cache trusts),
    and every cell compared. None when a file changed within a timestamp tick of `now`
    (`hashcache.is_racy`: a later write might not move its stat) or a record vanished since
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
    for name in _RECORDS_READ:
        if name in records:
            try:
                info = scan.record_stat(name)
            except OSError:
                return None
            if is_racy(info, now):
                return None
            append(f"{name} {stat_key(info)}")
    number = row.number
    append(repr([parsed.get(number, _NOTHING)[0] for parsed in cells.compared]
                + [row.get(column) for column in cells.metric_columns]))
    digest = cells.verdict_base.copy()
    digest.update("\n".join(parts).encode("utf-8", "surrogatepass"))
    return digest.hexdigest()


#: The records whose content the checks compare (history.csv is not read).
_RECORDS_READ = ("metrics.json", "run.json")


#: Records up to this size have their summary kept in the stat-keyed cache (real ones are a
#: few hundred bytes; a huge one would bloat the store every run loads).
CACHED_RECORD_BYTES = 64 << 10
#: The keys of run.json the checks below compare: the cached summary keeps these alone (an
#: `environment` entry can hold a whole `pip freeze`). Keep in step with `_run_json`.
RUN_JSON_KEYS = ("experiment_id", "seed", "commit", "dirty", "data_version", "params",
                 "artefact_hash")


def _read_record(plan: _Planned, name: str, cache: HashCache,
                 keys: tuple[str, ...] | None = None) -> tuple[dict | None, str | None]:
    """(the parsed JSON object or None when absent, error text or None). With `keys`, the
    object holds those keys alone (None where absent: every check treats a null as absent).

    The summary comes from the stat-keyed cache while the file's stat matches; cold, the file
    is parsed and its summary remembered under the stat of the descriptor it was read from."""
    path = plan.scan.records.get(name)
    if path is None:
        return None, None
    try:
        cached = _from_summary(cache.lookup_record(path, plan.scan.record_stat(name)), keys)
    except OSError:
        cached = None  # gone since the listing: reading it says why
    if cached is not None:
        return cached
    read_at = time.time_ns()
    info = None
    try:
        content, info = _read_small(path)
        if content is None:
            return None, f"{name} is larger than {MAX_RECORD_BYTES >> 20} MiB"
        data = json.loads(content)
        if not isinstance(data, dict):
            data, error = None, f"{name} is not a JSON object ({{\"name\": value, ...}})"
        else:
            error = None
    except OSError as exc:
        return None, f"{name} cannot be read ({exc.strerror or exc})"
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        data, error = None, f"{name} is not valid JSON ({' '.join(str(exc).split())[:120]})"
    summary = [error, data if data is None or keys is None else [data.get(k) for k in keys]]
    if info is not None and info.st_size <= CACHED_RECORD_BYTES:
        cache.store_record(path, info, summary, read_at)
    # the cold run answers from the same summary a warm run will find
    return _from_summary(summary, keys)


def _from_summary(summary: object, keys: tuple[str, ...] | None
                  ) -> tuple[dict | None, str | None] | None:
    """(data, error) from a summary `[error, data]` (data a dict, or with `keys` the list of
    their values); None when it is not of that shape (a store is only data: then the file
    is read again)."""
    if type(summary) is not list or len(summary) != 2:
        return None
    error, data = summary
    if error is not None:
        return (None, error) if type(error) is str and data is None else None
    if keys is None:
        return (data, None) if type(data) is dict else None
    if type(data) is list and len(data) == len(keys):
        return dict(zip(keys, data)), None
    return None


def _read_small(path: str) -> tuple[bytes | None, os.stat_result]:
    """(the bytes of a record file, or None when it exceeds MAX_RECORD_BYTES; the stat of the
    descriptor read). Raw os calls: with 20,000 records in a cold run, file objects cost
    more than the reading."""
    # O_NONBLOCK: a FIFO swapped in after the listing must not hang the check
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0) | getattr(os, "O_NONBLOCK", 0))
    try:
        info = os.fstat(fd)
        if not stat_module.S_ISREG(info.st_mode):
            raise OSError(f"{path}: not a regular file")
        size = info.st_size
        if size > MAX_RECORD_BYTES:
            return None, info
        content = os.read(fd, size + 1)  # a short read of a regular file is its end
        while len(content) > size:  # it grew since the fstat: read on, within the cap
            more = os.read(fd, 1 << 16)
            if not more:
                break
            content += more
            if len(content) > MAX_RECORD_BYTES:
                return None, info
        if len(content) != size:
            info = None  # changed while read: the stat does not describe these bytes
        return content, info
    finally:
        os.close(fd)


def _metrics_json(log: Log, plan: _Planned, shown: str, cache: HashCache,
                  cells: _Cells) -> Iterator[Finding]:
    data, error = _read_record(plan, "metrics.json", cache)
    if error is not None:
        yield log.finding("A003", plan.row, None, f"{shown}/{plan.experiment_id}/{error}")
        return
    if data is None:
        return
    number = plan.row.number
    for name, column, parsed in cells.metrics:
        typed = parsed.get(number, _NOTHING)[0]
        if typed is None:
            continue  # empty, or S003 already
        where = f"{shown}/{plan.experiment_id}/"
        # `avg_prec.test` names {"avg_prec": {"test": ...}} as `dvc metrics show` does
        recorded = lookup(data, name)
        if recorded is MISSING:
            # a metric measured elsewhere (a notebook, a human rating) may be typed in the
            # log; then nothing confirms it, and the report says so
            cells.lack(plan.row, column, f"{where}metrics.json has no {name}, so nothing "
                       "confirms the cell (record it there, or check the column's name)")
            continue
        cells.verify(plan.row, column)
        if not is_number(recorded) or not math.isfinite(float(recorded)):
            yield log.finding("A003", plan.row, column, f"{where}metrics.json holds "
                              f"{json.dumps(recorded)[:40]} for {name}, not a number")
            continue
        decimals = decimals_typed(plan.row.get(column))
        if not _agrees(float(typed), float(recorded), decimals):
            rounding = (f" (the cell's {decimals} decimals allow "
                        f"±{0.5 * 10.0 ** -decimals:g})" if decimals is not None else "")
            yield log.finding("A003", plan.row, column, f"{name} is {as_text(typed)} in the "
                              f"cell but {recorded!r} in {where}metrics.json{rounding}")


def _agrees(typed: float, recorded: float, decimals: int | None) -> bool:
    """Equal within the rounding of what was typed: 0.912 stands for 0.9115..0.9125."""
    if decimals is None:
        return math.isclose(typed, recorded, rel_tol=1e-9, abs_tol=1e-12)
    allowed = 0.5 * 10.0 ** -decimals
    return abs(typed - recorded) <= allowed * (1 + 1e-9) + 1e-12


def _run_json(log: Log, plan: _Planned, shown: str, cache: HashCache,
              cells: _Cells) -> Iterator[Finding]:
    data, error = _read_record(plan, "run.json", cache, RUN_JSON_KEYS)
    if error is not None:
        yield log.finding("A004", plan.row, None, f"{shown}/{plan.experiment_id}/{error}")
        return
    if not data:
        return
    where = f"{shown}/{plan.experiment_id}/run.json"
    row = plan.row
    recorded_id = data.get("experiment_id")
    if isinstance(recorded_id, (str, int)) and str(recorded_id).strip() != plan.experiment_id:
        yield log.finding("A004", row, None, f"{where} belongs to experiment "
                          f"{str(recorded_id)[:60]!r}, not {plan.experiment_id!r}")
    # each comparison only where run.json recorded its key (each skips a null or absent key)
    for key, check in _SINGLE_CHECKS:
        if data[key] is not None:
            finding = check(log, cells, row, data, where)
            if finding is not None:
                yield finding
    yield from _params(log, cells, row, data, where)
    dirty = data["dirty"]
    if dirty is True or (dirty is not None and str(dirty).casefold() == "true"):
        yield log.finding("A006", row, None, f"{where} records uncommitted changes when the "
                          "run was trained, so the code commit may not recreate it")


def _seed(log: Log, cells: _Cells, row: Row, data: dict,
          where: str) -> Finding | None:
    recorded = data.get("seed")
    typed = cells.typed(row, "random_seed")
    if recorded is None or typed is None:
        return None
    seed = _whole_number(recorded)
    cells.verify(row, "random_seed")
    if seed is None:
        return log.finding("A004", row, "random_seed", f"{where} seed {recorded!r} is not a "
                           "whole number")
    if seed != typed:
        return log.finding("A004", row, "random_seed", f"the row says seed {typed}, {where} "
                           f"says {seed}")
    return None


def _whole_number(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"\s*[+-]?\d+\s*", value):
        return int(value)
    return None


def _prefix_match(a: str, b: str) -> bool:
    """One of two hex strings is a prefix of the other (both already lower case)."""
    return a.startswith(b) or b.startswith(a)


def _commit(log: Log, cells: _Cells, row: Row, data: dict,
            where: str) -> Finding | None:
    recorded = data.get("commit")
    typed = cells.typed(row, "code_commit")
    if not isinstance(recorded, str) or not recorded.strip() or typed is None:
        return None
    commit = recorded.strip().lower()
    cells.verify(row, "code_commit")
    if len(commit) < 7 or not HEX.match(commit):
        return log.finding("A004", row, "code_commit", f"{where} commit {recorded[:60]!r} is "
                           "not a git SHA")
    if not _prefix_match(commit, typed):
        return log.finding("A004", row, "code_commit", f"the row says commit {typed}, {where} "
                           f"says {commit[:12]}")
    return None


def _md5_like(value: object) -> str | None:
    """The hex of an md5 or md5 prefix (8 to 32 hex, `.dir` suffix allowed), else None."""
    if not isinstance(value, str):
        return None
    return _md5_text(value)


@functools.lru_cache(maxsize=4096)  # a log names a handful of data versions, 10,000 times
def _md5_text(value: str) -> str | None:
    text = value.strip().lower()
    text = text[:-4] if text.endswith(".dir") else text
    return text if 8 <= len(text) <= 32 and HEX.match(text) else None


def _data_version(log: Log, cells: _Cells, row: Row, data: dict,
                  where: str) -> Finding | None:
    typed = _md5_like(cells.typed(row, "data_version"))
    if typed is None:
        # the cell names a git tag or commit (7 or 40 hex, or not hex): what it pins is for
        # the DVC checks to resolve from git objects; this family reads no git
        return None
    recorded = data.get("data_version")
    values = list(recorded.values()) if isinstance(recorded, dict) else \
        list(recorded) if isinstance(recorded, list) else [recorded]
    hashes = [h for h in (_md5_like(v) for v in values) if h is not None]
    if not hashes:
        return None  # not recorded, or recorded as a tag: nothing comparable
    cells.verify(row, "data_version")
    if not any(_prefix_match(typed, h) for h in hashes):
        return log.finding("A004", row, "data_version", f"the row says data version {typed}, "
                           f"{where} says {', '.join(h[:12] for h in hashes)}")
    return None


def _canonical(value: object):
    """A param value in a form where 0.01, 1e-2 and "0.01" are equal, ints equal floats of the
    same value, and text compares case-insensitively (choices are written `Adam` or `adam`)."""
    if type(value) in (str, int, float):  # what cells and run.json mostly hold, 10,000 times
        return _canonical_scalar(value)
    return _canonical_any(value)


@functools.lru_cache(maxsize=4096)
def _canonical_scalar(value: str | int | float):
    return _canonical_any(value)


def _canonical_any(value: object):
    if value is None:
        return ("none", None)
    if isinstance(value, bool):
        return ("num", float(value))
    if isinstance(value, (int, float)):
        return ("num", float(value))
    if isinstance(value, (list, tuple)):
        return ("list", tuple(_canonical(v) for v in value))
    if isinstance(value, dict):
        return ("dict", tuple(sorted((str(k).casefold(), _canonical(v))
                                     for k, v in value.items())))
    text = str(value).strip()
    folded = text.casefold()
    if folded in ("true", "false"):
        return ("num", 1.0 if folded == "true" else 0.0)
    if folded in ("", "none", "null"):
        return ("none", None)
    if text[:1] in "[{":
        try:
            return _canonical(json.loads(text))
        except (ValueError, RecursionError):
            pass
    try:
        return ("num", float(text))
    except ValueError:
        return ("text", folded)


def same_param(a: object, b: object) -> bool:
    """Type-aware equality of a param as typed in a cell and as recorded in run.json."""
    return _same(_canonical(a), _canonical(b))


def _same(a, b) -> bool:
    if a[0] != b[0]:
        return False
    if a[0] == "num":
        x, y = a[1], b[1]
        return (math.isnan(x) and math.isnan(y)) or math.isclose(x, y, rel_tol=1e-9)
    if a[0] in ("list", "dict"):
        if len(a[1]) != len(b[1]):
            return False
        if a[0] == "list":
            return all(_same(x, y) for x, y in zip(a[1], b[1]))
        return all(kx == ky and _same(x, y) for (kx, x), (ky, y) in zip(a[1], b[1]))
    return a[1] == b[1]


def _params(log: Log, cells: _Cells, row: Row, data: dict,
            where: str) -> Iterator[Finding]:
    recorded = data.get("params")
    if recorded is not None and not isinstance(recorded, dict):
        yield log.finding("A004", row, None, f"{where} params is not a JSON object")
    table = recorded if isinstance(recorded, dict) else {}
    for name, column, parsed in cells.params:
        typed = parsed.get(row.number, _NOTHING)[0]
        if typed is None:
            continue
        # `train.n_est` names {"train": {"n_est": ...}} as `dvc params diff` does
        value = lookup(table, name)
        if value is MISSING:
            # the script may read this setting from elsewhere (a params file at that
            # commit, which D004 compares); if nothing else does, A008 says so
            cells.lack(row, column, f"{where} records no {name}"
                       + ("" if isinstance(recorded, dict) else " (it has no params)")
                       + ", so nothing confirms the cell")
            continue
        cells.verify(row, column)
        if not same_param(typed, value):
            yield log.finding("A004", row, column, f"the row says {name} = {as_text(typed)}, "
                              f"{where} says {json.dumps(value)[:60]}")
    others = cells.typed(row, "other_params")
    if isinstance(others, dict) and others:
        found = {key: lookup(table, key) for key in others}
        absent = [key for key, value in found.items() if value is MISSING]
        if absent:
            cells.lack(row, "other_params", f"{where} records no {', '.join(absent)[:80]}, "
                       "so nothing confirms the cell")
        else:
            cells.verify(row, "other_params")
        differing = [f"{key} = {text} (run.json: {json.dumps(found[key])[:40]})"
                     for key, text in others.items()
                     if found[key] is not MISSING and not same_param(text, found[key])]
        if differing:
            yield log.finding("A004", row, "other_params", f"{where} disagrees: "
                              + "; ".join(differing))


def _recorded_hash(log: Log, cells: _Cells, row: Row, data: dict,
                   where: str) -> Finding | None:
    """run.json's `artefact_hash` is the model as trained; a row naming another hash means
    the files changed after the run (or the row describes another run)."""
    recorded = data.get("artefact_hash")
    typed = cells.typed(row, "artefact_hash")
    if not isinstance(recorded, str) or typed is None:
        return None
    try:
        trained = parse_artefact_hash(recorded)  # as the cell's own value is read
    except ValueError:
        return None  # not a sha256 this check can compare
    cells.verify(row, "artefact_hash")
    if trained != typed:
        return log.finding("A004", row, "artefact_hash", f"{where} records the trained model "
                           f"as {trained[:19]}..., the row names {typed[:19]}...")
    return None


#: run.json keys compared by a check that finds at most one thing, in the order reported.
_SINGLE_CHECKS = (("seed", _seed), ("commit", _commit), ("data_version", _data_version),
                  ("artefact_hash", _recorded_hash))


# --------------------------------------------------------------------------- orphans

def _orphans(log: Log, id_column, listing: dict, shown: str,
             named: set[str]) -> Iterator[Finding]:
    """A005 for each real folder under the root that no row names. Symlinks at the root are
    aliases (`latest -> EXP-007`), not artefacts of their own, and are never followed;
    dot-folders belong to tools (.ipynb_checkpoints, .dvc)."""
    header_cell = cell_ref(1, id_column.index)
    folded = {name.casefold(): name for name in named}
    for entry in sorted(listing.values(), key=lambda e: e.name):
        if entry.name.startswith(".") or entry.name in named:
            continue
        try:
            if not entry.is_dir(follow_symlinks=False):
                continue
        except OSError:
            continue
        hint = folded.get(entry.name.casefold())
        message = f"{shown}/{entry.name}/ is named by no row"
        message += (f" (row ID {hint!r} differs only in case)" if hint else
                    "; add its row (`aisdp-log add`) or remove the folder")
        yield log.finding_at("A005", log.sheet, header_cell, 1, id_column.display, message,
                             experiment_id=entry.name)
