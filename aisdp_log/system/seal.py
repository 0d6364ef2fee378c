"""Sealed files: what aisdp-log keeps in a repository's `.aisdp-log/` and trusts on a later run
(file digests and record summaries, clean verdicts, stored reports), sealed with an HMAC under
a key of the user's kept outside every repository.

Those files live in the repository, where anyone who can write a file could otherwise plant a
digest for a model they swapped, or a clean report in the place of one with findings. The key
is 32 random bytes in `$XDG_CACHE_HOME/aisdp-log/seal.key` (default `~/.cache`), mode 0600,
made on first need whole or not at all (`system.atomic.write_new`). A sealed file is one
header line, `aisdp-log sealed <hex HMAC-SHA256 of the body>`, then the body. A file without a
seal, with a seal that does not match, or sealed under another user's key reads as absent:
the run then computes everything afresh, which costs only time.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from pathlib import Path

from aisdp_log.errors import WriteFailed
from aisdp_log.system.atomic import write_bytes, write_new
from aisdp_log.system.tooldir import user_cache_dir

KEY_NAME = "seal.key"
KEY_BYTES = 32
HEADER = b"aisdp-log sealed "


def key_path() -> Path:
    return user_cache_dir() / KEY_NAME


def user_key(*, create: bool) -> bytes | None:
    """This user's sealing key; with `create`, made where there is none. None where it cannot
    be read or made."""
    path = key_path()
    for _ in range(2):
        try:
            with open(path, "rb") as fh:
                key = fh.read(KEY_BYTES + 1)
            return key if len(key) == KEY_BYTES else None
        except FileNotFoundError:
            if not create:
                return None
        except OSError:
            return None
        try:  # whole or not at all, readable by the user alone, never over another's key
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            write_new(path, os.urandom(KEY_BYTES), mode=0o600)
        except FileExistsError:
            pass  # another process made one first: theirs is read
        except (OSError, WriteFailed):
            return None
    return None


def _mac(key: bytes, body: bytes) -> bytes:
    return hmac.new(key, body, hashlib.sha256).hexdigest().encode()


def seal(body: bytes) -> bytes | None:
    """`body` under its seal line; None where no key can be made."""
    key = user_key(create=True)
    if key is None:
        return None
    return HEADER + _mac(key, body) + b"\n" + body


def unseal(data: bytes) -> bytes | None:
    """The body of a sealed file when its seal is this user's; else None."""
    line, newline, body = data.partition(b"\n")
    if not newline or not line.startswith(HEADER):
        return None
    key = user_key(create=False)
    if key is None or not hmac.compare_digest(line[len(HEADER):], _mac(key, body)):
        return None
    return body


def read_sealed(path: Path | str) -> bytes | None:
    """The body of the sealed file at `path`; None when it is missing, unreadable, unsealed
    or sealed by another key."""
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError:
        return None
    return unseal(data)


def write_sealed(path: Path | str, body: bytes) -> bool:
    """Replace `path` atomically by `body` under its seal; False where no key can be made or
    the file cannot be written (a cache that is not kept costs only time)."""
    sealed = seal(body)
    if sealed is None:
        return False
    try:
        Path(path).parent.mkdir(exist_ok=True)
        write_bytes(path, sealed)
    except OSError:
        return False
    return True
