"""Training processes that die with the `rerun` that started them, even when it is killed
outright (SIGKILL, Task Manager's End task).

A killed `rerun` runs no clean-up code, so two things outlive it for it:
- on Linux the training process asks the kernel for SIGKILL when its parent dies
  (`prctl(PR_SET_PDEATHSIG)`, set between fork and exec);
- on every OS, a watchdog: a small Python process reading a pipe from us. It keeps a fresh
  list of each watched process and its descendants (psutil, `system/platform`); EOF without a
  goodbye means we died, and it kills them all (data-loader workers and other grandchildren,
  which PR_SET_PDEATHSIG does not reach), the same code on Linux, macOS and Windows; then it
  runs the commands registered with `on_death` (a container engine's `rm --force <name>`: a
  container outlives the engine's client).

    with Lifeline() as lifeline:
        process = subprocess.Popen(command, **own_process_group(),
                                   preexec_fn=die_with_parent())
        lifeline.watch(process.pid)
        process.wait()
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

from aisdp_log.system.platform import kill_processes, own_process_group, process_tree

PR_SET_PDEATHSIG = 1
#: How often the watchdog refreshes its list of descendants (a process started and orphaned
#: within one interval before `rerun` is killed can escape it).
WATCH_INTERVAL = 0.25
_PACKAGE_PARENT = str(Path(__file__).resolve().parent.parent.parent)


def watchdog(interval: float = WATCH_INTERVAL) -> None:
    """The watchdog's loop (run in its own process, stdin the pipe from `Lifeline`):
    `+pid` watches a process tree, `-pid` forgets it, `!key argv-json` registers a command
    to run at EOF and `~key` drops it, `bye` ends quietly, EOF kills every process of every
    watched tree as last seen (start times guard against reused pids), then runs the
    registered commands."""
    lines: queue.Queue = queue.Queue()

    def read() -> None:
        for line in sys.stdin:
            lines.put(line.strip())
        lines.put(None)

    threading.Thread(target=read, daemon=True).start()
    trees: dict[int, dict[int, float]] = {}
    commands: dict[str, list[str]] = {}
    while True:
        try:
            line = lines.get(timeout=interval)
        except queue.Empty:
            line = ""
        if line is None:
            break
        if line == "bye":
            return
        if line[:1] == "+" and line[1:].isdigit():
            trees[int(line[1:])] = {}
        elif line[:1] == "-" and line[1:].isdigit():
            trees.pop(int(line[1:]), None)
        elif line[:1] == "!":
            key, _, argv = line[1:].partition(" ")
            with contextlib.suppress(ValueError):
                commands[key] = json.loads(argv)
        elif line[:1] == "~":
            commands.pop(line[1:], None)
        for root, known in trees.items():
            # keep members already seen (an orphaned grandchild still belongs to the run)
            known.update(process_tree([root, *known], known, [root]))
    for root, known in trees.items():
        # one last look: a process started since the last refresh belongs to the run too
        known.update(process_tree([root, *known], known, [root]))
        kill_processes(known)
    for argv in commands.values():
        with contextlib.suppress(Exception):
            subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, timeout=120)


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
    """The watchdog process: `watch(pid)` each started process, `forget(pid)` once it has
    ended; leaving the block says goodbye, so nothing is killed on a clean exit."""

    def __init__(self) -> None:
        self._write: int | None = None
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> Lifeline:
        read, write = os.pipe()
        script = (f"import sys; sys.path.insert(0, {ascii(_PACKAGE_PARENT)}); "
                  "from aisdp_log.system.lifeline import watchdog; watchdog()")
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-c", script], stdin=read, stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL, close_fds=True, **own_process_group())
        except OSError:
            os.close(write)
            self.process = None  # PR_SET_PDEATHSIG still holds the direct child on Linux
        else:
            self._write = write
        finally:
            os.close(read)
        return self

    def _send(self, text: str) -> None:
        if self._write is not None:
            with contextlib.suppress(OSError):
                os.write(self._write, text.encode("ascii"))

    def watch(self, pid: int) -> None:
        self._send(f"+{pid}\n")

    def forget(self, pid: int) -> None:
        self._send(f"-{pid}\n")

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
