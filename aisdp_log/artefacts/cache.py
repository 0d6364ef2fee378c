"""A cache of file sha256 digests, and of the artefact records' parsed summaries, keyed on
the file's stat, so unchanged artefacts are not read again.

An entry is trusted only while (size, mtime_ns, inode, ctime_ns) still match, as DVC's state
database does. ctime cannot be set from user space, so a file rewritten and re-dated with
`touch -d` is still read again, and a store copied from another clone never matches. An entry
whose file changed within a timestamp tick of its reading ("racily clean", as git calls it) is
read again once, since a write in that tick would not move the stat.

Besides digests the store holds, per `metrics.json` / `run.json`, what the artefact checks need
of it (the parsed object cut to the keys they compare, or why it could not be parsed), so a
warm validation stats the records instead of opening and parsing 20,000 small JSON files.

Both files are sealed with an HMAC under the user's key (`aisdp_log.system.seal`): they live in
the repository, where a digest planted by anyone else for a swapped model's stat would
otherwise hide the swap; a file whose seal is not this user's reads as empty.

The store is one JSON file, `<repo>/.aisdp-log/hashes.json`, written atomically: two flat lists
of `path, "size:mtime_ns:inode:ctime_ns", value` triples, paths relative to the repository.
For 12,000 digests and 20,000 records that is about 3.5 MB and loads in about a third of the
time of the first layout (a dict per path, the four stat fields as 19-digit integers): string
keys parse at memcpy speed, and nothing is validated at load (values are checked where used).
An entry changed within a tick of its reading is never trusted, so it is not stored at all.
The artefact checks' clean verdicts (digests of all the inputs of a check that found nothing)
live beside it in `verdicts.json`: a warm run whose verdicts all hold reads only that file.
Measured for 10,000 entries: JSON loads in 11 ms, marshal in 5 ms, sqlite3 (all rows) in 17 ms
and one query per file costs 90 ms. marshal's docs warn against loading data one did not
write, and a repository folder is not always one's own, so JSON it is.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from aisdp_log.artefacts.digests import OnBytes, read_sha256
from aisdp_log.errors import WriteRefused
from aisdp_log.system.fingerprint import code_fingerprint
from aisdp_log.system.inputs import is_racy, stat_key
from aisdp_log.system.seal import read_sealed, write_sealed
from aisdp_log.system.tooldir import tool_dir

STORE_NAME = "hashes.json"
VERDICTS_NAME = "verdicts.json"
FORMAT = 3
#: Entries not used in a run survive while their file exists, up to this many.
MAX_ENTRIES = 500_000
#: Verdicts not used in a run survive up to this many in all.
MAX_VERDICTS = 200_000


class HashCache:
    """sha256 digests and record summaries by path, trusted while the file's stat matches.
    `hits` and `misses` count digest lookups, `record_hits` and `record_misses` record
    lookups; `bytes_hashed` counts bytes actually read for digests.

    In memory an entry is `[stat_key, value]`, on disk `path, stat_key, value` in a flat list,
    paths relative to the folder holding the store's folder (the repository)."""

    def __init__(self, store: Path | None = None):
        self.store = store
        self.base = os.path.dirname(os.path.dirname(os.path.realpath(store))) \
            if store is not None else ""
        #: clean verdicts: digests of every input of a check that found nothing (see
        #: `checks.artefacts`); a verdict is used only when all of its inputs are unchanged.
        #: Kept in a file of their own beside the store: a run where every verdict holds
        #: never needs the digests and summaries, so never loads them.
        self.verdict_store = store.with_name(VERDICTS_NAME) if store is not None else None
        self.verdicts: set[str] = set()
        self.used_verdicts: set[str] = set()
        self.verdict_hits = 0
        self.verdict_misses = 0
        self._entries: dict[str, list] | None = None if store is not None else {}
        self._records: dict[str, list] | None = None if store is not None else {}
        self.used: set[str] = set()
        self.dirty = False            # digests or summaries changed
        self.verdicts_dirty = False
        self.hits = 0
        self.misses = 0
        self.record_hits = 0
        self.record_misses = 0
        self.bytes_hashed = 0
        if self.verdict_store is not None:
            self.verdicts = _load_verdicts(self.verdict_store)

    @property
    def entries(self) -> dict[str, list]:
        """Digest entries by path (the store is read on first use)."""
        if self._entries is None:
            assert self.store is not None  # without a store the tables start empty
            self._entries, self._records = _load(self.store, self.base)
        return self._entries

    @property
    def records(self) -> dict[str, list]:
        """Record summaries by path (the store is read on first use)."""
        if self._records is None:
            assert self.store is not None  # without a store the tables start empty
            self._entries, self._records = _load(self.store, self.base)
        return self._records

    def lookup(self, path: str, info: os.stat_result) -> str | None:
        """The cached hex digest of `path` when its stat still matches, else None."""
        entry = self.entries.get(path)
        if entry is not None and entry[0] == stat_key(info):
            hex_digest = entry[1]
            # a store may come from a folder that is not one's own: use sane values only
            if type(hex_digest) is str and len(hex_digest) == 64:
                self.hits += 1
                self.used.add(path)
                return hex_digest
        self.misses += 1
        return None

    def store_digest(self, path: str, info: os.stat_result, hex_digest: str,
                     hashed_at_ns: int) -> None:
        """Remember the digest of the bytes (read from `hashed_at_ns` on) whose stat is
        `info`; one changed within a timestamp tick of the reading is not remembered."""
        self._remember(self.entries, path, info, hex_digest, hashed_at_ns)

    def lookup_record(self, path: str, info: os.stat_result) -> object:
        """The summary stored for the record at `path` when its stat still matches, else None.
        The caller checks the summary's shape: the store is only data."""
        entry = self.records.get(path)
        if entry is not None and entry[0] == stat_key(info) and entry[1] is not None:
            self.record_hits += 1
            self.used.add(path)
            return entry[1]
        self.record_misses += 1
        return None

    def store_record(self, path: str, info: os.stat_result, summary: object,
                     read_at_ns: int) -> None:
        """Remember `summary` (JSON-able, not None) of the record whose bytes, read from
        `read_at_ns` on, had the stat `info` (the open descriptor's)."""
        self._remember(self.records, path, info, summary, read_at_ns)

    def _remember(self, table: dict[str, list], path: str, info: os.stat_result,
                  value: object, read_at_ns: int) -> None:
        if is_racy(info, read_at_ns):
            table.pop(path, None)
            return
        table[path] = [stat_key(info), value]
        self.used.add(path)
        self.dirty = True

    def has_verdict(self, key: str) -> bool:
        """Whether a check whose inputs digest to `key` found nothing before."""
        if key in self.verdicts:
            self.verdict_hits += 1
            self.used_verdicts.add(key)
            return True
        self.verdict_misses += 1
        return False

    def store_verdict(self, key: str) -> None:
        """Remember that the check whose inputs digest to `key` found nothing. The caller
        keys only inputs whose stat is out of the racy window (see `is_racy`)."""
        if key not in self.verdicts:
            self.verdicts.add(key)
            self.verdicts_dirty = True
        self.used_verdicts.add(key)

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
        """Write what changed, atomically; a failure only costs speed."""
        if self.store is None or self.verdict_store is None:
            return
        if self.dirty and self._entries is not None:
            self._save_tables(self.store)
        if self.verdicts_dirty:
            # verdicts of other logs in the repository stay, up to a bound (a stale one, of
            # inputs that changed since, is only never asked for again)
            others = sorted(self.verdicts - self.used_verdicts)
            kept = self.used_verdicts | set(others[:max(0, MAX_VERDICTS -
                                                        len(self.used_verdicts))])
            text = json.dumps({"format": FORMAT, "code": code_fingerprint(),
                               "verdicts": sorted(kept)},
                              separators=(",", ":"))
            if _write(self.verdict_store, text):
                self.verdicts, self.verdicts_dirty = kept, False

    def _save_tables(self, store: Path) -> None:
        kept = [0]
        cut = len(self.base) + 1 if self.base not in ("", os.sep) else 0

        def keep(table: dict[str, list]) -> tuple[dict[str, list], list]:
            chosen: dict[str, list] = {}
            flat: list = []
            for path, entry in table.items():
                # entries of files not seen this run stay while the file exists (another log
                # in the same repository may use them)
                if path in self.used or (kept[0] < MAX_ENTRIES and os.path.exists(path)):
                    kept[0] += 1
                    chosen[path] = entry
                    inside = cut and path.startswith(self.base + os.sep)
                    flat += (path[cut:] if inside else path, entry[0], entry[1])
            return chosen, flat

        entries, digests = keep(self.entries)
        records, summaries = keep(self.records)
        text = json.dumps({"format": FORMAT, "code": code_fingerprint(), "digests": digests,
                           "records": summaries},
                          separators=(",", ":"))
        if _write(store, text):
            self._entries, self._records = entries, records
            self.dirty = False


