"""D001-D003: does each row's `Data version` name DVC-tracked data, the data its commit's `.dvc`
files / `dvc.lock` pin, and is that data still in the cache (or, with --remote, the remote)?

The records are read as they were at each commit, from git objects (never the working tree), in
one batched call for all rows; the whole history is read only when a version matches no pin."""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field
from typing import Iterable, Iterator, Mapping

from aisdp_log.repo.dvcfiles import PATHSPECS, VERSION_MD5, DataSpec, LocalCache, Out, cache_dirs, data_spec, dvc_root, is_record, parse_record, remote_missing, stage_wdirs, version_matches
from aisdp_log.findings import Finding
from aisdp_log.repo.git import CommitLookup, GitRepo, repo_for, repo_prefix
from aisdp_log.workbook.reader import Log
from aisdp_log.lint.checks.git import looks_like_ref, name_lookups, row_commits


def pinned_outs(repo: GitRepo, shas: list[str], spec: DataSpec) -> dict[str, list[Out]]:
    """Every out the records pin at each commit (configured records, else every `.dvc` file and
    `dvc.lock` in the commit's tree), read in one `git cat-file --batch` round."""
    if spec.configured:
        records = spec.records()
        wanted = [(sha, path) for sha in shas for path in records]
    else:
        wanted = record_paths(repo, shas)
    # `cat-file --batch` takes one name a line: a record whose path holds a line break (in
    # the history or aisdp.toml) cannot be asked for, so it pins nothing
    wanted = [(sha, path) for sha, path in wanted if "\n" not in path and "\r" not in path]
    # a dvc.lock's stages may run in a `wdir` that only the dvc.yaml beside it declares
    stage_files = {(sha, path): _beside(path, "dvc.yaml") for sha, path in wanted
                   if posixpath.basename(path) == "dvc.lock"}
    blobs = repo.read_blobs([f"{sha}:{path}" for sha, path in wanted] +
                            [f"{sha}:{path}" for (sha, _), path in stage_files.items()])
    parsed: dict[tuple[str, bytes, bytes | None], list[Out]] = {}
    result: dict[str, list[Out]] = {sha: [] for sha in shas}
    for sha, path in wanted:
        blob = blobs.get(f"{sha}:{path}")
        if blob is None:
            continue
        stages = stage_files.get((sha, path))
        stages_blob = blobs.get(f"{sha}:{stages}") if stages else None
        key = (path, blob, stages_blob)
        if key not in parsed:  # the same record at many commits is parsed once
            parsed[key] = parse_record(path, blob, stage_wdirs(stages_blob))
        result[sha].extend(parsed[key])
    return result


def _beside(path: str, name: str) -> str:
    folder = posixpath.dirname(path)
    return posixpath.join(folder, name) if folder else name


def record_paths(repo: GitRepo, shas: list[str]) -> list[tuple[str, str]]:
    """(commit, path) pairs where a `.dvc` file or `dvc.lock` may be in the commit's tree.

    Every path that ever held a record on shared history comes from one `git log` (which D001
    needs anyway); looking those paths up at each commit is much cheaper than walking every
    commit's tree. A commit off shared history (rare) may hold others: `git grep` walks it."""
    candidates = sorted({path for path, _ in repo.changed_blobs(PATHSPECS) if is_record(path)})
    off = repo.unreachable(shas)
    wanted = [(sha, path) for sha in shas if sha not in off for path in candidates]
    if off:
        for sha, paths in repo.files_at(sorted(off), PATHSPECS).items():
            wanted += [(sha, path) for path in paths if is_record(path)]
    return wanted


def history_md5s(repo: GitRepo) -> set[str]:
    """Every md5 a `.dvc` file or `dvc.lock` ever pinned on a branch, tag or remote branch."""
    versions = {(path, oid) for path, oid in repo.changed_blobs(PATHSPECS) if is_record(path)}
    blobs = repo.read_blobs(oid for _, oid in versions)
    return {out.md5 for path, oid in versions if blobs.get(oid)
            for out in parse_record(path, blobs[oid])}


