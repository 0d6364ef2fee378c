"""`template --upgrade`: a log made by an older template gets the current template's columns,
validations, marks, Guide and version, keeping every row and column; the S012 finding `validate`
reports on a log of an older template is in test_checks_template.py."""

from __future__ import annotations

import zipfile
from pathlib import Path

import openpyxl
import pytest
from builders import BASE_ROW, libreoffice_convert, needs_soffice, write_log
from click.testing import CliRunner
from conftest import CLEAN_TEMPLATE_ROW, fill_workbook, template_0_1_0, template_version

import aisdp_log
from aisdp_log import spec
from aisdp_log.cli.main import cli
from aisdp_log.workbook.upgrade import upgrade_log


def cf_formulas(path: Path) -> dict[str, list[str]]:
    sheet = openpyxl.load_workbook(path)["Experiments"]
    return {str(r.sqref): [rule.formula[0] for rule in rules]
            for r, rules in sheet.conditional_formatting._cf_rules.items()}


def test_a_0_1_0_log_is_upgraded_and_validates_clean(old_log):
    rows_before = list(openpyxl.load_workbook(old_log)["Experiments"].iter_rows(
        min_row=1, max_row=3, values_only=True))
    result = CliRunner().invoke(cli, ["template", "--upgrade", str(old_log)])
    assert result.exit_code == 0, result.output
    assert f"to {aisdp_log.TEMPLATE_VERSION}" in result.output
    assert aisdp_log.validate(old_log, offline=True).codes() == []
    assert template_version(old_log) == aisdp_log.TEMPLATE_VERSION
    workbook = openpyxl.load_workbook(old_log)
    assert list(workbook["Experiments"].iter_rows(min_row=1, max_row=3, values_only=True)) \
        == rows_before  # every row and the person's Reviewer column
    assert workbook.sheetnames == ["Experiments", "Metrics", "Guide"]
    formulas = cf_formulas(old_log)
    letters = {cell.value: cell.column_letter for cell in workbook["Experiments"][1]}
    seed = letters["Random seed"]
    assert formulas[f"{seed}2:{seed}301"] == [f"AND(LEN(TRIM($A2))>0,LEN(TRIM({seed}2))=0)"]
    # a second upgrade finds nothing to add
    again = upgrade_log(old_log)
    assert (again.columns, again.validations, again.marks) == ([], [], [])
    assert cf_formulas(old_log) == formulas


def test_a_hand_made_log_gets_missing_columns_validations_and_guide(tmp_path):
    headers = [h for h in BASE_ROW if h not in ("Notes",)] + ["Team column"]
    log = write_log(tmp_path / "log.xlsx", [dict(BASE_ROW, **{"Team column": "mine"})],
                    headers=headers)
    before = aisdp_log.validate(log, offline=True).codes()
    result = upgrade_log(log)
    added = ["Other params", "Notes", "Rerun", "Reproducibility"]
    assert result.columns == added + ["Metrics Tolerance"]
    assert set(result.validations) == {c.header for c in spec.STANDARD_COLUMNS} | {
        f"Metrics {h}" for h in spec.METRICS_COLUMNS}
    workbook = openpyxl.load_workbook(log)
    sheet = workbook["Experiments"]
    assert [c.value for c in sheet[1]] == headers + added
    assert [c.value for c in sheet[2]][:len(headers)] == [BASE_ROW.get(h, "mine")
                                                          for h in headers]
    by_column = {}
    for validation in sheet.data_validations.dataValidation:
        for cell_range in validation.sqref.ranges:
            by_column[sheet.cell(1, cell_range.min_col).value] = validation
    assert by_column["Outcome"].formula1 == '"selected,rejected,baseline"'
    assert by_column["Random seed"].prompt.startswith("The seed the run used")
    assert "Team column" not in by_column
    assert "Guide" in workbook.sheetnames
    assert workbook["Guide"]["A1"].value == "Experiment log: how to fill it in"
    assert template_version(log) == aisdp_log.TEMPLATE_VERSION
    assert aisdp_log.validate(log, offline=True).codes() == before


def test_a_persons_guide_sheet_is_kept(tmp_path):
    log = write_log(tmp_path / "log.xlsx", [BASE_ROW],
                    extra_sheets={"Guide": [["Our own guide"]]})
    result = upgrade_log(log)
    assert result.guide.startswith("kept")
    assert openpyxl.load_workbook(log)["Guide"]["A1"].value == "Our own guide"


def test_upgrade_refuses_while_the_log_is_open(old_log):
    before = old_log.read_bytes()
    (old_log.parent / f"~${old_log.name}").write_bytes(b"\x05alice" + b" " * 60)
    from aisdp_log.errors import WriteRefused

    with pytest.raises(WriteRefused):
        upgrade_log(old_log)
    assert old_log.read_bytes() == before


