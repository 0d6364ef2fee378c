"""An isolated checkout for a rerun: a detached git worktree at the row's commit with the row's
data put there by DVC from the project's own cache, removed afterwards whatever happens.

The user's working tree, index and branches are never touched: `git worktree add --detach`
only adds metadata under `.git/worktrees/`, which `git worktree remove --force` and `prune`
take away again, also on Ctrl-C or a failure. DVC runs inside the worktree, pointed at the main
repository's cache (and, for `dvc fetch`, its remotes) through the worktree's own
`.dvc/config.local`, so data already in the cache is linked or copied, never downloaded twice.

    with isolated_worktree(repo_root, sha) as tree:
        checkout_data(tree, repo_root, targets=["data/train.csv.dvc"])
        subprocess.run(command, cwd=tree, ...)
"""

from __future__ import annotations

import configparser
import contextlib
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path

from aisdp_log.errors import AisdpLogError, RepositoryError
from aisdp_log.repo.dvcfiles import MD5, LocalCache, cache_dirs
from aisdp_log.repo.git import as_path, run_git
from aisdp_log.system.lifeline import die_with_parent
from aisdp_log.system.tooldir import pid_alive, remove_orphans

#: Where worktrees live: a temp folder, so nothing appears in the user's `git status`.
PREFIX = "aisdp-rerun-"
DVC_TIMEOUT = 3600.0
#: A Slurm job's worktree: named after the job, not a pid (which means nothing on the login
#: node), and locked, so a `prune` on a host that cannot see the node's temp folder keeps it.
JOB_PREFIX = "aisdp-job-"
#: In the repository's `.git/`: held while a worktree is added, removed or pruned.
LOCK_NAME = "aisdp-log-worktrees.lock"
_THREADS = threading.Lock()


