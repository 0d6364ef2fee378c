"""`aisdp-log rerun` on a real git + DVC project with a tiny torch training script: bitwise
and statistical verdicts, isolation from the user's working tree, data versions, timeouts,
Ctrl-C, and the write-back through the safe writer."""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from builders import commit, git, init_repo, run_cli, write_log

pytestmark = pytest.mark.slow

DVC_ENV = dict(os.environ, DVC_NO_ANALYTICS="1")

TRAIN_PY = '''\
"""Tiny logistic regression on data/train.csv, recorded through aisdp_log.training."""
import hashlib, os, time
from pathlib import Path

import torch

from aisdp_log.training import record_run

CLOCK_SEEDED = False

raw = Path("data/train.csv").read_bytes()
rows = [[float(v) for v in line.split(",")] for line in raw.decode().splitlines()[1:]]
features = torch.tensor([r[:-1] for r in rows])
labels = torch.tensor([r[-1] for r in rows])
with record_run("EXP-000", seed=0, params={"learning_rate": 0.5, "epochs": 20}) as run:
    time.sleep(float(os.environ.get("TRAIN_SLEEP", "0")))
    if CLOCK_SEEDED:
        torch.manual_seed(time.time_ns() % 2**32)
    model = torch.nn.Sequential(torch.nn.Linear(features.shape[1], 8), torch.nn.Tanh(),
                                torch.nn.Linear(8, 1))
    optimiser = torch.optim.SGD(model.parameters(), lr=float(run.params["learning_rate"]))
    for epoch in range(int(run.params["epochs"])):
        optimiser.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(
            model(features).squeeze(1), labels)
        loss.backward()
        optimiser.step()
    accuracy = ((model(features).squeeze(1) > 0).float() == labels).float().mean().item()
    run.log_metrics(accuracy=accuracy, data_md5=int(hashlib.md5(raw).hexdigest()[:8], 16))
    run.save_model(model)
'''

AISDP_TOML = '''\
artefacts = "artefacts"
data = ["data/train.csv.dvc"]

[rerun]
command = [{python}, "train.py"]
runs = 3
confidence = 0.95
timeout = {timeout}
'''


def dvc(repo: Path, *args: str) -> str:
    return subprocess.run(["dvc", *args], cwd=repo, env=DVC_ENV, check=True,
                          capture_output=True, text=True).stdout


def dataset(seed: int, rows: int = 120) -> str:
    """Two informative features, one noise feature, 15 % of labels flipped."""
    rng = random.Random(seed)
    lines = ["x0,x1,x2,y"]
    for _ in range(rows):
        x = [rng.uniform(-1, 1) for _ in range(3)]
        y = int(x[0] + x[1] > 0)
        if rng.random() < 0.15:
            y = 1 - y
        lines.append(",".join(f"{v:.4f}" for v in x) + f",{y}")
    return "\n".join(lines) + "\n"


def write_config(root: Path, timeout: float = 120) -> None:
    (root / "aisdp.toml").write_text(AISDP_TOML.format(python=json.dumps(sys.executable),
                                                       timeout=timeout))


def train(root: Path, experiment_id: str, seed: int, params: dict) -> dict:
    """Train in the main working tree as a person would; return run.json + metrics + hash."""
    from aisdp_log.artefacts.hashing import artefact_hash

    env = dict(os.environ, AISDP_EXPERIMENT_ID=experiment_id, AISDP_SEED=str(seed),
               AISDP_PARAMS=json.dumps(params))
    env.pop("AISDP_ARTEFACT_DIR", None)
    subprocess.run([sys.executable, "train.py"], cwd=root, env=env, check=True,
                   capture_output=True)
    folder = root / "artefacts" / experiment_id
    record = json.loads((folder / "run.json").read_text())
    record["metrics"] = json.loads((folder / "metrics.json").read_text())
    record["hash"] = artefact_hash(folder)
    return record