def _write(path: Path, text: str) -> bool:
    """Replace `path` by `text` atomically, sealed (`system.seal`); False where it cannot be
    written (read-only or full disk, no key: the next run hashes again, nothing is wrong)."""
    return write_sealed(path, text.encode("utf-8"))


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

    def lookup_record(self, path: str, info: os.stat_result) -> object:
        self.record_misses += 1
        return None

    def store_record(self, path: str, info: os.stat_result, summary: object,
                     read_at_ns: int) -> None:
        pass

    def store_verdict(self, key: str) -> None:
        pass

    def save(self) -> None:
        pass


def open_cache(repo: Path | str) -> HashCache:
    """The repository's cache, or a NullCache where `<repo>/.aisdp-log/` cannot be written."""
    try:
        folder = tool_dir(repo)  # made with a `.gitignore` of `*`: never in `git status`
    except WriteRefused:
        return NullCache()
    if not os.access(folder, os.W_OK | os.X_OK):
        return NullCache()
    return HashCache(folder / STORE_NAME)


def _load(store: Path, base: str) -> tuple[dict[str, list], dict[str, list]]:
    """(digest entries, record entries); an unreadable or foreign file counts as empty (it is
    only a cache). Values are checked where they are used, so loading is one json.loads."""
    data = _read_json(store)
    # a summary is what the checks' code made of a record: other code's are not trusted
    # (a digest is the file's sha256 whatever the code, so digests stay)
    records = data.get("records") if data.get("code") == code_fingerprint() else None
    return _table(data.get("digests"), base), _table(records, base)


