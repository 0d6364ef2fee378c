"""Whole file or nothing: every file aisdp-log writes is replaced atomically through here.

Measured on our machines: a plain `save(path)` killed mid-write leaves a truncated,
unrecoverable file; a temp file in the same folder, fsync and `os.replace` leaves the original
intact. `mkstemp` makes files 0600, so the temp file gets the original's mode (or what `open()`
would give a new file) before it takes the original's place.

Windows refuses to replace a file another program holds open (Excel; a sync client such as
OneDrive or Dropbox while it uploads): the replace is retried for `REPLACE_RETRY_S`, then
refused in one line that names the likely holder.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import stat
import time
from collections.abc import Iterator
from pathlib import Path

from aisdp_log.errors import WriteFailed

#: How long a replace refused because another program holds the file is retried (seconds).
REPLACE_RETRY_S = 3.0
#: Windows opens files as text unless told otherwise.
_BINARY = getattr(os, "O_BINARY", 0)
#: Windows' "access denied", "sharing violation" and "lock violation".
HELD_WINERRORS = (5, 32, 33)


def new_file_mode() -> int:
    """The mode `open()` gives a new file under the current umask."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def temp_prefix(name: str) -> str:
    """The start of a temp file's name for `name`: our pid in it, so a later writer can tell
    the temp files of dead processes (guard.remove_stale_temps) from live ones."""
    return f"{name}.{os.getpid()}-"


#: A temp file's whole name: `temp_prefix(name)`, mkstemp's random part, a suffix.
TEMP_NAME = re.compile(r"^(?P<name>.+)\.(?P<pid>\d+)-[A-Za-z0-9_]+\.[A-Za-z0-9_-]+$")


def temp_owner(name: str) -> int | None:
    """The pid of the process that writes (or wrote) the temp file `name`; None for a name
    that is no temp file of ours (for `tooldir.remove_orphans`)."""
    match = TEMP_NAME.match(name)
    return int(match["pid"]) if match else None


@contextlib.contextmanager
def atomic_replace(path: Path | str, *, suffix: str = ".tmp", mode: int | None = None,
                   temp_dir: Path | str | None = None) -> Iterator[Path]:
    """Yield a temporary path for the caller to write in full: beside `path`, or in
    `temp_dir` (same file system; the log's writers use `.aisdp-log/`, see guard.py).

    On a clean exit the temp file is fsynced, given `mode` (default: the mode `path` has now,
    else a new file's) and `path`'s owner and group where it has them, moved over `path`
    with `os.replace`, and the folder is fsynced. On any exception (including one the caller
    raises to refuse the write) the temp file is removed and `path` is untouched; an OSError
    (disk full, quota, I/O error, permission) becomes WriteFailed naming `path` and the
    cause."""
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    temp: Path | None = None
    try:
        import tempfile  # 4 ms with shutil and random: paid by writes only, not by validate

        fd, name = tempfile.mkstemp(dir=folder if temp_dir is None else temp_dir,
                                    prefix=("." if temp_dir is None else "")
                                    + temp_prefix(path.name), suffix=suffix)
        os.close(fd)
        temp = Path(name)
        yield temp
        with open(temp, "rb+") as fh:
            os.fsync(fh.fileno())
        try:
            original = os.stat(path)
        except FileNotFoundError:
            original = None
        if mode is None:
            mode = stat.S_IMODE(original.st_mode) if original is not None else new_file_mode()
        os.chmod(temp, mode)
        if original is not None and hasattr(os, "chown"):
            _keep_owner(temp, original)
        _replace(temp, path)
    except WriteFailed:
        _remove(temp)
        raise
    except OSError as exc:
        _remove(temp)
        raise WriteFailed(f"{path}: not written ({_cause(exc)}); the file is as it was"
                          ) from None
    except BaseException:
        _remove(temp)
        raise
    fsync_folder(folder)


def office_owner_files(path: Path) -> list[Path]:
    """The owner files an office program puts beside a document it has open: Excel's
    `~$<name>` (Office may put `~$` over the name's first two characters instead) and
    LibreOffice's `.~lock.<name>#`."""
    candidates = [path.with_name("~$" + path.name)]
    if len(path.stem) > 2:
        candidates.append(path.with_name("~$" + path.name[2:]))
    return candidates + [path.with_name(f".~lock.{path.name}#")]


