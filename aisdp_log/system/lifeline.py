"""Training processes that die with the `rerun` that started them, even when it is SIGKILLed.

A killed `rerun` runs no clean-up code, so two things outlive it for it:
- on Linux the training process asks the kernel for SIGKILL when its parent dies
  (`prctl(PR_SET_PDEATHSIG)`, set between fork and exec);
- a watchdog, a tiny Python process reading a pipe from us: EOF without a goodbye means we
  died, and it kills the whole process group (data-loader workers and other grandchildren,
  which PR_SET_PDEATHSIG does not reach), then runs the commands registered with
  `on_death` (a container engine's `rm --force <name>`: a container outlives the engine's
  client). This also serves macOS.

    with Lifeline() as lifeline:
        process = subprocess.Popen(command, start_new_session=True,
                                   preexec_fn=die_with_parent())
        lifeline.watch(process.pid)
        process.wait()
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable

PR_SET_PDEATHSIG = 1

_WATCHDOG = r"""
import json, os, signal, subprocess, sys
groups = set()
commands = {}
for line in sys.stdin:
    line = line.strip()
    if line == "bye":
        sys.exit(0)
    if line[:1] == "+":
        groups.add(int(line[1:]))
    elif line[:1] == "-":
        groups.discard(int(line[1:]))
    elif line[:1] == "!":
        key, _, argv = line[1:].partition(" ")
        commands[key] = json.loads(argv)
    elif line[:1] == "~":
        commands.pop(line[1:], None)
for group in groups:
    try:
        os.killpg(group, signal.SIGKILL)
    except OSError:
        pass
for argv in commands.values():
    try:
        subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=120)
    except Exception:
        pass
"""


def die_with_parent() -> Callable[[], None] | None:
    """A `preexec_fn` making the child get SIGKILL when the thread that started it ends (the
    process dies); None where prctl is not available. ctypes is resolved here, before the
    fork, so the child only makes the call."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError, ImportError):
        return None
    parent = os.getpid()

    def preexec() -> None:
        prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        if os.getppid() != parent:  # the parent died before the call took effect
            os._exit(137)

    return preexec


class Lifeline:
    """The watchdog process: `watch(pgid)` each started process group, `forget(pgid)` once
    it has ended; leaving the block says goodbye, so nothing is killed on a clean exit."""

    def __init__(self) -> None:
        self._write: int | None = None
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> Lifeline:
        read, write = os.pipe()
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-c", _WATCHDOG], stdin=read, stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL, close_fds=True, start_new_session=True)
        except OSError:
            os.close(write)
            self.process = None  # PR_SET_PDEATHSIG still holds the direct child
        else:
            self._write = write
        finally:
            os.close(read)
        return self

    def _send(self, text: str) -> None:
        if self._write is not None:
            with contextlib.suppress(OSError):
                os.write(self._write, text.encode("ascii"))

    def watch(self, pgid: int) -> None:
        self._send(f"+{pgid}\n")

    def forget(self, pgid: int) -> None:
        self._send(f"-{pgid}\n")

    def on_death(self, key: str, argv: list[str]) -> None:
        """Run `argv` (no shell) if we die before `cancel(key)`; `key` has no spaces."""
        self._send(f"!{key} {json.dumps(argv)}\n")

    def cancel(self, key: str) -> None:
        self._send(f"~{key}\n")

    def __exit__(self, *exc) -> None:
        self._send("bye\n")
        if self._write is not None:
            with contextlib.suppress(OSError):
                os.close(self._write)
            self._write = None
        if self.process is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=10)
