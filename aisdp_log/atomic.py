"""Whole file or nothing: every file aisdp-log writes is replaced atomically through here.

Measured here (FACTS.md): a plain `save(path)` killed mid-write leaves a truncated,
unrecoverable file; a temp file in the same folder, fsync and `os.replace` leaves the original
intact. `mkstemp` makes files 0600, so the temp file gets the original's mode (or what `open()`
would give a new file) before it takes the original's place.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from pathlib import Path
from typing import Iterator


def new_file_mode() -> int:
    """The mode `open()` gives a new file under the current umask."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


@contextlib.contextmanager
def atomic_replace(path: Path | str, *, suffix: str = ".tmp",
                   mode: int | None = None) -> Iterator[Path]:
    """Yield a temporary path beside `path` for the caller to write in full.

    On a clean exit the temp file is fsynced, given `mode` (default: the mode `path` has now,
    else a new file's), moved over `path` with `os.replace`, and the folder is fsynced. On any
    exception (including one the caller raises to refuse the write) the temp file is removed
    and `path` is untouched."""
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    fd, name = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=suffix)
    os.close(fd)
    temp = Path(name)
    try:
        yield temp
        with open(temp, "rb+") as fh:
            os.fsync(fh.fileno())
        if mode is None:
            try:
                mode = stat.S_IMODE(os.stat(path).st_mode)
            except FileNotFoundError:
                mode = new_file_mode()
        os.chmod(temp, mode)
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            temp.unlink()
        raise
    fsync_folder(folder)


def write_bytes(path: Path | str, data: bytes, *, mode: int | None = None) -> None:
    """Write `data` to `path` atomically."""
    with atomic_replace(path, mode=mode) as temp:
        temp.write_bytes(data)


def fsync_folder(folder: Path) -> None:
    """Make a rename durable: fsync the folder entry (not possible on Windows)."""
    if not hasattr(os, "O_DIRECTORY"):
        return
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
