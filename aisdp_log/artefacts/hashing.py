"""The `Artefact hash` of a file or an artefact folder, through the stat-keyed digest cache:
what `add`, `aisdp-log hash` and the artefact checks compute."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from aisdp_log.artefacts.cache import NullCache, open_cache
from aisdp_log.artefacts.digests import (
    ArtefactError,
    NoModelFile,
    OnBytes,
    combine,
    scan_folder,
)
from aisdp_log.repo.roots import find_repo_root
from aisdp_log.system.progress import Progress


def artefact_hash(path: Path | str, *, root: Path | str | None = None, cache=None,
                  on_bytes: OnBytes | None = None) -> str:
    """`sha256:<hex>` as the `Artefact hash` cell wants it, for a file or an artefact folder.

    `root` bounds where symlinks may lead (default: the folder holding `path`, which for
    `<artefacts>/<ID>` is the artefacts root the validator uses); `cache` is a
    `artefacts.cache.HashCache` (default: none). Raises ArtefactError when the path is missing,
    a folder holds no model file, a link leaves the root or a file cannot be read."""
    cache = cache if cache is not None else NullCache()
    path = Path(path)
    try:
        if path.is_file():
            return "sha256:" + cache.digest(str(path), os.stat(path), on_bytes=on_bytes,
                                            nofollow=False)
    except OSError as exc:
        raise ArtefactError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    if not path.is_dir():
        raise NoModelFile(f"{path}: no such file or folder")
    root = root if root is not None else os.path.realpath(path.parent)
    scan = scan_folder(path, root)
    if scan.escapes:
        raise ArtefactError(f"{path}: {scan.escapes[0]} is a symlink leading outside {root}; "
                            "copy the file into the folder instead")
    if scan.unreadable:
        rel, reason = scan.unreadable[0]
        raise ArtefactError(f"{path}: {rel} cannot be read ({reason})")
    if not scan.files:
        raise NoModelFile(f"{path}: no model file (only run.json, metrics.json, "
                            "history.csv or reruns/)")
    digests = []
    for model_file in scan.files:
        try:
            hex_digest = cache.digest(model_file.path, model_file.stat, on_bytes=on_bytes,
                                      nofollow=model_file.nofollow)
        except OSError as exc:
            raise ArtefactError(f"{path}: {model_file.rel} cannot be read "
                                f"({exc.strerror or exc})") from None
        digests.append((hex_digest, model_file.rel))
    cache.save()
    return combine(digests)


def hash_for_cell(path: Path | str, *, show_progress: bool = False) -> str:
    """What `aisdp-log hash PATH` prints: the artefact hash of a folder or file, using the
    digest cache of the git repository that holds it (when it can be written)."""
    path = Path(path)
    if not path.exists() and not path.is_symlink():
        raise NoModelFile(f"{path}: no such file or folder")
    # cache keys as the validator makes them (real artefacts root + ID), so either fills the
    # cache for the other; the last component stays as named, a link is judged as a link
    path = Path(os.path.realpath(path.parent)) / path.name
    repo = find_repo_root(path if path.is_dir() else path.parent)
    cache = open_cache(repo) if repo is not None else NullCache()
    total = None
    if show_progress and path.is_dir():
        total = scan_folder(path, os.path.realpath(path.parent)).total_bytes
    with Progress(total, label=f"hashing {path}", stream=sys.stderr,
                  enabled=show_progress) as progress:
        return artefact_hash(path, cache=cache, on_bytes=progress.advance)
