"""`aisdp-log add`: a row from a run's record, written through the safe writer."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import openpyxl
import pytest
import xlsxwriter
from builders import (
    BASE_ROW,
    METRICS,
    init_repo,
    libreoffice_convert,
    needs_soffice,
    write_log,
)

from aisdp_log.artefacts.hashing import artefact_hash
from aisdp_log.cli.main import main
from aisdp_log.workbook.writer import (
    find_rows,
    open_workbook_for_update,
    set_cell,
    stale_temp_files,
)

COMMIT = "9c1e4b7d2a0f5e6b8c3d1a2f4e5b6c7d8e9f0a1b"
HEADERS = list(BASE_ROW) + ["Other params", "Rerun", "Reproducibility", "Team column"]


def write_run(repo: Path, folder_id: str, /, *, params: dict | None = None,
              metrics: dict | None = None, model: bytes = b"weights", **changes) -> Path:
    """An artefact folder as the training API writes it: model, run.json, metrics.json."""
    folder = repo / "artefacts" / folder_id
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model.safetensors").write_bytes(model)
    run = {
        "experiment_id": folder_id, "seed": 7, "commit": COMMIT, "dirty": False,
        "data_version": "3f2a9c1e5d", "params": params or {"learning_rate": 0.01},
        "started": "2026-07-20T23:30:00+02:00", "duration_s": 90.0, "status": "completed",
        "artefact_hash": artefact_hash(folder / "model.safetensors"),
        "environment": {"summary": "uv.lock sha256:" + "b" * 64 + "; torch 2.13.0+cpu"},
        "tool_version": "0.1.0",
    }
    run.update(changes)
    (folder / "run.json").write_text(json.dumps(run))
    (folder / "metrics.json").write_text(json.dumps(metrics or {"accuracy": 0.9123}))
    return folder


def person_log(path: Path, rows: int = 2, room: int = 0) -> Path:
    """A log a person keeps in Excel: a table, a validation, a conditional format, a comment,
    number formats, a column and a sheet of their own. `room` extends the table that many
    empty rows, formatted as Excel formats a table column (styled empty cells)."""
    workbook = xlsxwriter.Workbook(str(path))
    date = workbook.add_format({"num_format": "yyyy-mm-dd"})
    three = workbook.add_format({"num_format": "0.000"})
    red = workbook.add_format({"bg_color": "#FFC7CE"})
    sheet = workbook.add_worksheet("Experiments")
    col = {h: i for i, h in enumerate(HEADERS)}
    for r in range(1, rows + 1):
        for header, value in BASE_ROW.items():
            if header == "Date":
                sheet.write_datetime(r, col[header], dt.datetime(2026, 7, r), date)
            elif header == "metrics.accuracy":
                sheet.write_number(r, col[header], value, three)
            elif isinstance(value, str):
                sheet.write_string(r, col[header], value)
            else:
                sheet.write_number(r, col[header], value)
        sheet.write_string(r, col["Experiment ID"], f"EXP-{r:03d}")
        sheet.write_string(r, col["Team column"], f"theirs {r}")
    for r in range(rows + 1, rows + room + 1):
        sheet.write_blank(r, col["Date"], None, date)
        sheet.write_blank(r, col["metrics.accuracy"], None, three)
    sheet.add_table(0, 0, rows + room, len(HEADERS) - 1,
                    {"name": "Log", "columns": [{"header": h} for h in HEADERS]})
    sheet.data_validation(1, col["Outcome"], rows, col["Outcome"],
                          {"validate": "list", "source": ["selected", "rejected", "baseline"]})
    sheet.conditional_format(1, col["metrics.accuracy"], rows, col["metrics.accuracy"],
                             {"type": "cell", "criteria": "<", "value": 0.85, "format": red})
    sheet.write_comment(1, col["Hypothesis"], "ask Ana about this one")
    metrics = workbook.add_worksheet("Metrics")
    metrics.write_row(0, 0, list(METRICS[0]))
    metrics.write_row(1, 0, list(METRICS[0].values()))
    workbook.add_worksheet("Team notes").write_string(0, 0, "quarterly plan")
    workbook.close()
    return path


@pytest.fixture
def project(tmp_path: Path) -> Path:
    repo = init_repo(tmp_path / "proj")
    person_log(repo / "log.xlsx")
    return repo


def run_cli(*args: str) -> int:
    try:
        main(list(args))
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


def cells(path: Path, row: int) -> dict[str, object]:
    ws = openpyxl.load_workbook(path)["Experiments"]
    return {ws.cell(1, c).value: ws.cell(row, c) for c in range(1, ws.max_column + 1)}


def test_add_fills_row_and_keeps_the_persons_workbook(project, capsys):
    write_run(project, "EXP-003", params={"learning_rate": 0.01, "dropout": 0.1,
                                          "layers": [64, 32]})
    assert run_cli("add", str(project / "log.xlsx"), "EXP-003") == 0
    assert "row 4" in capsys.readouterr().out
    row = cells(project / "log.xlsx", 4)
    assert row["Experiment ID"].value == "EXP-003"
    assert row["Date"].value == dt.datetime(2026, 7, 20)  # the run's own day, not UTC's
    assert row["Date"].number_format == "yyyy-mm-dd"
    assert row["params.learning_rate"].value == 0.01
    assert row["Other params"].value == "dropout=0.1; layers=[64,32]"
    assert row["Code commit"].value == COMMIT and row["Random seed"].value == 7
    assert row["Training duration"].value == 1.5
    assert row["metrics.accuracy"].value == 0.9123
    assert row["metrics.accuracy"].number_format == "0.000"
    assert row["Artefact hash"].value == artefact_hash(
        project / "artefacts/EXP-003/model.safetensors")
    assert row["Environment"].value.startswith("uv.lock sha256:")
    for left_for_person in ("Hypothesis", "Outcome", "Notes", "Team column", "Rerun"):
        assert row[left_for_person].value is None
    wb = openpyxl.load_workbook(project / "log.xlsx")
    ws = wb["Experiments"]
    assert ws.tables["Log"].ref == f"A1:{ws.cell(1, len(HEADERS)).column_letter}4"
    outcome, accuracy = (ws.cell(4, HEADERS.index(h) + 1).coordinate
                         for h in ("Outcome", "metrics.accuracy"))
    assert any(outcome in dv.sqref for dv in ws.data_validations.dataValidation)
    assert any(accuracy in cf.sqref for cf in ws.conditional_formatting)
    assert ws.cell(2, HEADERS.index("Hypothesis") + 1).comment.text.startswith("ask Ana")
    assert ws.cell(3, HEADERS.index("Team column") + 1).value == "theirs 2"
    assert wb["Team notes"]["A1"].value == "quarterly plan"
    assert wb.sheetnames == ["Experiments", "Metrics", "Team notes"]


def test_added_row_validates_offline_once_the_person_writes_the_hypothesis(project):
    from aisdp_log.lint.runner import validate

    write_run(project, "EXP-003")
    assert run_cli("add", str(project / "log.xlsx"), "EXP-003") == 0
    hypothesis = cells(project / "log.xlsx", 4)["Hypothesis"].coordinate
    s_findings = {(f.code, f.cell) for f in validate(project / "log.xlsx", offline=True).findings
                  if f.code.startswith("S")}
    assert s_findings == {("S002", hypothesis)}  # the one cell left for the person
    with open_workbook_for_update(project / "log.xlsx") as wb:
        set_cell(wb["Experiments"], 4, "Hypothesis", "lr 0.01 beats 0.001")
    report = validate(project / "log.xlsx", offline=True)
    assert [f for f in report.findings if f.code.startswith("S")] == []


def test_add_on_the_template_uses_first_empty_row_of_its_presized_table(tmp_path,
                                                                        fill_template):
    repo = init_repo(tmp_path / "proj")
    log = fill_template([{"Experiment ID": "EXP-001"}], name="proj/log.xlsx")
    before = dict(openpyxl.load_workbook(log)["Experiments"].tables.items())  # name -> ref
    write_run(repo, "EXP-002", params={"learning_rate": 0.01, "epochs": 3})
    assert run_cli("add", str(log), "EXP-002") == 0
    ws = openpyxl.load_workbook(log)["Experiments"]
    assert ws["A3"].value == "EXP-002"
    assert dict(ws.tables.items()) == before


def test_first_row_of_an_empty_log_elsewhere_with_repo_option(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    repo = init_repo(tmp_path / "proj")
    write_run(repo, "EXP-001")
    (tmp_path / "shared").mkdir()
    log = write_log(tmp_path / "shared" / "log.xlsx", [], headers=HEADERS)
    assert run_cli("add", str(log), "EXP-001") == 2  # no repository above the log
    assert run_cli("add", str(log), "EXP-001", "--repo", str(repo)) == 0
    row = cells(log, 2)
    assert row["Experiment ID"].value == "EXP-001"
    assert row["Date"].number_format == "yyyy-mm-dd"
    assert row["metrics.accuracy"].number_format == "0.000"
    assert row["Random seed"].number_format == "0"


def test_add_reads_the_workbook_once(project):
    """One parse of the log (the writer's, under its lock): no calamine read beside it."""
    write_run(project, "EXP-003")
    code = ("import sys; from aisdp_log.cli.main import main\n"
            "try:\n    main(['add', 'log.xlsx', 'EXP-003'])\nexcept SystemExit as exc:\n"
            "    assert not exc.code, exc.code\n"
            "print('python_calamine' in sys.modules, 'openpyxl' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], cwd=project, capture_output=True,
                            text=True, check=True)
    assert result.stdout.split()[-2:] == ["False", "False"]
    assert cells(project / "log.xlsx", 4)["Experiment ID"].value == "EXP-003"


def test_duplicate_id_refused(project, capsys):
    write_run(project, "EXP-002")
    before = (project / "log.xlsx").read_bytes()
    assert run_cli("add", str(project / "log.xlsx"), "EXP-002") == 2
    assert "already in the log" in capsys.readouterr().err
    assert (project / "log.xlsx").read_bytes() == before


@pytest.mark.parametrize("change", ["failed", "missing_run_json", "missing_folder",
                                    "other_id", "model_changed", "no_model"])
def test_bad_records_refused(project, change, capsys):
    folder = write_run(project, "EXP-003")
    if change == "failed":
        data = json.loads((folder / "run.json").read_text())
        data.update(status="failed", error="CUDA out of memory")
        (folder / "run.json").write_text(json.dumps(data))
    elif change == "missing_run_json":
        (folder / "run.json").unlink()
    elif change == "missing_folder":
        shutil.rmtree(folder)
    elif change == "other_id":
        write_run(project, "EXP-003", experiment_id="EXP-009")
    elif change == "model_changed":
        (folder / "model.safetensors").write_bytes(b"tampered")
    elif change == "no_model":
        (folder / "model.safetensors").unlink()
    before = (project / "log.xlsx").read_bytes()
    assert run_cli("add", str(project / "log.xlsx"), "EXP-003") == 2
    err = capsys.readouterr().err
    assert err.startswith("aisdp-log: error:") and err.count("\n") == 1
    assert (project / "log.xlsx").read_bytes() == before


def test_id_escaping_the_artefacts_folder_refused(project, tmp_path):
    (project / "aisdp.toml").write_text('id_pattern = ".*"\n')
    outside = write_run(tmp_path / "elsewhere", "EXP-004")
    record = json.loads((outside / "run.json").read_text())
    del record["experiment_id"]  # so only the folder check can stop it
    (outside / "run.json").write_text(json.dumps(record))
    (project / "artefacts").mkdir()
    (project / "artefacts" / "EXP-004").symlink_to(outside)
    before = (project / "log.xlsx").read_bytes()
    for experiment_id in ("../../elsewhere/artefacts/EXP-004", "EXP-004", ".."):
        assert run_cli("add", str(project / "log.xlsx"), experiment_id) == 2
    assert (project / "log.xlsx").read_bytes() == before


def test_formula_like_values_stay_text(project):
    import python_calamine

    texts = {"a": '=HYPERLINK("http://x","y")', "b": "+1", "c": "@SUM(A1)"}
    person_log(project / "log.xlsx")
    wb = openpyxl.load_workbook(project / "log.xlsx")  # add three text param columns
    ws = wb["Experiments"]
    for offset, name in enumerate(texts):
        ws.cell(1, len(HEADERS) + 1 + offset, f"params.{name}")
    wb.save(project / "log.xlsx")
    write_run(project, "EXP-003", params=dict(texts, learning_rate=0.01))
    assert run_cli("add", str(project / "log.xlsx"), "EXP-003") == 0
    values = openpyxl.load_workbook(project / "log.xlsx", data_only=True)["Experiments"]
    grid = python_calamine.CalamineWorkbook.from_path(
        str(project / "log.xlsx")).get_sheet_by_name("Experiments").to_python()
    for offset, text in enumerate(texts.values()):
        column = len(HEADERS) + 1 + offset
        assert values.cell(4, column).value == text
        assert grid[3][column - 1] == text


def test_permissions_preserved(project):
    os.chmod(project / "log.xlsx", 0o640)
    write_run(project, "EXP-003")
    assert run_cli("add", str(project / "log.xlsx"), "EXP-003") == 0
    assert stat.S_IMODE((project / "log.xlsx").stat().st_mode) == 0o640


def aisdp_log_cli(*args: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "aisdp_log", *args], text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kwargs)


