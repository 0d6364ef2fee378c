"""The context the check families receive besides the workbook: configuration, repository, and
what they share (the git handle, resolved commits, the hash cache, the coverage they record)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from aisdp_log.config import Config
from aisdp_log.lint.coverage import Coverage, CoverageSummary
from aisdp_log.repo.gitparse import CommitLookup

if TYPE_CHECKING:
    from aisdp_log.artefacts.cache import HashCache
    from aisdp_log.repo.git import GitRepo


@dataclass
class Context:
    """What the checks may consult besides the workbook."""

    config: Config
    repo: Path
    offline: bool = False
    remote: bool = False
    progress: bool = False
    #: The evidence cells each check compared with a witness (see `aisdp_log.lint.coverage`).
    coverage: Coverage = field(default_factory=Coverage)
    #: Set by `run_checks`: the figure `N of N+M evidence cells verified`.
    coverage_summary: CoverageSummary | None = None
    #: Set by the git checks (`checks.git.row_commits`) and shared with the DVC and params
    #: checks and the coverage count: row number -> (the commit as typed, its lookup).
    row_commits: dict[int, tuple[str, CommitLookup]] | None = None
    #: Rows whose container images an engine was asked about (`checks.images`, --remote).
    images_checked: set[int] = field(default_factory=set)
    #: Every git name the log mentions, resolved in one call (`checks.git.name_lookups`).
    git_names: dict[str, CommitLookup] | None = None
    _git: GitRepo | None = field(default=None, init=False, repr=False)
    _hash_cache: HashCache | None = field(default=None, init=False, repr=False)

    @property
    def git(self) -> GitRepo:
        """The repository handle shared by the check families (opened once per validation,
        on first need: an offline validation starts no git process)."""
        if self._git is None:
            # loaded here: an offline validation never imports git's wrapper (see registry)
            from aisdp_log.repo.git import GitRepo

            self._git = GitRepo.open(self.repo)
        return self._git

    @property
    def opened_git(self) -> GitRepo | None:
        """The handle if a family opened it, else None (asking opens nothing)."""
        return self._git

    @property
    def hash_cache(self) -> HashCache:
        """The repository's stat-keyed digest cache (`artefacts.cache`), opened on first need;
        a NullCache where it cannot be written. Kept here so later families (and tests) see
        its counters."""
        if self._hash_cache is None:
            # loaded here: an offline validation never imports the cache (see registry)
            from aisdp_log.artefacts.cache import open_cache

            self._hash_cache = open_cache(self.repo)
        return self._hash_cache

    def close(self) -> None:
        """Release what the families opened: the shared `git cat-file` process."""
        if self._git is not None:
            self._git.close()
