"""aisdp-log's own folder `.aisdp-log/` (locks, temp files, caches), and the sweep that removes
what a killed aisdp-log process left behind, judged by the pid in the leftover's name."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Callable
from pathlib import Path

from aisdp_log.errors import WriteRefused
from aisdp_log.system.platform import pid_alive

TOOL_DIR = ".aisdp-log"
__all__ = ["TOOL_DIR", "pid_alive", "remove_orphans", "tool_dir", "user_cache_dir"]


def tool_dir(folder: Path | str, *, create: bool = True) -> Path:
    """`folder/.aisdp-log/`, made on first use with a `.gitignore` of `*`."""
    folder = Path(folder) if str(folder) else Path(".")
    path = folder / TOOL_DIR
    if not create:
        return path
    try:
        path.mkdir(exist_ok=True)
        ignore = path / ".gitignore"
        if not ignore.is_file() or "*" not in ignore.read_text("utf-8", "replace").split():
            ignore.write_bytes(b"*\n")  # an existing one holding `*` is kept
    except OSError as exc:
        raise WriteRefused(f"{path}: cannot make aisdp-log's folder for its lock and temp "
                           f"files ({exc.strerror or exc})") from None
    return path


def user_cache_dir() -> Path:
    """aisdp-log's folder in the user's cache, outside every repository:
    `$XDG_CACHE_HOME/aisdp-log` (default `~/.cache/aisdp-log`). It holds the environments
    `rerun --env lock` builds and the key that seals the caches (`system.seal`)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "aisdp-log"


def remove_orphans(folder: Path | str, owner_pid: Callable[[str], int | None], *,
                   pattern: str = "*") -> list[Path]:
    """Remove each entry of `folder` matching `pattern` whose name carries the pid of a
    process that no longer runs on this host (`owner_pid(name)`; None: not ours, kept).

    The one rule for leftovers of a SIGKILLed aisdp-log (writer temps, rerun worktree
    holders, a review's scratch folder): a live pid, this process's included, keeps its
    entry. Symlinks are unlinked, never followed. Returns what was removed."""
    removed = []
    with contextlib.suppress(OSError):
        for entry in Path(folder).glob(pattern):
            pid = owner_pid(entry.name)
            if pid is None or pid_alive(pid):
                continue
            with contextlib.suppress(OSError):
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry)
                else:
                    entry.unlink()
                removed.append(entry)
    return removed