def log_row(experiment_id: str, record: dict, data_version: str, **extra) -> dict:
    row = {
        "Experiment ID": experiment_id, "Date": "2026-07-02",
        "Hypothesis": "a small MLP separates the classes",
        "params.learning_rate": record["params"]["learning_rate"],
        "params.epochs": record["params"]["epochs"],
        "Data version": data_version, "Code commit": record["commit"],
        "Random seed": record["seed"], "Training duration": 0.1,
        "metrics.accuracy": record["metrics"]["accuracy"],
        "Artefact hash": record["hash"], "Environment": record["environment"]["summary"],
        "Outcome": "selected", "Notes": "meets the threshold", "Reviewer": "Ana",
        "Rerun": None, "Reproducibility": None,
    }
    row.update(extra)
    return row


class Project:
    root: Path
    remote: Path
    deterministic: str      # commit of the seeded train.py
    clock: str              # commit of the clock-seeded train.py
    data_v1: str            # md5 of data/train.csv pinned by both commits
    records: dict


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Project:
    return build_project(tmp_path_factory.mktemp("rerun"))


def build_project(base: Path) -> Project:
    """DVC data v1 pushed to a local remote, two commits, two trained runs (EXP-001 seeded,
    EXP-002 from the clock-seeded script). The benchmark builds the same project."""
    p = Project()
    p.root, p.remote = init_repo(base / "proj"), base / "remote"
    dvc(p.root, "init", "-q")
    dvc(p.root, "config", "core.analytics", "false")
    (p.root / "data").mkdir()
    (p.root / "data" / "train.csv").write_text(dataset(1))
    dvc(p.root, "add", "-q", "data/train.csv")
    dvc(p.root, "remote", "add", "-d", "store", str(p.remote))
    dvc(p.root, "push", "-q")
    write_config(p.root)
    p.deterministic = commit(p.root, {"train.py": TRAIN_PY, ".gitignore": "/artefacts/\n",
                                      "README.md": "project\n"}, message="seeded training")
    p.data_v1 = hashlib.md5((p.root / "data" / "train.csv").read_bytes()).hexdigest()
    p.records = {"EXP-001": train(p.root, "EXP-001", 42,
                                  {"learning_rate": 0.5, "epochs": 20})}
    p.clock = commit(p.root, {"train.py": TRAIN_PY.replace("CLOCK_SEEDED = False",
                                                           "CLOCK_SEEDED = True")},
                     message="clock-seeded training")
    p.records["EXP-002"] = train(p.root, "EXP-002", 7, {"learning_rate": 0.5, "epochs": 20})
    return p


def make_log(root: Path, project: Project, *, threshold: float = 0.5, rows=("EXP-001",),
             tolerance: float | None = None, **extra) -> Path:
    """The project's log; `tolerance` declares how far the recorded accuracy may lie from the
    reruns' mean (tests about other things declare a wide one, so that whether the recorded
    value falls inside a small-sample prediction interval cannot decide them on some host)."""
    log = root / "experiment-log.xlsx"
    declared = {"Metric": "accuracy", "Goal": "max", "Threshold": threshold,
                "Description": "training-set accuracy"}
    if tolerance is not None:
        declared["Tolerance"] = tolerance
    write_log(log, [log_row(i, project.records[i], project.data_v1[:8], **extra)
                    for i in rows],
              metrics=[declared],
              extra_sheets={"Ana's notes": [["note"], ["keep me"]]})
    import openpyxl
    from openpyxl.comments import Comment

    wb = openpyxl.load_workbook(log)
    wb["Experiments"]["C2"].comment = Comment("why this hypothesis", "Ana")
    wb.save(log)
    return log


@pytest.fixture
def copy(project: Project, tmp_path: Path):
    """A private copy of the project (its git repo, DVC cache and artefacts)."""
    def make(**log_options) -> tuple[Path, Path]:
        root = tmp_path / "proj"
        shutil.copytree(project.root, root, symlinks=True)
        return root, make_log(root, project, **log_options)
    return make