@contextlib.contextmanager
def _worktrees_locked(repo: Path) -> Iterator[None]:
    """One `git worktree add/remove/prune` at a time per repository, across threads (`--jobs`)
    and processes (Slurm jobs on a shared file system): `add` reads every worktree's admin
    folder and fails on one that a concurrent `add` has half made, and `prune` may delete it."""
    with _THREADS:
        git_dir = repo / ".git"
        if sys.platform == "win32" or not git_dir.is_dir():
            yield
            return
        import fcntl

        with open(git_dir / LOCK_NAME, "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


class RerunError(AisdpLogError):
    """One row cannot be rerun (unknown commit, data version not pinned there, data missing
    from the cache and the remote); the message is the one line the user sees."""


def _git(repo: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    # preexec_fn: a `git worktree add` stops with a killed rerun too (system/lifeline.py)
    try:
        result = run_git(args, repo, text=True, preexec_fn=die_with_parent())
    except RepositoryError as exc:
        raise RerunError(str(exc)) from None
    if check and result.returncode != 0:
        reason = _first_line(result.stderr) or f"exit code {result.returncode}"
        raise RerunError(f"git {args[0]} failed in {repo}: {reason}")
    return result


def _first_line(text: str) -> str:
    for line in (text or "").splitlines():
        line = line.strip()
        if line:
            return line[:300]
    return ""


@contextlib.contextmanager
def isolated_worktree(repo: Path | str, commit: str, parent: Path | str | None = None, *,
                      job: str | None = None) -> Iterator[Path]:
    """A fresh detached worktree of `repo` at `commit` (a full SHA), in a new temp folder under
    `parent` (default: the system temp folder); removed on exit, normal or not. `job` (a
    Slurm job id) names and locks it instead (`JOB_PREFIX`; `release_job_worktrees`)."""
    repo = Path(repo)
    # Our pid in the name: a later rerun removes what a killed one left (`remove_stale`).
    prefix = f"{PREFIX}{os.getpid()}-" if job is None else f"{JOB_PREFIX}{job}-"
    holder = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    lock = [] if job is None else ["--lock", "--reason", f"aisdp-log rerun, Slurm job {job}"]
    # A unique last component: git names the worktree's admin folder after it, and parallel
    # runs should not race for `tree`, `tree1`, ...
    tree = holder / holder.name
    try:
        with _worktrees_locked(repo):
            _git(repo, "worktree", "add", "--detach", "--quiet", *lock, str(tree), commit)
        yield tree
    finally:
        remove_worktree(repo, tree)
        shutil.rmtree(holder, ignore_errors=True)


def remove_worktree(repo: Path, tree: Path) -> None:
    """`git worktree remove --force` then `prune`; the folder goes even if git refuses (a
    worktree half-made by an interrupted `add`)."""
    with _worktrees_locked(repo):
        if tree.exists():
            # --force twice also removes a worktree git considers locked.
            _git(repo, "worktree", "remove", "--force", "--force", str(tree), check=False)
        if tree.exists():
            shutil.rmtree(tree, ignore_errors=True)
        _git(repo, "worktree", "prune", check=False)


def _owner_pid(holder_name: str) -> int | None:
    """The pid in a holder folder's name `aisdp-rerun-<pid>-<random>`, else None."""
    match = re.fullmatch(re.escape(PREFIX) + r"(\d+)-[A-Za-z0-9_]+", holder_name)
    return int(match[1]) if match else None


def remove_stale(repo: Path | str, parent: Path | str | None = None) -> list[Path]:
    """Remove what killed reruns left: `git worktree prune`, then each worktree of ours
    (in an `aisdp-rerun-<pid>-...` folder) whose pid no longer runs, and such temp folders
    under `parent` (default: the system temp folder), registered or not. Returns the folders
    removed."""

    repo = Path(repo)
    with _worktrees_locked(repo):
        _git(repo, "worktree", "prune", check=False)
    removed = []
    listing = _git(repo, "worktree", "list", "--porcelain", check=False).stdout
    for line in listing.splitlines()[1:]:
        if not line.startswith("worktree "):
            continue
        tree = Path(as_path(line[len("worktree "):]))
        pid = _owner_pid(tree.parent.name)
        if pid is not None and tree.name == tree.parent.name and not pid_alive(pid):
            remove_worktree(repo, tree)
            shutil.rmtree(tree.parent, ignore_errors=True)
            removed.append(tree.parent)
    base = Path(parent) if parent is not None else Path(tempfile.gettempdir())
    removed += remove_orphans(base, _owner_pid, pattern=f"{PREFIX}*")
    if removed:
        with _worktrees_locked(repo):
            _git(repo, "worktree", "prune", check=False)
    return removed


def release_job_worktrees(repo: Path | str, jobs: list[str]) -> list[Path]:
    """Remove the worktrees that these finished Slurm jobs left (a job killed outright after
    its time limit): unlock each, remove it where this host sees it, and prune git's record of
    it where it does not (a node's temp folder)."""
    repo = Path(repo)
    prefixes = tuple(f"{JOB_PREFIX}{job}-" for job in jobs)
    found = [tree for tree in worktrees(repo) if prefixes and
             tree.parent.name.startswith(prefixes) and tree.name == tree.parent.name]
    for tree in found:
        with _worktrees_locked(repo):
            _git(repo, "worktree", "unlock", str(tree), check=False)
        remove_worktree(repo, tree)
        shutil.rmtree(tree.parent, ignore_errors=True)
    return found


def worktrees(repo: Path | str) -> list[Path]:
    """The worktrees git knows of besides the main one (`git worktree list --porcelain`)."""
    out = _git(Path(repo), "worktree", "list", "--porcelain").stdout
    paths = [Path(as_path(line[len("worktree "):])) for line in out.splitlines()
             if line.startswith("worktree ")]
    return paths[1:]


# --------------------------------------------------------------------------- data

def _read_dvc_config(path: Path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    with contextlib.suppress(configparser.Error, OSError, UnicodeDecodeError):
        parser.read(path, encoding="utf-8")
    return parser


def write_local_config(tree: Path, main_root: Path) -> None:
    """Give the worktree's DVC the main repository's cache and remotes: the main `.dvc/config`
    and `.dvc/config.local` (credentials live there) merged into the worktree's
    `.dvc/config.local`, `cache.dir` set to the main cache, and every relative local remote URL
    made absolute (DVC resolves them against the config file's folder, which moved)."""

    main_dvc = main_root / ".dvc"
    local = configparser.ConfigParser(strict=False, interpolation=None)
    # The project's DVC settings as they are now (a remote moved since the commit is found at
    # its new place); config.local last, as DVC reads them.
    for name in ("config", "config.local"):
        parser = _read_dvc_config(main_dvc / name)
        for section in parser.sections():
            if not local.has_section(section):
                local.add_section(section)
            for option, value in parser.items(section):
                # DVC writes `['remote "name"']`; configparser keeps the quotes in the name.
                if section.strip("'").startswith("remote ") and option == "url":
                    url = value.strip().strip("'\"")
                    if url and "://" not in url and not os.path.isabs(os.path.expanduser(url)):
                        value = os.path.normpath(main_dvc / url)
                local.set(section, option, value)
    if not local.has_section("cache"):
        local.add_section("cache")
    local.set("cache", "dir", str(cache_dirs(main_root)[0].resolve()))
    target = tree / ".dvc" / "config.local"
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target, "w", encoding="utf-8") as fh:
        local.write(fh)


def _dvc(tree: Path, *args: str, timeout: float | None) -> subprocess.CompletedProcess:
    env = dict(os.environ, DVC_NO_ANALYTICS="1", LC_ALL="C")
    try:
        # The dvc beside this tool's Python when PATH has none (a pipx-installed aisdp-log).
        dvc = shutil.which("dvc") or str(Path(sys.executable).with_name("dvc"))
        return subprocess.run([dvc, *args], cwd=tree, env=env, capture_output=True,
                              encoding="utf-8", errors="replace", check=False,
                              timeout=timeout, stdin=subprocess.DEVNULL,
                              preexec_fn=die_with_parent())
    except FileNotFoundError:
        raise RerunError("dvc is not installed (pip install 'aisdp-log[dvc]'); the rerun needs "
                         "it to check out the row's data") from None
    except subprocess.TimeoutExpired:
        raise RerunError(f"dvc {args[0]} took longer than {timeout:g} s") from None


def copy_from_cache(tree: Path, outs: Iterable, cache_dir: Path) -> bool:
    """Copy the outs (dvcfiles.Out) from DVC's cache into the worktree, checking each file's
    md5 as it is copied; False (nothing left behind) when an object is missing, a manifest is
    unreadable or a checksum differs, so the caller falls back to DVC itself.

    This is what `dvc checkout` does for a copy-type cache, minus the ~0.4 s of starting DVC,
    which would be most of a rerun's overhead."""

    cache = LocalCache([cache_dir])
    root = tree.resolve()
    copies: list[tuple[Path, Path, str]] = []
    for out in outs:
        target = (tree / out.path).resolve()
        if not target.is_relative_to(root):
            return False
        source = cache.object_path(out.md5)
        if source is None:
            return False
        if not out.is_dir:
            copies.append((source, target, out.md5))
            continue
        try:
            entries = json.loads(source.read_bytes())
        except (OSError, ValueError, RecursionError):  # RecursionError: nested too deep
            return False
        if not isinstance(entries, list):
            return False
        for entry in entries:
            md5 = entry.get("md5") if isinstance(entry, dict) else None
            relpath = entry.get("relpath") if isinstance(entry, dict) else None
            # An md5 names the cache object's path: one that is not an md5 could name a file
            # outside the cache.
            if not isinstance(md5, str) or not MD5.match(md5) or not isinstance(relpath, str):
                return False
            file_target = (target / relpath).resolve()
            file_source = cache.object_path(md5)
            if file_source is None or not file_target.is_relative_to(target):
                return False
            copies.append((file_source, file_target, md5))
    written: list[Path] = []
    for source, target, md5 in copies:
        target.parent.mkdir(parents=True, exist_ok=True)
        digest = hashlib.md5()
        with open(source, "rb") as src, open(target, "wb") as dst:
            written.append(target)
            for block in iter(lambda: src.read(1 << 20), b""):
                digest.update(block)
                dst.write(block)
        if digest.hexdigest() != md5:  # a DVC 2.x dos2unix hash, or a damaged cache
            for path in written:
                path.unlink(missing_ok=True)
            return False
    return True


def checkout_data(tree: Path, main_root: Path, targets: Iterable[str] = (), *,
                  outs: Iterable = (), timeout: float | None = DVC_TIMEOUT) -> str:
    """Put the data the worktree's `.dvc` files pin into the worktree. `outs` (what the row's
    commit pins) are copied from the main cache when every object is there and checks out;
    otherwise `dvc checkout` from the main cache, else `dvc fetch` from the remote and check out
    again. Returns how the data came ("cache", "dvc" or "remote"); raises RerunError with
    DVC's reason when neither has it. No-op ("none") for a commit without DVC."""

    outs = list(outs)
    if not (tree / ".dvc").is_dir():
        if outs:
            raise RerunError("the DVC project is not at the repository root; reruns need "
                             "`.dvc/` beside `.git`")
        return "none"
    if outs and copy_from_cache(tree, outs, cache_dirs(main_root)[0]):
        return "cache"
    write_local_config(tree, main_root)
    targets = list(targets)
    first = _dvc(tree, "checkout", "--quiet", *targets, timeout=timeout)
    if first.returncode == 0:
        return "dvc"
    fetched = _dvc(tree, "fetch", "--quiet", *targets, timeout=timeout)
    second = _dvc(tree, "checkout", "--quiet", *targets, timeout=timeout)
    if second.returncode == 0:
        return "remote"
    reason = _first_line(fetched.stderr) or _first_line(second.stderr) or \
        _first_line(first.stderr) or "dvc checkout failed"
    raise RerunError(f"the data is in neither the DVC cache nor a reachable remote ({reason})")
