"""The file-system facts a validation's result rests on, noted where the checks read them, so
a later run can tell by stats alone that none of them moved (`aisdp_log.lint.results`).

A check notes a path when it reads or probes it: `note(path)` for a file or a folder's
entry list (its own stat: a file's size, mtime, inode and ctime; a folder's mtime moves
whenever an entry is added, removed or renamed), present or absent alike, since a missing
file appearing changes an answer as surely as a file changing. Where a check depends on
something a stat cannot vouch for (a symlink's target elsewhere, a program's answer that
depends on the time), it calls `refuse(reason)` and the run's result is not kept.

One recorder is active per validation, process-wide (the git families run in a thread);
with none active the calls cost a global lookup and do nothing, so commands other than
`validate` pay nothing for them.
"""

from __future__ import annotations

import os
import stat as stat_module
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from aisdp_log.system.platform import IS_WINDOWS, file_identity

#: A file changed within this long of its reading may change again within the same timestamp
#: tick without its stat moving ("racily clean", as git calls it): nothing cached may rest on
#: it. Timestamps on common Linux/macOS file systems tick in at most ~10 ms; whole-second
#: timestamps mean a coarse file system (FAT, some network mounts) with 2-second ticks.
RACY_NS = 50_000_000
RACY_COARSE_NS = 2_000_000_000

ABSENT = "-"
#: Marks a noted path whose identity alone counts (`Inputs.note_identity`); absolute paths
#: never start with it.
IDENTITY = "@"


class Inputs:
    """Paths one validation read or probed (insertion-ordered, each once), and the reasons,
    if any, its result must not be kept."""

    def __init__(self) -> None:
        self.paths: dict[str, None] = {}
        self.refused: list[str] = []
        #: a check asked git (its config, a blob at HEAD): the repository's state is an input
        #: even of an --offline run
        self.git = False
        self._lock = threading.Lock()

    def note(self, path: str | os.PathLike[str]) -> None:
        self.paths[os.path.abspath(os.fspath(path))] = None  # a dict store is atomic

    def note_many(self, paths: Iterable[str | os.PathLike[str]]) -> None:
        absolute = os.path.abspath
        fspath = os.fspath
        with self._lock:
            self.paths.update(dict.fromkeys(absolute(fspath(p)) for p in paths))

    def note_absolute(self, paths: Iterable[str]) -> None:
        """`note_many` for paths known to be absolute and normalised (no `..`, no `//`):
        a 10,000-row log notes 40,000 artefact paths, and abspath would be most of it."""
        with self._lock:
            self.paths.update(dict.fromkeys(paths))

    def note_identity(self, paths: Iterable[str | os.PathLike[str]]) -> None:
        """Paths whose identity (file type, inode, a symlink's target), not contents or
        entries, the run rests on: the folders on the way to one read at its real path."""
        with self._lock:
            self.paths.update(dict.fromkeys(IDENTITY + os.path.abspath(os.fspath(p))
                                            for p in paths))

    def refuse(self, reason: str) -> None:
        with self._lock:
            if reason not in self.refused:
                self.refused.append(reason)


_active: Inputs | None = None
_claim = threading.Lock()


@contextmanager
def recording() -> Iterator[Inputs | None]:
    """Make a fresh recorder the active one for the block and yield it; None (nothing is
    recorded) when another validation in this process records already."""
    global _active
    if not _claim.acquire(blocking=False):
        yield None
        return
    try:
        _active = recorder = Inputs()
        yield recorder
    finally:
        _active = None
        _claim.release()


def note(path: str | os.PathLike[str]) -> None:
    """The active validation's result rests on `path` (a file read or probed, or a folder
    whose entries were listed)."""
    recorder = _active
    if recorder is not None:
        recorder.note(path)


def note_many(paths: Iterable[str | os.PathLike[str]]) -> None:
    recorder = _active
    if recorder is not None:
        recorder.note_many(paths)


def note_absolute(paths: Iterable[str]) -> None:
    recorder = _active
    if recorder is not None:
        recorder.note_absolute(paths)


def asked_git() -> None:
    """The active validation asked git something (offline runs too: the allowed signers)."""
    recorder = _active
    if recorder is not None:
        recorder.git = True


def note_identity(paths: Iterable[str | os.PathLike[str]]) -> None:
    recorder = _active
    if recorder is not None:
        recorder.note_identity(paths)


