"""`aisdp-log demo DIR`: a real project whose log validates and whose evidence catches tampering."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

import aisdp_log
from aisdp_log.cli import cli
from aisdp_log.errors import AisdpLogError

pytestmark = pytest.mark.slow


def run_cli(*args: str, cwd: Path | None = None) -> Result:
    """The command as `aisdp-log` runs it (one-line errors, exit codes), in this process."""
    previous = Path.cwd()
    os.chdir(cwd or previous)
    try:
        result = CliRunner().invoke(cli, list(args))
    finally:
        os.chdir(previous)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def test_demo_log_validates_with_no_error(built_demo: Path):
    report = aisdp_log.validate(built_demo / "experiment-log.xlsx")
    assert report.errors == 0, report.to_dict()
    assert report.rows >= 4
    # The only warning a fresh demo carries: the selected run has no rerun evidence yet.
    assert {f.code for f in report.findings} <= {"R005"}


def test_every_artefact_folder_has_its_records(built_demo: Path):
    folders = sorted(p for p in (built_demo / "artefacts").iterdir() if p.is_dir())
    assert [p.name for p in folders] == ["EXP-001", "EXP-002", "EXP-003", "EXP-004"]
    for folder in folders:
        run = json.loads((folder / "run.json").read_text())
        assert run["status"] == "completed" and run["dirty"] is False
        assert set(json.loads((folder / "metrics.json").read_text())) == {"accuracy", "f1"}
        assert (folder / "history.csv").read_text().startswith("epoch,")
        assert (folder / "model.safetensors").stat().st_size > 0


def test_outcomes_follow_the_numbers(built_demo: Path):
    frame = aisdp_log.read_log(built_demo / "experiment-log.xlsx")
    outcomes = dict(zip(frame["Experiment ID"], frame["Outcome"]))
    assert outcomes["EXP-001"] == "baseline"
    selected = [i for i, o in outcomes.items() if o == "selected"]
    assert len(selected) == 1
    accuracy = dict(zip(frame["Experiment ID"], frame["metrics.accuracy"]))
    assert accuracy[selected[0]] >= 0.93  # the demo's declared threshold
    assert accuracy[selected[0]] > accuracy["EXP-001"]
    assert all(isinstance(n, str) and n for n in frame["Notes"])
    assert all(isinstance(h, str) and h for h in frame["Hypothesis"])


def test_environment_cells_name_the_lock_file_checked_by_g005(built_demo: Path):
    frame = aisdp_log.read_log(built_demo / "experiment-log.xlsx")
    assert all(cell.startswith("requirements.txt sha256:") for cell in frame["Environment"])


def test_the_history_is_a_real_project(built_demo: Path):
    log = subprocess.run(["git", "log", "--format=%s"], cwd=built_demo, capture_output=True,
                         text=True, check=True).stdout.splitlines()
    assert len(log) >= 7
    data_versions = {json.loads((built_demo / "artefacts" / i / "run.json").read_text())
                     ["data_version"] for i in ("EXP-001", "EXP-003")}
    assert len(data_versions) == 2, "EXP-003 trains on the cleaned second data version"
    commits = {json.loads((built_demo / "artefacts" / i / "run.json").read_text())["commit"]
               for i in ("EXP-001", "EXP-002", "EXP-003")}
    assert len(commits) == 3, "the variants come from different commits"


def test_tampering_with_a_model_gives_a002(demo_project: Path):
    with open(demo_project / "artefacts" / "EXP-002" / "model.safetensors", "ab") as fh:
        fh.write(b"tampered")
    result = run_cli("validate", "experiment-log.xlsx", "--format", "json", cwd=demo_project)
    assert result.exit_code == 1
    findings = json.loads(result.stdout)["findings"]
    assert [(f["code"], f["experiment_id"]) for f in findings if f["severity"] == "error"] == \
        [("A002", "EXP-002")]


def test_demo_refuses_a_folder_that_is_not_empty(tmp_path: Path):
    (tmp_path / "keep.txt").write_text("mine")
    result = run_cli("demo", str(tmp_path))
    assert result.exit_code == 2
    assert "not an empty folder" in result.stderr and "Traceback" not in result.stderr
    assert (tmp_path / "keep.txt").read_text() == "mine"


def test_demo_without_torch_says_how_to_install(tmp_path: Path):
    code = ("import sys; sys.modules['torch'] = None\n"
            "import importlib.util as u; real = u.find_spec\n"
            "u.find_spec = lambda n, *a: None if n == 'torch' else real(n, *a)\n"
            "from aisdp_log.cli import main; main(['demo', sys.argv[1]])")
    result = subprocess.run([sys.executable, "-c", code, str(tmp_path / "d")],
                            capture_output=True, text=True)
    assert result.returncode == 2
    assert "pip install" in result.stderr and "aisdp-log[torch]" in result.stderr
    assert not (tmp_path / "d").exists()


def test_build_demo_api_raises_one_line_error_for_a_file(tmp_path: Path):
    target = tmp_path / "file"
    target.write_text("x")
    from aisdp_log.demo.project import build_demo

    with pytest.raises(AisdpLogError, match="not an empty folder"):
        build_demo(target, echo=lambda line: None)
