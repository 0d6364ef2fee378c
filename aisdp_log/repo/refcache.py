"""What git answered about the shared history, kept between runs while the refs are the same.

Two answers of `GitRepo` depend on nothing but the commits the refs reach: which SHAs no branch,
tag or remote-tracking branch reaches (`git rev-list --stdin --not ...`) and which blobs the
history ever wrote to DVC's records (`git log --raw` over the whole history). Commits are
immutable, so while every ref points where it pointed (and no shallow boundary or graft moved),
both answers stand: on a 10,000-row log with 5,000 commits they cost about 0.25 s of git's
time on every warm validation (`benchmarks/bench_crosscheck_scale.py`).

The store is `<work tree>/.aisdp-log/git-history.json`, sealed with the user's key
(`aisdp_log.system.seal`: an answer planted by anyone else could hide an unreachable commit),
keyed on a digest of `git
for-each-ref` (every ref: branches, tags, remotes, replace refs), the `shallow` and
`info/grafts` files and this format; any other key starts afresh. It is written atomically
at the end of a run that learnt something; a store that cannot be read or written only costs
git's time again.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from aisdp_log.errors import WriteRefused
from aisdp_log.repo.gitparse import common_dir
from aisdp_log.system.seal import read_sealed, write_sealed
from aisdp_log.system.tooldir import tool_dir

STORE_NAME = "git-history.json"
FORMAT = 1


def state_key(refs: dict[str, str], git_dir: Path) -> str:
    """A digest of what decides the history the refs reach."""
    digest = hashlib.blake2b(f"git-history {FORMAT}".encode(), digest_size=20)
    for name, oid in sorted(refs.items()):
        digest.update(f"{name}\0{oid}\n".encode("utf-8", "surrogateescape"))
    try:
        common = common_dir(git_dir)
    except OSError:
        common = git_dir
    for folder in dict.fromkeys((git_dir, common)):
        for name in ("shallow", "info/grafts"):
            try:
                digest.update(name.encode() + b"\0" + (folder / name).read_bytes() + b"\0")
            except OSError:
                digest.update(name.encode() + b" absent\0")
    return digest.hexdigest()


class RefCache:
    """The remembered answers for one ref state (see the module docstring)."""

    def __init__(self, root: Path, key: str):
        self.root, self.key = root, key
        self.reachable: dict[str, bool] = {}
        self.history: dict[str, list[list[str]]] = {}
        self.changed = False
        body = read_sealed(tool_dir(root, create=False) / STORE_NAME)
        if body is None:  # none, or not sealed by this user (see system.seal)
            return
        try:
            stored = json.loads(body)
        except (ValueError, RecursionError):
            return
        if not isinstance(stored, dict) or stored.get("key") != key:
            return
        reachable, history = stored.get("reachable"), stored.get("history")
        if isinstance(reachable, dict):
            self.reachable = {sha: value for sha, value in reachable.items()
                              if isinstance(value, bool)}
        if isinstance(history, dict):
            self.history = {spec: pairs for spec, pairs in history.items()
                            if isinstance(pairs, list)}

    def changed_blobs(self, pathspecs: tuple[str, ...]) -> set[tuple[str, str]] | None:
        pairs = self.history.get("\0".join(pathspecs))
        if pairs is None:
            return None
        try:
            return {(str(path), str(oid)) for path, oid in pairs}
        except (TypeError, ValueError):
            return None

    def remember_blobs(self, pathspecs: tuple[str, ...], found: set[tuple[str, str]]) -> None:
        self.history["\0".join(pathspecs)] = sorted([path, oid] for path, oid in found)
        self.changed = True

    def remember_reachable(self, answers: dict[str, bool]) -> None:
        self.reachable.update(answers)
        self.changed = True

    def save(self) -> None:
        if not self.changed:
            return
        document = {"key": self.key, "reachable": self.reachable, "history": self.history}
        try:
            folder = tool_dir(self.root)  # made with a `.gitignore` of `*`
        except WriteRefused:
            return
        write_sealed(folder / STORE_NAME, json.dumps(document).encode("utf-8"))
        self.changed = False
