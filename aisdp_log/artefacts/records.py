"""An artefact folder's records (`metrics.json`, `run.json`) read safely and summarised in the
stat-keyed cache: a warm run parses no JSON while a record's stat is unchanged."""

from __future__ import annotations

import json
import os
import stat as stat_module
import time

from aisdp_log.artefacts.cache import HashCache
from aisdp_log.artefacts.digests import FolderScan

#: metrics.json / run.json are a few hundred bytes; anything this big is not one.
MAX_RECORD_BYTES = 16 << 20
#: Records up to this size have their summary kept in the stat-keyed cache (real ones are a
#: few hundred bytes; a huge one would bloat the store every run loads).
CACHED_RECORD_BYTES = 64 << 10


def read_record(scan: FolderScan, name: str, cache: HashCache,
                keys: tuple[str, ...] | None = None) -> tuple[dict | None, str | None]:
    """(the parsed JSON object or None when absent, error text or None). With `keys`, the
    object holds those keys alone (None where absent: every check treats a null as absent).

    The summary comes from the stat-keyed cache while the file's stat matches; cold, the file
    is parsed and its summary remembered under the stat of the descriptor it was read from."""
    path = scan.records.get(name)
    if path is None:
        return None, None
    try:
        cached = _from_summary(cache.lookup_record(path, scan.record_stat(name)), keys)
    except OSError:
        cached = None  # gone since the listing: reading it says why
    if cached is not None:
        return cached
    read_at = time.time_ns()
    info = None
    try:
        content, info = _read_small(path)
        if content is None:
            return None, f"{name} is larger than {MAX_RECORD_BYTES >> 20} MiB"
        data = json.loads(content)
        if not isinstance(data, dict):
            data, error = None, f"{name} is not a JSON object ({{\"name\": value, ...}})"
        else:
            error = None
    except OSError as exc:
        return None, f"{name} cannot be read ({exc.strerror or exc})"
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        data, error = None, f"{name} is not valid JSON ({' '.join(str(exc).split())[:120]})"
    summary = [error, data if data is None or keys is None else [data.get(k) for k in keys]]
    if info is not None and info.st_size <= CACHED_RECORD_BYTES:
        cache.store_record(path, info, summary, read_at)
    # the cold run answers from the same summary a warm run will find
    answer = _from_summary(summary, keys)
    assert answer is not None  # built just above in the shape _from_summary reads
    return answer


def _from_summary(summary: object, keys: tuple[str, ...] | None
                  ) -> tuple[dict | None, str | None] | None:
    """(data, error) from a summary `[error, data]` (data a dict, or with `keys` the list of
    their values); None when it is not of that shape (a store is only data: then the file
    is read again)."""
    if type(summary) is not list or len(summary) != 2:
        return None
    error, data = summary
    if error is not None:
        return (None, error) if type(error) is str and data is None else None
    if keys is None:
        return (data, None) if type(data) is dict else None
    if type(data) is list and len(data) == len(keys):
        return dict(zip(keys, data)), None
    return None


def _read_small(path: str) -> tuple[bytes | None, os.stat_result | None]:
    """(the bytes of a record file, or None when it exceeds MAX_RECORD_BYTES; the stat of the
    descriptor read). Raw os calls: with 20,000 records in a cold run, file objects cost
    more than the reading."""
    # O_NONBLOCK: a FIFO swapped in after the listing must not hang the check
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0) | getattr(os, "O_NONBLOCK", 0))
    try:
        info = os.fstat(fd)
        if not stat_module.S_ISREG(info.st_mode):
            raise OSError(f"{path}: not a regular file")
        size = info.st_size
        if size > MAX_RECORD_BYTES:
            return None, info
        content = os.read(fd, size + 1)  # a short read of a regular file is its end
        while len(content) > size:  # it grew since the fstat: read on, within the cap
            more = os.read(fd, 1 << 16)
            if not more:
                break
            content += more
            if len(content) > MAX_RECORD_BYTES:
                return None, info
        # changed while read: the stat does not describe these bytes
        return content, (info if len(content) == size else None)
    finally:
        os.close(fd)
