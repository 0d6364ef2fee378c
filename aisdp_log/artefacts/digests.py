"""Digests: streaming sha256 of one file, and the sha256sum-style manifest of an artefact folder.

An artefact folder is listed without ever leaving the artefacts root: a symlink whose target
lies outside it is reported, never read, so a cell or a planted link cannot make the tool hash
(or reveal the existence of) files elsewhere on the machine.
"""

from __future__ import annotations

import hashlib
import os
import stat as stat_module
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from aisdp_log.errors import AisdpLogError

#: Files in an artefact folder that are records about the model, not the model.
RECORD_FILES = frozenset({"run.json", "metrics.json", "history.csv"})
RECORD_DIRS = frozenset({"reruns"})

_S_ISREG = stat_module.S_ISREG
#: Read size when hashlib.file_digest is missing (Python 3.10).
_BLOCK = 1 << 20
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_BINARY = getattr(os, "O_BINARY", 0)

OnBytes = Callable[[int], None]


class ArtefactError(AisdpLogError):
    """A path cannot be hashed: missing, empty, unreadable, or it leads outside its root."""


class NoModelFile(ArtefactError, FileNotFoundError):
    """The path is missing, or the folder holds no model file (a FileNotFoundError too, so
    callers that only ask "is there a model yet?" can catch that)."""


class _Counting:
    """A raw file that reports each read to a callback, so file_digest can drive a progress
    display without a hand-written read loop (file_digest needs only readinto/readable)."""

    def __init__(self, raw, on_bytes: OnBytes):
        self._raw = raw
        self._on_bytes = on_bytes

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        size = self._raw.readinto(buffer)
        if size:
            self._on_bytes(size)
        return size


def sha256_stream(raw, on_bytes: OnBytes | None = None) -> str:
    """Hex sha256 of a binary file object, streamed (hashlib.file_digest where available)."""
    source = raw if on_bytes is None else _Counting(raw, on_bytes)
    if hasattr(hashlib, "file_digest"):
        return hashlib.file_digest(source, "sha256").hexdigest()
    digest = hashlib.sha256()  # Python 3.10
    buffer = bytearray(_BLOCK)
    view = memoryview(buffer)
    while True:
        size = source.readinto(buffer)
        if not size:
            break
        digest.update(view[:size])
    return digest.hexdigest()


def read_sha256(path: str | Path, *, nofollow: bool = False,
                on_bytes: OnBytes | None = None) -> tuple[str, os.stat_result]:
    """(hex sha256, fstat of the file read). The stat comes from the open descriptor, so it
    describes exactly the bytes hashed even if the path is swapped meanwhile; `nofollow`
    refuses a path that became a symlink after it was listed as a regular file.

    Raises OSError (including IsADirectoryError / a non-regular file as OSError)."""
    fd = os.open(path, os.O_RDONLY | _BINARY | (_NOFOLLOW if nofollow else 0))
    # unbuffered: file_digest's readinto then reads straight into its buffer, no extra copy
    with open(fd, "rb", buffering=0, closefd=True) as raw:
        info = os.fstat(raw.fileno())
        if not stat_module.S_ISREG(info.st_mode):
            # a FIFO would block forever, a device never end
            raise OSError(f"{path}: not a regular file")
        return sha256_stream(raw, on_bytes), info


def file_sha256(path: Path | str) -> str:
    """Hex sha256 of a file, streamed."""
    return read_sha256(path)[0]


def inside(path: str, root: str) -> bool:
    """True when the resolved `path` lies strictly under the resolved `root`."""
    return path.startswith(root.rstrip(os.sep) + os.sep)


@dataclass(slots=True)
class ModelFile:
    """One file of the model artefact, as listed (not yet hashed)."""

    rel: str                 # path relative to the artefact folder, with `/`
    path: str                # path to open (through in-root symlinks as listed)
    stat: os.stat_result     # of the file itself (a symlink's target)
    nofollow: bool = True    # listed as a regular file, so refuse a symlink when opening


@dataclass(slots=True)
class FolderScan:
    """What an artefact folder holds: model files, record files, and what was refused."""

    files: list[ModelFile] = field(default_factory=list)
    records: dict[str, str] = field(default_factory=dict)   # run.json etc. -> path
    escapes: list[str] = field(default_factory=list)        # rel paths of links leaving root
    unreadable: list[tuple[str, str]] = field(default_factory=list)  # (rel, reason)
    #: record name -> its listing entry (statted only when asked) or its target's stat
    record_info: dict[str, os.DirEntry[str] | os.stat_result] = field(default_factory=dict)
    #: every folder listed (the artefact folder first), for `aisdp_log.system.inputs`
    folders: list[str] = field(default_factory=list)
    #: whether a symlink was met (its target may change without any listed stat moving)
    links: bool = False

    @property
    def total_bytes(self) -> int:
        return sum(f.stat.st_size for f in self.files)

    def record_stat(self, name: str) -> os.stat_result:
        """The stat of record `name` (of its target, for an in-root symlink), taken on first
        use: callers that only open records pay no syscall for it. Raises OSError."""
        info = self.record_info[name]
        if isinstance(info, os.DirEntry):
            info = self.record_info[name] = info.stat(follow_symlinks=False)
        return info


