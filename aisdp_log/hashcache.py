"""A cache of file sha256 digests keyed on the file's stat, so unchanged artefacts are not
read again.

An entry is trusted only while (size, mtime_ns, inode, ctime_ns) still match, as DVC's state
database does. ctime cannot be set from user space, so a file rewritten and re-dated with
`touch -d` is still read again, and a store copied from another clone never matches. An entry
whose file changed within a timestamp tick of its hashing ("racily clean", as git calls it) is
read again once, since a write in that tick would not move the stat.

The store is one JSON file, `<repo>/.aisdp-log/hashes.json`, written atomically. Measured for
10,000 entries: JSON loads in 11 ms, marshal in 5 ms, sqlite3 (all rows) in 17 ms and
one query per file costs 90 ms. marshal's docs warn against loading data one did not write,
and a repository folder is not always one's own, so JSON it is; 11 ms is 1% of the
1-second budget of a warm validate.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

from .hashing import OnBytes, read_sha256

STORE_DIR = ".aisdp-log"
STORE_NAME = "hashes.json"
FORMAT = 1
#: Timestamps on common Linux/macOS file systems tick in at most ~10 ms; whole-second
#: timestamps mean a coarse file system (FAT, some network mounts) with 2-second ticks.
RACY_NS = 50_000_000
RACY_COARSE_NS = 2_000_000_000
#: Entries not used in a run survive while their file exists, up to this many.
MAX_ENTRIES = 500_000


def stat_key(info: os.stat_result) -> list[int]:
    return [info.st_size, info.st_mtime_ns, info.st_ino, info.st_ctime_ns]


class HashCache:
    """sha256 digests by path, trusted while the file's stat matches. `hits` and `misses`
    count lookups; `bytes_hashed` counts bytes actually read."""

    def __init__(self, store: Path | None = None):
        self.store = store
        self.entries: dict[str, list] = {}
        self.used: set[str] = set()
        self.dirty = False
        self.hits = 0
        self.misses = 0
        self.bytes_hashed = 0
        if store is not None:
            self.entries = _load(store)

    def lookup(self, path: str, info: os.stat_result) -> str | None:
        """The cached hex digest of `path` when its stat still matches, else None."""
        entry = self.entries.get(path)
        if entry is not None and entry[:4] == stat_key(info) and not _racy(entry):
            self.hits += 1
            self.used.add(path)
            return entry[4]
        self.misses += 1
        return None

    def store_digest(self, path: str, info: os.stat_result, hex_digest: str,
                     hashed_at_ns: int) -> None:
        self.entries[path] = stat_key(info) + [hex_digest, hashed_at_ns]
        self.used.add(path)
        self.dirty = True

    def hash_file(self, path: str, *, on_bytes: OnBytes | None = None,
                  nofollow: bool = True) -> str:
        """Read and hash `path` now, and remember the digest under the descriptor's stat."""
        hashed_at = time.time_ns()
        hex_digest, info = read_sha256(path, nofollow=nofollow, on_bytes=on_bytes)
        self.bytes_hashed += info.st_size
        self.store_digest(path, info, hex_digest, hashed_at)
        return hex_digest

    def digest(self, path: str, info: os.stat_result, *, on_bytes: OnBytes | None = None,
               nofollow: bool = True) -> str:
        """The hex sha256 of `path` (whose stat is `info`): from the cache, else read."""
        cached = self.lookup(path, info)
        if cached is not None:
            return cached
        return self.hash_file(path, on_bytes=on_bytes, nofollow=nofollow)

    def save(self) -> None:
        """Write the store atomically if anything changed; a failure only costs speed."""
        if not self.dirty or self.store is None:
            return
        keep = {}
        for path, entry in self.entries.items():
            # entries of files not seen this run stay while the file exists (another log in
            # the same repository may use them)
            if path in self.used or (len(keep) < MAX_ENTRIES and os.path.exists(path)):
                keep[path] = entry
        text = json.dumps({"format": FORMAT, "entries": keep}, separators=(",", ":"))
        try:
            self.store.parent.mkdir(exist_ok=True)
            fd, temp = tempfile.mkstemp(prefix=".hashes-", suffix=".tmp",
                                        dir=self.store.parent)
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as fh:
                    fh.write(text)
                os.replace(temp, self.store)
            except BaseException:
                os.unlink(temp)
                raise
        except OSError:
            return  # read-only or full disk: the next run hashes again, nothing is wrong
        self.entries = keep
        self.dirty = False


class NullCache(HashCache):
    """A cache that remembers nothing, for a repository the tool cannot write to; the
    callers stay free of `if cache:` branches."""

    def __init__(self):
        super().__init__(None)

    def lookup(self, path: str, info: os.stat_result) -> str | None:
        self.misses += 1
        return None

    def store_digest(self, path: str, info: os.stat_result, hex_digest: str,
                     hashed_at_ns: int) -> None:
        pass

    def save(self) -> None:
        pass


def open_cache(repo: Path | str) -> HashCache:
    """The repository's cache, or a NullCache where `<repo>/.aisdp-log/` cannot be written."""
    folder = Path(repo) / STORE_DIR
    try:
        folder.mkdir(exist_ok=True)
    except OSError:
        return NullCache()
    if not os.access(folder, os.W_OK | os.X_OK):
        return NullCache()
    _ignore_in_git(folder)
    return HashCache(folder / STORE_NAME)


def _ignore_in_git(folder: Path) -> None:
    """Keep the store out of `git status` even where the project's .gitignore lacks it."""
    marker = folder / ".gitignore"
    if not marker.exists():
        try:
            marker.write_text("# written by aisdp-log: a local cache, never commit it\n*\n")
        except OSError:
            pass


def _racy(entry: list) -> bool:
    size, mtime_ns, _inode, ctime_ns, _hex, hashed_at = entry
    coarse = mtime_ns % 1_000_000_000 == 0 and ctime_ns % 1_000_000_000 == 0
    margin = RACY_COARSE_NS if coarse else RACY_NS
    return max(mtime_ns, ctime_ns) >= hashed_at - margin


def _load(store: Path) -> dict[str, list]:
    """The stored entries; an unreadable or foreign file counts as empty (it is only a cache)."""
    try:
        with open(store, "rb") as fh:
            data = json.loads(fh.read())
    except (OSError, ValueError, RecursionError):
        return {}
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        return {}
    entries = data.get("entries")
    if not isinstance(entries, dict):
        return {}
    good = {}
    for path, entry in entries.items():
        if (isinstance(entry, list) and len(entry) == 6
                and all(type(v) is int for v in entry[:4]) and type(entry[5]) is int
                and isinstance(entry[4], str) and len(entry[4]) == 64):
            good[path] = entry
    return good
