"""D001-D003: does each row's `Data version` name DVC-tracked data, the data its commit's `.dvc`
files / `dvc.lock` pin, and is that data still in the cache (or, with --remote, the remote)?

The records are read as they were at each commit, from git objects (never the working tree), in
one batched call for all rows; the whole history is read only when a version matches no pin."""

from __future__ import annotations

from collections.abc import Iterator

from aisdp_log.findings import Finding
from aisdp_log.lint.checks.git import name_lookups, row_commits
from aisdp_log.repo.data_versions import history_md5s, resolve_data_versions
from aisdp_log.repo.dvcfiles import (
    PATHSPECS,
    VERSION_MD5,
    DataSpec,
    LocalCache,
    Out,
    cache_dirs,
    data_spec,
    dvc_root,
    is_record,
    remote_missing,
    version_matches,
)
from aisdp_log.repo.git import GitRepo
from aisdp_log.repo.gitparse import repo_prefix
from aisdp_log.workbook.log import Log
from aisdp_log.workbook.table import Row

#: The finding codes this family may emit (see `aisdp_log.lint.registry`).
CODES = ("D001", "D002", "D003")


def run(log: Log, ctx) -> Iterator[Finding]:
    column = log.columns.get("data_version")
    if column is None:
        return  # S001 already
    repo = ctx.git
    commits = row_commits(log, ctx)
    spec = data_spec(ctx.config.data, repo_prefix(ctx.config.root, repo.root))

    rows = []
    for row in log.rows:
        version, error = log.parse(row, column)
        if not isinstance(version, str) or error is not None:  # parse_data_version: a str
            continue
        rows.append((row, commits.get(row.number, (None, None))[0], version))
    if not rows:
        return
    # name_lookups holds every name asked here: the `cat-file` call is shared with G001-G005
    resolved = resolve_data_versions(repo, ctx.config, [(c, v) for _, c, v in rows],
                                     lookups=name_lookups(log, ctx))
    history: set[str] | None = None
    no_record_ever: bool | None = None  # the D001 hint, asked once (the history is long)

    to_check: list[tuple[Row, list[Out]]] = []  # (row, outs whose data must be cached)
    for row, typed_commit, version in rows:
        found = resolved[(typed_commit, version)]
        pinned = found.pinned
        lowered = version.strip().lower()
        if found.matched:
            to_check.append((row, found.matched))
            continue
        if repo.is_shallow:
            # D001/D002 need the history a shallow clone lacks: G006 says they were not run
            if found.ref_pins and (pinned is None or found.ref_pins_the_same):
                to_check.append((row, found.ref_pins))
            continue
        if found.ref_pins is not None:
            ref_pins = found.ref_pins
            if not ref_pins:
                yield log.finding("D001", row, column, f"{version} is a git commit or tag, but "
                                  f"it pins no DVC-tracked data{_which(spec)}")
            elif pinned is not None and not found.ref_pins_the_same:
                yield log.finding("D002", row, column, f"{version} pins "
                                  f"{_describe(ref_pins)}, but commit {typed_commit} pins "
                                  f"{_describe(pinned) or 'no data'}")
            else:
                to_check.append((row, ref_pins))
            continue
        if VERSION_MD5.match(lowered):
            if history is None:
                history = history_md5s(repo) | {o.md5 for found in resolved.values()
                                                for o in found.recorded}
            if any(version_matches(lowered, md5) for md5 in history):
                if pinned is not None:
                    yield log.finding("D002", row, column, f"{version} is not what commit "
                                      f"{typed_commit} pins: {_describe(pinned) or 'no data'}")
                continue
        if found.ref is not None and found.ref.status == "missing" and \
                not VERSION_MD5.match(lowered):
            yield log.finding("D001", row, column, f"no such tag or branch: {version} is not "
                              "in the repository (`git tag` lists the tags; `git fetch --tags` "
                              "brings them), and it is no md5 either")
            continue
        if no_record_ever is None:
            no_record_ever = not any(is_record(path) for path, _ in
                                     repo.changed_blobs(PATHSPECS))
        if no_record_ever:
            reason = "the repository's history holds no .dvc file or dvc.lock (track the " \
                     "data with `dvc add` and commit the .dvc file)"
        else:
            reason = "write the md5 from the .dvc file (8+ hex characters) or a git " \
                     "tag/commit that pins it"
        yield log.finding("D001", row, column,
                          f"{version} resolves to no DVC-tracked data: {reason}")

    # the versions that name what their commit pins are verified (D001/D002 are errors)
    ctx.coverage.verify_rows(column.index, (row.number for row, _ in to_check))
    yield from _availability(log, ctx, repo, column, to_check)


def _availability(log: Log, ctx, repo: GitRepo, column, to_check) -> Iterator[Finding]:
    """D003: the data's objects in the local cache, else (with --remote) the default remote."""
    if not to_check:
        return
    root = dvc_root(ctx.repo, repo.root)
    cache = LocalCache(cache_dirs(root))
    local_missing = {o.md5 for _, outs in to_check for o in outs if cache.missing(o.md5)}
    missing, problem = local_missing, ""
    if ctx.remote and local_missing:
        missing, problem = remote_missing(root, local_missing, cache)
    if not ctx.remote:
        where = "is not in the local DVC cache (the remote was not asked: pass --remote); " \
                "`dvc pull` it, or `dvc push` it from where the data is"
    elif problem:
        where = f"is not in the local DVC cache, and the default remote could not be asked " \
                f"({problem}), so whether it holds the data is unknown (not that it is " \
                "missing); make the remote reachable, then `dvc pull`"
    else:
        where = "is in neither the local DVC cache nor the default remote; `dvc push` it " \
                "from where the data is, so the run can be reproduced"
    for row, outs in to_check:
        absent = [o for o in outs if o.md5 in missing]
        if absent:
            yield log.finding("D003", row, column, f"{_describe(absent)} {where}")


def _describe(outs: list[Out]) -> str:
    return ", ".join(f"{o.path} {o.md5}" for o in outs)


def _which(spec: DataSpec) -> str:
    return f" among {', '.join(spec.entries)}" if spec.configured else ""
