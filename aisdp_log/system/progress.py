"""A one-line progress display on stderr for work that takes more than a second.

Shown only when the stream is a terminal, and only once the work has run for `delay` seconds,
so quick runs, pipes, CI logs and `--format json` output stay clean. Hand-rolled (a `\\r`
line) because no progress library is a dependency and one line needs none.

    with Progress(total_bytes, label="hashing artefacts") as progress:
        for chunk in ...:
            progress.advance(len(chunk))
"""

from __future__ import annotations

import shutil
import sys
import time
from collections.abc import Callable
from typing import TextIO

DELAY_S = 1.0
INTERVAL_S = 0.1


def format_bytes(amount: float) -> str:
    """1536 -> '1.5 KiB'."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(amount) < 1024 or unit == "TiB":
            return f"{amount:.0f} {unit}" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= 1024
    return f"{amount:.1f} TiB"  # pragma: no cover - loop always returns


def format_count(amount: float) -> str:
    return f"{amount:,.0f}"


class Progress:
    """Count work done against a total and draw `label done/total (pct%) rate` now and then.

    `unit` is "bytes" (sizes in KiB/MiB) or any noun for plain counts ("runs"). `stream`
    defaults to stderr; `clock` is injectable so tests need no sleeping."""

    def __init__(self, total: float | None, *, label: str = "", unit: str = "bytes",
                 stream: TextIO | None = None, enabled: bool = True, delay: float = DELAY_S,
                 interval: float = INTERVAL_S, clock: Callable[[], float] = time.monotonic):
        self.total = total
        self.label = label
        self.unit = unit
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled and _is_terminal(self.stream)
        self.delay = delay
        self.interval = interval
        self.clock = clock
        self.done = 0.0
        self.started = clock()
        self._next_draw = self.started + delay
        self._width = 0
        self.drawn = False

    def advance(self, amount: float = 1) -> None:
        """Add `amount` of work done; redraw at most every `interval` after `delay`."""
        self.done += amount
        if not self.enabled:
            return
        now = self.clock()
        if now >= self._next_draw:
            self._next_draw = now + self.interval
            self._draw(now)

    def line(self, now: float | None = None) -> str:
        """The text of the progress line at `now`."""
        now = self.clock() if now is None else now
        fmt = format_bytes if self.unit == "bytes" else format_count
        suffix = "" if self.unit == "bytes" else f" {self.unit}"
        text = f"{self.label}: " if self.label else ""
        if self.total:
            share = min(100.0, 100.0 * self.done / self.total)
            text += f"{fmt(self.done)} / {fmt(self.total)}{suffix} ({share:.0f}%)"
        else:
            text += f"{fmt(self.done)}{suffix}"
        elapsed = now - self.started
        if elapsed > 0:
            text += f", {fmt(self.done / elapsed)}{suffix}/s"
        return text

    def _draw(self, now: float) -> None:
        columns = shutil.get_terminal_size((80, 24)).columns
        text = self.line(now)[: max(columns - 1, 10)]  # a wrapped line breaks `\r`
        try:
            self.stream.write("\r" + text.ljust(self._width))
            self.stream.flush()
        except (OSError, ValueError):  # a closed or broken stderr must not stop the work
            self.enabled = False
            return
        self._width = max(self._width, len(text))
        self.drawn = True

    def close(self) -> None:
        """Erase the line if one was drawn, so the report starts on a clean line."""
        if self.drawn and self.enabled:
            try:
                self.stream.write("\r" + " " * self._width + "\r")
                self.stream.flush()
            except (OSError, ValueError):
                pass
        self.drawn = False
        self.enabled = False

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _is_terminal(stream: TextIO) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False