@dataclass
class Resolution:
    """What a row's `Data version` names at its `Code commit` (see `resolve_data_versions`).

    Out lists hold only the outs the config's `data` counts, except `recorded` (every out of
    the records read at the commit and the git name, which the search of the history needs)."""

    commit: CommitLookup | None = None  # None: no commit given
    pinned: list[Out] | None = None  # the outs the commit pins; None unless it was found
    matched: list[Out] = field(default_factory=list)  # pinned outs whose md5 the version names
    ref: CommitLookup | None = None  # the version as a git name; None unless it looks like one
    ref_pins: list[Out] | None = None  # the outs that git name pins; None unless it was found
    recorded: list[Out] = field(default_factory=list)  # every out those records pin

    @property
    def ref_pins_the_same(self) -> bool:
        """Whether the version, as a git name, pins the same data (path -> md5) as the commit."""
        return self.pinned is not None and self.ref_pins is not None and \
            _mapping(self.ref_pins) == _mapping(self.pinned)


def resolve_data_versions(repo: GitRepo, config, pairs: Iterable[tuple[str | None, str | None]],
                          lookups: Mapping[str, CommitLookup] | None = None
                          ) -> dict[tuple[str | None, str | None], Resolution]:
    """(commit, data version) -> what the version names at the commit, for the validator, the
    rerun planner and the MLflow export alike (`config`: `data` entries and `root`).

    Commits and versions that look like git names are resolved in one `lookup_commits` call
    (names already in `lookups` are not asked again) and the records at every commit found are
    read in one `pinned_outs` round: no git process per row. No pairs, no git at all."""
    pairs = list(dict.fromkeys(pairs))
    if not pairs:
        return {}
    names = [name for commit, version in pairs
             for name in (commit, version if version and looks_like_ref(version) else None)
             if name]
    found = dict(lookups or {})
    found.update(repo.lookup_commits(n for n in dict.fromkeys(names) if n not in found))
    shas = [found[name].sha for name in names if found[name].status == "found"]
    spec = data_spec(config.data, repo_prefix(config.root, repo.root))
    pins = pinned_outs(repo, list(dict.fromkeys(shas)), spec)

    result = {}
    for commit, version in pairs:
        resolution = Resolution(commit=found[commit] if commit else None)
        if resolution.commit is not None and resolution.commit.status == "found":
            resolution.recorded += pins[resolution.commit.sha]
            resolution.pinned = spec.counted(pins[resolution.commit.sha])
            if version:
                resolution.matched = [o for o in resolution.pinned
                                      if version_matches(version, o.md5)]
        if version and looks_like_ref(version):
            resolution.ref = found[version]
            if resolution.ref.status == "found":
                resolution.recorded += pins[resolution.ref.sha]
                resolution.ref_pins = spec.counted(pins[resolution.ref.sha])
        result[(commit, version)] = resolution
    return result


def run(log: Log, ctx) -> Iterator[Finding]:
    column = log.columns.get("data_version")
    if column is None:
        return  # S001 already
    repo = repo_for(ctx)
    commits = row_commits(log, ctx)
    spec = data_spec(ctx.config.data, repo_prefix(ctx.config.root, repo.root))

    rows = []
    for row in log.rows:
        version, error = log.parse(row, column)
        if version is None or error is not None:
            continue
        rows.append((row, commits.get(row.number, (None, None))[0], version))
    if not rows:
        return
    # name_lookups holds every name asked here: the `cat-file` call is shared with G001-G005
    resolved = resolve_data_versions(repo, ctx.config, [(c, v) for _, c, v in rows],
                                     lookups=name_lookups(log, ctx))
    history: set[str] | None = None
    no_record_ever: bool | None = None  # the D001 hint, asked once (the history is long)

    to_check: list[tuple[object, list[Out]]] = []  # (row, outs whose data must be cached)
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


def _mapping(outs: list[Out]) -> dict[str, str]:
    return {o.path: o.md5 for o in outs}


def _describe(outs: list[Out]) -> str:
    return ", ".join(f"{o.path} {o.md5}" for o in outs)


def _which(spec: DataSpec) -> str:
    return f" among {', '.join(spec.entries)}" if spec.configured else ""
