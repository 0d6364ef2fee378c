"""read_log: the Experiments sheet as a typed DataFrame, checked by a pandera schema built from
spec.py, reporting the same (code, cell) pairs as the offline validator."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pandera.pandas as pa
import pytest
from builders import BASE_ROW, row, write_log

import aisdp_log
from aisdp_log.errors import AisdpLogError, WorkbookError
from aisdp_log.lint.frame import LogSchemaError, log_schema, read_log
from aisdp_log.workbook.reader import load_log

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_LOGS = sorted((ROOT / "sample_logs").glob("*/*.xlsx"))
#: Codes the frame's schema covers: values of the Experiments sheet.
VALUE_CODES = {"S002", "S003", "S004", "S005", "S006", "S007"}

TEMPLATE_ROW = {
    "Experiment ID": "EXP-001", "Date": dt.datetime(2026, 7, 14),
    "Hypothesis": "Adam converges faster", "params.learning_rate": 0.001,
    "params.epochs": 20, "params.batch_size": 64, "params.optimizer": "adam",
    "Data version": "3f2a9c1e", "Code commit": "9C1E4B7", "Random seed": 42,
    "Training duration": "0:12:30", "metrics.accuracy": 0.91, "metrics.f1": 0.88,
    "Artefact hash": "a" * 64, "Environment": "torch 2.13.0+cpu", "Outcome": "Baseline",
    "Notes": "the reference run",
}


def pairs(failures) -> list[tuple[str, str]]:
    return sorted((f["code"], f["cell"]) for f in failures)


def validator_pairs(path: Path, config=None) -> list[tuple[str, str]]:
    report = aisdp_log.validate(path, offline=True, config=config)
    return sorted((f.code, f.cell) for f in report.findings
                  if f.sheet == "Experiments" and f.code in VALUE_CODES)


# --------------------------------------------------------------------------- typing

def test_clean_log_is_typed_and_indexed_by_sheet_row(fill_template):
    path = fill_template([TEMPLATE_ROW, dict(TEMPLATE_ROW, **{
        "Experiment ID": "EXP-002", "Outcome": "SELECTED", "Rerun": "x",
        "Random seed": 4294967295})])
    frame = read_log(path)
    assert list(frame.index) == [2, 3] and frame.index.name == "row"
    assert list(frame.columns[:4]) == ["Experiment ID", "Date", "Hypothesis",
                                       "params.learning_rate"]
    assert frame.attrs["failures"] == []
    assert frame.loc[2, "Date"] == pd.Timestamp("2026-07-14")
    assert str(frame["Date"].dtype) == "datetime64[ns]"
    assert str(frame["Random seed"].dtype) == "Int64"
    assert frame.loc[3, "Random seed"] == 4294967295
    assert frame.loc[2, "Training duration"] == pytest.approx(12.5)  # 0:12:30 in minutes
    assert list(frame["Outcome"]) == ["baseline", "selected"]
    assert frame.loc[2, "Code commit"] == "9c1e4b7"
    assert frame.loc[2, "Artefact hash"] == "sha256:" + "a" * 64
    assert frame["Rerun"].isna()[2] and bool(frame.loc[3, "Rerun"]) is True
    assert frame["metrics.accuracy"].dtype == "float64"
    assert frame["Notes"].isna().sum() == 0 and frame["Other params"].isna().all()


def test_empty_template_reads_as_an_empty_typed_frame(template_path):
    frame = read_log(template_path)
    assert len(frame) == 0
    assert "metrics.f1" in frame.columns and "Reproducibility" in frame.columns
    assert str(frame["Date"].dtype) == "datetime64[ns]"


def test_headers_are_matched_loosely_and_unknown_columns_kept(tmp_path):
    rows = [{(" experiment  ID " if k == "Experiment ID" else k): v
             for k, v in row(**{"Team note": "ask Ana"}).items()}]
    frame = read_log(write_log(tmp_path / "log.xlsx", rows))
    assert "Experiment ID" in frame.columns
    assert frame.loc[2, "Team note"] == "ask Ana"


def test_declared_params_are_typed_by_config(tmp_path):
    config = tmp_path / "aisdp.toml"
    config.write_text('[template]\nparams = { epochs = "int", bn = "bool", '
                      'opt = ["SGD", "Adam"] }\n'
                      'metrics.accuracy = { goal = "max" }\n')
    path = write_log(tmp_path / "log.xlsx", [
        row(**{"params.epochs": "30", "params.bn": "yes", "params.opt": "adam",
               "params.mixed": "warm"}),
        row(experiment_id="EXP-002", **{"params.epochs": 10, "params.bn": False,
                                        "params.opt": "SGD", "params.mixed": 3})])
    frame = read_log(path, config=config)
    assert str(frame["params.epochs"].dtype) == "Int64"
    assert list(frame["params.epochs"]) == [30, 10]
    assert str(frame["params.bn"].dtype) == "boolean" and list(frame["params.bn"]) == [True,
                                                                                       False]
    assert list(frame["params.opt"]) == ["Adam", "SGD"]  # the declared spelling
    assert frame["params.mixed"].dtype == object  # undeclared, text and number: as read
    assert list(frame["params.learning_rate"]) == [0.001, 0.001]


# --------------------------------------------------------------------------- failures

def test_defects_raise_one_error_naming_the_cells(tmp_path):
    path = write_log(tmp_path / "log.xlsx", [
        row(),
        row(date="yesterday", random_seed=-1, outcome="chosen"),  # ID reused too
        row(experiment_id="bad id!", code_commit="xyz", hypothesis=None,
            **{"metrics.accuracy": None}),
    ])
    with pytest.raises(LogSchemaError) as caught:
        read_log(path)
    error = caught.value
    assert isinstance(error, AisdpLogError)
    assert "\n" not in str(error) and "B3" in str(error)
    assert list(error.failures.columns) == ["code", "cell", "row", "column", "check", "value"]
    assert pairs(error.failures.to_dict("records")) == sorted([
        ("S004", "A3"), ("S003", "B3"), ("S007", "G3"), ("S006", "L3"),
        ("S005", "A4"), ("S002", "C4"), ("S003", "F4"), ("S002", "I4")])
    assert pairs(error.failures.to_dict("records")) == validator_pairs(path)
    assert list(error.frame.index) == [2, 3, 4]


def test_attach_returns_the_frame_with_failing_cells_empty(tmp_path):
    path = write_log(tmp_path / "log.xlsx", [row(), row(experiment_id="EXP-002",
                                                       random_seed="forty-two")])
    frame = read_log(path, errors="attach")
    assert pairs(frame.attrs["failures"]) == [("S003", "G3")]
    assert pd.isna(frame.loc[3, "Random seed"]) and frame.loc[2, "Random seed"] == 42
    assert pd.DataFrame(frame.attrs["failures"]).loc[0, "value"] == "forty-two"


def test_metric_may_be_empty_only_on_a_rejected_row(tmp_path):
    path = write_log(tmp_path / "log.xlsx", [
        row(outcome="rejected", notes="worse", **{"metrics.accuracy": None}),
        row(experiment_id="EXP-002", outcome=None, **{"metrics.accuracy": None})])
    frame = read_log(path, errors="attach")
    assert pairs(frame.attrs["failures"]) == [("S002", "I3")]


@pytest.mark.parametrize("path", SAMPLE_LOGS, ids=[p.stem for p in SAMPLE_LOGS])
def test_sample_logs_give_the_validators_value_findings(path):
    frame = read_log(path, errors="attach")
    assert pairs(frame.attrs["failures"]) == validator_pairs(path)


def test_schema_rechecks_a_frame_changed_in_a_notebook(tmp_path):
    path = write_log(tmp_path / "log.xlsx", [row(), row(experiment_id="EXP-002")])
    frame = read_log(path)
    log = load_log(path)
    try:
        schema = log_schema(log)
    finally:
        log.workbook.close()
    schema.validate(frame)
    frame.loc[3, "Random seed"] = -1
    frame.loc[3, "Outcome"] = "picked"
    frame.loc[3, "Experiment ID"] = "EXP-001"
    with pytest.raises(pa.errors.SchemaErrors) as caught:
        schema.validate(frame, lazy=True)
    cases = caught.value.failure_cases
    assert sorted(zip(cases["column"], cases["index"])) == [
        ("Experiment ID", 3), ("Outcome", 3), ("Random seed", 3)]


# --------------------------------------------------------------------------- edges

def test_unreadable_file_is_a_one_line_error(tmp_path):
    path = tmp_path / "log.xlsx"
    path.write_text("id,date\n")
    with pytest.raises(WorkbookError):
        read_log(path)
    with pytest.raises(ValueError):
        read_log(path, errors="ignore")


def test_pandas_is_imported_only_when_reading(tmp_path):
    path = write_log(tmp_path / "log.xlsx", [BASE_ROW])
    script = (
        "import sys, inspect, aisdp_log\n"
        "aisdp_log.read_log\n"
        "before = 'pandas' in sys.modules\n"
        f"aisdp_log.read_log({str(path)!r})\n"
        "print(json.dumps([before, 'pandas' in sys.modules, "
        f"inspect.isfunction(aisdp_log.validate)]))\n")
    result = subprocess.run([sys.executable, "-c", "import json\n" + script],
                            capture_output=True, text=True, check=True)
    assert json.loads(result.stdout) == [False, True, True]