def refuse(reason: str) -> None:
    """The active validation depends on something its inputs' stats cannot vouch for."""
    recorder = _active
    if recorder is not None:
        recorder.refuse(reason)


def identity_key(path: str) -> str:
    """`<file type>:<inode>` of the path itself, and a symlink's target as written; `-` for
    what does not exist. Moves when the path is replaced or a link pointed elsewhere, not
    when a folder's entries change."""
    try:
        info = os.lstat(path)
    except OSError:
        return ABSENT
    key = f"{stat_module.S_IFMT(info.st_mode)}:{info.st_ino}"
    if stat_module.S_ISLNK(info.st_mode):
        try:
            key += ">" + os.readlink(path)
        except OSError:
            key += ">?"
    return key


def stat_key(info: os.stat_result) -> str:
    """(size, mtime_ns, inode, ctime_ns) as one string, the key every stat-keyed cache of the
    tool compares: a store of strings parses about twice as fast as one of 19-digit integers,
    and one comparison replaces four. The inode is 0 on Windows, whose `os.scandir` gives
    none (system/platform's file_identity)."""
    return f"{info.st_size}:{info.st_mtime_ns}:{file_identity(info)}"


def is_racy(info: os.stat_result, read_at_ns: int) -> bool:
    """Whether the file of stat `info` changed within a timestamp tick of `read_at_ns` (or
    later), so a later write in that tick would not move its stat ("racily clean"): nothing
    cached may rest on it."""
    mtime_ns, ctime_ns = info.st_mtime_ns, info.st_ctime_ns
    coarse = mtime_ns % 1_000_000_000 == 0 and ctime_ns % 1_000_000_000 == 0
    margin = RACY_COARSE_NS if coarse else RACY_NS
    return max(mtime_ns, ctime_ns) >= read_at_ns - margin


def path_key(path: str, since_ns: int | None = None) -> str:
    """`stat_key` of the path itself, then of a symlink's target; `-` for
    what does not exist. Equal keys mean unchanged contents (a file) or entries (a folder):
    ctime cannot be set from user space, so a rewrite dated back with `touch -d` still moves
    it. With `since_ns`, a path changed within a timestamp tick of it (or later) raises
    Racy: its stat could stay the same through a change yet to come in that tick."""
    if path.startswith(IDENTITY):
        return identity_key(path[len(IDENTITY):])
    try:
        info = os.lstat(path)
    except OSError:
        return ABSENT
    if since_ns is not None and is_racy(info, since_ns):
        raise Racy(path)
    key = stat_key(info)
    if stat_module.S_ISLNK(info.st_mode):
        try:
            target = os.stat(path)
        except OSError:
            return key + ">" + ABSENT
        if since_ns is not None and is_racy(target, since_ns):
            raise Racy(path)
        key += ">" + stat_key(target)
    return key


class Racy(Exception):
    """A path changed too recently for its stat to vouch for it (see `is_racy`)."""


def path_keys(paths: Iterable[str], since_ns: int | None = None) -> list[str]:
    """`path_key` of each path, in order (Racy as there). A replay stats every input of a
    run (40,000 on a 10,000-row log), so the common case, a path that is no symlink, is
    keyed here inline (`stat_key` and `is_racy` written out): a call fewer per path is a
    third of the loop's time."""
    if IS_WINDOWS:
        return [path_key(path, since_ns) for path in paths]
    lstat, is_link = os.lstat, stat_module.S_ISLNK
    newest = None
    if since_ns is not None:  # is_racy's margin, for the common fine-grained clock
        newest = since_ns - RACY_NS
    keys: list[str] = []
    append = keys.append
    for path in paths:
        if path.startswith(IDENTITY):
            append(identity_key(path[len(IDENTITY):]))
            continue
        try:
            info = lstat(path)
        except OSError:
            append(ABSENT)
            continue
        mtime_ns, ctime_ns = info.st_mtime_ns, info.st_ctime_ns
        if is_link(info.st_mode) or (newest is not None and (
                mtime_ns >= newest or ctime_ns >= newest or
                (mtime_ns % 1_000_000_000 == 0 and ctime_ns % 1_000_000_000 == 0))):
            append(path_key(path, since_ns))  # a symlink, or a stat to judge closely
        else:  # file_identity's `<inode>:<ctime_ns>`, as `stat_key` writes it
            append(f"{info.st_size}:{mtime_ns}:{info.st_ino}:{ctime_ns}")
    return keys
