"""Checks before a write and what a write leaves behind (workbook/guard, system/lifeline,
repo/worktree): permissions and owner as the user's own rights decide, links, Office locks
beside a link's target, the waiting writer lock, a dead writer's lock taken over, killed reruns,
a full disk.

Signals, processes and dropped privileges need real processes: those tests run the CLI with
`python -m aisdp_log`."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import openpyxl
import pytest
from builders import commit, git, init_repo, write_log

from aisdp_log.artefacts.hashing import artefact_hash
from aisdp_log.workbook import guard

DVC_ENV = dict(os.environ, DVC_NO_ANALYTICS="1")
#: What root may do that an ordinary user may not; dropped so root tests as a user would.
NO_OVERRIDE = ["--inh-caps=-all",
               "--bounding-set=-dac_override,-dac_read_search,-fowner,-chown"]

#: A training command without torch: writes a model from the data and the seed. With
#: TRAIN_CHILD it starts a grandchild (a data-loader worker, say) that sleeps.
TRAIN_PY = '''\
import hashlib, json, os, subprocess, sys, time
from pathlib import Path

experiment_id = os.environ.get("AISDP_EXPERIMENT_ID", "EXP-001")
folder = Path(os.environ.get("AISDP_ARTEFACT_DIR") or f"artefacts/{experiment_id}")
folder.mkdir(parents=True, exist_ok=True)
seed = int(os.environ.get("AISDP_SEED", "42"))
if os.environ.get("TRAIN_CHILD"):
    subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
(folder / "run.json").write_text(json.dumps({"experiment_id": experiment_id, "seed": seed,
                                             "status": "running"}))
time.sleep(float(os.environ.get("TRAIN_SLEEP", "0")))
data = Path("data/train.csv").read_bytes()
(folder / "model.bin").write_bytes(hashlib.sha256(data + str(seed).encode()).digest())
(folder / "metrics.json").write_text(json.dumps({"accuracy": 0.9}))
(folder / "run.json").write_text(json.dumps({"experiment_id": experiment_id, "seed": seed,
                                             "status": "completed"}))
'''


def dvc(repo: Path, *args: str) -> None:
    subprocess.run(["dvc", *args], cwd=repo, env=DVC_ENV, check=True, capture_output=True)


def tiny_rerun_project(base: Path, *, then_commit: Callable[[Path], str] | None = None,
                       row: dict | None = None) -> tuple[Path, Path]:
    """A git + DVC project whose `[rerun] command` is a python script without torch, one
    trained run EXP-001 and a log holding its row; returns (root, log). The torture
    benchmark builds the same. `then_commit(root)` may add a commit after the training one and
    return the sha the row names; `row` overrides cells of the row."""
    root = init_repo(base / "proj")
    dvc(root, "init", "-q")
    dvc(root, "config", "core.analytics", "false")
    (root / "data").mkdir()
    (root / "data" / "train.csv").write_text("x,y\n1,0\n2,1\n")
    dvc(root, "add", "-q", "data/train.csv")
    (root / "aisdp.toml").write_text(
        'artefacts = "artefacts"\ndata = ["data/train.csv.dvc"]\n\n[rerun]\n'
        f'command = [{json.dumps(sys.executable)}, "train.py"]\nruns = 2\ntimeout = 600\n')
    sha = commit(root, {"train.py": TRAIN_PY, ".gitignore": "/artefacts/\n"},
                 message="training")
    if then_commit is not None:
        sha = then_commit(root)
    env = dict(os.environ, AISDP_EXPERIMENT_ID="EXP-001", AISDP_SEED="42")
    env.pop("AISDP_ARTEFACT_DIR", None)
    subprocess.run([sys.executable, "train.py"], cwd=root, env=env, check=True)
    data_md5 = hashlib.md5((root / "data" / "train.csv").read_bytes()).hexdigest()
    log = root / "experiment-log.xlsx"
    write_log(log, [{
        "Experiment ID": "EXP-001", "Date": "2026-07-02", "Hypothesis": "a tiny model",
        "Data version": data_md5[:8], "Code commit": sha, "Random seed": 42,
        "Training duration": 0.1, "metrics.accuracy": 0.9,
        "Artefact hash": artefact_hash(root / "artefacts" / "EXP-001"),
        "Environment": "python", "Outcome": "selected", "Notes": "n", "Reviewer": "Ana",
        "Reproducibility": None, **(row or {})}])
    return root, log


def write_run(root: Path, experiment_id: str) -> Path:
    folder = root / "artefacts" / experiment_id
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model.bin").write_bytes(experiment_id.encode())
    (folder / "run.json").write_text(json.dumps({
        "experiment_id": experiment_id, "seed": 7, "status": "completed",
        "commit": "9c1e4b7d2a0f5e6b8c3d1a2f4e5b6c7d8e9f0a1b", "data_version": "3f2a9c1e",
        "params": {"learning_rate": 0.01}, "started": "2026-07-20T10:00:00+00:00"}))
    (folder / "metrics.json").write_text(json.dumps({"accuracy": 0.91}))
    return folder


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A git repo with a log (one row) and artefact folders EXP-002 and EXP-003."""
    root = init_repo(tmp_path / "proj")
    write_log(root / "log.xlsx", [{"Experiment ID": "EXP-001", "Date": "2026-07-01",
                                   "Random seed": 1, "metrics.accuracy": 0.9}])
    for experiment_id in ("EXP-002", "EXP-003"):
        write_run(root, experiment_id)
    return root


