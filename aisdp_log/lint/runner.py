"""Validate a log: load the workbook, run the check families, return a Report."""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from aisdp_log.errors import WorkbookError
from aisdp_log.findings import Finding, Report
from aisdp_log.repo.roots import config_for, resolve_repo, shown_config
from aisdp_log.system import inputs

if TYPE_CHECKING:
    from aisdp_log.config import Config
    from aisdp_log.lint.context import Context
    from aisdp_log.lint.registry import Family


def validate(path: Path | str, *, repo: Path | str | None = None, offline: bool = False,
             config: Config | Path | str | None = None, remote: bool = False,
             progress: bool = False) -> Report:
    """Check one log and return its Report.

    Raises `aisdp_log.errors.AisdpLogError` (one line) where nothing could be checked: an
    unreadable or hostile file, a missing `Experiments` sheet, no git repository when checks
    need one, a broken `aisdp.toml`.
    """

    log_path = Path(path)
    if not log_path.exists():  # the first thing to say, before any repository question
        from aisdp_log.workbook.container import display_name

        raise WorkbookError(f"{display_name(path)}: no such file; check the path")
    # before anything is read: a path changed after this moment keeps the run unstored
    started_ns = time.time_ns()
    with inputs.recording() as recorder:
        root = resolve_repo(log_path, repo, offline)
        config = config_for(log_path, root, config)
        # a validation run again with nothing changed replays its report (lint/results.py);
        # --remote asks a remote and an engine, whose answers no stat can vouch for
        key = None
        if recorder is not None and not remote:
            from aisdp_log.lint import results

            key = results.head_key(log_path, root, config, offline=offline)
            if key is not None:
                replayed = results.replay(root, key)
                if replayed is not None:
                    return replayed
        report = _validate(log_path, path, root, config, offline=offline, remote=remote,
                           progress=progress)
        if key is not None and recorder is not None:
            results.store(root, key, recorder, started_ns, report, offline=offline)
        return report


def _validate(log_path: Path, path: Path | str, root: Path, config: Config, *, offline: bool,
              remote: bool, progress: bool) -> Report:
    """Load the log and run every family (see `validate`)."""
    from aisdp_log.lint.context import Context
    from aisdp_log.workbook.reader import load_log

    # A validation makes hundreds of thousands of small objects (cells, parses, cache
    # entries) and no garbage cycles worth a collection: the cycle collector's passes over
    # them cost ~7% of a 10,000-row validation. Paused here, restored as it was.
    collecting = gc.isenabled()
    gc.disable()
    try:
        log = load_log(log_path, config)
        ctx = Context(config=config, repo=root, offline=offline, remote=remote,
                      progress=progress)
        try:
            findings = run_checks(log, ctx)
            return Report(log=str(path), rows=len(log.rows), findings=findings,
                          config=shown_config(config), coverage=ctx.coverage_summary)
        finally:
            ctx.close()  # the shared `git cat-file` process
            log.workbook.close()
    finally:
        if collecting:
            gc.enable()


#: Families that mostly wait for git processes. They run in a thread beside the artefact
#: checks (after schema, which parses every cell they read), so on two cores git works while
#: Python lists artefact folders: on a 10,000-row log that hides ~0.2 s of git's time.
BACKGROUND_FAMILIES = ("git", "dvc", "params")
#: Below this many rows git answers in milliseconds and a thread costs more than it hides.
BACKGROUND_MIN_ROWS = 200


def run_checks(log, ctx: Context) -> list[Finding]:
    """Every family's findings (see `aisdp_log.lint.registry`), then A008 for the cells none
    verified, de-duplicated and in sheet order."""
    from aisdp_log.lint.coverage import CODES as COVERAGE_CODES
    from aisdp_log.lint.coverage import conclude
    from aisdp_log.lint.registry import check_declared, families

    chosen = families(ctx.offline)
    background = [family for family in chosen if family.name in BACKGROUND_FAMILIES]
    # a thread pays only on a long log, where other repository checks run meanwhile
    overlap = len(log.rows) >= BACKGROUND_MIN_ROWS and any(
        f.online and f.name not in BACKGROUND_FAMILIES for f in chosen)
    found: dict[str, list[Finding]] = {}
    worker = None
    for family in chosen:
        if family.name in BACKGROUND_FAMILIES and overlap:
            if worker is None:
                worker = _Background(log, ctx, background)
                worker.start()
            continue
        if worker is not None and not family.online:
            worker.finish(found)  # later families may read what the git checks cached
            worker = None
        found[family.name] = family.run(log, ctx)
    if worker is not None:
        worker.finish(found)
    # in the families' order, so de-duplication keeps the same finding as ever
    findings = [finding for family in chosen for finding in found.get(family.name, ())]
    # a family that also emits another family's code knows more about that cell (git's S003
    # names the commit a tag in `Code commit` points to): its finding is kept over the owner's
    findings = [finding for family in chosen for finding in found.get(family.name, ())
                if finding.code in family.shared] + findings
    # last: whether a cell was verified depends on every family (A008 only where none did)
    unverified, ctx.coverage_summary = conclude(log, ctx, findings)
    check_declared(conclude.__module__, unverified, COVERAGE_CODES)
    findings += unverified
    return sorted(deduplicate(findings), key=lambda f: f.sort_key)


class _Background(threading.Thread):
    """Runs some families in order in a thread; `finish` waits and re-raises what they
    raised (a RepositoryError stays the one-line error it is)."""

    def __init__(self, log, ctx: Context, chosen: list[Family]):
        super().__init__(name="aisdp-log git checks", daemon=True)
        self.log, self.ctx, self.chosen = log, ctx, chosen
        self.found: dict[str, list[Finding]] = {}
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            for family in self.chosen:
                self.found[family.name] = family.run(self.log, self.ctx)
        except BaseException as exc:  # handed to the main thread
            self.error = exc

    def finish(self, found: dict[str, list[Finding]]) -> None:
        self.join()
        if self.error is not None:
            raise self.error
        found.update(self.found)


def deduplicate(findings: Iterable[Finding]) -> Iterator[Finding]:
    seen = set()
    for finding in findings:
        # experiment_id too: A005 reports one orphan folder each at the same header cell
        key = (finding.code, finding.sheet, finding.cell, finding.column, finding.experiment_id)
        if key not in seen:
            seen.add(key)
            yield finding