def _held(exc: OSError) -> bool:
    """Whether a failed replace means another program holds the file (not a permission the
    pre-flight would have named): Windows' access denied / sharing or lock violation, or a
    busy file."""
    if getattr(exc, "winerror", None) in HELD_WINERRORS:
        return True
    return exc.errno == errno.EBUSY or (os.name == "nt" and isinstance(exc, PermissionError))


def _replace(temp: Path, path: Path) -> None:
    """`os.replace`, retried briefly while another program holds `path`; then WriteFailed
    naming the likely holder."""
    deadline = time.monotonic() + REPLACE_RETRY_S
    delay = 0.05
    while True:
        try:
            os.replace(temp, path)
            return
        except OSError as exc:
            if not _held(exc):
                raise
            if time.monotonic() >= deadline:
                raise WriteFailed(f"{path}: not written: {held_cause(path)} "
                                  f"({_cause(exc)}); the file is as it was") from None
        time.sleep(delay)
        delay = min(delay * 2, 0.5)


def held_cause(path: Path) -> str:
    """Why another program holds `path` and what to do, for a refused replace."""
    owners = [owner for owner in office_owner_files(path) if owner.exists()]
    if any(owner.name.startswith("~$") for owner in owners):
        return ("it is open in Excel, which locks it on Windows; close it in Excel and run "
                "the command again")
    if owners:
        return "it is open in LibreOffice; close it there and run the command again"
    return ("another program holds it open: a sync client (OneDrive, Dropbox, Google Drive) "
            "uploading it, an antivirus scan, or a program with it open; wait for the sync "
            "or close that program, then run the command again")


def _keep_owner(temp: Path, original: os.stat_result) -> None:
    """Give the temp file the original's owner and group, as far as we may (the pre-flight
    has refused a file we may not give back to its owner)."""
    try:
        os.chown(temp, original.st_uid, original.st_gid)
    except OSError:
        with contextlib.suppress(OSError):
            os.chown(temp, -1, original.st_gid)


def _cause(exc: OSError) -> str:
    reason = exc.strerror or str(exc) or type(exc).__name__
    name = errno.errorcode.get(exc.errno or 0)
    return f"{reason}, {name}" if name else reason


def _remove(temp: Path | None) -> None:
    if temp is not None:
        with contextlib.suppress(OSError):
            temp.unlink()


def write_bytes(path: Path | str, data: bytes, *, mode: int | None = None,
                temp_dir: Path | str | None = None) -> None:
    """Write `data` to `path` atomically."""
    with atomic_replace(path, mode=mode, temp_dir=temp_dir) as temp:
        temp.write_bytes(data)


def write_new(path: Path | str, data: bytes, *, mode: int | None = None) -> None:
    """Write `data` to `path` whole or not at all, and never over an existing file: a temp
    file beside it (named as `atomic_replace` names its temps, so a later sweep knows a dead
    writer's), fsynced, then hard-linked to `path` (FileExistsError when `path` exists) and
    unlinked. A file system without hard links gets an exclusive create instead (still never
    an overwrite, but a kill mid-write may leave the file short). `mode`: the new file's
    (default what `open()` would give it)."""
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    import tempfile  # paid by writes only

    try:
        fd, name = tempfile.mkstemp(dir=folder, prefix="." + temp_prefix(path.name),
                                    suffix=".tmp")
    except OSError as exc:
        raise WriteFailed(f"{path}: cannot write ({exc.strerror or exc})") from exc
    temp = Path(name)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        mode = new_file_mode() if mode is None else mode
        os.chmod(temp, mode)
        try:
            os.link(temp, path)
        except FileExistsError:
            raise
        except OSError:
            with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _BINARY, mode),
                      "wb") as out:
                out.write(data)
        fsync_folder(folder)
    except FileExistsError:
        raise
    except OSError as exc:
        raise WriteFailed(f"{path}: cannot write ({exc.strerror or exc})") from exc
    finally:
        _remove(temp)


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
