"""The one seam between aisdp-log and the operating system: process trees and liveness
(psutil, the same code on Linux, macOS and Windows), a child's own process group, executable
lookup on a given PATH, a file's identity for caches, and the CPU's instruction set.

Everything that differs between OSes is decided here, so the code the Linux tests run is the
code Windows and macOS run; where an OS cannot answer, the answer says "unknown" rather than
nothing.

    kill_tree(process.pid)          # a run and every process it started, frozen then killed
    pid_alive(pid)                  # never signals the process (os.kill(pid, 0) does on Windows)
    subprocess.Popen(cmd, **own_process_group())
    which("python", env["PATH"])    # the file the child will start, on the child's PATH
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path

IS_WINDOWS = os.name == "nt"
IS_MACOS = sys.platform == "darwin"
IS_LINUX = sys.platform.startswith("linux")
#: How long a killed process tree gets to be reaped before we stop waiting.
KILL_WAIT = 5.0


def os_label() -> str:
    """The OS's name as users know it, for messages."""
    return "Windows" if IS_WINDOWS else "macOS" if IS_MACOS else "Linux" if IS_LINUX \
        else sys.platform


# --------------------------------------------------------------------------- processes

def pid_alive(pid: int) -> bool:
    """Whether a process with this pid runs on this host (another user's counts; a zombie,
    which has ended and waits to be reaped, does not). Never sends the process anything."""
    import psutil

    if pid <= 0:
        return False
    if pid == os.getpid():
        return True
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:  # ZombieProcess included
        return False
    except psutil.AccessDenied:  # exists, owned by someone else
        return True
    except (OSError, ValueError):
        return False


def own_process_group() -> dict:
    """`subprocess.Popen` arguments that give a child its own process group: a terminal's
    Ctrl-C then reaches aisdp-log only, which stops the child's whole tree itself."""
    if IS_WINDOWS:
        return {"creationflags": getattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0x200)}
    return {"start_new_session": True}


def process_tree(pids: Iterable[int], expected: dict[int, float] | None = None,
                 groups: Iterable[int] = ()) -> dict[int, float]:
    """pid -> start time of each live process among `pids` and all their descendants, from
    one pass over the process table. The start time tells a process from a later one that
    reuses its pid: a pid of `expected` whose start time differs is not followed.

    On POSIX each process in a group of `groups` (a run's pid: `own_process_group` makes each
    run lead its own group) counts too: a grandchild whose parent has just died has lost its
    link to the tree, not its group."""
    import psutil

    expected = expected or {}
    children: dict[int, list[int]] = {}
    started: dict[int, float] = {}
    group: dict[int, int] = {}
    for process in psutil.process_iter(["ppid", "create_time"]):
        info = process.info
        if info.get("create_time") is None:
            continue
        started[process.pid] = info["create_time"]
        children.setdefault(info.get("ppid") or 0, []).append(process.pid)
        if not IS_WINDOWS:
            with contextlib.suppress(OSError):
                group[process.pid] = os.getpgid(process.pid)
    seeds = {pid for pid in pids if pid in started
             and abs(expected.get(pid, started[pid]) - started[pid]) < 0.01}
    # A group outlives its leader and its id is not reused while it does, so an ended
    # leader still names its group; a live process with the leader's pid but another start
    # time leads a group of its own, not ours.
    leaders = {leader for leader in groups if leader not in started
               or abs(expected.get(leader, started[leader]) - started[leader]) < 0.01}
    stack = list(seeds) + [pid for pid, leader in group.items()
                           if leader in leaders and leader != pid]
    found: dict[int, float] = {}
    while stack:
        pid = stack.pop()
        if pid in found:
            continue
        found[pid] = started[pid]
        # a child started after its parent: a reused ppid names someone else's child
        stack += [c for c in children.get(pid, ()) if started[c] >= started[pid] - 0.01]
    return found


def kill_processes(known: dict[int, float]) -> list[int]:
    """Kill each process of `known` (pid -> start time, from `process_tree`) that still runs
    with that start time; wait briefly for them to go. Returns the pids killed."""
    import psutil

    victims = []
    for pid, started in known.items():
        if pid == os.getpid():
            continue
        with contextlib.suppress(psutil.Error, OSError):
            process = psutil.Process(pid)
            if abs(process.create_time() - started) < 0.01:
                victims.append(process)
    # Freeze first, so no member starts another process while the others are killed.
    for process in victims:
        with contextlib.suppress(psutil.Error, OSError):
            process.suspend()
    for process in victims:
        with contextlib.suppress(psutil.Error, OSError):
            process.kill()
    # Wait until each is gone (a zombie counts: its parent reaps it; waiting here with
    # psutil's wait() would reap our own child behind subprocess.Popen's back).
    deadline = time.monotonic() + KILL_WAIT
    pending = list(victims)
    while pending and time.monotonic() < deadline:
        pending = [p for p in pending if pid_alive(p.pid)]
        if pending:
            time.sleep(0.02)
    return [process.pid for process in victims]


