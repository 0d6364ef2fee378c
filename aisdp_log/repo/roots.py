"""Where things are: the repository root a command works in, and the `aisdp.toml` it reads.

Every command (validate, review, add, rerun, export, `read_log`, `hash`, the training API)
finds the repository the same way: the top level of the git work tree holding the folder,
read from `.git` directly where the layout is a plain one (`repo.gitparse.find_work_tree`), else
asked of git.
`--repo` naming a folder inside a repository means that repository's root, so paths in
`aisdp.toml` and `dvc.lock` stay relative to the root (never `src/src/...`).

The config is the `aisdp.toml` nearest the log: beside it, or in a folder between it and the
repository root, or at the root; none means defaults. Reports say which one was used.
"""

from __future__ import annotations

import os
from pathlib import Path

from aisdp_log.config import CONFIG_NAME, Config, load_config
from aisdp_log.errors import RepositoryError
from aisdp_log.repo.gitparse import find_work_tree
from aisdp_log.system import inputs


def find_repo_root(start: Path | str) -> Path | None:
    """The top level of the git work tree holding the folder `start`, or None outside one."""
    start = Path(start)
    found = find_work_tree(start)
    if found is not None:
        return found[0]
    holder = _dot_git_holder(start)
    if holder is None and not (os.environ.get("GIT_DIR") or os.environ.get("GIT_WORK_TREE")):
        return None  # no `.git` anywhere above: no git process needed to say so

    try:
        # a layout read no other way (GIT_DIR, a `.git` file in another form): git decides
        # loaded here: the common layouts never need git's wrapper (nor `subprocess`)
        from aisdp_log.repo.git import GitRepo

        return GitRepo.open(start).root.resolve()
    except RepositoryError:
        # a damaged `.git`: its folder is still the root, and opening it later says why
        return holder


def _dot_git_holder(start: Path) -> Path | None:
    """The nearest folder at or above `start` holding a `.git` entry of any kind."""
    try:
        start = start.resolve()
    except OSError:
        return None
    for folder in (start, *start.parents):
        if os.path.lexists(folder / ".git"):
            return folder
    return None


def resolve_repo(log_path: Path, repo: Path | str | None, offline: bool) -> Path:
    """The root a command works in: the repository holding `--repo` (which may name any folder
    inside it), else the repository holding the log, else the one holding the current
    directory. Offline, a folder outside any repository stands for itself."""
    if repo is not None:
        folder = Path(repo)
        if not folder.is_dir():
            raise RepositoryError(f"{folder}: --repo is not a folder")
        root = find_repo_root(folder)
        if root is None:
            if not offline:
                raise RepositoryError(f"{folder}: not a git repository (run `git init`, pass "
                                      "--repo, or use --offline to check the workbook alone)")
            return folder.resolve()
        return root
    start = log_path.parent if log_path.parent.is_dir() else Path.cwd()
    found = find_repo_root(start) or find_repo_root(Path.cwd())
    if found is None:
        if not offline:
            raise RepositoryError(f"{log_path}: not inside a git repository and no --repo given "
                                  "(use --offline to check the workbook alone)")
        return start.resolve()
    return found


def find_config(log_path: Path | str | None, root: Path | str) -> Path | None:
    """The `aisdp.toml` nearest the log: in the log's folder or a folder between it and `root`
    (nearest wins), else at `root`; None when there is none (defaults apply)."""

    root = Path(root).resolve()
    folders: list[Path] = []
    if log_path is not None:
        try:
            folder = Path(log_path).resolve().parent
        except OSError:
            folder = None
        if folder is not None and (folder == root or root in folder.parents):
            while folder != root:
                folders.append(folder)
                folder = folder.parent
    folders.append(root)
    for folder in folders:
        candidate = folder / CONFIG_NAME
        inputs.note(candidate)
        if candidate.is_file():
            return candidate
    return None


def config_for(log_path: Path | str | None, root: Path,
               config: Config | Path | str | None = None) -> Config:
    """The Config a command on `log_path` uses: `config` when it is one, the file it names,
    else the nearest `aisdp.toml` (see `find_config`), else defaults."""

    if isinstance(config, Config):
        return config
    if config is None:
        config = find_config(log_path, root)
        if config is None:
            return Config(root=root)
    return load_config(root, config)


def shown_config(config: Config) -> str | None:
    """The config's path as reports show it (relative to the current folder when inside it),
    or None for defaults."""
    path = getattr(config, "path", None)
    if path is None:
        return None
    path = Path(path)
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except (ValueError, OSError):
        return str(path)
