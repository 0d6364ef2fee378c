"""What a row's data version names at its commit, read from DVC's records in git objects:
one batched round for a whole log, shared by the validator (D001-D003), the rerun planner and
the MLflow export."""

from __future__ import annotations

import posixpath
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from aisdp_log.repo.dvcfiles import (
    PATHSPECS,
    DataSpec,
    Out,
    data_spec,
    is_record,
    parse_record,
    stage_wdirs,
    version_matches,
)
from aisdp_log.repo.git import GitRepo
from aisdp_log.repo.gitparse import CommitLookup, is_ref_name, repo_prefix


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
    return {out.md5 for path, oid in versions if (blob := blobs.get(oid))
            for out in parse_record(path, blob)}


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
             for name in (commit, version if version and is_ref_name(version) else None)
             if name]
    found = dict(lookups or {})
    found.update(repo.lookup_commits(n for n in dict.fromkeys(names) if n not in found))
    shas = [lookup.sha for lookup in (found[name] for name in names)
            if lookup.status == "found" and lookup.sha is not None]
    spec = data_spec(config.data, repo_prefix(config.root, repo.root))
    pins = pinned_outs(repo, list(dict.fromkeys(shas)), spec)

    result = {}
    for commit, version in pairs:
        resolution = Resolution(commit=found[commit] if commit else None)
        if resolution.commit is not None and resolution.commit.status == "found" and \
                resolution.commit.sha is not None:
            resolution.recorded += pins[resolution.commit.sha]
            resolution.pinned = spec.counted(pins[resolution.commit.sha])
            if version:
                resolution.matched = [o for o in resolution.pinned
                                      if version_matches(version, o.md5)]
        if version and is_ref_name(version):
            resolution.ref = found[version]
            if resolution.ref.status == "found" and resolution.ref.sha is not None:
                resolution.recorded += pins[resolution.ref.sha]
                resolution.ref_pins = spec.counted(pins[resolution.ref.sha])
        result[(commit, version)] = resolution
    return result



def _mapping(outs: list[Out]) -> dict[str, str]:
    return {o.path: o.md5 for o in outs}


