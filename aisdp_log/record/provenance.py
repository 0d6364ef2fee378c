"""What a run was trained from: the commit at HEAD, whether tracked files had changes, and the
DVC data the working tree pins, for `run.json` (see aisdp_log.record.training)."""

from __future__ import annotations

import os
from pathlib import Path

from aisdp_log.errors import AisdpLogError
from aisdp_log.repo.dvcfiles import (
    PATHSPECS,
    data_spec,
    is_record,
    parse_record,
    stage_wdirs,
)
from aisdp_log.repo.git import run_git
from aisdp_log.repo.gitparse import read_head


def _git(repo: Path, *args: str) -> str | None:
    try:
        result = run_git(args, repo, text=True)
    except (OSError, AisdpLogError):  # git not installed, or no such folder
        return None
    return result.stdout if result.returncode == 0 else None


def _has_git(repo: Path) -> bool:
    try:
        run_git(("--version",), repo, text=True)
    except (OSError, AisdpLogError):
        return False
    return True


def git_state(repo: Path, *ignored: Path) -> tuple[str | None, bool | None]:
    """Full SHA of HEAD and whether tracked files have changes outside `ignored` folders.
    Where no git program runs (a training container with the repository mounted), HEAD is
    read from the repository's files and whether it had changes is unknown (None)."""
    head = _git(repo, "rev-parse", "--verify", "HEAD")
    if head is None:
        return (read_head(repo), None) if not _has_git(repo) else (None, None)
    excludes = []
    for folder in ignored:
        try:
            relative = folder.resolve().relative_to(repo)
        except ValueError:  # outside the repository: git cannot see it anyway
            continue
        if relative.parts:
            excludes.append(f":(exclude){relative.as_posix()}")
    status = _git(repo, "status", "--porcelain", "--untracked-files=no", "--", ".", *excludes)
    return head.strip(), None if status is None else bool(status.strip())


def data_versions(repo: Path, config, commit: str | None,
                  artefacts_root: Path) -> tuple[list[dict], str | None]:
    """Every counted DVC out as `{source, path, md5}` and the data version (the module docstring
    of aisdp_log.record.training). Reads the working tree's records with the validator's own
    parser and selection (aisdp_log.repo.dvcfiles), so what is recorded is what D001/D002
    accept."""

    spec = data_spec(config.data)  # entries are relative to the config, here the repo root
    sources = spec.records() if spec.configured else _find_dvc_records(repo, artefacts_root)
    outs = []
    for source in sources:
        try:
            blob = (repo / source).read_bytes()
        except OSError:
            continue  # missing: the validator's D checks report it
        stages = None
        if os.path.basename(source) == "dvc.lock":  # its stages' wdir (dvcfiles.parse_record)
            try:
                stages = (repo / source).with_name("dvc.yaml").read_bytes()
            except OSError:
                pass
        outs.extend(spec.counted(parse_record(source, blob, stage_wdirs(stages))))
    data = [{"source": out.source, "path": out.path, "md5": out.md5} for out in outs]
    if not data:
        return [], None
    if len(data) == 1:
        return data, data[0]["md5"]
    changed = _git(repo, "status", "--porcelain", "--untracked-files=all", "--",
                   *sorted({out["source"] for out in data}))
    pinned = commit is not None and changed is not None and not changed.strip()
    return data, commit if pinned else None


def _find_dvc_records(repo: Path, artefacts_root: Path) -> list[str]:
    """`.dvc` files and `dvc.lock`s in the working tree, tracked or not (a fresh `dvc add`),
    outside git-ignored folders and the artefacts folder."""

    listed = _git(repo, "ls-files", "--cached", "--others", "--exclude-standard", "--",
                  *PATHSPECS)
    if listed is not None:
        names = {line for line in listed.splitlines() if line}
    else:  # not a git repository: walk, skipping hidden folders (.dvc, .venv, .git)
        names = set()
        for folder, subfolders, files in os.walk(repo):
            subfolders[:] = [d for d in subfolders if not d.startswith(".")]
            names.update(Path(folder, f).relative_to(repo).as_posix() for f in files)
    try:
        skip = artefacts_root.relative_to(repo).as_posix() + "/"
    except ValueError:
        skip = None
    return sorted(n for n in names if is_record(n) and not (skip and n.startswith(skip)))
