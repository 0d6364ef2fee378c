"""`rerun --env image` with a real engine (Podman): a run recorded inside a small Python image
built here (tests/containers.py), `add` filling the image entry, a bitwise and a statistical
rerun inside the image that prove from inside that they ran there, the refusals before any
work, G009 with --remote, and nothing left behind when aisdp-log is killed outright."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from builders import commit, git, init_repo, run_cli
from containers import MARKER, MARKER_TEXT, build_image, labelled_containers, podman

pytestmark = pytest.mark.slow

TRAIN_PY = f'''\
"""Pure-Python training: the model is bytes derived from the data, the seed and what the
machine it runs on holds at {MARKER} (only the test image has it)."""
import hashlib, json, random, time
from pathlib import Path

from aisdp_log.training import record_run

with record_run(params={{"sleep": 0}}) as run:
    time.sleep(float(run.params.get("sleep", 0)))
    marker = Path("{MARKER}")
    inside = marker.read_text().strip() if marker.exists() else "not in the image"
    print("ran in:", inside)
    data = Path("data/train.csv").read_bytes()
    rng = random.Random(run.seed)
    weights = [round(rng.random(), 6) for _ in range(4)]
    run.save_model(json.dumps({{"weights": weights, "data": hashlib.sha256(data).hexdigest(),
                               "built_in": inside}}).encode(), "model.json")
    run.log_metrics(accuracy=0.9 + weights[0] / 100)
'''

AISDP_TOML = '''\
artefacts = "artefacts"
data = ["data/train.csv.dvc"]

[rerun]
command = ["python", "train.py"]
runs = 2
timeout = 300
engine = "podman"

[template]
params = { sleep = "float" }
metrics.accuracy = { goal = "max", threshold = 0.85, description = "holdout accuracy" }
'''


def run(command: list, cwd: Path, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True,
                          env=dict(os.environ, DVC_NO_ANALYTICS="1"), **kwargs)


@pytest.fixture(scope="session")
def image() -> str:
    return build_image()


def train_in_image(root: Path, image: str, experiment_id: str, seed: int) -> None:
    """Train as a team that trains in containers would: the repository mounted at its own
    path, AISDP_IMAGE set by whoever starts the container, aisdp_log mounted (the image
    lacks it)."""
    import aisdp_log

    package = Path(aisdp_log.__file__).resolve().parent
    result = run([podman(), "run", "--rm", "--network", "none", "-v", f"{root}:{root}",
                  "-w", str(root), "-v", f"{package}:/opt/tool/aisdp_log:ro",
                  "-e", "PYTHONPATH=/opt/tool", "-e", f"AISDP_IMAGE={image}",
                  "-e", f"AISDP_EXPERIMENT_ID={experiment_id}", "-e", f"AISDP_SEED={seed}",
                  image, "python", "train.py"], root)
    assert result.returncode == 0, result.stderr
    assert f"ran in: {MARKER_TEXT}" in result.stdout


@pytest.fixture(scope="module")
def project(tmp_path_factory, image) -> Path:
    """A git + DVC project trained once inside the image (EXP-001) and filled in by `add`."""
    root = init_repo(tmp_path_factory.mktemp("image") / "proj")
    dvc = [sys.executable, "-m", "dvc"]
    assert run([*dvc, "init", "-q"], root).returncode == 0
    (root / "data").mkdir()
    (root / "data" / "train.csv").write_text("x,y\n1,0\n2,1\n")
    assert run([*dvc, "add", "-q", "data/train.csv"], root).returncode == 0
    commit(root, {"train.py": TRAIN_PY, "aisdp.toml": AISDP_TOML,
                  ".gitignore": "/artefacts/\n"}, message="training")
    assert run_cli("template", "-o", str(root / "experiment-log.xlsx"), "--config",
                   str(root / "aisdp.toml")).returncode == 0
    train_in_image(root, image, "EXP-001", 42)
    added = run_cli("add", str(root / "experiment-log.xlsx"), "EXP-001", cwd=root)
    assert added.returncode == 0, added.stderr + added.stdout
    return root


def cells(log: Path, sheet: str) -> list[dict]:
    from aisdp_log.workbook.reader import Workbook

    with Workbook(log) as wb:
        table = wb.table(wb.find_sheet(sheet))
    return [{c.header: r.get(c) for c in table.columns} for r in table.rows]


@pytest.fixture
def copy(project, tmp_path) -> tuple[Path, Path]:
    import shutil

    root = tmp_path / "proj"
    shutil.copytree(project, root, symlinks=True)
    return root, root / "experiment-log.xlsx"


# --------------------------------------------------------------------------- recording

def test_a_run_in_the_image_records_it_and_add_fills_the_environment_cell(project, image):
    record = json.loads((project / "artefacts/EXP-001/run.json").read_text())
    assert record["environment"]["image"] == image
    # no git in the image: the commit is read from the mounted repository's files
    assert record["commit"] == git(project, "rev-parse", "HEAD")
    row = cells(project / "experiment-log.xlsx", "Experiments")[0]
    assert row["Environment"].startswith(f"image: {image}; python 3.11")
    assert row["Code commit"] == record["commit"]
    report = run_cli("validate", str(project / "experiment-log.xlsx"), "--format", "json",
                     cwd=project)
    codes = {(f["code"], f["column"]) for f in json.loads(report.stdout)["findings"]}
    assert not {c for c in codes if c[1] == "Environment"}, codes


# --------------------------------------------------------------------------- reruns

def test_a_bitwise_rerun_runs_inside_the_recorded_image(copy, image):
    root, log = copy
    result = run_cli("rerun", str(log), "--id", "EXP-001", "--env", "image", "--mode",
                     "bitwise", cwd=root)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "EXP-001: bitwise" in result.stdout
    reruns = cells(log, "Reruns")
    version = run([podman(), "--version"], root).stdout.split()[-1]
    assert reruns[0]["Bitwise match"] in (True, "yes", "TRUE", 1)
    assert reruns[0]["Environment"].startswith(f"image: {image}; podman {version}")
    folder = next((root / "artefacts/EXP-001/reruns").glob("*/1"))
    # proven from inside: the run read the file only the image has, and recorded the image
    assert f"ran in: {MARKER_TEXT}" in (folder / "stdout.log").read_text()
    assert json.loads((folder / "run.json").read_text())["environment"]["image"] == image
    assert cells(log, "Experiments")[0]["Reproducibility"] == "bitwise"
    assert labelled_containers() == []


def test_outside_the_image_the_same_row_does_not_reproduce_bitwise(copy):
    root, log = copy
    result = run_cli("rerun", str(log), "--id", "EXP-001", "--mode", "bitwise", cwd=root)
    assert result.returncode == 1
    assert "EXP-001: failed" in result.stdout


def test_a_statistical_rerun_in_the_image(copy, image):
    root, log = copy
    result = run_cli("rerun", str(log), "--id", "EXP-001", "--env", "image", "--mode",
                     "statistical", "--runs", "2", cwd=root)
    assert result.returncode == 0, result.stdout + result.stderr
    rows = cells(log, "Reruns")
    assert len(rows) == 2 and len({row["Seed"] for row in rows}) == 2
    assert all(row["Environment"].startswith(f"image: {image}") for row in rows)
    assert cells(log, "Experiments")[0]["Reproducibility"] == "statistical"


# --------------------------------------------------------------------------- refusals

def set_cell(log: Path, header: str, value) -> None:
    from openpyxl import load_workbook

    workbook = load_workbook(log)
    sheet = workbook["Experiments"]
    column = next(c.column for c in sheet[1] if c.value == header)
    sheet.cell(row=2, column=column, value=value)
    workbook.save(log)


def set_environment(log: Path, text: str | None) -> None:
    set_cell(log, "Environment", text)


def assert_refused(result, *parts: str) -> None:
    assert result.returncode == 2, result.stdout + result.stderr
    line = result.stderr.strip()
    assert len(line.splitlines()) == 1, line
    for part in parts:
        assert part in line, line


def test_refused_without_an_engine_naming_both_and_how_to_install(copy, tmp_path):
    root, log = copy
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("git",):
        (bin_dir / tool).symlink_to(subprocess.check_output(["which", tool], text=True).strip())
    (root / "aisdp.toml").write_text(AISDP_TOML.replace('engine = "podman"\n', ""))
    result = run_cli("rerun", str(log), "--id", "EXP-001", "--env", "image", cwd=root,
                     env=dict(os.environ, PATH=str(bin_dir)))
    assert_refused(result, "docker", "podman", "apt-get install podman")
    assert not (root / "artefacts/EXP-001/reruns").exists()


def test_refused_for_an_image_neither_local_nor_pullable(copy):
    root, log = copy
    absent = f"localhost:1/aisdp-log-absent@sha256:{'1' * 64}"
    set_environment(log, f"image: {absent}; python 3.11.2")
    result = run_cli("rerun", str(log), "--id", "EXP-001", "--env", "image", cwd=root)
    assert_refused(result, absent, "cannot be pulled", "podman")
    assert not (root / "artefacts/EXP-001/reruns").exists()


@pytest.mark.parametrize("environment, words", [
    ("python 3.11.2", "names none"),
    ("image: python:3.11", "by tag"),
    ("image: Bad_Name@sha256:12", "malformed")])
def test_refused_for_a_row_without_a_pinned_image(copy, environment, words):
    root, log = copy
    set_environment(log, environment)
    result = run_cli("rerun", str(log), "--id", "EXP-001", "--env", "image", cwd=root)
    assert_refused(result, "EXP-001", words)


# --------------------------------------------------------------------------- validation

def test_g009_with_remote_an_image_neither_local_nor_pullable(copy, image):
    root, log = copy
    absent = f"localhost:1/aisdp-log-absent@sha256:{'2' * 64}"
    set_environment(log, f"image: {absent}")
    found = run_cli("validate", str(log), "--remote", "--format", "json", cwd=root)
    findings = [(f["code"], f["cell"]) for f in json.loads(found.stdout)["findings"]
                if f["code"] == "G009"]
    assert len(findings) == 1 and findings[0][1].endswith("2")
    without = run_cli("validate", str(log), "--format", "json", cwd=root)
    assert "G009" not in without.stdout  # only --remote asks the engine
    set_environment(log, f"image: {image}")  # local: fine
    found = run_cli("validate", str(log), "--remote", "--format", "json", cwd=root)
    assert "G009" not in found.stdout


def test_g009_without_an_engine_says_the_image_was_not_checked(copy, tmp_path):
    root, log = copy
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "git").symlink_to(subprocess.check_output(["which", "git"], text=True).strip())
    (root / "aisdp.toml").write_text(AISDP_TOML.replace('engine = "podman"\n', ""))
    found = run_cli("validate", str(log), "--remote", "--offline", "--format", "json", cwd=root,
                    env=dict(os.environ, PATH=str(bin_dir)))
    assert "G009" not in found.stdout  # --offline asks nothing
    found = run_cli("validate", str(log), "--remote", "--format", "json", cwd=root,
                    env=dict(os.environ, PATH=str(bin_dir)))
    messages = [f["message"] for f in json.loads(found.stdout)["findings"]
                if f["code"] == "G009"]
    assert len(messages) == 1 and "not checked" in messages[0] and "podman" in messages[0]


def test_auto_detection_skips_a_docker_cli_whose_daemon_does_not_answer(tmp_path):
    from aisdp_log.system.containers import find_engine

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    docker = bin_dir / "docker"  # what a Docker CLI without its daemon answers
    docker.write_text("#!/bin/sh\necho 'Cannot connect to the Docker daemon at "
                      "unix:///var/run/docker.sock. Is the docker daemon running?' >&2\n"
                      "exit 1\n")
    docker.chmod(0o755)
    (bin_dir / "podman").symlink_to(podman())
    old = os.environ["PATH"]
    os.environ["PATH"] = str(bin_dir)
    try:
        engine, reason = find_engine(None)
        assert engine is not None and engine.name == "podman", reason
        engine, reason = find_engine("docker")
        assert engine is None and "Cannot connect to the Docker daemon" in reason
    finally:
        os.environ["PATH"] = old


# --------------------------------------------------------------------------- leftovers

def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def ours(pid: int) -> list[Path]:
    return list(Path(tempfile.gettempdir()).glob(f"aisdp-rerun-{pid}-*"))


def test_kill_9_leaves_no_container_and_the_next_run_no_worktree(copy, image):
    root, log = copy
    set_cell(log, "params.sleep", 120)
    process = subprocess.Popen([sys.executable, "-m", "aisdp_log", "rerun", str(log), "--id",
                                "EXP-001", "--env", "image", "--mode", "bitwise"], cwd=root,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not ours(process.pid) or not [name for name in labelled_containers(process.pid)
                                        if "probe" not in name]:
        assert process.poll() is None, process.stderr.read() if process.stderr else ""
        assert time.monotonic() < deadline, "the container never started"
        time.sleep(0.2)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    deadline = time.monotonic() + 60  # the lifeline removes the container
    while labelled_containers(process.pid):
        assert time.monotonic() < deadline, labelled_containers(process.pid)
        time.sleep(0.5)
    # The worktree stays until the next rerun (any rerun on this machine sweeps it), which
    # also removes a labelled container of a dead aisdp-log that no lifeline saw
    from aisdp_log.system.containers import host_tag

    gone = dead_pid()
    stale = f"aisdp-rerun-{host_tag()}-{gone}-abc"
    started = run([podman(), "run", "-d", "--name", stale, "--label",
                   f"aisdp-log.rerun={gone}", image, "python", "-c",
                   "import time; time.sleep(300)"], root)
    assert started.returncode == 0, started.stderr
    set_cell(log, "params.sleep", 0)
    result = run_cli("rerun", str(log), "--id", "EXP-001", "--env", "image", "--mode",
                     "bitwise", cwd=root)
    assert result.returncode == 0, result.stdout + result.stderr
    assert labelled_containers() == [] and labelled_containers(gone) == []
    assert not ours(process.pid)
    assert git(root, "worktree", "list").count("\n") == 0



def test_a_run_that_times_out_leaves_no_container(copy):
    root, log = copy
    set_cell(log, "params.sleep", 120)
    (root / "aisdp.toml").write_text(AISDP_TOML.replace("timeout = 300", "timeout = 3"))
    result = run_cli("rerun", str(log), "--id", "EXP-001", "--env", "image", "--mode",
                     "bitwise", cwd=root)
    assert result.returncode == 1
    assert "timed out after 3 s" in result.stdout
    assert labelled_containers() == []


def test_dry_run_names_the_image_and_engine_and_runs_nothing(copy, image):
    root, log = copy
    result = run_cli("rerun", str(log), "--id", "EXP-001", "--env", "image", "--dry-run",
                     cwd=root)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"EXP-001: would run in {image} with podman" in result.stdout
    assert "in the local store" in result.stdout
    assert not (root / "artefacts/EXP-001/reruns").exists()


def test_image_with_the_slurm_executor_is_refused(copy):
    root, log = copy
    result = run_cli("rerun", str(log), "--id", "EXP-001", "--env", "image", "--executor",
                     "slurm", cwd=root)
    assert_refused(result, "--env image", "local executor")


def test_an_image_entry_is_evidence_verified_only_when_an_engine_was_asked(copy):
    root, log = copy

    def environment_unverified(*options: str) -> bool:
        found = run_cli("validate", str(log), "--format", "json", *options, cwd=root)
        cells = json.loads(found.stdout)["summary"]["coverage"]["unverified_cells"]
        return any(cell.startswith("Experiments!") and cell.endswith("2") and
                   cell.split("!")[1][:-1] == letter for cell in cells)

    from openpyxl import load_workbook

    header = next(c for c in load_workbook(log)["Experiments"][1] if c.value == "Environment")
    letter = header.column_letter
    assert environment_unverified()            # git found the commit; nobody asked an engine
    assert not environment_unverified("--remote")