def test_second_writer_waits_for_the_first_and_then_lands(project):
    write_run(project, "EXP-003")
    with open_workbook_for_update(project / "log.xlsx"):
        process = aisdp_log_cli("add", str(project / "log.xlsx"), "EXP-003")
        line = process.stderr.readline()  # said once, while it waits
        assert "waiting for aisdp-log pid" in line
        assert process.poll() is None
    out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    assert cells(project / "log.xlsx", 4)["Experiment ID"].value == "EXP-003"


@pytest.mark.parametrize("lock_name, content, holder", [
    (".~lock.log.xlsx#", ",Jane Doe,jdoe,labpc-7,26.11.2026 08:00,file:///home/jdoe;",
     "labpc-7"),
    ("~$log.xlsx", bytes([6]) + b"Kim Ng".ljust(53) + bytes([6, 0]) + "Kim Ng".encode(
        "utf-16-le"), "Kim Ng"),
])
def test_office_lock_refuses_and_force_overrides(project, capsys, lock_name, content, holder):
    lock = project / lock_name
    lock.write_bytes(content.encode() if isinstance(content, str) else content)
    write_run(project, "EXP-003")
    assert run_cli("add", str(project / "log.xlsx"), "EXP-003") == 2
    assert holder in capsys.readouterr().err
    assert run_cli("add", str(project / "log.xlsx"), "EXP-003", "--force") == 0