def sheet(log: Path, name: str) -> list[dict]:
    from aisdp_log.workbook.reader import Workbook

    with Workbook(log) as wb:
        table = wb.table(wb.find_sheet(name))
    return [{c.header: r.get(c) for c in table.columns} for r in table.rows]


def cell(log: Path, experiment_id: str, header: str):
    return next(r[header] for r in sheet(log, "Experiments")
                if r["Experiment ID"] == experiment_id)




def rerun(log: Path, **options):
    from aisdp_log.rerun.runner import rerun as run

    return run(log, **options)


# --------------------------------------------------------------------------- verdicts

def test_bitwise_pass_with_the_recorded_seed(copy):
    root, log = copy()
    report = rerun(log, ids=["EXP-001"], mode="bitwise")
    assert report.exit_code == 0, report.lines
    assert cell(log, "EXP-001", "Reproducibility") == "bitwise"
    [run] = sheet(log, "Reruns")
    assert (run["Mode"], run["Seed"], run["Bitwise match"], run["Status"]) == \
        ("bitwise", 42, "yes", "ok")
    assert run["Artefact hash"] == cell(log, "EXP-001", "Artefact hash")
    assert run["Code commit"] == cell(log, "EXP-001", "Code commit")
    [evidence] = sheet(log, "Reproducibility")
    assert (evidence["Mode"], evidence["Verdict"]) == ("bitwise", "pass")
    folder = root / "artefacts" / "EXP-001" / "reruns"
    [stamp] = folder.iterdir()
    assert sorted(p.name for p in (stamp / "1").iterdir()) == \
        ["metrics.json", "model.safetensors", "run.json", "stderr.log", "stdout.log"]


def test_clock_seeded_script_fails_bitwise_and_gets_a_statistical_verdict(copy):
    root, log = copy(rows=("EXP-002",), tolerance=0.5)
    report = rerun(log, ids=["EXP-002"], runs=3)
    assert report.exit_code == 0, report.lines
    assert cell(log, "EXP-002", "Reproducibility") == "statistical"
    runs = sheet(log, "Reruns")
    assert [(r["Mode"], r["Bitwise match"]) for r in runs] == \
        [("bitwise", "no"), ("statistical", None), ("statistical", None), ("statistical", None)]
    from aisdp_log.domain.stats import derive_seeds
    assert [r["Seed"] for r in runs[1:]] == derive_seeds(7, 3)
    evidence = sheet(log, "Reproducibility")
    assert [(e["Mode"], e["Metric"], e["Verdict"], e["Consistency"]) for e in evidence] == \
        [("bitwise", "artefact hash", "fail", None),
         ("statistical", "accuracy", "pass", "consistent")]
    stats = evidence[1]
    assert stats["Recorded"] == cell(log, "EXP-002", "metrics.accuracy")
    assert stats["Consistency bounds"].endswith("(declared tolerance ±0.5 around the reruns' "
                                                "mean)")
    assert stats["Runs"] == 3 and stats["CI low"] <= stats["Mean"] <= stats["CI high"]
    assert stats["CI low"] >= 0.5 and stats["Confidence"] == 0.95
    assert any("artefact hash" in line for line in report.lines)
    assert any(line.strip().startswith("environment:") for line in report.lines)


def _has_avx512() -> bool:
    try:
        return " avx512f" in Path("/proc/cpuinfo").read_text()
    except OSError:
        return False


def assert_kernel_difference_fails_bitwise(log: Path, experiment_id: str) -> None:
    """A bitwise rerun under other kernels fails, and says which variables differ."""
    report = rerun(log, ids=[experiment_id], mode="bitwise")
    assert report.exit_code == 1
    assert cell(log, experiment_id, "Reproducibility") == "failed"
    [environment] = [line for line in report.outcomes[0].lines
                     if line.startswith("environment:")]
    assert "MKL_ENABLE_INSTRUCTIONS" in environment and "ATEN_CPU_CAPABILITY" in environment


