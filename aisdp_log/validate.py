"""Validate a log: load the workbook, run the checks, return a Report."""

from __future__ import annotations

import gc
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import RepositoryError

if TYPE_CHECKING:  # imported when validating: `import aisdp_log` and `--help` stay light
    from .config import Config
    from .findings import Report


def find_repo_root(start: Path) -> Path | None:
    """The nearest folder at or above `start` holding `.git` (a folder, or a worktree's file)."""
    start = start.resolve()
    for folder in (start, *start.parents):
        if (folder / ".git").exists():
            return folder
    return None


def resolve_repo(log_path: Path, repo: Path | str | None, offline: bool) -> Path:
    """`--repo`, else the git repository that holds the log, else the current directory."""
    if repo is not None:
        root = Path(repo)
        if not root.is_dir():
            raise RepositoryError(f"{root}: --repo is not a folder")
        if not offline and find_repo_root(root) is None:
            raise RepositoryError(f"{root}: not a git repository (run `git init`, pass --repo, "
                                  "or use --offline to check the workbook alone)")
        return root.resolve()
    start = log_path.parent if log_path.parent.is_dir() else Path.cwd()
    found = find_repo_root(start) or find_repo_root(Path.cwd())
    if found is None:
        if not offline:
            raise RepositoryError(f"{log_path}: not inside a git repository and no --repo given "
                                  "(use --offline to check the workbook alone)")
        return start.resolve()
    return found


def validate(path: Path | str, *, repo: Path | str | None = None, offline: bool = False,
             config: Config | Path | str | None = None, remote: bool = False,
             progress: bool = False) -> Report:
    """Check one log and return its Report.

    Raises `aisdp_log.errors.AisdpLogError` (one line) where nothing could be checked: an
    unreadable or hostile file, a missing `Experiments` sheet, no git repository when checks
    need one, a broken `aisdp.toml`.
    """
    from .checks import Context, run_checks
    from .config import Config, load_config
    from .findings import Report
    from .workbook import display_name, load_log

    log_path = Path(path)
    if not log_path.exists():  # the first thing to say, before any repository question
        from .errors import WorkbookError

        raise WorkbookError(f"{display_name(path)}: no such file; check the path")
    root = resolve_repo(log_path, repo, offline)
    if not isinstance(config, Config):
        config = load_config(root, config)
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
                          coverage=ctx.coverage_summary)
        finally:
            ctx.close()  # the shared `git cat-file` process
            log.workbook.close()
    finally:
        if collecting:
            gc.enable()