def big_log(path: Path, rows: int) -> Path:
    workbook = xlsxwriter.Workbook(str(path), {"constant_memory": True})
    sheet = workbook.add_worksheet("Experiments")
    sheet.write_row(0, 0, HEADERS)
    for r in range(1, rows + 1):
        values = dict(BASE_ROW, **{"Experiment ID": f"EXP-{r:05d}"})
        sheet.write_row(r, 0, [values.get(h, "") for h in HEADERS])
    sheet = workbook.add_worksheet("Metrics")
    sheet.write_row(0, 0, list(METRICS[0]))
    sheet.write_row(1, 0, list(METRICS[0].values()))
    workbook.close()
    return path


@pytest.mark.slow
def test_killed_during_save_leaves_original_byte_identical(tmp_path):
    repo = init_repo(tmp_path / "proj")
    log = big_log(repo / "log.xlsx", 20_000)
    write_run(repo, "EXP-99999")
    before = log.read_bytes()
    process = aisdp_log_cli("add", str(log), "EXP-99999")
    deadline = time.monotonic() + 240
    temps: list[Path] = []
    while not temps and process.poll() is None and time.monotonic() < deadline:
        temps = stale_temp_files(log)
        time.sleep(0.005)
    assert temps, f"no temp file appeared (exit {process.poll()})"
    process.send_signal(signal.SIGKILL)  # while the temp file is being written
    process.communicate(timeout=30)
    assert process.returncode in (-signal.SIGKILL, 0)
    # The log is the original or the complete new version, never half of one.
    after = log.read_bytes()
    if after != before:
        assert process.returncode == 0 or not stale_temp_files(log)
        with open_workbook_for_update(log) as wb:
            assert find_rows(wb["Experiments"], "Experiment ID", "EXP-99999") == [20_001]
        return
    # What a kill leaves: the half-written temp (removed by the next write) and the
    # writer-lock file, both in .aisdp-log/, which git ignores; nothing else.
    leftovers = sorted(p.name for p in repo.iterdir() if p.name not in
                       (".git", "artefacts", "log.xlsx"))
    assert leftovers == [".aisdp-log"]
    assert sorted(p.name for p in (repo / ".aisdp-log").iterdir()) == \
        sorted([".gitignore", temps[0].name, "log.xlsx.lock"]
               + [p.name for p in (repo / ".aisdp-log").glob("openpyxl.*")])