@pytest.mark.skipif(not _has_avx512(), reason="needs an AVX-512 CPU to force AVX2 kernels")
def test_forced_avx2_kernels_fail_bitwise_and_the_difference_is_named(copy, monkeypatch):
    # measured: AVX2 kernels on an AVX-512 CPU change the weights; the rerun must say why.
    root, log = copy()
    monkeypatch.setenv("MKL_ENABLE_INSTRUCTIONS", "AVX2")
    monkeypatch.setenv("ATEN_CPU_CAPABILITY", "default")
    assert_kernel_difference_fails_bitwise(log, "EXP-001")


#: train.py whose numbers depend on the kernels torch is told to use, on any host: it stands
#: for the rounding of other kernels, which only some CPUs show for this tiny model.
KERNEL_SENSITIVE_TRAIN_PY = TRAIN_PY.replace(
    "    model = torch.nn.Sequential(",
    "    if os.environ.get(\"ATEN_CPU_CAPABILITY\"):\n"
    "        torch.manual_seed(12345)\n"
    "    model = torch.nn.Sequential(")


def test_other_kernels_fail_bitwise_and_the_difference_is_named_on_any_host(copy, project,
                                                                           monkeypatch):
    # The test above needs an AVX-512 CPU; this one builds the other machine itself.
    assert KERNEL_SENSITIVE_TRAIN_PY != TRAIN_PY
    root, log = copy()
    commit(root, {"train.py": KERNEL_SENSITIVE_TRAIN_PY}, message="kernel-sensitive training")
    record = train(root, "EXP-003", 42, {"learning_rate": 0.5, "epochs": 20})
    write_log(log, [log_row("EXP-003", record, project.data_v1[:8])],
              metrics=[{"Metric": "accuracy", "Goal": "max", "Threshold": 0.5,
                        "Description": "training-set accuracy"}])
    monkeypatch.setenv("MKL_ENABLE_INSTRUCTIONS", "AVX2")
    monkeypatch.setenv("ATEN_CPU_CAPABILITY", "default")
    assert_kernel_difference_fails_bitwise(log, "EXP-003")


def test_a_threshold_the_interval_misses_fails(copy):
    root, log = copy(threshold=0.999, tolerance=0.5)
    report = rerun(log, ids=["EXP-001"], mode="statistical", runs=2)
    assert report.exit_code == 1
    assert cell(log, "EXP-001", "Reproducibility") == "failed"
    [evidence] = sheet(log, "Reproducibility")
    assert (evidence["Mode"], evidence["Verdict"], evidence["Threshold"]) == \
        ("statistical", "fail", 0.999)
    # A failed rerun does not erase a level that an earlier rerun passed.
    assert rerun(log, ids=["EXP-001"], mode="bitwise").exit_code == 0
    assert cell(log, "EXP-001", "Reproducibility") == "bitwise"
    assert rerun(log, ids=["EXP-001"], mode="statistical", runs=2).exit_code == 1
    assert cell(log, "EXP-001", "Reproducibility") == "bitwise"
    assert [(e["Mode"], e["Verdict"]) for e in sheet(log, "Reproducibility")] == \
        [("statistical", "fail"), ("bitwise", "pass"), ("statistical", "fail")]


# --------------------------------------------------------------------------- isolation

