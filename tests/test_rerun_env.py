"""Reruns in the environment the row recorded (rerun/environment, preflight, lockenv): the pre-
flight of the command's interpreter, the stderr tail of a failed run, and `--env lock` building
a cached environment with uv from the row's lock file. A real git + DVC project, real virtual
environments and a small wheel built here, installed offline from a find-links folder."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from builders import commit, init_repo, run_cli, write_log

pytestmark = pytest.mark.slow

TRAIN_PY = '''\
"""Scores data/train.csv with a salt from tinypkg; the model is bytes derived from both."""
import hashlib, os, sys
from pathlib import Path

from aisdp_log.training import record_run

if os.environ.get("TRAIN_FAIL"):
    print("loading data/train.csv", file=sys.stderr)
    print("\\x1b[31mRuntimeError: the data file is corrupt\\x1b[0m\\x07", file=sys.stderr)
    sys.exit(3)

import tinypkg

with record_run() as run:
    data = Path("data/train.csv").read_bytes()
    digest = hashlib.sha256(data + tinypkg.SALT + str(run.seed).encode()).digest()
    run.path("model.bin").write_bytes(digest)
    run.log_metrics(score=digest[0] / 255)
'''

AISDP_TOML = '''\
artefacts = "artefacts"
data = ["data/train.csv.dvc"]

[rerun]
command = {command}
runs = 2
timeout = 300
'''


def wheel(folder: Path, name: str = "tinypkg", version: str = "1.0.0") -> Path:
    """A pure-python wheel holding `SALT`, with a correct RECORD."""
    files = {
        f"{name}/__init__.py": f'SALT = b"{name}-{version}"\n',
        f"{name}-{version}.dist-info/METADATA":
            f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
        f"{name}-{version}.dist-info/WHEEL":
            "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = []
    for path, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=")
        record.append(f"{path},sha256={digest.decode()},{len(text.encode())}")
    record.append(f"{name}-{version}.dist-info/RECORD,,")
    files[f"{name}-{version}.dist-info/RECORD"] = "\n".join(record) + "\n"
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(target, "w") as archive:
        for path, text in files.items():
            archive.writestr(path, text)
    return target


def uv() -> str:
    found = shutil.which("uv") or str(Path(sys.executable).parent / "uv")
    if not Path(found).exists():
        pytest.skip("uv is not installed")
    return found


def tool_path(base: Path) -> Path:
    """A folder exposing only aisdp_log (not the rest of the test's site-packages)."""
    import aisdp_log

    holder = base / "tool"
    holder.mkdir(exist_ok=True)
    link = holder / "aisdp_log"
    if not link.exists():
        link.symlink_to(Path(aisdp_log.__file__).resolve().parent, target_is_directory=True)
    return holder


def run(command: list, cwd: Path, **env) -> subprocess.CompletedProcess:
    return subprocess.run(command, cwd=cwd, check=True, capture_output=True, text=True,
                          env=dict(os.environ, DVC_NO_ANALYTICS="1", **env))


def train(root: Path, python: str, experiment_id: str, seed: int, **env) -> dict:
    from aisdp_log.artefacts.hashing import artefact_hash

    run([python, "train.py"], root, AISDP_EXPERIMENT_ID=experiment_id, AISDP_SEED=str(seed),
        AISDP_PARAMS="{}", **env)
    folder = root / "artefacts" / experiment_id
    record = json.loads((folder / "run.json").read_text())
    record["metrics"] = json.loads((folder / "metrics.json").read_text())
    record["hash"] = artefact_hash(folder)
    return record


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> dict:
    """One commit (train.py, requirements.txt pinning tinypkg, DVC data). EXP-001 trained with
    this test's Python (which has torch and numpy, so its run.json records them) and tinypkg on
    PYTHONPATH; EXP-002 trained in the project's own environment (a venv with tinypkg only)."""
    base = tmp_path_factory.mktemp("rerun-env")
    wheels = base / "wheels"
    built = wheel(wheels)
    root = init_repo(base / "proj")
    dvc = [sys.executable, "-m", "dvc"]
    run([*dvc, "init", "-q"], root)
    run([*dvc, "config", "core.analytics", "false"], root)
    (root / "data").mkdir()
    (root / "data" / "train.csv").write_text("x,y\n1,0\n2,1\n")
    run([*dvc, "add", "-q", "data/train.csv"], root)
    (root / "aisdp.toml").write_text(AISDP_TOML.format(command='["python", "train.py"]'))
    sha = commit(root, {"train.py": TRAIN_PY, ".gitignore": "/artefacts/\n",
                        "requirements.txt": "tinypkg==1.0.0\naisdp-log==0.1.0\n"},
                 message="training")
    tool = tool_path(base)
    unpacked = base / "unpacked"
    with zipfile.ZipFile(built) as archive:
        archive.extractall(unpacked)
    first = train(root, sys.executable, "EXP-001", 42,
                  PYTHONPATH=os.pathsep.join([str(tool), str(unpacked)]))
    venv = base / "project-venv"
    run([uv(), "venv", "-q", "--python", sys.executable, str(venv)], base)
    run([uv(), "pip", "install", "-q", "--python", str(venv / "bin" / "python"), "--no-index",
         "--find-links", str(wheels), "tinypkg==1.0.0"], base)
    second = train(root, str(venv / "bin" / "python"), "EXP-002", 7, PYTHONPATH=str(tool))
    return {"root": root, "wheels": wheels, "commit": sha, "base": base,
            "records": {"EXP-001": first, "EXP-002": second}}


@pytest.fixture
def copy(project, tmp_path, monkeypatch):
    """A private copy of the project and its log; dvc and `python` come from this test's
    environment, pip reads no configuration file, the cache folder is the test's own."""
    root = tmp_path / "proj"
    shutil.copytree(project["root"], root, symlinks=True)
    rows = []
    for experiment_id, record in project["records"].items():
        data_md5 = hashlib.md5((root / "data" / "train.csv").read_bytes()).hexdigest()
        rows.append({
            "Experiment ID": experiment_id, "Date": "2026-07-02", "Hypothesis": "salted",
            "Data version": data_md5[:8], "Code commit": record["commit"],
            "Random seed": record["seed"], "Training duration": 0.1,
            "metrics.score": record["metrics"]["score"], "Artefact hash": record["hash"],
            "Environment": record["environment"]["summary"], "Outcome": "selected",
            "Notes": "n", "Reviewer": "Ana"})
    log = root / "experiment-log.xlsx"
    write_log(log, rows, metrics=[{"Metric": "score", "Goal": "max", "Threshold": 0.0,
                                   "Description": "a byte of the model"}])
    monkeypatch.setenv("PATH", str(Path(sys.executable).parent) + os.pathsep +
                       os.environ.get("PATH", ""))
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(project["wheels"]))
    for name in ("PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "TRAIN_FAIL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return root, log


def set_command(root: Path, command: list[str]) -> None:
    (root / "aisdp.toml").write_text(AISDP_TOML.format(command=json.dumps(command)))


def sheet(log: Path, name: str) -> list[dict]:
    from aisdp_log.workbook.reader import Workbook

    with Workbook(log) as wb:
        table = wb.table(wb.find_sheet(name))
    return [{c.header: r.get(c) for c in table.columns} for r in table.rows]


def cli(*args: str):
    return run_cli(*args)


# --------------------------------------------------------------------------- pre-flight

def test_an_interpreter_without_the_recorded_packages_is_refused_before_any_run(copy,
                                                                                tmp_path):
    root, log = copy
    bare = tmp_path / "bare"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(bare)], check=True)
    set_command(root, [str(bare / "bin" / "python"), "train.py"])
    before = log.read_bytes()

    result = cli("rerun", str(log), "--id", "EXP-001", "--mode", "bitwise")

    assert result.returncode == 2, result.stdout + result.stderr
    message = result.stderr.strip()
    assert len(message.splitlines()) == 1
    assert "torch" in message and str(bare / "bin" / "python") in message
    assert "--env lock" in message
    assert not (root / "artefacts" / "EXP-001" / "reruns").exists()
    assert log.read_bytes() == before