@pytest.mark.slow
@needs_soffice
def test_libreoffice_saved_log_accepts_add_and_still_opens(tmp_path):
    repo = init_repo(tmp_path / "proj")
    made = person_log(tmp_path / "log.xlsx", rows=2, room=18)
    log = libreoffice_convert(made, "xlsx", repo, tmp_path / "profile")
    ws = openpyxl.load_workbook(log)["Experiments"]
    assert ws.max_row == 21 and ws.tables["Log"].ref == "A1:Q21"  # LibreOffice's padding
    write_run(repo, "EXP-003")
    assert run_cli("add", str(log), "EXP-003") == 0
    ws = openpyxl.load_workbook(log)["Experiments"]
    assert ws["A4"].value == "EXP-003" and ws["A5"].value is None
    assert ws.tables["Log"].ref == "A1:Q21"
    accuracy = ws.cell(4, HEADERS.index("metrics.accuracy") + 1)
    assert accuracy.value == 0.9123 and accuracy.number_format == "0.000"
    csv = libreoffice_convert(log, "csv", tmp_path / "csv", tmp_path / "profile")
    lines = csv.read_text().splitlines()
    assert lines[3].startswith("EXP-003,") and COMMIT in lines[3]


@pytest.mark.slow
def test_add_from_a_record_written_by_the_training_api(tmp_path, monkeypatch):
    from builders import commit

    from aisdp_log.lint.runner import validate
    from aisdp_log.record.training import record_run

    repo = init_repo(tmp_path / "proj")
    commit(repo, {"train.py": "print('train')\n", ".gitignore": "artefacts/\n"})
    person_log(repo / "log.xlsx")
    monkeypatch.chdir(repo)
    with record_run("EXP-003", seed=5, params={"learning_rate": 0.01, "epochs": 2}) as run:
        run.log_metrics(accuracy=0.93)
        run.path("model.bin").write_bytes(b"weights")
    assert run_cli("add", "log.xlsx", "EXP-003") == 0
    row = cells(repo / "log.xlsx", 4)
    assert row["Random seed"].value == 5 and row["Other params"].value == "epochs=2"
    findings = {(f.code, f.cell) for f in validate(repo / "log.xlsx").findings if f.row == 4}
    # Left for the person, and no DVC data in this project: nothing else on the new row.
    assert findings == {("S002", row["Hypothesis"].coordinate),
                        ("S002", row["Data version"].coordinate),
                        ("R001", row["Outcome"].coordinate)}