def scan_folder(folder: str | Path, root: str | Path | None = None, *,
                root_resolved: bool = False) -> FolderScan:
    """List an artefact folder: model files sorted by relative path, record files at its top
    level, and symlinks whose target leaves `root` (the artefacts root; default the folder
    itself), which are reported and never followed. Symlinks inside the root are followed,
    as `sha256sum` would read them, except a link back to an enclosing folder. Non-regular
    files (FIFOs, sockets, devices) are skipped: they hold no model bytes and reading them
    could block. `root_resolved` says `root` is already a real path (saves a realpath per
    folder when checking thousands)."""
    folder = os.fspath(folder)
    root = os.fspath(root) if root is not None else folder
    root_real = root if root_resolved else os.path.realpath(root)
    scan = FolderScan()
    _walk(folder, "", root_real, scan, None, ())
    if len(scan.files) > 1:
        scan.files.sort(key=_by_rel)
    return scan


def _by_rel(model_file: ModelFile) -> str:
    return model_file.rel


def _walk(directory: str, prefix: str, root_real: str, scan: FolderScan,
          directory_real: str | None, outer: tuple[str, ...]) -> None:
    """One folder level. Syscalls are what a warm check pays for, so only model files are
    stat'ed (records and folders are told apart by the listing's file type) and real paths
    are computed only where a symlink appears. `outer`: the real paths of the folders above
    that hold a followed folder link (the folders between are their plain subfolders)."""
    scan.folders.append(directory)
    try:
        with os.scandir(directory) as listing:
            entries = list(listing)
    except OSError as exc:
        scan.unreadable.append((prefix.rstrip("/") or ".", exc.strerror or str(exc)))
        return
    top_level = not prefix
    files = scan.files
    for entry in entries:
        name = entry.name
        is_record = False
        if top_level:
            if name in RECORD_DIRS:
                continue
            is_record = name in RECORD_FILES
        try:
            # the common case first, from the listing's file type alone: a regular file
            if entry.is_file(follow_symlinks=False):
                if is_record:
                    scan.records[name] = entry.path
                    scan.record_info[name] = entry
                else:
                    info = entry.stat(follow_symlinks=False)
                    if _S_ISREG(info.st_mode):  # not swapped since the listing
                        files.append(ModelFile(prefix + name, entry.path, info, True))
                continue
            if not entry.is_symlink():
                if entry.is_dir(follow_symlinks=False) and not is_record:
                    _walk(entry.path, prefix + name + "/", root_real, scan,
                          directory_real and directory_real + os.sep + name, outer)
                continue  # a FIFO, socket or device: no model bytes
            scan.links = True
            target = os.path.realpath(entry.path)
            if not inside(target, root_real):
                scan.escapes.append(prefix + name)
                continue
            info = os.stat(entry.path)
        except OSError as exc:  # a dangling link, a file removed while listing
            if not is_record:
                scan.unreadable.append((prefix + name, exc.strerror or str(exc)))
            continue
        if stat_module.S_ISDIR(info.st_mode):
            here = directory_real or os.path.realpath(directory)
            # a link to a folder being listed, or to one enclosing it, would list it forever
            # (two folders linking to each other too, and with two such links exponentially):
            # a folder being listed is `here`, a folder of `outer`, or a parent of one
            if not is_record and not any(folder == target or inside(folder, target)
                                         for folder in (here, *outer)):
                _walk(entry.path, prefix + name + "/", root_real, scan, target,
                      (*outer, here))
        elif stat_module.S_ISREG(info.st_mode):
            if is_record:
                scan.records[name] = entry.path
                scan.record_info[name] = info
            else:
                files.append(ModelFile(prefix + name, entry.path, info, False))


def model_files(folder: Path) -> list[Path]:
    """The model artefact: every regular file under `folder` except the records, sorted by
    their path relative to the folder (with `/`); links leaving `folder` are left out."""
    return [Path(f.path) for f in scan_folder(folder).files]



def manifest_text(entries: list[tuple[str, str]]) -> str:
    """`<hex>  <relpath>\\n` lines sorted by path, from (hex, relpath): what `sha256sum`
    prints, and what a multi-file artefact hash is the sha256 of."""
    return "".join(f"{hex_digest}  {rel}\n" for hex_digest, rel in
                   sorted(entries, key=lambda e: e[1]))


def manifest_hash(entries: list[tuple[str, str]]) -> str:
    """sha256 of `manifest_text(entries)`."""
    return hashlib.sha256(manifest_text(entries).encode("utf-8")).hexdigest()


def combine(digests: list[tuple[str, str]]) -> str:
    """`sha256:<hex>` from (hex, relpath) per model file: the file's own hash when there is
    one, else the manifest hash (docs/workbook-format.md, "Artefact folders")."""
    if len(digests) == 1:
        return "sha256:" + digests[0][0]
    return "sha256:" + manifest_hash(digests)