def cli(*args: str, cwd: Path | None = None, env: dict | None = None,
        prefix: list[str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*(prefix or []), sys.executable, "-m", "aisdp_log", *args],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def ids(log: Path) -> list[str]:
    ws = openpyxl.load_workbook(log)["Experiments"]
    return [row[0] for row in ws.iter_rows(min_row=2, values_only=True) if row[0]]


def one_line_error(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("aisdp-log: error: "), result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


def setpriv() -> list[str]:
    path = shutil.which("setpriv")
    if path is None:
        pytest.skip("setpriv (util-linux) is missing: cannot drop root's override")
    return [path, *NO_OVERRIDE, "--"]


# --------------------------------------------------------------------------- permissions

def test_a_read_only_log_is_refused_for_a_user_without_roots_override(project):
    log = project / "log.xlsx"
    log.chmod(0o444)
    before = log.read_bytes()
    line = one_line_error(cli("add", str(log), "EXP-002", prefix=setpriv()))
    assert "read-only for you (mode 0444" in line and str(log) in line
    assert log.read_bytes() == before


def test_a_log_owned_by_someone_else_is_refused_though_its_mode_allows_writing(project):
    log = project / "log.xlsx"
    os.chown(log, 4321, 4321)
    log.chmod(0o666)  # writable by all: the rename would still make it root's
    before = log.read_bytes()
    line = one_line_error(cli("add", str(log), "EXP-002", prefix=setpriv()))
    assert "owned by" in line and "replacing it would make it yours" in line
    assert log.read_bytes() == before and log.stat().st_uid == 4321


def test_a_read_only_folder_is_refused(project):
    log = project / "log.xlsx"
    shutil.rmtree(project / ".aisdp-log", ignore_errors=True)
    project.chmod(0o555)
    try:
        line = one_line_error(cli("add", str(log), "EXP-002", prefix=setpriv()))
    finally:
        project.chmod(0o755)
    assert "read-only for you" in line and str(project) in line


def test_owner_group_and_mode_are_kept_by_a_write(project):
    log = project / "log.xlsx"
    os.chown(log, 4321, 4322)
    log.chmod(0o664)
    assert cli("add", str(log), "EXP-002").returncode == 0  # root may give the file back
    status = log.stat()
    assert (status.st_uid, status.st_gid, status.st_mode & 0o777) == (4321, 4322, 0o664)
    assert ids(log) == ["EXP-001", "EXP-002"]


# --------------------------------------------------------------------------- links

def test_a_symlinked_log_stays_a_symlink_after_add(project, tmp_path):
    real = tmp_path / "shared" / "real-log.xlsx"
    real.parent.mkdir()
    (project / "log.xlsx").rename(real)
    (project / "log.xlsx").symlink_to(real)
    result = cli("add", str(project / "log.xlsx"), "EXP-002")
    assert result.returncode == 0, result.stderr
    assert (project / "log.xlsx").is_symlink()
    assert ids(real) == ["EXP-001", "EXP-002"]
    assert sorted(p.name for p in real.parent.iterdir()) == [".aisdp-log", "real-log.xlsx"]


def test_a_libreoffice_lock_beside_the_symlinks_target_refuses(project, tmp_path):
    real = tmp_path / "shared" / "real-log.xlsx"
    real.parent.mkdir()
    (project / "log.xlsx").rename(real)
    (project / "log.xlsx").symlink_to(real)
    (real.parent / ".~lock.real-log.xlsx#").write_text(
        ",Jane Doe,jdoe,labpc-7,26.11.2026 08:00,file:///home/jdoe;")
    before = real.read_bytes()
    line = one_line_error(cli("add", str(project / "log.xlsx"), "EXP-002"))
    assert "LibreOffice by Jane Doe" in line and "a link to" in line
    assert real.read_bytes() == before


def test_a_hard_linked_log_is_refused_and_force_writes_a_new_file(project, tmp_path):
    log = project / "log.xlsx"
    other = tmp_path / "other-name.xlsx"
    os.link(log, other)
    before = log.read_bytes()
    line = one_line_error(cli("add", str(log), "EXP-002"))
    assert "2 hard links" in line and "--force" in line
    assert log.read_bytes() == before
    assert cli("add", str(log), "EXP-002", "--force").returncode == 0
    assert ids(log) == ["EXP-001", "EXP-002"] and other.read_bytes() == before
    assert log.stat().st_nlink == 1


@pytest.mark.skipif(os.name == "nt", reason="Windows' Excel locks the file: a forced write is "
                    "refused by the replace instead (test_atomic.py)")
def test_force_over_a_workbook_open_in_excel_says_its_next_save_overwrites(project):
    log = project / "log.xlsx"
    owner = project / "~$log.xlsx"
    name = "Ana Ruiz"
    owner.write_bytes(bytes([len(name)]) + name.encode("cp1252").ljust(54, b" ")
                      + name.encode("utf-16-le"))
    line = one_line_error(cli("add", str(log), "EXP-002"))
    assert "open in Excel by Ana Ruiz" in line

    forced = cli("add", str(log), "EXP-002", "--force")

    assert forced.returncode == 0, forced.stderr
    [warning] = [line for line in forced.stderr.splitlines() if "next save" in line]
    assert "open in Excel (by Ana Ruiz)" in warning
    assert "its next save will overwrite what aisdp-log writes now" in warning
    assert ids(log) == ["EXP-001", "EXP-002"]


def test_template_force_honours_the_libreoffice_lock_and_keeps_a_symlink(tmp_path):
    real = tmp_path / "real.xlsx"
    link = tmp_path / "log.xlsx"
    real.write_bytes(b"old")
    link.symlink_to(real)
    lock = tmp_path / ".~lock.log.xlsx#"
    lock.write_text(",Jane Doe,jdoe,labpc-7,26.11.2026 08:00,file:///home/jdoe;")
    line = one_line_error(cli("template", "-o", str(link), "--force", cwd=tmp_path))
    assert "LibreOffice by Jane Doe" in line and real.read_bytes() == b"old"
    lock.unlink()
    result = cli("template", "-o", str(link), "--force", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert link.is_symlink() and real.read_bytes()[:2] == b"PK"


def test_review_sign_refuses_before_rendering(project):
    log = project / "log.xlsx"
    (project / ".~lock.log.xlsx#").write_text(",Ana,ana,labpc-1,27.11.2026 08:00,file:///;")
    out = project / "reviews"
    line = one_line_error(cli("review", str(log), "--sign", "Ana, Lead", "-o", str(out),
                              cwd=project))
    assert "LibreOffice by Ana" in line
    assert not out.exists()  # nothing rendered


def test_a_killed_reviews_temp_folder_is_removed_by_the_next_review(project, tmp_path):
    temp = tmp_path / "temp"
    temp.mkdir()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    left = temp / f"aisdp-log-review-{int(dead.stdout)}-abc123"  # a SIGKILLed review's
    left.mkdir()
    (left / "signing.pub").write_text("ssh-ed25519 AAAA\n")
    live = temp / f"aisdp-log-review-{os.getpid()}-def456"  # a review still running
    live.mkdir()
    result = cli("review", str(project / "log.xlsx"), "--sign", "Ana, Lead", "-o",
                 str(project / "reviews"), cwd=project, env=dict(os.environ, TMPDIR=str(temp)))
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in temp.iterdir()) == [live.name]


# --------------------------------------------------------------------------- the lock

def test_concurrent_adds_both_land(project):
    log = project / "log.xlsx"
    first, second = (subprocess.Popen([sys.executable, "-m", "aisdp_log", "add", str(log),
                                       experiment_id], stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True)
                     for experiment_id in ("EXP-002", "EXP-003"))
    for process in (first, second):
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
    assert sorted(ids(log)) == ["EXP-001", "EXP-002", "EXP-003"]


def test_the_lock_of_a_dead_writer_is_taken_over(project):
    log = project / "log.xlsx"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    pid = int(dead.stdout)  # a process that has ended
    tools = project / ".aisdp-log"
    tools.mkdir()
    (tools / ".gitignore").write_text("*\n")
    (tools / "log.xlsx.lock").write_text(json.dumps(
        {"pid": pid, "host": socket.gethostname(), "user": "root",
         "since": "2026-11-27T06:00:00Z"}))
    (tools / f"log.xlsx.{pid}-abcd1234.aisdp-tmp").write_bytes(b"PK half")
    result = cli("add", str(log), "EXP-002", env=dict(os.environ, AISDP_LOG_LOCK_WAIT="5"))
    assert result.returncode == 0, result.stderr
    assert f"taking over the lock of aisdp-log pid {pid}" in result.stderr
    assert ids(log) == ["EXP-001", "EXP-002"]
    assert sorted(p.name for p in tools.iterdir()) == [".gitignore"]


def test_lock_and_temp_files_are_invisible_to_git_status(project):
    log = project / "log.xlsx"
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "log")
    with guard.writer_lock(log):
        with guard.tool_dir(project).joinpath(f"log.xlsx.{os.getpid()}-x.tmp").open("wb"):
            assert (project / ".aisdp-log" / "log.xlsx.lock").exists()
            assert git(project, "status", "--porcelain", "--ignored=no") == ""
    assert cli("add", str(log), "EXP-002").returncode == 0
    assert git(project, "status", "--porcelain") == "M log.xlsx"


# --------------------------------------------------------------------------- a full disk

def test_a_full_disk_is_one_line_exit_2_and_the_log_intact(project, tmp_path):
    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)],
                          capture_output=True)
    if done.returncode != 0:
        pytest.skip("mount -t tmpfs is not permitted here")
    try:
        log = mount / "log.xlsx"
        shutil.copyfile(project / "log.xlsx", log)
        before = log.read_bytes()
        guard.tool_dir(mount)
        (mount / ".aisdp-log" / "log.xlsx.lock").write_bytes(b"")  # room for the lock
        filler = mount / "filler"
        with open(filler, "wb", buffering=0) as fh:
            try:
                while True:
                    fh.write(b"\0" * 4096)
                    fh.flush()
            except OSError:
                pass
        (mount / ".aisdp-log" / "log.xlsx.lock").unlink()
        with open(filler, "r+b") as fh:  # leave a few pages: the lock fits, the save does not
            fh.truncate(max(0, filler.stat().st_size - 2 * 4096))
        result = cli("add", str(log), "EXP-002", "--repo", str(project))
        line = one_line_error(result)
        assert str(log) in line and "No space left on device" in line
        assert log.read_bytes() == before
        assert sorted(p.name for p in (mount / ".aisdp-log").iterdir()) == [".gitignore"]
        assert sorted(p.name for p in mount.iterdir()) == [".aisdp-log", "filler", "log.xlsx"]
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