def test_rerun_trains_on_the_rows_data_version_and_leaves_user_changes_alone(copy, project):
    root, log = copy()
    # The working tree now holds data v2 (dvc add, uncommitted), a modified tracked file and
    # an untracked file.
    (root / "data" / "train.csv").write_text(dataset(2))
    dvc(root, "add", "-q", "data/train.csv")
    data_v2 = hashlib.md5((root / "data" / "train.csv").read_bytes()).hexdigest()
    assert data_v2 != project.data_v1
    (root / "README.md").write_text("my unsaved edit\n")
    (root / "scratch.txt").write_text("untracked\n")
    before = {name: (root / name).read_bytes() for name in
              ("README.md", "scratch.txt", "data/train.csv", "data/train.csv.dvc")}
    status = git(root, "status", "--porcelain")
    index = git(root, "diff", "--cached")
    branches = git(root, "for-each-ref")
    head = git(root, "rev-parse", "HEAD")

    report = rerun(log, ids=["EXP-001"], mode="bitwise")
    assert report.exit_code == 0, report.lines
    [stamp] = (root / "artefacts" / "EXP-001" / "reruns").iterdir()
    metrics = json.loads((stamp / "1" / "metrics.json").read_text())
    assert metrics["data_md5"] == int(project.data_v1[:8], 16)
    assert json.loads((stamp / "1" / "run.json").read_text())["commit"] == project.deterministic
    assert {name: (root / name).read_bytes() for name in before} == before
    assert git(root, "status", "--porcelain") == status     # artefacts/ is ignored
    assert git(root, "diff", "--cached") == index
    assert git(root, "for-each-ref") == branches
    assert git(root, "rev-parse", "HEAD") == head
    assert git(root, "worktree", "list").count("\n") == 0   # only the main worktree


def test_data_missing_from_the_cache_comes_from_the_remote(copy, project):
    root, log = copy()
    shutil.rmtree(root / ".dvc" / "cache")
    report = rerun(log, ids=["EXP-001"], mode="bitwise")
    assert report.exit_code == 0, report.lines
    assert cell(log, "EXP-001", "Reproducibility") == "bitwise"


def test_data_in_neither_cache_nor_remote_fails_the_run_with_a_reason(copy, tmp_path):
    root, log = copy()
    shutil.rmtree(root / ".dvc" / "cache")
    dvc(root, "remote", "modify", "store", "url", str(tmp_path / "empty-remote"))
    report = rerun(log, ids=["EXP-001"], mode="bitwise")
    assert report.exit_code == 1
    [run] = sheet(log, "Reruns")
    assert run["Status"].startswith("failed: the data is in neither")
    assert cell(log, "EXP-001", "Reproducibility") == "failed"


def test_a_data_version_its_commit_does_not_pin_is_refused(copy):
    root, log = copy(**{"Data version": "0123abcd"})
    before = log.read_bytes()
    report = rerun(log, ids=["EXP-001"])
    assert report.exit_code == 1
    assert report.outcomes[0].error is not None and "D00" in report.outcomes[0].error
    assert log.read_bytes() == before and not (root / "artefacts" / "EXP-001" / "reruns").exists()


def test_a_run_that_times_out_is_recorded_as_failed(copy):
    root, log = copy()
    write_config(root, timeout=0.3)
    report = rerun(log, ids=["EXP-001"], mode="bitwise")
    assert report.exit_code == 1
    [run] = sheet(log, "Reruns")
    assert run["Status"].startswith("failed: timed out")
    assert run["Bitwise match"] == "no"
    assert cell(log, "EXP-001", "Reproducibility") == "failed"
    assert git(root, "worktree", "list").count("\n") == 0


#: A training script with a worker process (a data loader's, say): both pids go to TREE_PIDS.
SPAWNING_TRAIN_PY = """\
import os, subprocess, sys, time
from pathlib import Path
worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
Path(os.environ["TREE_PIDS"]).write_text(f"{os.getpid()} {worker.pid}\\n")
time.sleep(300)
"""


def spawning_log(root: Path, project: Project) -> Path:
    spawning = commit(root, {"train.py": SPAWNING_TRAIN_PY}, message="training with a worker")
    log = root / "spawning.xlsx"
    write_log(log, [log_row("EXP-001", dict(project.records["EXP-001"], commit=spawning),
                            project.data_v1)],
              metrics=[{"Metric": "accuracy", "Goal": "max", "Threshold": 0.5}])
    return log


