"""G001-G006: does each row's `Code commit` exist, unambiguously, dated no later than the run,
on a branch or tag, with the lock file the `Environment` cell names?

Every question is one batched git call for the whole log (see `aisdp_log.gitrepo`)."""

from __future__ import annotations

import hashlib
import posixpath
import re
from typing import Iterable, Iterator

from ..findings import Finding
from ..gitrepo import CommitLookup, repo_for, repo_prefix
from ..workbook import Log, Row

#: `<path> sha256:<hex>` inside an Environment cell; 8+ hex compares as a prefix.
LOCK_ENTRY = re.compile(r"(?:^|(?<=[\s;,]))([^\s;,]+)\s+sha256:([0-9a-fA-F]{8,64})(?![0-9a-fA-F])")
#: Names without a dot that still are files worth pinning.
DOTLESS_FILES = frozenset({"Dockerfile", "Containerfile", "Pipfile", "Gemfile", "Makefile"})
#: A data version that may name a git tag, branch or commit (no rev syntax such as `~`, `@{`).
REF_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]*$")


def row_commits(log: Log, ctx) -> dict[int, tuple[str, CommitLookup]]:
    """Row number -> (the commit as typed, its lookup) for rows with a well-formed commit.

    Shared through `ctx.cache` with the DVC checks; the same `cat-file` call also resolves
    data versions that look like git names (see `name_lookups`)."""
    cached = ctx.cache.get("row_commits")
    if cached is None:
        lookups = name_lookups(log, ctx)
        cached = {}
        column = log.columns.get("code_commit")
        for row in log.rows:
            commit, error = log.parse(row, column)
            if commit is not None and error is None:
                cached[row.number] = (commit, lookups[commit])
        ctx.cache["row_commits"] = cached
    return cached


def name_lookups(log: Log, ctx) -> dict[str, CommitLookup]:
    """Every git name the log mentions (code commits, data versions that look like refs),
    resolved in one `git cat-file --batch`."""
    cached = ctx.cache.get("git_names")
    if cached is None:
        names = []
        commit_column = log.columns.get("code_commit")
        version_column = log.columns.get("data_version")
        for row in log.rows:
            commit, error = log.parse(row, commit_column)
            if commit is not None and error is None:
                names.append(commit)
            version, error = log.parse(row, version_column)
            if version is not None and error is None and looks_like_ref(version):
                names.append(version)
        cached = ctx.cache["git_names"] = repo_for(ctx).lookup_commits(names)
    return cached


def looks_like_ref(name: str) -> bool:
    """Whether a data version may name a git tag, branch or commit (worth asking git)."""
    return bool(REF_NAME.match(name)) and ".." not in name and not name.endswith(".lock")


def run(log: Log, ctx) -> Iterator[Finding]:
    column = log.columns.get("code_commit")
    if column is None:
        return  # S001 already
    repo = repo_for(ctx)
    if repo.is_shallow:
        yield log.finding("G006", 1, column, "the repository is a shallow clone: commits older "
                          "than its depth look missing; fetch full history (`git fetch "
                          "--unshallow`, or `fetch-depth: 0` in actions/checkout)",
                          experiment_id=False)
    commits = row_commits(log, ctx)
    found: dict[int, str] = {}
    for row in log.rows:
        if row.number not in commits:
            continue
        typed, lookup = commits[row.number]
        if lookup.status == "ambiguous":
            yield log.finding("G002", row, column, f"{typed} matches several commits; write "
                              "more characters of the SHA")
        elif lookup.status != "found":
            if not repo.is_shallow:  # G006 already says why commits look missing
                yield log.finding("G001", row, column, f"commit {typed} is not in the "
                                  "repository (push or fetch it, or correct the SHA)")
        else:
            found[row.number] = lookup.sha
    if not found:
        return
    unreachable = repo.unreachable(found.values())
    locks = _lock_entries(log, found, repo_prefix(ctx.repo, repo.root))
    # every lock file named, read at its row's commit in one call
    blobs = repo.read_blobs(f"{found[number]}:{repo_path}" for number, entries in locks.items()
                            for _, repo_path, _ in entries if repo_path is not None)
    for row in log.rows:
        sha = found.get(row.number)
        if sha is None:
            continue
        typed, lookup = commits[row.number]
        date = log.typed(row, "date")
        committed = lookup.committed
        if date is not None and committed is not None and committed.date() > date:
            yield log.finding("G003", row, column,
                              f"commit {typed} is dated {committed.date().isoformat()}, after "
                              f"the experiment's date {date.isoformat()}")
        if sha in unreachable:
            yield log.finding("G004", row, column, f"commit {typed} is on no branch or tag, so "
                              "a fresh clone lacks it; merge or tag it")
        yield from _environment(log, row, sha, typed, locks.get(row.number, ()), blobs)


def lock_entries(environment: str) -> list[tuple[str, str]]:
    """(path, hex) for each `<path> sha256:<hex>` in an Environment cell that names a file."""
    entries = []
    for path, digest in LOCK_ENTRY.findall(environment):
        name = path.rstrip("/")
        if "@" in name or ":" in name or "=" in name:
            continue  # an image reference or a pin such as `torch==2.1`
        if "." not in name and "/" not in name and name not in DOTLESS_FILES:
            continue  # a word such as `image sha256:...`: not a file
        entries.append((name, digest.lower()))
    return entries


def _repo_path(path: str, prefix: str) -> str | None:
    """A lock path from a cell as a path from the repository root; None if it escapes it."""
    if path.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", path):
        return None
    joined = posixpath.normpath(posixpath.join(prefix, path.replace("\\", "/")))
    if joined == ".." or joined.startswith("../") or joined == ".":
        return None
    return joined


def _lock_entries(log: Log, found: dict[int, str],
                  prefix: str) -> dict[int, list[tuple[str, str | None, str]]]:
    """Row number -> (path as typed, path from the repository root or None when it escapes,
    hex) for each lock file named in the Environment cell of a row whose commit was found."""
    entries = {}
    for row in log.rows:
        if row.number not in found:
            continue
        environment = log.typed(row, "environment")
        if environment is not None:
            entries[row.number] = [(path, _repo_path(path, prefix), digest)
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
        actual = hashlib.sha256(blob).hexdigest()
        # A Windows checkout (core.autocrlf) hashes the CRLF file the user sees.
        if not actual.startswith(digest) and not (
                b"\n" in blob and b"\r\n" not in blob and hashlib.sha256(
                    blob.replace(b"\n", b"\r\n")).hexdigest().startswith(digest)):
            yield log.finding("G005", row, "environment",
                              f"{path} at commit {typed} has sha256:{actual}, not "
                              f"sha256:{digest}")
            return
