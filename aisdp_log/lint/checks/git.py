"""G001-G007: does each row's `Code commit` exist, unambiguously, dated no later than the run,
in the shared history (a branch or tag; with a remote, pushed), with the lock file the
`Environment` cell names (in any common spelling; a `sha256:` tied to no file is G007)?

Every question is one batched git call for the whole log (see `aisdp_log.repo.git`). In a
shallow clone G006 stands alone for the findings that need history."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable, Iterator

from aisdp_log.domain.locks import lock_entries, lock_matches, lock_repo_path, read_lock_entries
from aisdp_log.findings import Finding
from aisdp_log.repo.gitparse import CommitLookup, is_ref_name, repo_prefix
from aisdp_log.workbook.log import Log
from aisdp_log.workbook.table import Row

#: The finding codes this family may emit (see `aisdp_log.lint.registry`).
CODES = ("G001", "G002", "G003", "G004", "G005", "G006", "G007")
#: The schema owns S003; this family emits it too, naming the commit a tag or branch in
#: `Code commit` points to (the runner keeps it over the schema's at the same cell).
SHARED = ("S003",)


def row_commits(log: Log, ctx) -> dict[int, tuple[str, CommitLookup]]:
    """Row number -> (the commit as typed, its lookup) for rows with a well-formed commit.

    Shared through `ctx.row_commits` with the DVC checks; the same `cat-file` call also resolves
    data versions that look like git names (see `name_lookups`)."""
    cached = ctx.row_commits
    if cached is None:
        lookups = name_lookups(log, ctx)
        cached = {}
        column = log.columns.get("code_commit")
        for row in log.rows:
            commit, error = log.parse(row, column)
            if isinstance(commit, str) and error is None:  # parse_commit gives a str
                cached[row.number] = (commit, lookups[commit])
        ctx.row_commits = cached
    return cached


def name_lookups(log: Log, ctx) -> dict[str, CommitLookup]:
    """Every git name the log mentions (code commits, data versions that look like refs),
    resolved in one `git cat-file --batch`."""
    cached = ctx.git_names
    if cached is None:
        names = []
        commit_column = log.columns.get("code_commit")
        version_column = log.columns.get("data_version")
        for row in log.rows:
            commit, error = log.parse(row, commit_column)
            if commit is not None and error is None:
                names.append(commit)
            version, error = log.parse(row, version_column)
            # parse_data_version gives a str
            if isinstance(version, str) and error is None and is_ref_name(version):
                names.append(version)
        cached = ctx.git_names = ctx.git.lookup_commits(names)
    return cached



def run(log: Log, ctx) -> Iterator[Finding]:
    column = log.columns.get("code_commit")
    if column is None:
        return  # S001 already
    repo = ctx.git
    yield from _unplaced_hashes(log)
    if repo.is_shallow:
        yield log.finding("G006", 1, column, "the repository is a shallow clone, so the "
                          "checks that need history (G001-G004 on commits, D001/D002 on data "
                          "versions) were not run; fetch full history (`git fetch "
                          "--unshallow`, or `fetch-depth: 0` in actions/checkout)",
                          experiment_id=False)
    yield from _names_in_commit_cells(log, ctx, column)
    commits = row_commits(log, ctx)
    found: dict[int, str] = {}
    for row in log.rows:
        if row.number not in commits:
            continue
        typed, lookup = commits[row.number]
        if lookup.status == "found":
            assert lookup.sha is not None  # "found" sets the sha
            found[row.number] = lookup.sha
        elif repo.is_shallow:
            continue  # G006 says why commits look missing or alike
        elif lookup.status == "ambiguous":
            yield log.finding("G002", row, column, f"{typed} matches several commits; write "
                              "more characters of the SHA")
        else:
            yield log.finding("G001", row, column, f"commit {typed} is not in the "
                              "repository (push or fetch it, or correct the SHA)")
    if not found:
        return
    unreachable: set[str] = set()
    local_only: dict[str, list[str]] = {}
    if not repo.is_shallow:
        unreachable = repo.unreachable(found.values())
        if repo.remotes():  # shared history is what the remote holds
            local_only = repo.local_only(sha for sha in found.values() if sha not in unreachable)
    locks = _lock_entries(log, found, repo_prefix(ctx.repo, repo.root))
    # every lock file named, read at its row's commit in one call
    blobs = repo.read_blobs(f"{found[number]}:{repo_path}" for number, entries in locks.items()
                            for _, repo_path, _ in entries if repo_path is not None)
    for row in log.rows:
        sha = found.get(row.number)
        if sha is None:
            continue
        typed, lookup = commits[row.number]
        date = log.typed(row, "date")  # a dt.date (parse_date), or None when empty or bad
        committed = lookup.committed  # None only when not found; `_after` says False then
        if isinstance(date, dt.date) and committed is not None and not repo.is_shallow \
                and _after(committed, date):
            yield log.finding("G003", row, column,
                              f"commit {typed} is dated {committed.isoformat()} "
                              f"({committed.astimezone(dt.timezone.utc).date().isoformat()} "
                              f"UTC), after the experiment's date {date.isoformat()}")
        if sha in unreachable:
            yield log.finding("G004", row, column, f"commit {typed} is on no branch or tag, so "
                              "a fresh clone lacks it; merge or tag it")
        elif local_only.get(sha):
            branches = local_only[sha]
            remote = repo.remotes()[0] if len(repo.remotes()) == 1 else "<remote>"
            yield log.finding("G004", row, column, f"commit {typed} is only on the local "
                              f"branch {', '.join(branches)}, on no remote branch or tag, so "
                              f"a fresh clone lacks it; push it (`git push {remote} "
                              f"{branches[0]}`)")
        elif sha in local_only:
            yield log.finding("G004", row, column, f"commit {typed} is on no remote branch or "
                              "tag, so a fresh clone lacks it; push it or tag it")
        yield from _environment(log, row, sha, typed, locks.get(row.number, ()), blobs)


def _after(committed: dt.datetime | None, date: dt.date) -> bool:
    """Whether a commit is dated after the experiment's date both in UTC and in the
    committer's own zone: a run dated in UTC from a commit made at 01:44 +02:00 the next
    day is fine, and so is a run dated in local time from a commit late that evening UTC."""
    if committed is None:
        return False
    return committed.date() > date and \
        committed.astimezone(dt.timezone.utc).date() > date


def _unplaced_hashes(log: Log) -> Iterator[Finding]:
    """G007: a `sha256:` in an Environment cell that no file is tied to, so nothing checks it."""
    for row in log.rows:
        environment = log.typed(row, "environment")
        if not isinstance(environment, str) or "sha256:" not in environment.lower():
            continue
        unplaced = read_lock_entries(environment)[1]
        if unplaced:
            shown = ", ".join(word if len(word) <= 40 else word[:37] + "..."
                              for word in unplaced)
            yield log.finding("G007", row, "environment", f"{shown}: no lock file is tied "
                              "to this hash (or it is not 8-64 hex characters), so nothing "
                              "checks it; write the lock file as `<path> sha256:<hex>`, a "
                              "container image as `image: NAME@sha256:<hex>`")


def _names_in_commit_cells(log: Log, ctx, column) -> Iterator[Finding]:
    """S003 with the commit a tag or branch in `Code commit` points to (the schema check
    cannot ask git; its finding at the same cell gives way to this one)."""
    typed_refs = {}
    for row in log.rows:
        _, error = log.parse(row, column)
        raw = log.value(row, "code_commit")
        if error is not None and isinstance(raw, str) and is_ref_name(raw.strip()):
            typed_refs[row.number] = raw.strip()
    if not typed_refs:
        return
    repo = ctx.git
    lookups = repo.lookup_commits(typed_refs.values())
    refs = repo.refs()
    for row in log.rows:
        name = typed_refs.get(row.number)
        if name is None or lookups[name].status != "found":
            continue
        if f"refs/tags/{name}" in refs:
            kind = "a tag"
        elif f"refs/heads/{name}" in refs or f"refs/remotes/{name}" in refs:
            kind = "a branch (it moves on)"
        else:
            kind = "a git name, not a commit"
        yield log.finding("S003", row, column, f"{name} is {kind}; write its commit "
                          f"{lookups[name].sha}")



def _lock_entries(log: Log, found: dict[int, str],
                  prefix: str) -> dict[int, list[tuple[str, str | None, str]]]:
    """Row number -> (path as typed, path from the repository root or None when it escapes,
    hex) for each lock file named in the Environment cell of a row whose commit was found."""
    entries = {}
    for row in log.rows:
        if row.number not in found:
            continue
        environment = log.typed(row, "environment")
        if isinstance(environment, str):  # parse_text gives a str, None when empty
            entries[row.number] = [(path, lock_repo_path(path, prefix), digest)
                                   for path, digest in lock_entries(environment)]
    return entries


def _environment(log: Log, row: Row, sha: str, typed: str,
                 entries: Iterable[tuple[str, str | None, str]],
                 blobs: dict[str, bytes | None]) -> Iterator[Finding]:
    for path, repo_path, digest in entries:
        if repo_path is None:
            yield log.finding("G005", row, "environment", f"{path} is outside the repository: "
                              "name the lock file by its path inside it")
            return
        blob = blobs.get(f"{sha}:{repo_path}")
        if blob is None:
            yield log.finding("G005", row, "environment",
                              f"commit {typed} has no file {path}: commit the lock file")
            return
        if not lock_matches(blob, digest):
            actual = hashlib.sha256(blob).hexdigest()
            yield log.finding("G005", row, "environment",
                              f"{path} at commit {typed} has sha256:{actual}, not "
                              f"sha256:{digest}")
            return
