"""LibreOffice round trip: the template opens and prints headless, and a log re-saved by
LibreOffice gives the same findings as the original (teams edit the log in LibreOffice too)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import openpyxl
import pytest
from builders import libreoffice_convert, needs_soffice
from conftest import CLEAN_TEMPLATE_ROW as CLEAN
from conftest import fill_workbook

import aisdp_log
from aisdp_log.lint.frame import read_log
from aisdp_log.workbook.template import write_template

pytestmark = pytest.mark.slow

GHOSTSCRIPT = shutil.which("gs")


#: One defect per row, so each finding's cell says which one survived the round trip.
DEFECTIVE_ROWS = [
    CLEAN,
    dict(CLEAN, **{"Experiment ID": "EXP-001"}),                             # S004
    dict(CLEAN, **{"Experiment ID": "EXP 003"}),                             # S005
    dict(CLEAN, **{"Experiment ID": "EXP-004", "Date": "14/07/2026"}),       # S003 text date
    dict(CLEAN, **{"Experiment ID": "EXP-005", "Random seed": -3}),          # S007
    dict(CLEAN, **{"Experiment ID": "EXP-006", "Outcome": "chosen"}),        # S006
    dict(CLEAN, **{"Experiment ID": "EXP-007", "Hypothesis": None}),         # S002
    dict(CLEAN, **{"Experiment ID": "EXP-008", "Code commit": "1234567"}),   # text, no finding
    dict(CLEAN, **{"Experiment ID": "EXP-009", "Code commit": "zz"}),        # S003
    dict(CLEAN, **{"Experiment ID": "EXP-010", "Training duration": "0:12:30",
                   "Outcome": None}),                                        # R001
    dict(CLEAN, **{"Experiment ID": "EXP-011", "Outcome": "rejected", "Notes": None,
                   "metrics.accuracy": None}),                               # R002
]



def findings(path: Path) -> list[tuple[str, str, str]]:
    report = aisdp_log.validate(path, offline=True)
    return sorted((f.code, f.sheet, f.cell) for f in report.findings)


@needs_soffice
def test_template_prints_to_pdf(tmp_path):
    template = write_template(tmp_path / "experiment-log.xlsx")
    pdf = libreoffice_convert(template, "pdf", tmp_path / "pdf", tmp_path / "profile")
    content = pdf.read_bytes()
    assert content.startswith(b"%PDF")
    pages = len(re.findall(rb"/Type\s*/Page\b", content))
    assert pages >= 3  # Experiments, Metrics, Guide: each sheet prints
    if GHOSTSCRIPT:  # the printed text, not just a valid file
        text = subprocess.run(
            [GHOSTSCRIPT, "-q", "-dNOPAUSE", "-dBATCH", "-sDEVICE=txtwrite",
             "-sOutputFile=-", str(pdf)], capture_output=True, text=True, timeout=120).stdout
        squashed = " ".join(text.split())
        for expected in ("Experiment ID", "metrics.accuracy", "holdout accuracy",
                         "Annex IV 2(d)", "aisdp-log validate"):
            assert expected in squashed, expected


@needs_soffice
def test_resaved_log_gives_the_same_findings(tmp_path):
    template = write_template(tmp_path / "experiment-log.xlsx")
    original = fill_workbook(template, tmp_path / "filled.xlsx", DEFECTIVE_ROWS)
    metrics = openpyxl.load_workbook(original)
    metrics["Metrics"]["B3"] = "highest"  # S006 on the Metrics sheet
    metrics.save(original)
    resaved = libreoffice_convert(original, "xlsx:Calc MS Excel 2007 XML",
                                  tmp_path / "resaved", tmp_path / "profile")
    assert resaved.read_bytes() != original.read_bytes()  # LibreOffice really rewrote it
    before = findings(original)
    assert {code for code, _, _ in before} >= {
        "S002", "S003", "S004", "S005", "S006", "S007", "R001", "R002"}
    assert ("S006", "Metrics", "B3") in before
    assert findings(resaved) == before
    assert aisdp_log.validate(resaved, offline=True).rows == len(DEFECTIVE_ROWS)
    frame_before = read_log(original, errors="attach")
    frame_after = read_log(resaved, errors="attach")
    assert frame_after.attrs["failures"] == frame_before.attrs["failures"]
    assert frame_after["Code commit"].tolist() == frame_before["Code commit"].tolist()


@needs_soffice
def test_resaved_template_stays_empty_and_keeps_its_dropdowns(tmp_path):
    template = write_template(tmp_path / "experiment-log.xlsx")
    resaved = libreoffice_convert(template, "xlsx:Calc MS Excel 2007 XML",
                                  tmp_path / "resaved", tmp_path / "profile")
    report = aisdp_log.validate(resaved, offline=True)
    assert (report.rows, report.codes()) == (0, [])
    sheet = openpyxl.load_workbook(resaved)["Experiments"]
    lists = {str(v.sqref).split(":")[0]: v.formula1 for v in sheet.data_validations.dataValidation
             if v.type == "list"}
    headers = {cell.value: cell.column_letter for cell in sheet[1]}
    assert lists[f"{headers['Outcome']}2"] == '"selected,rejected,baseline"'
