"""The last lines of a failed command's stderr, cleaned and bounded: why a run (or a pre-flight,
or an environment build) failed, fit for a cell and a terminal."""

from __future__ import annotations

import os
import re
from pathlib import Path

TAIL_LINES, TAIL_LINE_CHARS, TAIL_CHARS = 5, 200, 800

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]|\x1b\[[0-9;?]*[A-Za-z]")


def stderr_tail(data: bytes, lines: int = TAIL_LINES) -> list[str]:
    """The last non-empty lines of a run's stderr, control characters (and terminal colour
    codes) removed, each line and the whole bounded in length: why a run failed, fit for a
    cell and a terminal."""
    text = data[-64 * 1024:].decode("utf-8", errors="replace").replace("\r", "\n")
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", text)
    kept = [_CONTROL.sub("", line).rstrip() for line in text.split("\n")]
    kept = [line if len(line) <= TAIL_LINE_CHARS else line[:TAIL_LINE_CHARS - 1] + "…"
            for line in kept if line.strip()][-lines:]
    while kept and sum(len(line) + 1 for line in kept) > TAIL_CHARS:
        kept.pop(0)
    return kept


def read_stderr_tail(path: Path) -> str | None:
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - 64 * 1024))
            data = fh.read()
    except OSError:
        return None
    return "\n".join(stderr_tail(data)) or None
