"""A001-A007: each row against its artefact folder `<artefacts>/<Experiment ID>/`.

The folder must exist inside the artefacts root and hold the model (A001, A007), the files
must hash to the row's `Artefact hash` (A002), and the records the training helper wrote,
`metrics.json` and `run.json`, must agree with the row (A003, A004, A006). Folders no row
names are reported once each (A005).

A warm run only lists folders and stats files. Digests and the records' parsed summaries come
from the stat-keyed cache (`artefacts.cache`), so no model byte and no JSON is read; and a
row found clean before is not compared again while a digest of every input of its check (each
file's path and stat, every compared cell, this code) is unchanged, since its result cannot
differ. On 10,000 rows that takes the family from 0.6 s to 0.3 s of CPU, most of it the listing.

This module finds the folders and compares their digests; the records are read by
`aisdp_log.artefacts.records` and compared by `aisdp_log.lint.artefact_records`, and the
verdicts are kept by `aisdp_log.lint.artefact_verdicts`.
"""

from __future__ import annotations

import os
import stat as stat_module
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from aisdp_log.artefacts.cache import HashCache
from aisdp_log.artefacts.digests import combine, inside, scan_folder
from aisdp_log.artefacts.folders import plain_folder_name
from aisdp_log.findings import Finding
from aisdp_log.lint.artefact_records import Planned, metrics_json, run_json
from aisdp_log.lint.artefact_verdicts import NOTHING, Cells, row_verdict
from aisdp_log.system import inputs
from aisdp_log.system.progress import Progress
from aisdp_log.workbook.log import Log
from aisdp_log.workbook.table import Row, cell_ref

#: The finding codes this family may emit (see `aisdp_log.lint.registry`).
CODES = ("A001", "A002", "A003", "A004", "A005", "A006", "A007")


def run(log: Log, ctx) -> Iterator[Finding]:
    """Check every row's artefact folder; yields findings at their cells."""
    if ctx.offline:
        return
    id_column = log.columns.get("experiment_id")
    if id_column is None:
        return  # S001 already
    shown = ctx.config.artefacts.rstrip("/\\")
    root = os.path.realpath(ctx.config.artefacts_dir)
    inputs.note(root)  # its entries: the rows' folders and the orphans
    # the folders are read at their real paths: a symlink on the way there (`artefacts` ->
    # a larger disk) pointed elsewhere, or a folder on the way replaced, must be seen
    configured = os.path.abspath(ctx.config.artefacts_dir)
    if configured != root:
        inputs.note_identity([configured, *Path(configured).parents])
    try:
        # one listing of the root serves every row and the orphan search: a row then costs
        # no lookup syscall for its folder
        listing = {entry.name: entry for entry in os.scandir(root)}
        root_exists = True
    except OSError:
        listing, root_exists = {}, False
    cache = ctx.hash_cache

    named: set[str] = set()
    planned: list[Planned] = []
    read: list[str] = []  # every folder listed and file statted, for `system.inputs`
    # a file changed within a timestamp tick of now may change again without its stat
    # moving (the digest cache's racy check): no verdict may rest on it
    now = time.time_ns()
    cells = Cells(log)
    ids = log.parse_column(id_column)
    hash_column = log.columns.get("artefact_hash")
    hashes = log.parse_column(hash_column) if hash_column is not None else {}
    for row in log.rows:
        experiment_id = ids[row.number][0]
        if not isinstance(experiment_id, str):  # parse_id gives a str
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
        if scan.links:
            inputs.refuse(f"{shown}/{experiment_id}/ holds a symlink")
        # `root` is a real path and `folder` a plain name under it: absolute and normal
        read += scan.folders
        read += [model_file.path for model_file in scan.files]
        read += scan.records.values()
        if scan.escapes:
            listed = ", ".join(scan.escapes[:3]) + (" ..." if len(scan.escapes) > 3 else "")
            yield log.finding("A007", row, None, f"{shown}/{experiment_id}/{listed}: a symlink "
                              f"leading outside {shown}/; it is not followed (copy the file "
                              "into the folder)")
        if not scan.files and not scan.unreadable and not scan.escapes:
            yield log.finding("A001", row, None, f"{shown}/{experiment_id}/ holds no model "
                              "file (only run.json, metrics.json, history.csv or reruns/)")
        expected = hashes.get(row.number, NOTHING)[0]
        if not isinstance(expected, str):  # parse_artefact_hash gives a str
            expected = None  # empty or bad
        hashable = (scan.files or scan.unreadable) and not scan.escapes
        verdict = None
        if scan.files and not scan.unreadable and not scan.escapes:
            verdict = row_verdict(cells, row, folder, scan, expected, now)
            if verdict is not None and cells.known_verdict(cache, verdict, row.number):
                continue  # every input as when this row was last found clean
        planned.append(Planned(row, experiment_id, folder, scan,
                                expected if hashable else None, verdict))

    inputs.note_absolute(read)
    flagged: set[int] = set()  # rows with a finding: their verdicts are not clean
    try:
        for finding in _hash_and_compare(log, planned, cache, shown, ctx.progress, cells):
            flagged.add(finding.row)
            yield finding
        for plan in planned:
            for finding in metrics_json(log, plan, shown, cache, cells):
                flagged.add(finding.row)
                yield finding
            for finding in run_json(log, plan, shown, cache, cells):
                flagged.add(finding.row)
                yield finding
        for plan in planned:
            if plan.verdict is not None and plan.row.number not in flagged \
                    and plan.row.number not in cells.lacking_rows:
                # the cells this row verified travel with its verdict: a warm run that
                # skips the comparisons still counts them (see `Cells.known_verdict`)
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
    inputs.note(folder)
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
        inputs.refuse(f"{shown}/{experiment_id} is a symlink")
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


def _hash_and_compare(log: Log, planned: list[Planned], cache: HashCache, shown: str,
                      show_progress: bool, cells: Cells) -> Iterator[Finding]:
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
            assert plan.expected_hash is not None  # work holds only rows with a hash
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
