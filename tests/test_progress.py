"""The progress line: only on a terminal, only after a second, erased at the end."""

from __future__ import annotations

import io

from aisdp_log.system.progress import Progress, format_bytes


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_nothing_is_drawn_in_the_first_second():
    stream, clock = Terminal(), Clock()
    with Progress(1000, stream=stream, clock=clock) as progress:
        clock.now += 0.9
        progress.advance(900)
    assert stream.getvalue() == ""


def test_long_work_draws_done_total_and_rate_then_erases_the_line():
    stream, clock = Terminal(), Clock()
    progress = Progress(4 << 20, label="hashing artefacts", stream=stream, clock=clock)
    clock.now += 2.0
    progress.advance(2 << 20)
    drawn = stream.getvalue()
    assert drawn.startswith("\r") and "\n" not in drawn
    assert "hashing artefacts: 2.0 MiB / 4.0 MiB (50%), 1.0 MiB/s" in drawn
    progress.close()
    assert stream.getvalue().endswith("\r" + " " * len(drawn.strip("\r")) + "\r")


def test_redraws_are_throttled():
    stream, clock = Terminal(), Clock()
    progress = Progress(100, unit="runs", stream=stream, clock=clock)
    clock.now += 1.5
    for _ in range(50):  # within one interval
        progress.advance(1)
    clock.now += 0.2
    progress.advance(1)
    assert stream.getvalue().count("\r") == 2
    assert "51 / 100 runs (51%)" in stream.getvalue()


def test_silent_when_not_a_terminal_or_disabled():
    for stream, enabled in ((io.StringIO(), True), (Terminal(), False)):
        clock = Clock()
        with Progress(10, stream=stream, clock=clock, enabled=enabled) as progress:
            clock.now += 5
            progress.advance(10)
        assert stream.getvalue() == "" and progress.done == 10


def test_a_broken_stream_does_not_stop_the_work():
    class Broken(Terminal):
        def write(self, text):
            raise BrokenPipeError

    clock = Clock()
    with Progress(10, stream=Broken(), clock=clock) as progress:
        clock.now += 5
        progress.advance(5)
        progress.advance(5)
    assert progress.done == 10


def test_format_bytes():
    assert [format_bytes(n) for n in (0, 1023, 1536, 5 << 30)] == [
        "0 B", "1023 B", "1.5 KiB", "5.0 GiB"]
