"""A small, batched access layer to a git repository: a few git processes per validation,
never one per row, and never a shell (every call is an argument list; names from cells only
reach git on the stdin of `cat-file --batch`, one per line, newlines refused).

Other modules reuse it (one handle per validation: answers about reachability and history are
remembered for the handle's life)::

    repo = GitRepo.open(path)                      # RepositoryError when not a git work tree
    repo.root, repo.is_shallow                     # top level; a `--depth` clone?
    found = repo.lookup_commits(["9c1e4b7", ...])  # {name: CommitLookup(status, sha, committed)}
    repo.unreachable([sha, ...])                   # the SHAs on no branch, tag or remote branch
    repo.local_only([sha, ...])                    # {sha: [local branches]} not on a remote/tag
    repo.refs(), repo.remotes()                    # {refname: oid} (one for-each-ref), remotes
    repo.read_blobs([f"{sha}:uv.lock", oid, ...])  # {spec: bytes | None}, one round for all
    repo.object_ids([f"{sha}:data.dvc", ...])      # {spec: oid | None} (no contents read)
    repo.files_at([sha, ...], ["*.dvc"])           # {sha: [paths matching at that commit]}
    repo.changed_blobs(["*.dvc"])                  # every (path, blob oid) ever on a ref
    repo.close()                                   # or `with GitRepo.open(path) as repo:`

What git answers is read in `aisdp_log.repo.gitparse` (`CommitLookup`, `is_ref_name`,
`repo_prefix(folder, repo.root)`: 'sub/dir' of a folder inside the work tree).

Small `cat-file` rounds share one long-lived `git cat-file --batch` process; the check
families share one handle (`aisdp_log.lint.context.Context.git`).
"""

from __future__ import annotations

import io
import os
import subprocess
import weakref
from collections.abc import Iterable
from pathlib import Path

from aisdp_log.errors import RepositoryError
from aisdp_log.repo.gitparse import (
    HEX,
    CommitLookup,
    changed_paths,
    committer_date,
    find_work_tree,
    first_line,
    parse_batch,
)
from aisdp_log.repo.refcache import RefCache, state_key

#: Refs a fresh clone would bring: local branches, tags and remote-tracking branches.
SHARED_REFS = ("--branches", "--tags", "--remotes")