def test_the_upgraded_log_keeps_every_other_part(old_log):
    with zipfile.ZipFile(old_log) as archive:
        before = {n: archive.read(n) for n in archive.namelist()}
    upgrade_log(old_log)
    with zipfile.ZipFile(old_log) as archive:
        after = {n: archive.read(n) for n in archive.namelist()}
    changed = {n for n in before if before[n] != after.get(n)}
    # sheet2 and table2: the Metrics sheet gains its Tolerance column inside its table
    assert changed <= {"xl/worksheets/sheet1.xml", "xl/worksheets/sheet2.xml",
                       "xl/worksheets/sheet3.xml", "xl/tables/table2.xml",
                       "xl/styles.xml", "docProps/custom.xml"}, changed


@pytest.mark.slow
@needs_soffice
def test_libreoffice_opens_the_upgraded_log_and_its_save_validates_the_same(old_log, tmp_path):
    upgrade_log(old_log)
    saved = libreoffice_convert(old_log, "xlsx:Calc MS Excel 2007 XML", tmp_path / "lo",
                                tmp_path / "profile")
    assert aisdp_log.validate(saved, offline=True).codes() == []
    assert openpyxl.load_workbook(saved)["Guide"]["A1"].value == \
        "Experiment log: how to fill it in"


def test_new_columns_join_the_table_when_it_ends_at_the_last_column(tmp_path):
    """A 0.1.0-template log without the `Reproducibility` column: it comes back inside the
    table, so Excel's filter and banding cover it."""
    old = template_0_1_0(tmp_path / "template-0.1.0.xlsx")
    workbook = openpyxl.load_workbook(old)
    sheet = workbook["Experiments"]
    (table,) = sheet.tables.values()
    last = sheet.max_column
    assert sheet.cell(1, last).value == "Reproducibility"
    sheet.cell(1, last).value = None
    table.ref = table.ref.replace(openpyxl.utils.get_column_letter(last),
                                  openpyxl.utils.get_column_letter(last - 1))
    table.autoFilter.ref = table.ref
    table.tableColumns = table.tableColumns[:-1]
    workbook.save(old)
    log = fill_workbook(old, tmp_path / "log.xlsx", [CLEAN_TEMPLATE_ROW])
    assert upgrade_log(log).columns == ["Reproducibility", "Metrics Tolerance"]
    sheet = openpyxl.load_workbook(log)["Experiments"]
    (table,) = sheet.tables.values()
    assert table.ref.split(":")[1].startswith(openpyxl.utils.get_column_letter(last))
    assert [c.name for c in table.tableColumns][-1] == "Reproducibility"
    assert aisdp_log.validate(log, offline=True).codes() == []


def test_the_metrics_sheet_gets_its_validations(tmp_path):
    log = write_log(tmp_path / "log.xlsx", [BASE_ROW])
    result = upgrade_log(log)
    assert {"Metrics Goal", "Metrics Threshold"} <= set(result.validations)
    sheet = openpyxl.load_workbook(log)["Metrics"]
    goal = next(v for v in sheet.data_validations.dataValidation
                if str(v.sqref).startswith("B2:"))
    assert goal.formula1 == '"max,min"'
    assert aisdp_log.validate(log, offline=True).codes() == []


def test_a_metrics_sheet_without_tolerance_gains_it_and_its_validation(tmp_path):
    """Template version 3 adds `Tolerance` to the Metrics sheet (issue 27): an older log gets
    the column after its last one, with the template's validation; its cells stay as typed."""
    log = write_log(tmp_path / "log.xlsx", [BASE_ROW])
    metrics_before = list(openpyxl.load_workbook(log)["Metrics"].values)
    assert "Tolerance" not in metrics_before[0]
    assert aisdp_log.validate(log, offline=True).codes() == []   # accepted without it
    result = upgrade_log(log)
    assert "Metrics Tolerance" in result.columns and "Metrics Tolerance" in result.validations
    sheet = openpyxl.load_workbook(log)["Metrics"]
    rows = list(sheet.values)
    assert [row[:len(metrics_before[0])] for row in rows] == metrics_before
    assert rows[0][len(metrics_before[0])] == "Tolerance"
    letter = openpyxl.utils.get_column_letter(len(metrics_before[0]) + 1)
    [validation] = [v for v in sheet.data_validations.dataValidation
                    if str(v.sqref).startswith(f"{letter}2:")]
    assert (validation.type, validation.formula1) == ("decimal", "0")
    assert aisdp_log.validate(log, offline=True).codes() == []
    assert upgrade_log(log).columns == []