# --------------------------------------------------------------------------- killed reruns

def processes_with(marker: str) -> list[int]:
    """Pids of live processes whose environment holds `marker` (Linux /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if marker.encode() in environ and state != "Z":
            found.append(int(entry.name))
    return found


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs Linux /proc")
def test_a_sigkilled_rerun_leaves_no_process_and_the_next_leaves_no_worktree(tmp_path):
    root, log = tiny_rerun_project(tmp_path)
    marker = f"AISDP_TEST_MARK={uuid.uuid4().hex}"
    temp = tmp_path / "tmp"
    temp.mkdir()
    env = dict(os.environ, TRAIN_SLEEP="600", TRAIN_CHILD="1", TMPDIR=str(temp),
               AISDP_TEST_MARK=marker.split("=", 1)[1])
    process = subprocess.Popen([sys.executable, "-m", "aisdp_log", "rerun", str(log), "--id",
                                "EXP-001", "--mode", "bitwise"], cwd=root, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # the script and its grandchild both run
        if len(processes_with(marker)) >= 4:  # rerun, watchdog, script, grandchild
            break
        assert process.poll() is None
        time.sleep(0.1)
    else:
        pytest.fail("the training never started")
    assert git(root, "worktree", "list").count("\n") == 1
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    deadline = time.monotonic() + 10
    while processes_with(marker) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert processes_with(marker) == []
    assert any(temp.glob("aisdp-rerun-*"))  # what the killed rerun left ...
    result = cli("rerun", str(log), "--id", "EXP-001", "--mode", "bitwise", cwd=root,
                 env=dict(os.environ, TMPDIR=str(temp)))
    assert result.returncode == 0, result.stderr + result.stdout
    assert git(root, "worktree", "list").count("\n") == 0  # ... the next one removed
    assert list(temp.iterdir()) == []
    stamps = list((root / "artefacts" / "EXP-001" / "reruns").iterdir())
    assert len(stamps) == 1  # the killed run's folder went, the new one's stays
    assert not (stamps[0] / ".aisdp-log-running").exists()
    assert sorted(p.name for p in (root / ".aisdp-log").iterdir()) == [".gitignore"]


def test_remove_stale_takes_only_folders_of_dead_processes(tmp_path):
    from aisdp_log.repo.worktree import remove_stale

    repo = init_repo(tmp_path / "repo")
    commit(repo, {"a.txt": "a"})
    temp = tmp_path / "tmp"
    temp.mkdir()
    alive = Path(tempfile.mkdtemp(prefix=f"aisdp-rerun-{os.getpid()}-", dir=temp))
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    gone = temp / f"aisdp-rerun-{int(dead.stdout)}-abc123"
    git(repo, "worktree", "add", "--detach", "-q", str(gone / gone.name), "HEAD")
    unrelated = temp / "aisdp-rerun-notapid"
    unrelated.mkdir()
    assert remove_stale(repo, temp) == [gone]
    assert alive.exists() and unrelated.exists() and not gone.exists()
    assert git(repo, "worktree", "list").count("\n") == 0


def test_temp_files_of_dead_processes_are_swept_and_live_ones_kept(tmp_path):
    from aisdp_log.system.atomic import atomic_replace

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    tools = guard.tool_dir(tmp_path)
    stale = tools / f".hashes.json.{int(dead.stdout)}-q5x1.tmp"  # a killed cache write
    stale.write_bytes(b"{")
    with atomic_replace(tools / "hashes.json") as live:  # ours, being written right now
        live.write_bytes(b"{}")
        assert guard.remove_stale_temps(tmp_path) == [stale]
        assert live.exists()
    assert sorted(p.name for p in tools.iterdir()) == [".gitignore", "hashes.json"]