def kill_tree(pid: int) -> list[int]:
    """Stop process `pid` and every process it started, on every OS the same way (psutil):
    the tree is frozen (suspended) level by level until no member has a child we have not
    seen, then every member is killed. Returns the pids killed ([] when it had ended)."""
    import psutil

    known: dict[int, float] = {}
    frontier = [pid]
    for _ in range(20):  # a tree deeper than this is not a training run's
        grown = {p: t for p, t in process_tree(frontier, known, [pid]).items()
                 if p not in known}
        if not grown:
            break
        for member in grown:
            with contextlib.suppress(psutil.Error, OSError):
                psutil.Process(member).suspend()
        known.update(grown)
        frontier = list(grown)
    return kill_processes(known)


# --------------------------------------------------------------------------- executables

def which(name: str, path: str | None) -> str | None:
    """The file `name` starts when looked up on `path` (the child's PATH, not ours): the same
    answer on every OS, so a pre-flight checks the interpreter that will train."""
    return shutil.which(name, path=path if path is not None else os.defpath)


def python_in_venv(venv: Path) -> Path:
    """The interpreter of a virtual environment."""
    return venv / ("Scripts/python.exe" if IS_WINDOWS else "bin/python")


def argv_text(value: str) -> str:
    """Text typed on the command line (a name, not a path) as the user meant it. Python
    decodes arguments with the locale's codec; where that failed (a UTF-8 terminal under a
    cp1252 locale: `Ł` arrives as undecodable bytes) the bytes are read as UTF-8, so no lone
    surrogate reaches a document or a signed statement. Windows passes arguments as UTF-16,
    so there this changes nothing."""
    if not any("\udc80" <= char <= "\udcff" for char in value):
        return value
    raw = os.fsencode(value)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("utf-8", "replace")


# --------------------------------------------------------------------------- files

def file_identity(info: os.stat_result) -> str:
    """What tells one file from another that took its place, for a stat-keyed cache:
    `<inode>:<ctime_ns>`. Windows gives no inode through `os.scandir` (0) but one through
    `os.stat`, so there the inode is left out (0) and the creation time, which is what
    Windows' st_ctime is, tells the files apart; elsewhere an inode of 0 is left out too."""
    inode = 0 if IS_WINDOWS else info.st_ino
    return f"{inode}:{info.st_ctime_ns}"


# --------------------------------------------------------------------------- the CPU

#: Windows' IsProcessorFeaturePresent numbers for the features a kernel choice depends on.
WINDOWS_FEATURES = {"sse3": 13, "sse4_1": 37, "sse4_2": 38, "avx": 39, "avx2": 40,
                    "avx512f": 41, "asimd": 19}
#: macOS sysctl spellings (lower-cased, `.` as `_`) that Linux spells otherwise.
MACOS_NAMES = {"avx1_0": "avx", "avx2_0": "avx2", "neon": "asimd", "fp16": "asimdhp",
               "dotprod": "asimddp"}


def cpu_info() -> tuple[str | None, set[str] | None]:
    """(the CPU's model name, its instruction-set flags in Linux's `/proc/cpuinfo` names),
    each from the OS's own source: `/proc/cpuinfo` on Linux, `sysctl` on macOS,
    `IsProcessorFeaturePresent` on Windows. Flags are None where the OS does not say."""
    if IS_MACOS:
        return _sysctl_cpu()
    if IS_WINDOWS:
        import platform

        return platform.processor() or None, _windows_flags()
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None, None
    model: str | None = None
    flags: set[str] | None = None
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key, value = key.strip().casefold(), value.strip()
        if model is None and key in ("model name", "hardware", "cpu model", "processor") \
                and value and not value.isdigit():
            model = value
        elif key in ("flags", "features") and flags is None:
            flags = set(value.split())
    return model, flags


def _sysctl_cpu() -> tuple[str | None, set[str] | None]:
    try:
        done = subprocess.run(["sysctl", "-a"], capture_output=True, timeout=10,
                              stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError):
        return None, None
    return parse_sysctl(done.stdout.decode("utf-8", "replace"))


def parse_sysctl(text: str) -> tuple[str | None, set[str] | None]:
    """(model, flags in Linux's names) from macOS's `sysctl -a`: `machdep.cpu.brand_string`,
    the Intel feature lists, and Apple silicon's `hw.optional.*: 1` switches."""
    model = None
    flags: set[str] = set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key, value = key.strip(), value.strip()
        if key == "machdep.cpu.brand_string":
            model = value or None
        elif key in ("machdep.cpu.features", "machdep.cpu.leaf7_features"):
            flags |= {word.lower().replace(".", "_") for word in value.split()}
        elif key.startswith("hw.optional.") and value == "1":
            flags.add(key[len("hw.optional."):].lower().removeprefix("arm.feat_")
                      .removeprefix("neon_"))
    return model, {MACOS_NAMES.get(flag, flag) for flag in flags} or None


def _windows_flags() -> set[str] | None:
    try:
        import ctypes

        present = ctypes.windll.kernel32.IsProcessorFeaturePresent  # type: ignore[attr-defined]
    except (ImportError, AttributeError, OSError):
        return None
    return {name for name, number in WINDOWS_FEATURES.items() if present(number)}