def test_a_command_that_is_not_python_is_said_to_be_unchecked(copy):
    from aisdp_log.rerun.runner import rerun

    root, log = copy
    set_command(root, ["bash", "train.sh"])

    report = rerun(log, ids=["EXP-001"], mode="bitwise", dry_run=True)

    assert any("cannot check 'bash'" in line for line in report.lines), report.lines


def test_a_version_difference_is_printed_and_the_run_goes_ahead(copy, project, monkeypatch):
    from aisdp_log.rerun.runner import rerun

    root, log = copy
    record = root / "artefacts" / "EXP-001" / "run.json"
    data = json.loads(record.read_text())
    data["environment"]["torch"]["version"] = "0.0.1"
    record.write_text(json.dumps(data))
    set_command(root, [sys.executable, "train.py"])
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        [str(project["base"] / "tool"), str(project["base"] / "unpacked")]))
    report = rerun(log, ids=["EXP-001"], mode="bitwise")
    assert any("torch 0.0.1 →" in line for line in report.lines), report.lines
    assert report.exit_code == 0, report.lines
    (rerun_row,) = sheet(log, "Reruns")
    assert rerun_row["Environment"].startswith(f"current: {sys.executable} python ")


@pytest.mark.skipif(os.name == "nt", reason="the stand-in interpreter is a POSIX shell script")
def test_the_interpreter_is_the_one_on_the_runs_path_and_the_preflight_checked(copy, project,
                                                                               monkeypatch,
                                                                               tmp_path):
    from aisdp_log.rerun.runner import rerun

    root, log = copy
    # A `python` first on the run's PATH that notes each start, then runs this test's Python.
    own = tmp_path / "own-bin"
    own.mkdir()
    calls = tmp_path / "calls"
    wrapper = own / "python"
    wrapper.write_text(f'#!/bin/sh\necho "$1" >> "{calls}"\nexec "{sys.executable}" "$@"\n')
    wrapper.chmod(0o755)
    monkeypatch.setenv("PATH", str(own) + os.pathsep + os.environ["PATH"])
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        [str(project["base"] / "tool"), str(project["base"] / "unpacked")]))
    set_command(root, ["python", "train.py"])

    report = rerun(log, ids=["EXP-001"], mode="bitwise")

    assert report.exit_code == 0, report.lines
    (rerun_row,) = sheet(log, "Reruns")
    assert rerun_row["Environment"].startswith(f"current: {wrapper} python ")
    assert calls.read_text().split() == ["-c", "train.py"]  # the pre-flight, then the run


