"""Validate a log: load the workbook, run the checks, return a Report."""

from __future__ import annotations

import gc
from pathlib import Path
from typing import TYPE_CHECKING

from aisdp_log.errors import WorkbookError
from aisdp_log.findings import Report
from aisdp_log.lint.checks import Context, run_checks
from aisdp_log.repo.roots import config_for, find_repo_root, resolve_repo, shown_config  # noqa: F401 - their old home
from aisdp_log.workbook.container import display_name
from aisdp_log.workbook.reader import load_log

if TYPE_CHECKING:  # imported when validating: `import aisdp_log` and `--help` stay light
    from aisdp_log.config import Config
    from aisdp_log.findings import Report


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

        raise WorkbookError(f"{display_name(path)}: no such file; check the path")
    root = resolve_repo(log_path, repo, offline)
    config = config_for(log_path, root, config)
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
