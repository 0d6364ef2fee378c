"""A digest of this code: what keeps a cached verdict, record summary or whole report made by
other code from being trusted."""

from __future__ import annotations

import functools
import hashlib
import os

from aisdp_log import __version__


@functools.cache
def code_fingerprint(salt: str = "") -> str:
    """A digest of the tool's version and of the source of every module of the package: what
    decides a finding (the checks, but also the parsers in `values`, the reader, the config)
    is spread over many modules, so a cached verdict or record summary made by other code is
    never trusted. Read once per process (about 50 files, well under 5 ms)."""

    digest = hashlib.blake2b(f"{salt} {__version__}".encode(), digest_size=20)
    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # aisdp_log/
    sources = []
    for folder, subfolders, files in os.walk(package):
        subfolders[:] = sorted(d for d in subfolders if d != "__pycache__")
        sources += [os.path.join(folder, name) for name in files if name.endswith(".py")]
    for path in sorted(sources):
        digest.update(os.path.relpath(path, package).encode("utf-8", "surrogateescape") + b"\0")
        try:
            with open(path, "rb") as fh:
                digest.update(fh.read())
        except OSError:  # no source file (a zip import): the version and names stand
            pass
        digest.update(b"\0")
    return digest.hexdigest()
