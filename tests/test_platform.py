"""The OS seam (system/platform, system/lifeline): a process tree found, frozen and killed with
psutil, the same code on every OS; "is this pid alive" that never signals; the watchdog that
kills a killed rerun's whole tree; a cache identity without inodes; the CPU's flags."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from aisdp_log.system import platform as seam
from aisdp_log.system.lifeline import Lifeline

#: A process that starts a grandchild, writes both pids, and waits: a training script with a
#: data-loader worker.
PARENT = r"""
import subprocess, sys, time
from pathlib import Path
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
Path(sys.argv[1]).write_text(f"{child.pid}\n")
time.sleep(120)
"""

#: A stand-in for `rerun`: a Lifeline watching the PARENT process, then waiting to be killed.
RERUN = r"""
import subprocess, sys, time
from pathlib import Path
from aisdp_log.system.lifeline import Lifeline, die_with_parent
from aisdp_log.system.platform import own_process_group
with Lifeline() as lifeline:
    process = subprocess.Popen([sys.executable, "-c", sys.argv[2], sys.argv[1]],
                               preexec_fn=die_with_parent(), **own_process_group())
    lifeline.watch(process.pid)
    Path(sys.argv[1] + ".parent").write_text(str(process.pid))
    time.sleep(120)
"""


def wait_for(path: Path, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.is_file() and path.read_text().strip():
            return path.read_text().strip()
        time.sleep(0.05)
    pytest.fail(f"{path} never appeared")


def gone(pid: int, timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not seam.pid_alive(pid):
            return True
        time.sleep(0.05)
    return False


def start_tree(tmp_path: Path) -> tuple[subprocess.Popen, int]:
    pids = tmp_path / "pids"
    parent = subprocess.Popen([sys.executable, "-c", PARENT, str(pids)],
                              **seam.own_process_group())
    return parent, int(wait_for(pids))


def test_kill_tree_stops_a_run_and_the_process_it_started(tmp_path):
    parent, grandchild = start_tree(tmp_path)
    try:
        assert seam.pid_alive(parent.pid) and seam.pid_alive(grandchild)
        assert {parent.pid, grandchild} <= set(seam.process_tree([parent.pid]))

        killed = seam.kill_tree(parent.pid)

        assert {parent.pid, grandchild} <= set(killed)
        parent.wait(timeout=10)  # ours to reap; the grandchild is reaped by init
        assert gone(grandchild), "the grandchild outlived the kill: an orphan"
    finally:
        for pid in (parent.pid, grandchild):
            if seam.pid_alive(pid):
                psutil.Process(pid).kill()  # only what this test started


def test_kill_tree_of_an_ended_process_kills_nothing():
    done = subprocess.run([sys.executable, "-c", "pass"])
    assert done.returncode == 0
    # a finished process: nothing is killed, whatever now has no such pid
    assert seam.kill_tree(2 ** 22 + 12345) == []


def test_pid_alive_never_signals_and_counts_a_zombie_as_ended(tmp_path):
    assert seam.pid_alive(os.getpid())
    assert not seam.pid_alive(0) and not seam.pid_alive(-1)
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    deadline = time.monotonic() + 10
    # not reaped yet: on POSIX a zombie, elsewhere gone; either way not alive
    while seam.pid_alive(child.pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not seam.pid_alive(child.pid)
    child.wait()
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert seam.pid_alive(sleeper.pid)
        time.sleep(0.2)
        assert sleeper.poll() is None  # the check sent it nothing (os.kill(pid, 0) on Windows
        #                                would have sent CTRL_C_EVENT)
    finally:
        sleeper.kill()
        sleeper.wait()


def test_a_killed_rerun_leaves_no_orphan_through_the_watchdog(tmp_path):
    pids = tmp_path / "pids"
    rerun = subprocess.Popen([sys.executable, "-c", RERUN, str(pids), PARENT],
                             env=dict(os.environ, PYTHONPATH=str(Path(seam.__file__)
                                                                 .parents[2])))
    try:
        grandchild = int(wait_for(pids))
        parent = int(wait_for(Path(str(pids) + ".parent")))
        time.sleep(3 * 0.25 + 0.2)  # the watchdog has seen the grandchild
        psutil.Process(rerun.pid).kill()  # SIGKILL / TerminateProcess: no clean-up runs
        rerun.wait(timeout=10)
        assert gone(parent), "the training process outlived the killed rerun"
        assert gone(grandchild), "the training's own child outlived the killed rerun"
    finally:
        if rerun.poll() is None:
            rerun.kill()
            rerun.wait()


def test_a_clean_exit_says_goodbye_and_kills_nothing(tmp_path):
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        with Lifeline() as lifeline:
            assert lifeline.process is not None
            lifeline.watch(sleeper.pid)
            time.sleep(0.4)
        assert lifeline.process.wait(timeout=10) == 0
        assert sleeper.poll() is None
    finally:
        sleeper.kill()
        sleeper.wait()


def test_the_interpreter_is_looked_up_on_the_given_path_only(tmp_path):
    own = tmp_path / "bin"
    own.mkdir()
    name = "python.exe" if seam.IS_WINDOWS else "python"
    fake = own / name
    fake.write_text("")
    fake.chmod(0o755)
    assert seam.which("python", str(own)) == str(fake)
    assert seam.which("python", str(tmp_path / "nothing-here")) is None


def test_the_cache_key_does_not_depend_on_an_inode_windows_gives_as_0(tmp_path, monkeypatch):
    from aisdp_log.system.inputs import stat_key

    path = tmp_path / "model.bin"
    path.write_bytes(b"x")
    info = os.stat(path)
    # what os.scandir gives on Windows: the same file, st_ino 0
    scanned = os.stat_result((info.st_mode, 0, *tuple(info)[2:]),
                             {"st_atime_ns": info.st_atime_ns, "st_mtime_ns": info.st_mtime_ns,
                              "st_ctime_ns": info.st_ctime_ns})
    assert scanned.st_ino == 0 and scanned.st_mtime_ns == info.st_mtime_ns
    if not seam.IS_WINDOWS:
        assert stat_key(info) != stat_key(scanned)  # here the inode tells files apart
    monkeypatch.setattr(seam, "IS_WINDOWS", True)
    assert stat_key(info) == stat_key(scanned)  # so a lookup by scandir hits a stored fstat
    path.write_bytes(b"y")  # another size: a miss
    assert stat_key(os.stat(path)) != stat_key(info)


def test_cpu_flags_come_from_the_os_and_unknown_is_said():
    from aisdp_log.record.environment import summarise

    model, flags = seam.cpu_info()
    assert flags is None or all(isinstance(f, str) and f == f.lower() for f in flags)
    env = {"python": {"version": "3.11.7"}, "cpu": {"isa": "unknown"}}
    assert summarise(env) == "python 3.11.7; cpu unknown"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/cpuinfo")
def test_on_linux_the_flags_are_proc_cpuinfos():
    text = Path("/proc/cpuinfo").read_text()
    line = next((line for line in text.splitlines()
                 if line.split(":")[0].strip() in ("flags", "Features")), None)
    _, flags = seam.cpu_info()
    assert flags == (set(line.split(":", 1)[1].split()) if line else None)


def test_every_posix_only_entry_names_a_test_that_exists():
    # the table conftest skips on Windows must not rot as tests are renamed
    import ast

    from conftest import POSIX_ONLY

    tests = Path(__file__).resolve().parent
    names = {f"{path.name}::{node.name}" for path in tests.glob("test_*.py")
             for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
             if isinstance(node, ast.FunctionDef) and node.name.startswith("test_")}
    stale = [prefix for prefix in POSIX_ONLY if not any(n.startswith(prefix) for n in names)]
    assert not stale


def test_macos_sysctl_names_become_linux_flag_names():
    # lines as `sysctl -a` prints them on an Intel Mac and on Apple silicon
    intel = ("machdep.cpu.brand_string: Intel(R) Core(TM) i7-9750H CPU @ 2.60GHz\n"
             "machdep.cpu.features: FPU VME SSE3 SSSE3 FMA SSE4.1 SSE4.2 AVX1.0 F16C\n"
             "machdep.cpu.leaf7_features: SMEP ERMS AVX2 BMI2 AVX512F AVX512DQ\n")
    model, flags = seam.parse_sysctl(intel)
    assert model.startswith("Intel(R) Core(TM) i7")
    assert {"sse4_1", "sse4_2", "avx", "avx2", "avx512f", "fma", "f16c"} <= flags
    apple = ("machdep.cpu.brand_string: Apple M2\nhw.optional.neon: 1\n"
             "hw.optional.arm.FEAT_BF16: 1\nhw.optional.arm.FEAT_I8MM: 1\n"
             "hw.optional.arm.FEAT_DotProd: 1\nhw.optional.arm.FEAT_SME: 0\n")
    model, flags = seam.parse_sysctl(apple)
    assert model == "Apple M2" and {"asimd", "bf16", "i8mm", "asimddp"} <= flags
    assert "sme" not in flags
    assert seam.parse_sysctl("kern.ostype: Darwin\n") == (None, None)


def test_argv_text_reads_undecodable_argument_bytes_as_utf8():
    typed = "Łucja Őrs".encode()
    # what Python makes of those bytes under a cp1252 locale (surrogateescape)
    as_decoded = typed.decode("cp1252", "surrogateescape")
    assert "\udc81" in as_decoded
    if os.fsencode(as_decoded) == typed:  # this interpreter's fs codec round-trips it
        assert seam.argv_text(as_decoded) == "Łucja Őrs"
    assert seam.argv_text("Ana Ruiz, Head of ML") == "Ana Ruiz, Head of ML"
    # bytes that are UTF-8 under no reading become replacement characters, never surrogates
    assert seam.argv_text(os.fsdecode(b"Ana \xff")) == "Ana \ufffd"
    # (the cp1252 process itself: tests/test_locale.py signs as "Łucja Őrs")