# --------------------------------------------------------------------------- failed runs

def test_a_failed_run_says_why_in_the_output_the_reruns_row_and_the_review(copy, monkeypatch,
                                                                           tmp_path):
    root, log = copy
    set_command(root, [sys.executable, "train.py"])
    monkeypatch.setenv("TRAIN_FAIL", "1")

    result = cli("rerun", str(log), "--id", "EXP-001", "--mode", "bitwise")

    assert result.returncode == 1, result.stdout + result.stderr
    assert "RuntimeError: the data file is corrupt" in result.stdout
    assert "\x1b" not in result.stdout and "\x07" not in result.stdout
    (rerun_row,) = sheet(log, "Reruns")
    assert rerun_row["Status"] == "failed: exit code 3"
    assert rerun_row["Error"] == ("loading data/train.csv\n"
                                  "RuntimeError: the data file is corrupt")

    review = cli("review", str(log), "--period", "2026-Q3", "-o", str(tmp_path / "review"))
    assert review.returncode in (0, 1), review.stdout + review.stderr
    (markdown,) = (tmp_path / "review").glob("*.md")
    assert "RuntimeError: the data file is corrupt" in markdown.read_text()
    (page,) = (tmp_path / "review").glob("*.html")
    assert "RuntimeError: the data file is corrupt" in page.read_text()


def test_the_stderr_tail_is_bounded_and_clean():
    from aisdp_log.rerun.tail import TAIL_CHARS, TAIL_LINE_CHARS, stderr_tail

    data = b"".join(b"line %d\r\n" % i for i in range(50)) + b"x" * 5000 + b"\n\x00\x1b[1m!\n"
    tail = stderr_tail(data)
    assert len(tail) <= 5 and tail[-1] == "!"
    assert all(len(line) <= TAIL_LINE_CHARS for line in tail)
    assert sum(len(line) + 1 for line in tail) <= TAIL_CHARS


# --------------------------------------------------------------------------- --env lock

