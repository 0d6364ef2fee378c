"""`aisdp-log export mlflow`: a real git + DVC project, a real workbook, a real MLflow store
(SQLite in tmp_path, and one `mlflow server` on 127.0.0.1), read back through MlflowClient.

The project: two clean rows (EXP-001 with Other params, a history and rerun evidence; EXP-002)
and EXP-003 whose artefact hash is wrong (A002, an error), so it is skipped unless --force.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
import warnings
from pathlib import Path

import pytest
from builders import commit, init_repo, write_log

from aisdp_log.cli.main import main

DVC_ENV = dict(os.environ, DVC_NO_ANALYTICS="1")
HEADERS = ["Experiment ID", "Date", "Hypothesis", "params.learning_rate", "params.optimizer",
           "Other params", "Data version", "Code commit", "Random seed", "Training duration",
           "metrics.accuracy", "metrics.f1", "Artefact hash", "Environment", "Outcome", "Notes",
           "Reproducibility"]
METRICS = [{"Metric": "accuracy", "Goal": "max", "Threshold": 0.85, "Description": "holdout"},
           {"Metric": "f1", "Goal": "max", "Threshold": None, "Description": "holdout F1"}]
#: id, learning rate, optimizer, accuracy, f1, outcome, notes
RUNS = [("EXP-001", 0.01, "adam", 0.912, 0.88, "selected", "beats EXP-002 by 3 points"),
        ("EXP-002", 0.1, "sgd", 0.88, 0.84, "baseline", "the reference"),
        ("EXP-003", 0.05, "sgd", 0.86, 0.83, "rejected", "worse than the baseline")]
RERUNS = [["Rerun ID", "Experiment ID", "Started", "Mode", "Seed", "metrics.accuracy",
           "Bitwise match"],
          ["EXP-001-r1", "EXP-001", "2026-07-20T10:00:00", "bitwise", 41, 0.912, "yes"]]
REPRODUCIBILITY = [["Experiment ID", "Date", "Mode", "Metric", "Runs", "Mean", "Std", "CI low",
                    "CI high", "Confidence", "Threshold", "Verdict"],
                   ["EXP-001", "2026-07-20", "bitwise", "accuracy", 1, 0.912, 0, 0.912, 0.912,
                    0.95, 0.85, "pass"]]

pytestmark = pytest.mark.slow  # importing mlflow alone takes seconds here


def dvc(repo: Path, *args: str) -> None:
    subprocess.run(["dvc", *args], cwd=repo, env=DVC_ENV, check=True, capture_output=True)


@pytest.fixture(scope="module")
def base_project(tmp_path_factory) -> Path:
    """The project, built once: git, DVC-tracked data, three artefact folders, the log."""
    pytest.importorskip("dvc")
    from aisdp_log.artefacts.hashing import artefact_hash

    repo = init_repo(tmp_path_factory.mktemp("export") / "project")
    dvc(repo, "init", "-q")
    (repo / "data").mkdir()
    (repo / "data" / "train.csv").write_text("x,y\n1,0\n2,1\n")
    dvc(repo, "add", "-q", "data/train.csv")
    sha = commit(repo, {"train.py": "print('train')\n"}, message="data and script",
                 date="2026-07-01T09:00:00+00:00")
    import yaml

    md5 = yaml.safe_load((repo / "data" / "train.csv.dvc").read_text())["outs"][0]["md5"]
    rows = []
    for index, (experiment_id, lr, optimizer, accuracy, f1, outcome, notes) in enumerate(RUNS):
        folder = repo / "artefacts" / experiment_id
        folder.mkdir(parents=True)
        (folder / "model.bin").write_bytes(f"weights of {experiment_id}".encode())
        if experiment_id != "EXP-002":  # optional; without it a metric may be re-measured
            (folder / "metrics.json").write_text(json.dumps({"accuracy": accuracy, "f1": f1}))
        (folder / "history.csv").write_text("epoch,loss,accuracy\n" + "".join(
            f"{e},{1 / e:.4f},{accuracy - 0.01 * (3 - e):.4f}\n" for e in (1, 2, 3)))
        recorded = artefact_hash(folder) if experiment_id != "EXP-003" else "sha256:" + "0" * 64
        rows.append({
            "Experiment ID": experiment_id, "Date": dt.date(2026, 7, 14 + index),
            "Hypothesis": f"{optimizer} at {lr}", "params.learning_rate": lr,
            "params.optimizer": optimizer,
            "Other params": "dropout=0.1; warmup=100" if index == 0 else None,
            "Data version": md5[:8], "Code commit": sha[:7], "Random seed": 41 + index,
            "Training duration": 12.5, "metrics.accuracy": accuracy, "metrics.f1": f1,
            "Artefact hash": recorded, "Environment": "torch 2.13.0+cpu", "Outcome": outcome,
            "Notes": notes, "Reproducibility": "bitwise" if index == 0 else None})
    write_log(repo / "experiment-log.xlsx", rows, headers=HEADERS, metrics=METRICS,
              extra_sheets={"Reruns": RERUNS, "Reproducibility": REPRODUCIBILITY})
    commit(repo, message="log", date="2026-07-20T09:00:00+00:00")
    (repo / ".commit").write_text(sha)
    (repo / ".md5").write_text(md5)
    return repo


@pytest.fixture(scope="module")
def empty_store(tmp_path_factory) -> Path:
    """An empty MLflow SQLite store, created once (creating one costs seconds)."""
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    db = tmp_path_factory.mktemp("store") / "mlruns.db"
    with warnings.catch_warnings():  # SQLAlchemy deprecations inside MLflow, not ours
        warnings.simplefilter("ignore")
        MlflowClient(tracking_uri=f"sqlite:///{db}").search_experiments()
    return db


@pytest.fixture
def project(base_project: Path, tmp_path: Path) -> Path:
    """A private copy of the project (the export writes mlruns.db next to the log)."""
    target = tmp_path / "project"
    shutil.copytree(base_project, target, symlinks=True)
    return target


@pytest.fixture
def stored_project(project: Path, empty_store: Path) -> Path:
    """The project with an empty store already next to its log."""
    shutil.copyfile(empty_store, project / "mlruns.db")
    return project


def export(project: Path, *args: str, log: Path | None = None) -> tuple[int, list[str]]:
    """Run the CLI; (exit code, output lines)."""
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as exit_info:
        main(["export", "mlflow", str(log or project / "experiment-log.xlsx"), *args])
    return exit_info.value.code, out.getvalue().splitlines()


def actions(lines: list[str]) -> dict[str, str]:
    """`EXP-001: create (run ...)` -> {"EXP-001": "create"}."""
    result = {}
    for line in lines:
        head, sep, rest = line.partition(": ")
        if sep and head.startswith("EXP-"):
            result[head] = rest.split(" ")[0].split(":")[0] if not rest.startswith("would") \
                else "would " + rest.split(" ")[1].split(":")[0]
    return result


def client_for(uri: str):
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=uri)


def runs(uri: str, experiment: str = "project/experiment-log") -> dict[str, object]:
    """Active runs by their aisdp.experiment_id tag (asserting one run per ID)."""
    client = client_for(uri)
    found = client.get_experiment_by_name(experiment)
    if found is None:
        return {}
    result = {}
    for run in client.search_runs([found.experiment_id]):
        experiment_id = run.data.tags["aisdp.experiment_id"]
        assert experiment_id not in result, f"{experiment_id} exported twice"
        result[experiment_id] = run
    return result


def artefact_paths(client, run_id: str, path: str | None = None) -> set[str]:
    paths = set()
    for info in client.list_artifacts(run_id, path):
        paths |= artefact_paths(client, run_id, info.path) if info.is_dir else {info.path}
    return paths


def snapshot(uri: str) -> dict:
    """Everything an export could change, per run."""
    client = client_for(uri)
    state = {}
    for experiment_id, run in runs(uri).items():
        state[experiment_id] = {
            "run_id": run.info.run_id, "start": run.info.start_time, "end": run.info.end_time,
            "status": run.info.status, "params": run.data.params, "tags": run.data.tags,
            "metrics": run.data.metrics,
            "history": {k: len(client.get_metric_history(run.info.run_id, k))
                        for k in run.data.metrics},
            "datasets": sorted((d.dataset.name, d.dataset.digest)
                               for d in run.inputs.dataset_inputs),
            "artefacts": artefact_paths(client, run.info.run_id)}
    return state


def sqlite_uri(project: Path) -> str:
    return f"sqlite:///{project / 'mlruns.db'}"


def edit_cells(log: Path, experiment_id: str, changes: dict[str, object]) -> None:
    """Change cells of one row with openpyxl, as a person editing in Excel would."""
    import openpyxl

    workbook = openpyxl.load_workbook(log)
    sheet = workbook["Experiments"]
    headers = {cell.value: cell.column for cell in sheet[1]}
    for row in sheet.iter_rows(min_row=2):
        if row[0].value == experiment_id:
            for header, value in changes.items():
                sheet.cell(row=row[0].row, column=headers[header]).value = value
    workbook.save(log)


# --------------------------------------------------------------------------- the tests

def test_every_param_metric_tag_dataset_and_artefact_reaches_mlflow(stored_project):
    project = stored_project
    code, lines = export(project)
    assert code == 1  # EXP-003 has an error and was skipped
    assert actions(lines) == {"EXP-001": "create", "EXP-002": "create", "EXP-003": "skip"}
    assert any("A002" in line for line in lines if line.startswith("EXP-003"))
    exported = runs(sqlite_uri(project))
    assert set(exported) == {"EXP-001", "EXP-002"}
    client = client_for(sqlite_uri(project))
    commit_sha = (project / ".commit").read_text()
    md5 = (project / ".md5").read_text()

    run = exported["EXP-001"]
    assert run.info.run_name == "EXP-001" and run.info.status == "FINISHED"
    start = int(dt.datetime(2026, 7, 14, tzinfo=dt.timezone.utc).timestamp() * 1000)
    assert (run.info.start_time, run.info.end_time) == (start, start + 12.5 * 60_000)
    assert run.data.params == {"learning_rate": "0.01", "optimizer": "adam", "dropout": "0.1",
                               "warmup": "100"}
    assert run.data.metrics == {"accuracy": 0.912, "f1": 0.88,
                                "loss": pytest.approx(1 / 3, abs=1e-4)}
    history = client.get_metric_history(run.info.run_id, "accuracy")
    assert sorted((m.step, m.value) for m in history) == [(1, 0.892), (2, 0.902), (3, 0.912)]
    assert sorted(m.step for m in client.get_metric_history(run.info.run_id, "loss")) == [1, 2, 3]
    tags = run.data.tags
    assert tags["mlflow.source.git.commit"] == commit_sha
    assert {k: tags[k] for k in ("aisdp.experiment_id", "aisdp.hypothesis", "aisdp.outcome",
                                 "aisdp.notes", "aisdp.seed", "aisdp.environment",
                                 "aisdp.data_version", "aisdp.reproducibility")} == {
        "aisdp.experiment_id": "EXP-001", "aisdp.hypothesis": "adam at 0.01",
        "aisdp.outcome": "selected", "aisdp.notes": "beats EXP-002 by 3 points",
        "aisdp.seed": "41", "aisdp.environment": "torch 2.13.0+cpu",
        "aisdp.data_version": md5[:8], "aisdp.reproducibility": "bitwise"}
    from aisdp_log.artefacts.hashing import artefact_hash

    assert tags["aisdp.artefact_hash"] == artefact_hash(project / "artefacts" / "EXP-001")
    assert tags["aisdp.reruns"] == "1"
    assert tags["aisdp.reproducibility_verdicts"] == "bitwise accuracy: pass"
    [data] = run.inputs.dataset_inputs
    assert (data.dataset.name, data.dataset.digest, data.dataset.source_type) == \
        ("data/train.csv", md5, "dvc")
    assert json.loads(data.dataset.source)["dvc_file"] == "data/train.csv.dvc"
    assert [(t.key, t.value) for t in data.tags] == [("mlflow.data.context", "training")]
    assert artefact_paths(client, run.info.run_id) == {
        "model.bin", "metrics.json", "history.csv", "aisdp/reproducibility.json",
        "aisdp/artefacts.sha256"}
    (project / "download").mkdir()
    import hashlib

    manifest = Path(client.download_artifacts(run.info.run_id, "aisdp/artefacts.sha256",
                                              str(project / "download"))).read_text()
    folder = project / "artefacts" / "EXP-001"
    assert manifest == "".join(
        f"{hashlib.sha256((folder / name).read_bytes()).hexdigest()}  {name}\n"
        for name in ("history.csv", "metrics.json", "model.bin"))
    evidence = json.loads(Path(client.download_artifacts(
        run.info.run_id, "aisdp/reproducibility.json", str(project / "download"))).read_text())
    assert [r["Rerun ID"] for r in evidence["reruns"]] == ["EXP-001-r1"]
    assert [r["Verdict"] for r in evidence["reproducibility"]] == ["pass"]
    downloaded = Path(client.download_artifacts(run.info.run_id, "model.bin",
                                                str(project / "download")))
    assert downloaded.read_bytes() == b"weights of EXP-001"
    # artefacts live next to the log, in the store's own folder
    assert run.info.artifact_uri.startswith((project / "mlartefacts").as_uri())
    assert "aisdp.reruns" not in exported["EXP-002"].data.tags
    assert "aisdp/reproducibility.json" not in \
        artefact_paths(client, exported["EXP-002"].info.run_id)


def test_a_second_export_changes_nothing(stored_project):
    export(stored_project)
    before = snapshot(sqlite_uri(stored_project))
    code, lines = export(stored_project)
    assert code == 1
    assert actions(lines) == {"EXP-001": "unchanged", "EXP-002": "unchanged", "EXP-003": "skip"}
    assert snapshot(sqlite_uri(stored_project)) == before


def test_an_edited_metric_and_notes_update_the_same_run(stored_project):
    log = stored_project / "experiment-log.xlsx"
    export(stored_project)
    before = snapshot(sqlite_uri(stored_project))
    edit_cells(log, "EXP-002", {"metrics.accuracy": 0.885, "Notes": "re-measured on holdout"})
    code, lines = export(stored_project)
    assert actions(lines)["EXP-002"] == "update" and actions(lines)["EXP-001"] == "unchanged"
    after = snapshot(sqlite_uri(stored_project))
    assert after["EXP-002"]["run_id"] == before["EXP-002"]["run_id"]
    assert after["EXP-002"]["metrics"]["accuracy"] == 0.885
    assert after["EXP-002"]["tags"]["aisdp.notes"] == "re-measured on holdout"
    assert "re-measured on holdout" in after["EXP-002"]["tags"]["mlflow.note.content"]
    # the edit is appended, so MLflow's history keeps the value that was there before
    assert after["EXP-002"]["history"]["accuracy"] == before["EXP-002"]["history"]["accuracy"] + 1
    assert after["EXP-001"] == before["EXP-001"]
    assert actions(export(stored_project)[1])["EXP-002"] == "unchanged"


def test_an_edited_param_replaces_the_run_and_keeps_the_old_one_restorable(stored_project):
    export(stored_project)
    old = runs(sqlite_uri(stored_project))["EXP-002"].info.run_id
    edit_cells(stored_project / "experiment-log.xlsx", "EXP-002", {"params.learning_rate": 0.2})
    code, lines = export(stored_project)
    assert actions(lines)["EXP-002"] == "replace"
    new = runs(sqlite_uri(stored_project))["EXP-002"]
    assert new.info.run_id != old and new.data.params["learning_rate"] == "0.2"
    deleted = client_for(sqlite_uri(stored_project)).get_run(old)
    assert deleted.info.lifecycle_stage == "deleted"
    assert deleted.data.tags["aisdp.replaced_by"] == new.info.run_id


def test_a_rerun_adds_files_and_evidence_to_the_run_and_a_new_model_replaces_it(stored_project):
    import openpyxl

    from aisdp_log.artefacts.hashing import artefact_hash

    project, log = stored_project, stored_project / "experiment-log.xlsx"
    export(project)
    old = runs(sqlite_uri(project))["EXP-002"].info.run_id
    rerun_folder = project / "artefacts" / "EXP-002" / "reruns" / "20260721T100000"
    rerun_folder.mkdir(parents=True)
    (rerun_folder / "model.bin").write_bytes(b"weights of EXP-002")
    workbook = openpyxl.load_workbook(log)
    workbook["Reruns"].append(["EXP-002-r1", "EXP-002", "2026-07-21T10:00:00", "bitwise", 42,
                               0.88, "yes"])
    workbook.save(log)
    edit_cells(log, "EXP-002", {"Reproducibility": "bitwise"})
    code, lines = export(project)
    assert actions(lines)["EXP-002"] == "update" and actions(lines)["EXP-001"] == "unchanged"
    run = runs(sqlite_uri(project))["EXP-002"]
    assert run.info.run_id == old
    assert run.data.tags["aisdp.reproducibility"] == "bitwise"
    assert run.data.tags["aisdp.reruns"] == "1"
    client = client_for(sqlite_uri(project))
    assert {"reruns/20260721T100000/model.bin", "aisdp/reproducibility.json", "model.bin"} <= \
        artefact_paths(client, old)

    (project / "artefacts" / "EXP-002" / "model.bin").write_bytes(b"retrained")
    edit_cells(log, "EXP-002", {"Artefact hash": artefact_hash(project / "artefacts" / "EXP-002")})
    code, lines = export(project)
    assert actions(lines)["EXP-002"] == "replace"
    new = runs(sqlite_uri(project))["EXP-002"].info.run_id
    assert new != old
    (project / "download").mkdir()
    model = client.download_artifacts(new, "model.bin", str(project / "download"))
    assert Path(model).read_bytes() == b"retrained"


def test_an_error_row_is_skipped_and_listed_and_exported_with_force(stored_project):
    code, lines = export(stored_project)
    assert code == 1 and actions(lines)["EXP-003"] == "skip"
    assert "EXP-003" not in runs(sqlite_uri(stored_project))
    code, lines = export(stored_project, "--force")
    assert code == 0
    assert actions(lines) == {"EXP-001": "unchanged", "EXP-002": "unchanged", "EXP-003": "create"}
    assert runs(sqlite_uri(stored_project))["EXP-003"].data.tags["aisdp.artefact_hash"] == \
        "sha256:" + "0" * 64


def test_a_param_name_mlflow_refuses_skips_its_row_before_anything_is_written(stored_project):
    import openpyxl

    log = stored_project / "experiment-log.xlsx"
    workbook = openpyxl.load_workbook(log)
    sheet = workbook["Experiments"]
    column = sheet.max_column + 1
    sheet.cell(row=1, column=column).value = "params.rate!"
    sheet.cell(row=2, column=column).value = 3
    workbook.save(log)
    code, lines = export(stored_project)
    assert code == 1
    assert actions(lines) == {"EXP-001": "skip", "EXP-002": "create", "EXP-003": "skip"}
    assert set(runs(sqlite_uri(stored_project))) == {"EXP-002"}


def test_dry_run_writes_nothing(project, empty_store):
    code, lines = export(project, "--dry-run")
    assert code == 1
    assert actions(lines) == {"EXP-001": "would create", "EXP-002": "would create",
                              "EXP-003": "skip"}
    assert not (project / "mlruns.db").exists() and not (project / "mlartefacts").exists()

    shutil.copyfile(empty_store, project / "mlruns.db")
    export(project)
    edit_cells(project / "experiment-log.xlsx", "EXP-001", {"Outcome": "rejected"})
    before = snapshot(sqlite_uri(project))
    files_before = sorted(p.relative_to(project) for p in (project / "mlartefacts").rglob("*"))
    database = (project / "mlruns.db").read_bytes()
    code, lines = export(project, "--dry-run")
    assert actions(lines) == {"EXP-001": "would update", "EXP-002": "unchanged",
                              "EXP-003": "skip"}
    assert (project / "mlruns.db").read_bytes() == database
    assert snapshot(sqlite_uri(project)) == before
    assert sorted(p.relative_to(project) for p in (project / "mlartefacts").rglob("*")) == \
        files_before


def test_demo_project_exports_one_run_per_row(demo_project):
    """Done means: the demo's log exports, and mlflow.search_runs shows each row's commit,
    data version, metrics and artefacts."""
    mlflow = pytest.importorskip("mlflow")

    from aisdp_log.workbook.reader import load_log

    log_path = demo_project / "experiment-log.xlsx"
    code, lines = export(demo_project, log=log_path)
    assert code == 0, lines
    log = load_log(log_path)
    rows = {log.experiment_id(r): r for r in log.rows}
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(f"sqlite:///{demo_project / 'mlruns.db'}")
    try:
        frame = mlflow.search_runs(experiment_names=["demo/experiment-log"])
    finally:
        mlflow.set_tracking_uri(previous)
    assert sorted(frame["tags.aisdp.experiment_id"]) == sorted(rows)
    client = client_for(f"sqlite:///{demo_project / 'mlruns.db'}")
    for _, found in frame.iterrows():
        row = rows[found["tags.aisdp.experiment_id"]]
        record = json.loads((demo_project / "artefacts" / found["tags.aisdp.experiment_id"] /
                             "run.json").read_text())
        assert found["tags.mlflow.source.git.commit"] == record["commit"]
        assert found["tags.aisdp.data_version"] == log.typed(row, "data_version")
        for name in log.metrics:
            assert found[f"metrics.{name}"] == log.typed(row, f"metrics.{name}")
        run = client.get_run(found["run_id"])
        assert [d.dataset.digest for d in run.inputs.dataset_inputs] == \
            [d["md5"] for d in record["data"]]
        assert "model.safetensors" in artefact_paths(client, found["run_id"])
    log.workbook.close()


def test_without_mlflow_the_command_says_how_to_install_it(tmp_path):
    code = ("import sys; sys.modules['mlflow'] = None\n"
            "from aisdp_log.cli import main\n"
            f"main(['export', 'mlflow', {str(tmp_path / 'log.xlsx')!r}])\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 2
    assert result.stdout == ""
    assert len(result.stderr.splitlines()) == 1
    assert "pip install 'aisdp-log[mlflow]'" in result.stderr


def test_an_unreachable_server_is_one_line_and_exit_2(project, monkeypatch, capsys):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # the user's setting wins
    with pytest.raises(SystemExit) as exit_info:
        main(["export", "mlflow", str(project / "experiment-log.xlsx"),
              "--tracking-uri", f"http://127.0.0.1:{free_port()}"])
    assert exit_info.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == "" and len(captured.err.splitlines()) == 1


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def mlflow_server(tmp_path: Path):
    """`mlflow server` on 127.0.0.1 with its own SQLite store and proxied artefacts; stopped
    (its whole process group) after the test."""
    pytest.importorskip("mlflow")  # the server must be the mlflow this interpreter imports
    port = free_port()
    folder = tmp_path / "server"
    folder.mkdir()
    log = open(folder / "server.log", "wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
         "--workers", "1",
         "--backend-store-uri", f"sqlite:///{folder / 'server.db'}",
         "--artifacts-destination", str(folder / "artefacts")],
        cwd=folder, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180  # a cold start on two busy cores takes a while
        while True:
            if process.poll() is not None:
                pytest.fail("mlflow server exited: " +
                            (folder / "server.log").read_text(errors="replace")[-2000:])
            try:
                with urllib.request.urlopen(url + "/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("mlflow server not ready within 180 s")
            time.sleep(0.5)
        yield url
    finally:
        import signal

        try:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=30)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log.close()


def test_the_same_export_talks_to_an_mlflow_server(project, mlflow_server):
    code, lines = export(project, "--tracking-uri", mlflow_server, "--experiment", "team")
    assert code == 1
    assert actions(lines) == {"EXP-001": "create", "EXP-002": "create", "EXP-003": "skip"}
    assert not (project / "mlruns.db").exists()
    exported = runs(mlflow_server, "team")
    assert set(exported) == {"EXP-001", "EXP-002"}
    client = client_for(mlflow_server)
    run = exported["EXP-001"]
    assert run.data.tags["mlflow.source.git.commit"] == (project / ".commit").read_text()
    assert [d.dataset.digest for d in run.inputs.dataset_inputs] == \
        [(project / ".md5").read_text()]
    assert run.data.metrics["accuracy"] == 0.912
    assert "model.bin" in artefact_paths(client, run.info.run_id)
    before = snapshot_at(mlflow_server, "team")
    code, lines = export(project, "--tracking-uri", mlflow_server, "--experiment", "team")
    assert actions(lines) == {"EXP-001": "unchanged", "EXP-002": "unchanged", "EXP-003": "skip"}
    assert snapshot_at(mlflow_server, "team") == before


def snapshot_at(uri: str, experiment: str) -> dict:
    return {k: (r.info.run_id, r.data.tags, r.data.metrics, r.data.params)
            for k, r in runs(uri, experiment).items()}