def _load_verdicts(path: Path) -> set[str]:
    data = _read_json(path)
    if data.get("code") != code_fingerprint():
        return set()  # verdicts of other code: each key holds the code anyway; drop them
    verdicts = data.get("verdicts")
    return {v for v in verdicts if type(v) is str} if isinstance(verdicts, list) else set()


def _read_json(path: Path) -> dict:
    """The store at `path` when its seal is this user's (a digest planted by anyone else
    would otherwise vouch for a swapped model), else {}."""
    body = read_sealed(path)
    if body is None:
        return {}
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        return {}
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        return {}
    return data


def _table(flat: object, base: str) -> dict[str, list]:
    if not isinstance(flat, list) or len(flat) % 3:
        return {}
    paths, keys, values = flat[0::3], flat[1::3], flat[2::3]
    if not all(type(p) is str for p in paths) or not all(type(k) is str for k in keys):
        return {}  # not a store this code wrote
    prefix = base.rstrip(os.sep) + os.sep
    # stored paths are relative to the repository unless they lie outside it (absolute);
    # a Windows drive path read as relative only makes a key no lookup asks for
    absolute = (os.sep, os.altsep) if os.altsep else os.sep
    return {(path if path.startswith(absolute) else prefix + path): [key, value]
            for path, key, value in zip(paths, keys, values)}