def test_env_lock_builds_once_reuses_and_reproduces_bitwise(copy, project):
    from aisdp_log.rerun.runner import rerun

    _root, log = copy
    lock_hex = hashlib.sha256(b"tinypkg==1.0.0\naisdp-log==0.1.0\n").hexdigest()
    cache = Path(os.environ["XDG_CACHE_HOME"]) / "aisdp-log" / "envs"

    first = rerun(log, ids=["EXP-002"], mode="bitwise", env="lock")

    assert first.exit_code == 0, first.lines
    assert any("built the environment of requirements.txt" in line for line in first.lines)
    (folder,) = [p for p in cache.iterdir() if not p.name.startswith(".")]
    assert folder.name.startswith(lock_hex + "-py")
    marker = (folder / "aisdp-env.json").stat()

    second = rerun(log, ids=["EXP-002"], mode="bitwise", env="lock")

    assert second.exit_code == 0, second.lines
    assert any("reusing the environment" in line for line in second.lines), second.lines
    assert (folder / "aisdp-env.json").stat().st_mtime_ns == marker.st_mtime_ns
    assert [p.name for p in cache.iterdir()] == [folder.name]  # nothing half-built left
    # no symlink of ours (Windows allows those only to administrators): a copy of aisdp_log
    # (uv's own lib64 -> lib on POSIX is the venv's layout, not ours)
    assert not [p for p in (folder / "aisdp-tool").rglob("*") if p.is_symlink()]
    copied = folder / "aisdp-tool" / "aisdp_log"
    assert copied.is_dir() and not copied.is_symlink() and (copied / "training.py").is_file()
    rows = sheet(log, "Reruns")
    for row in rows:
        assert row["Environment"].startswith(f"lock: requirements.txt sha256:{lock_hex}; python ")
    assert [r["Bitwise match"] for r in rows] == ["yes", "yes"]
    experiments = {r["Experiment ID"]: r for r in sheet(log, "Experiments")}
    assert experiments["EXP-002"]["Reproducibility"] == "bitwise"


def test_env_lock_refuses_a_lock_file_that_is_not_the_recorded_one(copy):
    from aisdp_log.errors import AisdpLogError
    from aisdp_log.rerun.runner import rerun
    from aisdp_log.workbook.writer import find_rows, open_workbook_for_update, set_cell

    _root, log = copy
    with open_workbook_for_update(log) as wb:
        ws = wb["Experiments"]
        (row,) = find_rows(ws, "Experiment ID", "EXP-002")
        set_cell(ws, row, "Environment", "requirements.txt sha256:" + "ab" * 32)

    with pytest.raises(AisdpLogError, match="G005"):
        rerun(log, ids=["EXP-002"], mode="bitwise", env="lock")
    assert not (Path(os.environ["XDG_CACHE_HOME"]) / "aisdp-log").exists()


def test_poetry_and_pylock_files_become_pinned_requirements(tmp_path):
    from aisdp_log.rerun.lockenv import requirements_from_lock

    poetry = (b'[[package]]\nname = "six"\nversion = "1.16.0"\nmarkers = "python_version >= '
              b'\'3.8\'"\n\n[[package]]\nname = "mine"\nversion = "0.1"\n[package.source]\n'
              b'type = "git"\nurl = "https://example.invalid/mine.git"\n\n[[package]]\n'
              b'name = "aisdp-log"\nversion = "0.1.0"\n')
    text, notes = requirements_from_lock("poetry.lock", poetry, "uv", tmp_path, "HEAD", tmp_path)
    assert text.splitlines() == ["six==1.16.0 ; python_version >= '3.8'"]
    assert any("mine" in note for note in notes) and any("aisdp-log" in n for n in notes)

    pylock = (b'lock-version = "1.0"\ncreated-by = "test"\n\n[[packages]]\nname = "attrs"\n'
              b'version = "24.2.0"\nmarker = "sys_platform == \'linux\'"\n')
    text, _ = requirements_from_lock("pylock.toml", pylock, "uv", tmp_path, "HEAD", tmp_path)
    assert text.splitlines() == ["attrs==24.2.0 ; sys_platform == 'linux'"]


def test_pips_configured_indexes_are_passed_to_uv(tmp_path, monkeypatch):
    from aisdp_log.rerun.lockenv import pip_index_options

    if subprocess.run([sys.executable, "-m", "pip", "--version"], capture_output=True,
                      check=False).returncode != 0:
        pytest.skip("no pip in this Python")
    config = tmp_path / "pip.conf"
    config.write_text("[global]\nindex-url = file:///srv/simple\n"
                      "extra-index-url = file:///srv/a file:///srv/b\nfind-links = /srv/wheels\n"
                      "cert = /srv/ca.pem\n")
    monkeypatch.setenv("PIP_CONFIG_FILE", str(config))
    for name in ("PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_FIND_LINKS", "PIP_NO_INDEX",
                 "PIP_CERT", "SSL_CERT_FILE"):
        monkeypatch.delenv(name, raising=False)
    options, variables = pip_index_options()
    assert options == ["--index-url", "file:///srv/simple", "--extra-index-url", "file:///srv/a",
                       "--extra-index-url", "file:///srv/b", "--find-links", "/srv/wheels"]
    assert variables == {"SSL_CERT_FILE": "/srv/ca.pem"}

    monkeypatch.setenv("PIP_FIND_LINKS", "/elsewhere")  # the environment wins, as in pip
    options, _ = pip_index_options()
    assert options[-2:] == ["--find-links", "/elsewhere"]