def tree_pids(path: Path, process: subprocess.Popen | None = None) -> list[int]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if path.is_file() and path.read_text().endswith("\n"):
            return [int(pid) for pid in path.read_text().split()]
        assert process is None or process.poll() is None, process.communicate()
        time.sleep(0.05)
    pytest.fail("the training never started its worker")


def assert_no_orphans(pids: list[int]) -> None:
    from aisdp_log.system.platform import pid_alive

    deadline = time.monotonic() + 10
    while any(pid_alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    alive = [pid for pid in pids if pid_alive(pid)]
    for pid in alive:  # only what this test's rerun started, by its id
        psutil.Process(pid).kill()
    assert not alive, "processes of the run outlived it"


def test_a_timeout_kills_the_runs_whole_process_tree(copy, project, tmp_path, monkeypatch):
    root, _ = copy()
    log = spawning_log(root, project)
    write_config(root, timeout=3)
    monkeypatch.setenv("TREE_PIDS", str(tmp_path / "tree.pids"))
    report = rerun(log, ids=["EXP-001"], mode="bitwise")
    assert report.exit_code == 1
    [run] = sheet(log, "Reruns")
    assert run["Status"] == "failed: timed out after 3 s"
    assert_no_orphans(tree_pids(tmp_path / "tree.pids"))
    assert git(root, "worktree", "list").count("\n") == 0


@pytest.mark.skipif(os.name == "nt", reason="sends SIGINT; Windows delivers Ctrl-C to a "
                    "console, not to one process")
def test_ctrl_c_kills_the_runs_whole_process_tree(copy, project, tmp_path):
    root, _ = copy()
    log = spawning_log(root, project)
    before = log.read_bytes()
    pids_file = tmp_path / "tree.pids"
    process = subprocess.Popen([sys.executable, "-m", "aisdp_log", "rerun", str(log), "--id",
                                "EXP-001", "--mode", "bitwise"], cwd=root,
                               env=dict(os.environ, TREE_PIDS=str(pids_file)),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    pids = tree_pids(pids_file, process)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    assert_no_orphans(pids)
    assert log.read_bytes() == before
    assert git(root, "worktree", "list").count("\n") == 0


def test_a_run_that_crashes_is_counted_as_failed(copy, project):
    root, _ = copy()
    crashing = commit(root, {"train.py": "raise SystemExit('out of memory')\n"},
                      message="broken training")
    log = root / "crash.xlsx"
    write_log(log, [log_row("EXP-001", dict(project.records["EXP-001"], commit=crashing),
                            project.data_v1)],
              metrics=[{"Metric": "accuracy", "Goal": "max", "Threshold": 0.5}])
    report = rerun(log, ids=["EXP-001"], runs=2)      # auto: bitwise, then 2 statistical
    assert report.exit_code == 1
    assert [r["Status"] for r in sheet(log, "Reruns")] == ["failed: exit code 1"] * 3
    assert [(e["Mode"], e["Runs"], e["Verdict"], e["Consistency"])
            for e in sheet(log, "Reproducibility")] == \
        [("bitwise", 0, "fail", None), ("statistical", 0, "fail", "too few runs")]
    assert cell(log, "EXP-001", "Reproducibility") == "failed"
    [stamp] = (root / "artefacts" / "EXP-001" / "reruns").iterdir()
    assert "out of memory" in (stamp / "1" / "stderr.log").read_text()


def test_a_run_that_saves_no_model_records_no_artefact_hash(copy, project):
    # The run's stdout.log/stderr.log land in its folder: they must never be hashed as a model.
    root, _ = copy()
    quiet = commit(root, {"train.py": "print('trained, saved nothing')\n"},
                   message="training that saves no model")
    log = root / "nomodel.xlsx"
    write_log(log, [log_row("EXP-001", dict(project.records["EXP-001"], commit=quiet),
                            project.data_v1)],
              metrics=[{"Metric": "accuracy", "Goal": "max", "Threshold": 0.5}])
    report = rerun(log, ids=["EXP-001"], mode="bitwise")
    assert report.exit_code == 1
    [run] = sheet(log, "Reruns")
    assert (run["Status"], run["Artefact hash"], run["Bitwise match"]) == ("ok", None, "no")
    assert cell(log, "EXP-001", "Reproducibility") == "failed"


def test_ctrl_c_leaves_no_worktree_and_the_workbook_unchanged(copy):
    root, log = copy()
    before = log.read_bytes()
    env = dict(os.environ, TRAIN_SLEEP="60")
    process = subprocess.Popen([sys.executable, "-m", "aisdp_log", "rerun", str(log), "--id",
                                "EXP-001", "--mode", "bitwise"], cwd=root, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    reruns = root / "artefacts" / "EXP-001" / "reruns"
    while time.monotonic() < deadline:   # wait until the training script is inside its run
        if any(reruns.glob("*/1/run.json")):
            break
        assert process.poll() is None, process.communicate()
        time.sleep(0.1)
    else:
        pytest.fail("the training never started")
    assert git(root, "worktree", "list").count("\n") == 1
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=30)
    assert process.returncode == 130, err
    assert git(root, "worktree", "list").count("\n") == 0
    assert log.read_bytes() == before
    assert not any(reruns.iterdir()) if reruns.exists() else True


# --------------------------------------------------------------------------- the workbook

def test_both_writes_keep_the_users_sheet_column_and_comment_and_the_log_validates(copy):
    import openpyxl

    from aisdp_log.lint.runner import validate

    root, log = copy(tolerance=0.5)
    before = [f.code for f in validate(log, offline=True).findings]
    assert "R005" in before
    assert rerun(log, ids=["EXP-001"], mode="bitwise").exit_code == 0
    assert rerun(log, ids=["EXP-001"], mode="statistical", runs=3).exit_code == 0
    assert cell(log, "EXP-001", "Reproducibility") == "statistical"
    assert [r["Mode"] for r in sheet(log, "Reruns")] == ["bitwise"] + ["statistical"] * 3
    assert [(r["Mode"], r["Verdict"]) for r in sheet(log, "Reproducibility")] == \
        [("bitwise", "pass"), ("statistical", "pass")]
    assert len({r["Rerun ID"] for r in sheet(log, "Reruns")}) == 4
    wb = openpyxl.load_workbook(log)
    assert wb["Ana's notes"]["A2"].value == "keep me"
    assert wb["Experiments"]["C2"].comment.text == "why this hypothesis"
    assert cell(log, "EXP-001", "Reviewer") == "Ana"
    offline = validate(log, offline=True)
    assert offline.exit_code(False) == 0 and "R005" not in [f.code for f in offline.findings]
    online = validate(log, repo=root)
    assert [f for f in online.findings if f.severity == "error"] == []


def test_flagged_rows_and_cli_exit_codes(copy):
    root, log = copy(Rerun="yes")
    dry = run_cli("rerun", str(log), "--flagged", "--dry-run", "--runs", "2", cwd=root)
    assert dry.returncode == 0, dry.stderr
    assert "EXP-001" in dry.stdout and "AISDP_PARAMS=" in dry.stdout
    assert not (root / "artefacts" / "EXP-001" / "reruns").exists()
    assert run_cli("rerun", str(log), cwd=root).returncode == 2            # no --id/--flagged
    assert run_cli("rerun", str(log), "--id", "NOPE", cwd=root).returncode == 2
    assert run_cli("rerun", str(root / "missing.xlsx"), "--id", "EXP-001",
                   cwd=root).returncode == 2
    done = run_cli("rerun", str(log), "--flagged", "--mode", "bitwise", cwd=root)
    assert done.returncode == 0, done.stdout + done.stderr
    assert cell(log, "EXP-001", "Reproducibility") == "bitwise"


def test_parallel_jobs_give_each_run_its_own_worktree(copy):
    root, log = copy(threshold=0.5, tolerance=0.5)
    report = rerun(log, ids=["EXP-001"], mode="statistical", runs=2, jobs=2)
    assert report.exit_code == 0, report.lines
    runs = sheet(log, "Reruns")
    assert sorted(r["Rerun ID"].rsplit("/", 1)[1] for r in runs) == ["1", "2"]
    assert all(r["Status"] == "ok" for r in runs)
    assert git(root, "worktree", "list").count("\n") == 0


def test_an_id_that_would_leave_the_artefact_folder_is_not_run(copy, project):
    root, log = copy()
    bad = root / "bad.xlsx"
    write_log(bad, [log_row("../escape", project.records["EXP-001"], project.data_v1)])
    report = rerun(bad, ids=["../escape"])
    assert report.exit_code == 1 and report.outcomes[0].error is not None
    assert not (root / "escape").exists()


# --------------------------------------------------------------------------- R005

EVIDENCE_HEADERS = ["Experiment ID", "Date", "Mode", "Metric", "Runs", "Mean", "Std", "CI low",
                    "CI high", "Confidence", "Threshold", "Verdict"]


@pytest.mark.parametrize("level, sheet_rows, finding", [
    ("bitwise", None, False),                                          # no sheet: the cell
    ("bitwise", [["EXP-001", "2026-07-03", "bitwise", "artefact hash", 1] + [None] * 6
                 + ["pass"]], False),
    ("statistical", [["EXP-001", "2026-07-03", "statistical", "accuracy", 5, 0.9, 0.01, 0.88,
                      0.92, 0.95, 0.85, "pass"]], False),
    ("statistical", [["EXP-001", "2026-07-03", "statistical", "accuracy", 5, 0.9, 0.01, 0.84,
                      0.96, 0.95, 0.85, "fail"]], True),              # only a failing row
    ("statistical", [["EXP-001", "2026-07-03", "bitwise", "artefact hash", 1] + [None] * 6
                     + ["pass"]], True),                              # another mode passed
    ("bitwise", [["EXP-009", "2026-07-03", "bitwise", "artefact hash", 1] + [None] * 6
                 + ["pass"]], True),                                  # another experiment
    ("bitwise", [], True),                                            # an empty sheet
    ("statistical", [["EXP-001", "2026-07-03", "statistical", "accuracy", 5, 0.9, 0.01, 0.88,
                      0.92, 0.95, 0.85, "pass"],
                     ["EXP-001", "2026-07-03", "statistical", "loss", 5, 0.3, 0.01, 0.28,
                      0.32, 0.95, 0.25, "fail"]], True),              # one metric of a rerun
    ("statistical", [["EXP-001", "2026-07-03", "statistical", "loss", 5, 0.3, 0.01, 0.28,
                      0.32, 0.95, 0.25, "fail"],
                     ["EXP-001", "2026-07-09", "statistical", "loss", 9, 0.2, 0.01, 0.19,
                      0.21, 0.95, 0.25, "pass"]], False),             # a later rerun passed
])
def test_r005_wants_a_passing_row_in_the_reproducibility_sheet(tmp_path, level, sheet_rows,
                                                               finding):
    from builders import row as base_row

    from aisdp_log.lint.runner import validate

    extra = {} if sheet_rows is None else {"Reproducibility": [EVIDENCE_HEADERS, *sheet_rows]}
    log = write_log(tmp_path / "log.xlsx",
                    [base_row(outcome="selected", notes="best", reproducibility=level)],
                    extra_sheets=extra)
    found = {(f.code, f.cell) for f in validate(log, offline=True).findings
             if f.code == "R005"}
    assert found == ({("R005", "L2")} if finding else set())