def git_env(base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment every git process runs in: `base` (default: ours) with stable,
    untranslated output, no password prompt, no pager and no optional locks (a validator
    must not write `.git/index` behind an editor's back)."""
    env = dict(os.environ if base is None else base)
    env.update(LC_ALL="C", LANGUAGE="C", GIT_TERMINAL_PROMPT="0", GIT_PAGER="cat",
               GIT_OPTIONAL_LOCKS="0")
    return env


def run_git(args: Iterable[str], cwd: Path | str | None, *, env: dict[str, str] | None = None,
            input: bytes | str | None = None, text: bool = False, timeout: float | None = None,
            preexec_fn=None) -> subprocess.CompletedProcess:
    """Run `git <args>` in `cwd` and return the finished process (stdout and stderr captured;
    the caller judges the exit code). Every git process of aisdp-log starts here or in
    `GitRepo`, with `git_env`; arguments are a list, never a shell line, so cell text reaches
    git as one argument. RepositoryError when git is not installed.

    `text=True` decodes git's output as UTF-8 (what git stores commit subjects and authors in),
    never with the locale's codec (cp1252 cannot decode an `Ł`); bytes that are not UTF-8 are
    kept as surrogates, so `as_path` turns a path git printed back into the file's name."""
    try:
        return subprocess.run(["git", *args], cwd=cwd, env=git_env(env), input=input,
                              capture_output=True, check=False, timeout=timeout,
                              preexec_fn=preexec_fn, encoding="utf-8" if text else None,
                              errors="surrogateescape" if text else None)
    except FileNotFoundError:
        if cwd is not None and not Path(cwd).is_dir():
            raise RepositoryError(f"{cwd}: not a folder") from None
        raise RepositoryError("git is not installed (or not on PATH)") from None


def as_path(text: str) -> str:
    """A path git printed (decoded by `run_git(text=True)`) as this OS names the file: the
    same bytes, decoded as the file system does (they differ under a non-UTF-8 locale)."""
    return os.fsdecode(text.encode("utf-8", "surrogateescape"))


def config_value(repo: Path | None, name: str, *, path: bool = False,
                 timeout: float | None = None) -> str | None:
    """One `git config` value as git resolves it in `repo` (local, global, system), or None
    (unset, or no git). With `path`, the value is a file name (`as_path`)."""
    try:
        done = run_git(["config", *(["--path"] if path else []), "--get", name],
                       repo if repo and Path(repo).is_dir() else None, text=True,
                       timeout=timeout)
    except (RepositoryError, OSError, subprocess.SubprocessError):
        return None
    value = done.stdout.strip()
    if done.returncode != 0 or not value:
        return None
    return as_path(value) if path else value


def blob_at(repo: Path | str, commit: str, path: str, *, timeout: float | None = None
            ) -> bytes | None:
    """The bytes of `path` at `commit` (`git cat-file blob`), or None where it is not there."""
    done = run_git(["cat-file", "blob", f"{commit}:{path}"], repo, timeout=timeout)
    return done.stdout if done.returncode == 0 else None


def resolve_commit(repo: Path | str, name: str, *, timeout: float | None = None) -> str | None:
    """The full SHA `name` (a SHA, tag, branch or `HEAD`) names as a commit, or None."""
    done = run_git(["rev-parse", "--verify", "-q", f"{name}^{{commit}}"], repo, text=True,
                   timeout=timeout)
    return done.stdout.strip() or None if done.returncode == 0 else None


class GitRepo:
    """A git work tree, queried in batches through `git` subprocesses."""

    def __init__(self, toplevel: Path, git_dir: Path, is_shallow: bool):
        self.root = toplevel
        self.git_dir = git_dir
        self.is_shallow = is_shallow
        self._env = git_env()
        self._cat_file: subprocess.Popen | None = None
        self._reachable: dict[str, bool] = {}
        self._refs: dict[str, str] | None = None
        self._remotes: list[str] | None = None
        self._history: dict[tuple[str, ...], set[tuple[str, str]]] = {}
        self._ref_cache: RefCache | None = None

    @classmethod
    def open(cls, path: Path | str) -> GitRepo:
        """The work tree holding `path`; RepositoryError (one line) when there is none.

        The common layouts (a `.git` folder, or a worktree's `.git` file) are read directly,
        which saves a git process; anything else asks `git rev-parse`."""
        path = Path(path)
        found = find_work_tree(path)
        if found is not None:
            return cls(*found)
        try:
            result = subprocess.run(
                ["git", "rev-parse", "--show-toplevel", "--absolute-git-dir",
                 "--is-shallow-repository"],
                cwd=path, env=git_env(), capture_output=True, check=False)
        except FileNotFoundError:
            raise RepositoryError("git is not installed (or not on PATH); install git, or use "
                                  "--offline to check the workbook alone") from None
        except NotADirectoryError:
            raise RepositoryError(f"{path}: not a folder") from None
        lines = os.fsdecode(result.stdout).splitlines()  # two paths and a word
        if result.returncode != 0 or len(lines) < 3:
            reason = first_line(result.stderr) or "not a git work tree"
            raise RepositoryError(f"{path}: not a usable git repository ({reason}); use "
                                  "--offline to check the workbook alone")
        return cls(Path(lines[0]), Path(lines[1]), lines[2].strip() == "true")

    def close(self) -> None:
        """End the `git cat-file --batch` process, if one was started; keep what was learnt
        about the history for the next run (`aisdp_log.repo.refcache`)."""
        if self._ref_cache is not None:
            self._ref_cache.save()
        if self._cat_file is not None:
            _end_process(self._cat_file)
            self._cat_file = None

    def __enter__(self) -> GitRepo:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------------ plumbing
    def git(self, *args: str, input: bytes | None = None, ok_codes: tuple[int, ...] = (0,)
            ) -> bytes:
        """Run `git <args>` in the work tree; stdout as bytes. Other exit codes than
        `ok_codes` raise RepositoryError with git's first line of complaint."""
        result = subprocess.run(["git", *args], cwd=self.root, env=self._env, input=input,
                                capture_output=True, check=False)
        if result.returncode not in ok_codes:
            raise RepositoryError(f"{self.root}: git {args[0]} failed "
                                  f"({first_line(result.stderr) or result.returncode})")
        return result.stdout

    def _batch(self, names: list[str], *, contents: bool) -> list[tuple[str, str, bytes | None]]:
        """Ask `git cat-file` about `names`: per name (status, oid-or-"", body).

        status is the object type ("commit", "blob", ...), "missing" or "ambiguous". Small
        rounds with contents share one long-lived `git cat-file --batch` process (a validation
        asks several rounds: one process start instead of one per round); large rounds use a
        one-shot `--buffer` process, since the long-lived one flushes after every object."""
        if not names:
            return []
        for name in names:
            # One request per line: a newline would smuggle in a second request.
            if "\n" in name or "\r" in name or not name:
                raise ValueError(f"not a git object name: {name!r}")
        request = ("\n".join(names) + "\n").encode("utf-8")
        if not contents or len(names) > _INTERACTIVE_MAX or len(request) > _PIPE_SAFE:
            mode = "--batch" if contents else "--batch-check"
            out = self.git("cat-file", mode, "--buffer", input=request)
            try:
                return list(parse_batch(io.BytesIO(out), names, contents))
            except (ValueError, EOFError) as exc:
                raise RepositoryError(f"{self.root}: git cat-file answered out of turn "
                                      f"({exc})") from None
        process = self._batch_process()
        # both pipes are there: _batch_process opens them (PIPE)
        assert process.stdin is not None and process.stdout is not None
        try:
            process.stdin.write(request)  # small: fits the pipe, so git cannot block us
            process.stdin.flush()
            return list(parse_batch(process.stdout, names, True))
        except (OSError, ValueError, EOFError) as exc:
            self.close()
            # stderr was dropped; ask git once more for its reason (dubious ownership, ...)
            check = subprocess.run(["git", "rev-parse", "--git-dir"], cwd=self.root,
                                   env=self._env, capture_output=True, check=False)
            reason = first_line(check.stderr) or f"git cat-file stopped: {exc}"
            raise RepositoryError(f"{self.root}: not a usable git repository ({reason})"
                                  ) from None

    def _batch_process(self) -> subprocess.Popen:
        if self._cat_file is None or self._cat_file.poll() is not None:
            # stderr is dropped: git complains there about ambiguous names, which the
            # answers already say; a pipe nobody reads could fill and block git.
            self._cat_file = subprocess.Popen(
                ["git", "cat-file", "--batch"], cwd=self.root, env=self._env,
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
            weakref.finalize(self, _end_process, self._cat_file)
        return self._cat_file

    # ------------------------------------------------------------------ questions
    def lookup_commits(self, names: Iterable[str]) -> dict[str, CommitLookup]:
        """Resolve names (full or short SHAs, tags, branches) to commits, in one
        `git cat-file --batch` (plus, only for ambiguous short SHAs, a disambiguation).

        A short SHA that one commit and some blob share resolves to the commit (git's
        commit-ish hint); one that several commits share is "ambiguous"."""
        names = list(dict.fromkeys(names))
        if not names:
            return {}
        # `^{commit}` peels tags and applies the commit-ish hint; for what it cannot find,
        # the bare name tells a prefix no object has from one several objects share.
        answers = self._batch([f"{name}^{{commit}}" for name in names], contents=True)
        result: dict[str, CommitLookup] = {}
        unfound = []
        for name, (kind, oid, body) in zip(names, answers):
            if kind == "commit":
                result[name] = CommitLookup(name, "found", oid, committer_date(body or b""))
            else:
                unfound.append(name)
        bare = [name for name in unfound if HEX.match(name)]
        shared = {name for name, (kind, _, _) in zip(bare, self._batch(bare, contents=False))
                  if kind == "ambiguous"}
        for name in unfound:
            if name not in shared:
                result[name] = CommitLookup(name, "missing")
        if shared:
            result.update(self._disambiguate(sorted(shared)))
        return result

    def _disambiguate(self, prefixes: list[str]) -> dict[str, CommitLookup]:
        # Rare path: several objects share the prefix and `^{commit}` found no single commit.
        # Count the commits among them (git lists every object with the prefix).
        candidates: dict[str, list[str]] = {}
        for prefix in prefixes:
            out = self.git("rev-parse", f"--disambiguate={prefix}", ok_codes=(0, 1, 128))
            candidates[prefix] = out.decode("ascii", "replace").split()
        every = sorted({oid for oids in candidates.values() for oid in oids})
        kinds = dict(zip(every, (k for k, _, _ in self._batch(every, contents=False))))
        result = {}
        for prefix, oids in candidates.items():
            commits = [oid for oid in oids if kinds.get(oid) == "commit"]
            result[prefix] = CommitLookup(prefix, "ambiguous" if len(commits) > 1 else "missing")
        return result

    def unreachable(self, shas: Iterable[str]) -> set[str]:
        """The full SHAs among `shas` that no branch, tag or remote-tracking branch reaches
        (one `git rev-list --stdin`; answers are remembered for the next question)."""
        shas = list(dict.fromkeys(shas))
        unknown = [sha for sha in shas if sha not in self._reachable]
        if unknown:
            known = self.ref_cache().reachable
            self._reachable.update((sha, known[sha]) for sha in unknown if sha in known)
            unknown = [sha for sha in unknown if sha not in self._reachable]
        if unknown:
            out = self.git("rev-list", "--stdin", "--not", *SHARED_REFS,
                           input=("\n".join(unknown) + "\n").encode("ascii"))
            listed = set(out.decode("ascii").split())
            answers = {sha: sha not in listed for sha in unknown}
            self._reachable.update(answers)
            self.ref_cache().remember_reachable(answers)
        return {sha for sha in shas if not self._reachable[sha]}

    def ref_cache(self) -> RefCache:
        """The answers about the history remembered from earlier runs with these refs."""
        if self._ref_cache is None:
            self._ref_cache = RefCache(self.root, state_key(self.refs(), self.git_dir))
        return self._ref_cache

    def refs(self) -> dict[str, str]:
        """Every ref (`refs/heads/main`, `refs/tags/v1`, ...) -> the commit it points to
        (tags peeled), from one `git for-each-ref` (remembered)."""
        if self._refs is None:
            out = self.git("for-each-ref", "--format=%(objectname) %(*objectname) %(refname)")
            self._refs = {}
            for line in out.decode("utf-8", "surrogateescape").splitlines():
                oid, peeled, name = line.split(" ", 2)
                self._refs[name] = peeled or oid
        return self._refs

    def remotes(self) -> list[str]:
        """The names of the configured remotes (`git remote`; remembered)."""
        if self._remotes is None:
            self._remotes = self.git("remote").decode("utf-8", "replace").split()
        return self._remotes

    def local_only(self, shas: Iterable[str]) -> dict[str, list[str]]:
        """The SHAs among `shas` that no remote-tracking branch or tag reaches, each with the
        local branches that hold it ([] when none does): what a fresh clone would lack.

        Three git processes in all, whatever the number of SHAs: `rev-list --stdin` for the
        question, `rev-list --parents` for the local-only part of the graph (walked here from
        each branch tip) and the `for-each-ref` that `refs()` remembers."""
        shas = list(dict.fromkeys(shas))
        if not shas:
            return {}
        out = self.git("rev-list", "--stdin", "--not", "--remotes", "--tags",
                       input=("\n".join(shas) + "\n").encode("ascii"))
        unpushed = set(out.decode("ascii").split()) & set(shas)
        if not unpushed:
            return {}
        parents: dict[str, list[str]] = {}
        graph = self.git("rev-list", "--parents", "--branches", "--not", "--remotes", "--tags")
        for line in graph.decode("ascii").splitlines():
            commit, *rest = line.split()
            parents[commit] = rest
        holders: dict[str, list[str]] = {sha: [] for sha in shas if sha in unpushed}
        for name, tip in sorted(self.refs().items()):
            if not name.startswith("refs/heads/") or tip not in parents:
                continue
            branch = name[len("refs/heads/"):]
            seen, stack = set(), [tip]
            while stack:
                commit = stack.pop()
                if commit in seen or commit not in parents:
                    continue
                seen.add(commit)
                if commit in holders:
                    holders[commit].append(branch)
                stack.extend(parents[commit])
        return holders

    def read_blobs(self, specs: Iterable[str]) -> dict[str, bytes | None]:
        """Contents of blobs named `<rev>:<path>` or by oid, in one `git cat-file --batch`;
        None where the commit lacks the path or the object is not a blob."""
        specs = list(dict.fromkeys(specs))
        return {spec: (body if kind == "blob" else None)
                for spec, (kind, _, body) in zip(specs, self._batch(specs, contents=True))}

    def object_ids(self, specs: Iterable[str]) -> dict[str, str | None]:
        """Blob oids of `<rev>:<path>` specs (None when absent), without reading contents."""
        specs = list(dict.fromkeys(specs))
        return {spec: (oid if kind == "blob" else None)
                for spec, (kind, oid, _) in zip(specs, self._batch(specs, contents=False))}

    def files_at(self, shas: Iterable[str], pathspecs: Iterable[str]) -> dict[str, list[str]]:
        """Paths of non-empty files matching `pathspecs` in each commit's tree, in one
        `git grep` over all the commits (git's pathspec `*` also matches `/`)."""
        shas = list(dict.fromkeys(shas))
        found: dict[str, list[str]] = {sha: [] for sha in shas}
        chunk = 1000  # keep the command line far below ARG_MAX
        for start in range(0, len(shas), chunk):
            part = shas[start:start + chunk]
            out = self.git("-c", "core.quotepath=off", "grep", "-z", "-l", "-I", "--full-name",
                           "-e", ".", *part, "--", *pathspecs, ok_codes=(0, 1))
            for item in out.split(b"\0"):
                if not item:
                    continue
                sha, _, path = item.decode("utf-8", "surrogateescape").partition(":")
                if sha in found:
                    found[sha].append(path)
        return found

    def changed_blobs(self, pathspecs: Iterable[str]) -> set[tuple[str, str]]:
        """Every (path, blob oid) that a commit on a branch, tag or remote branch wrote to a
        path matching `pathspecs`: one `git log --raw` over the whole shared history
        (remembered per pathspecs). `--full-history -m` so that no side branch or merge is
        simplified away."""
        key = tuple(pathspecs)
        if key not in self._history:
            remembered = self.ref_cache().changed_blobs(key)
            if remembered is not None:
                self._history[key] = remembered
                return remembered
            out = self.git("-c", "core.quotepath=off", "log", *SHARED_REFS, "--raw", "-z",
                           "--no-abbrev", "--no-renames", "--full-history", "-m", "--root",
                           "--format=", "--", *key)
            self._history[key] = changed_paths(out)
            self.ref_cache().remember_blobs(key, self._history[key])
        return self._history[key]


#: Rounds up to this many names go to the long-lived process; their requests (< 64 KiB)
#: fit the pipe, so writing them all before reading cannot block.
_INTERACTIVE_MAX = 200
_PIPE_SAFE = 16384


def _end_process(process: subprocess.Popen) -> None:
    try:
        if process.stdin is not None:  # always: the process was opened with stdin=PIPE
            process.stdin.close()
        process.wait(timeout=5)
    except (OSError, ValueError, subprocess.TimeoutExpired):
        process.kill()
