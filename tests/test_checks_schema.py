"""checks/schema.py: S001-S011 at the cells docs/workbook-format.md names, on real workbooks."""

from __future__ import annotations

import datetime as dt

import openpyxl
import pytest
from builders import BASE_ROW, assert_findings, row, write_log

import aisdp_log
from aisdp_log.lint.checks.schema import suggest

SHA = "sha256:" + "ab" * 32


def report_of(path, **kwargs):
    return aisdp_log.validate(path, offline=True, **kwargs)


# --------------------------------------------------------------------------- issue #2: done means

#: The standard headers only, as a person types them; `Environment` is missing (S001), `metrics.f1`
#: has no Metrics row (S008), `Rerunn` is a typo (S009) and `Notes` appears twice (S011).
HAND_HEADERS = ["Experiment ID", "Date", "Hypothesis", "params.learning_rate", "Other params",
                "Data version", "Code commit", "Random seed", "Training duration",
                "metrics.accuracy", "metrics.f1", "Artefact hash", "Outcome", "Notes",
                "Reproducibility", "Rerunn", "Notes"]


def hand_row(experiment_id, **changes):
    values = {"Experiment ID": experiment_id, "Date": dt.datetime(2026, 7, 1),
              "Hypothesis": "a hypothesis", "params.learning_rate": 0.01,
              "Other params": "dropout=0.1", "Data version": "3f2a9c1e",
              "Code commit": "9c1e4b7", "Random seed": 42, "Training duration": 12.5,
              "metrics.accuracy": 0.9, "metrics.f1": 0.8, "Artefact hash": SHA,
              "Outcome": "baseline", "Notes": "why", "Reproducibility": None, "Rerunn": None}
    values.update(changes)
    return [values.get(h) if i < 16 else None for i, h in enumerate(HAND_HEADERS)]


def test_hand_written_log_gives_each_finding_at_its_cell_and_none_on_clean_rows(tmp_path):
    """Issue #2 "done means": one defect per code, in a log written by hand with openpyxl."""
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.title = "Experiments"
    sheet.append(HAND_HEADERS)
    rows = {
        2: hand_row("EXP-001"),                                            # clean
        3: hand_row("EXP-002", Hypothesis=None),                           # S002 C3
        4: hand_row("EXP-003", Outcome="rejected", **{"metrics.accuracy": None}),  # clean
        5: hand_row("EXP-004", **{"Code commit": "xyz"}),                  # S003 G5
        6: hand_row("EXP-001", Date="2026-07-02"),                         # S004 A6
        7: hand_row("bad id!"),                                            # S005 A7
        8: hand_row("EXP-008", Outcome="chosen"),                          # S006 M8
        9: hand_row("EXP-009", **{"Random seed": 2**32}),                  # S007 H9
        10: hand_row("EXP-010", **{"Other params": "dropout=0.2"}),        # S010 E10 (merged)
        11: hand_row("EXP-011", **{"Other params": None}),                 # clean
        12: hand_row("EXP-012", Outcome=None),                             # R001 M12
        13: hand_row("EXP-013", Outcome="rejected", Notes=None),           # R002 N13
        14: hand_row("EXP-014", Outcome="selected", Reproducibility="bitwise",
                     **{"metrics.accuracy": 0.8}),                         # R003 J14
        15: hand_row("EXP-015", Outcome="selected", Reproducibility="bitwise",
                     Date=dt.datetime(2026, 4, 2)),                        # R004 M15
        16: hand_row("EXP-016", Outcome="selected"),                       # R005 M16
        17: hand_row("EXP-017", Outcome="Selected", Reproducibility="statistical",
                     Date="2026-07-20"),                                   # clean
        18: [None] * len(HAND_HEADERS),                                    # skipped
        19: hand_row("EXP-019", Outcome="rejected", Notes="worse",
                     **{"Training duration": dt.timedelta(minutes=90)}),   # clean
    }
    for number in sorted(rows):
        sheet.append(rows[number])
    sheet["I19"].number_format = "[h]:mm:ss"
    sheet.merge_cells("E10:E11")
    metrics = workbook.create_sheet("Metrics")
    metrics.append(["Metric", "Goal", "Threshold", "Description"])
    metrics.append(["accuracy", "max", 0.85, "holdout accuracy"])
    path = tmp_path / "hand.xlsx"
    workbook.save(path)

    report = aisdp_log.validate(path, offline=True)

    assert_findings(report, {
        ("S001", "R1"),   # missing column: the header row's first empty cell
        ("S002", "C3"), ("S003", "G5"),
        ("S004", "A6"), ("S005", "A7"),  # whole-row problems: the Experiment ID cell
        ("S006", "M8"), ("S007", "H9"),
        ("S008", "K1"), ("S009", "P1"), ("S010", "E10"), ("S011", "Q1"),
        ("R001", "M12"), ("R002", "N13"), ("R003", "J14"), ("R004", "M15"), ("R005", "M16"),
    })
    assert len(report.findings) == 16
    clean_rows = {2, 4, 11, 17, 19}
    assert not [f for f in report.findings if f.row in clean_rows]
    assert report.rows == 17  # row 18 is empty and skipped
    from aisdp_log.workbook.reader import load_log

    log = load_log(path)
    try:
        assert [r.number for r in log.rows] == [*range(2, 18), 19]
    finally:
        log.workbook.close()
    by_code = {f.code: f for f in report.findings}
    assert by_code["S004"].experiment_id == "EXP-001"
    assert by_code["S001"].row == 1 and by_code["S001"].column == "Environment"


# --------------------------------------------------------------------------- cell rules

def test_missing_column_points_at_first_empty_header_cell_even_in_a_gap(tmp_path):
    headers = [h for h in BASE_ROW if h != "Code commit"]
    headers.insert(3, "")  # a blank header at D
    path = write_log(tmp_path / "gap.xlsx", [row()], headers=headers)
    assert_findings(report_of(path), {("S001", "D1")})


def test_every_missing_required_column_is_reported_once(tmp_path):
    headers = ["Experiment ID", "Hypothesis"]
    path = write_log(tmp_path / "bare.xlsx", [row()], headers=headers, metrics=False)
    found = aisdp_log.validate(path, offline=True).findings
    assert_findings(found, {("S001", "C1")})
    assert sorted(f.column for f in found) == sorted(
        ["Date", "Data version", "Code commit", "Random seed", "Training duration",
         "Artefact hash", "Environment", "params.<name>", "metrics.<name>"])


def test_headers_match_whatever_their_case_spacing_and_order(tmp_path):
    data = row()
    shuffled = {"  OUTCOME ": data["Outcome"], "notes": data["Notes"]}
    shuffled.update({" ".join(k.upper().split(" ")).replace(" ", "   "): v
                     for k, v in data.items() if k not in ("Outcome", "Notes")})
    path = write_log(tmp_path / "case.xlsx", [shuffled])
    assert_findings(report_of(path), set())


def test_whole_row_problems_point_at_the_id_cell_wherever_it_is(tmp_path):
    headers = [h for h in BASE_ROW if h != "Experiment ID"] + ["Experiment ID"]
    rows = [row(), row(), row(experiment_id="-bad")]
    path = write_log(tmp_path / "ids.xlsx", rows, headers=headers)
    assert_findings(report_of(path), {("S004", "M3"), ("S005", "M4")})


def test_id_pattern_comes_from_the_config(tmp_path):
    from aisdp_log.config import Config

    path = write_log(tmp_path / "log.xlsx", [row(), row(experiment_id="run-2")])
    config = Config(root=tmp_path, id_pattern="^EXP-[0-9]{3,}$")
    assert_findings(report_of(path, config=config), {("S005", "A3")})


@pytest.mark.parametrize("column, value, code", [
    ("Date", "14/07/2026", "S003"),
    ("Date", "2026-02-30", "S003"),
    ("Date", 46000, "S003"),
    ("Code commit", "9c1e4b", "S003"),
    ("Code commit", "g" * 40, "S003"),
    ("Random seed", 1.5, "S003"),
    ("Random seed", -1, "S007"),
    ("Random seed", 4294967296, "S007"),
    ("Training duration", "twelve", "S003"),
    ("Training duration", -3, "S003"),
    ("metrics.accuracy", "high", "S003"),
    ("Artefact hash", "sha256:abc", "S003"),
    ("Artefact hash", "md5:" + "a" * 32, "S003"),
    ("Outcome", "Chosen", "S006"),
    ("Rerun", "maybe", "S006"),
    ("Other params", "dropout", "S003"),
    ("Data version", "3f2a 9c1e", "S003"),
    ("Experiment ID", True, "S003"),
    ("Hypothesis", None, "S002"),
    ("Environment", "   ", "S002"),
])
def test_a_bad_value_is_reported_at_its_cell(tmp_path, column, value, code):
    headers = list(BASE_ROW) + ["Rerun", "Other params"]
    path = write_log(tmp_path / "bad.xlsx", [row(), row(experiment_id="EXP-002",
                                                         **{column: value})],
                     headers=headers)
    letter = "ABCDEFGHIJKLMNO"[headers.index(column)]
    assert_findings(report_of(path), {(code, f"{letter}3")})


@pytest.mark.parametrize("column, value", [
    ("Date", dt.date(2026, 7, 14)), ("Date", "2026-07-14"), ("Date", "2026-07-14T10:00"),
    ("Code commit", "9C1E4B7"), ("Code commit", "a" * 40), ("Random seed", 0),
    ("Random seed", "4294967295"), ("Training duration", "1:30:00"),
    ("Training duration", "12.5 min"), ("Training duration", 0),
    ("Artefact hash", "F" * 64), ("Outcome", " Baseline "), ("Rerun", "x"),
    ("Other params", "a=1; b = two ;"), ("Data version", "abc12345.dir"),
    ("Experiment ID", 17), ("metrics.accuracy", "0.9"),
])
def test_a_good_value_gives_no_finding(tmp_path, column, value):
    headers = list(BASE_ROW) + ["Rerun"]
    path = write_log(tmp_path / "good.xlsx", [row(**{column: value})], headers=headers)
    assert_findings(report_of(path), set())


def test_metrics_may_be_empty_only_on_a_rejected_row(tmp_path):
    rows = [row(), row(experiment_id="EXP-002", outcome="rejected", notes="worse",
                       **{"metrics.accuracy": None}),
            row(experiment_id="EXP-003", **{"metrics.accuracy": None})]
    assert_findings(report_of(write_log(tmp_path / "m.xlsx", rows)), {("S002", "I4")})


def test_a_misspelt_outcome_is_one_finding_not_a_cascade(tmp_path):
    rows = [row(), row(experiment_id="EXP-002", outcome="rejectd", **{"metrics.accuracy": None})]
    assert_findings(report_of(write_log(tmp_path / "o.xlsx", rows)), {("S006", "L3")})


def test_params_may_be_empty(tmp_path):
    path = write_log(tmp_path / "p.xlsx", [row(**{"params.learning_rate": None})])
    assert_findings(report_of(path), set())


def test_declared_param_types_come_from_the_config(tmp_path):
    from aisdp_log.config import Config, ParamSpec

    path = write_log(tmp_path / "p.xlsx", [
        row(**{"params.epochs": 10, "params.optimizer": "adam"}),
        row(experiment_id="EXP-002", **{"params.epochs": 2.5, "params.optimizer": "rmsprop"})])
    config = Config(root=tmp_path, params=(ParamSpec("epochs", "int"),
                                           ParamSpec("optimizer", "choice", ("sgd", "adam"))))
    assert_findings(report_of(path, config=config), {("S003", "N3"), ("S006", "O3")})


# --------------------------------------------------------------------------- headers and sheets

def test_typo_header_is_a_warning_at_the_header_and_the_missing_column_names_it(tmp_path):
    data = row()
    data["Random sed"] = data.pop("Random seed")
    report = aisdp_log.validate(write_log(tmp_path / "t.xlsx", [data]), offline=True)
    assert_findings(report, {("S009", "M1"), ("S001", "N1")})
    assert report.errors == 1 and report.warnings == 1


def test_unknown_columns_that_are_no_typo_are_kept_silently(tmp_path):
    path = write_log(tmp_path / "u.xlsx", [row(**{"GPU": "A100", "Reviewer's comment": "ok"})])
    assert_findings(report_of(path), set())


def test_duplicate_header_is_reported_at_the_later_cell(tmp_path):
    headers = list(BASE_ROW) + ["  code   COMMIT"]
    path = write_log(tmp_path / "d.xlsx", [row()], headers=headers)
    assert_findings(report_of(path), {("S011", "N1")})


def test_metric_column_without_metrics_sheet(tmp_path):
    path = write_log(tmp_path / "m.xlsx", [row()], metrics=False)
    assert_findings(report_of(path), {("S008", "I1")})


def test_metrics_sheet_rows(tmp_path):
    metrics = [{"Metric": "accuracy", "Goal": "MAX", "Threshold": "0.85"},
               {"Metric": "loss", "Goal": "lower", "Threshold": "low"},
               {"Metric": None, "Goal": "min"},
               {"Metric": "f1"}]
    path = write_log(tmp_path / "m.xlsx", [row()], metrics=metrics)
    report = aisdp_log.validate(path, offline=True)
    assert {(f.code, f.sheet, f.cell) for f in report.findings} == {
        ("S006", "Metrics", "B3"), ("S003", "Metrics", "C3"), ("S008", "Metrics", "A3"),
        ("S002", "Metrics", "A4"), ("S002", "Metrics", "B5"), ("S008", "Metrics", "A5")}


def test_a_long_declared_metric_name_is_cut_short_in_every_mention(tmp_path):
    """Found by tests/test_fuzz.py: S008 named an undeclared column `metrics.<name>` in full."""
    name = "x" * 300
    path = write_log(tmp_path / "m.xlsx", [row()], metrics=[
        {"Metric": "accuracy", "Goal": "max", "Threshold": 0.8},
        {"Metric": name, "Goal": "max"}])
    (finding,) = [f for f in aisdp_log.validate(path, offline=True).findings
                  if f.code == "S008"]
    assert finding.cell == "A3" and len(finding.message) < 200 and "x" * 61 not in finding.message


@pytest.mark.parametrize("threshold", ["nan", "inf", "-inf", True])
def test_a_threshold_that_is_no_finite_number_is_s003_not_a_cascade_of_r003(tmp_path, threshold):
    metrics = [{"Metric": "accuracy", "Goal": "max", "Threshold": threshold}]
    path = write_log(tmp_path / "m.xlsx", [row(outcome="selected", notes="best")],
                     metrics=metrics)
    found = {(f.code, f.sheet, f.cell) for f in aisdp_log.validate(path, offline=True).findings
             if f.code in ("S003", "R003")}
    assert found == {("S003", "Metrics", "C2")}


@pytest.mark.parametrize("tolerance, finding", [
    (0.01, False), (0, False), ("0.02", False), (None, False),
    ("tight", True), (-0.01, True), ("nan", True), (True, True),
])
def test_a_tolerance_that_is_no_number_of_0_or_more_is_s003_at_its_cell(tmp_path, tolerance,
                                                                         finding):
    metrics = [{"Metric": "accuracy", "Goal": "max", "Threshold": 0.8, "Tolerance": tolerance}]
    path = write_log(tmp_path / "m.xlsx", [row()], metrics=metrics)
    found = {(f.code, f.sheet, f.cell) for f in report_of(path).findings}
    assert found == ({("S003", "Metrics", "E2")} if finding else set())


def test_metrics_sheet_without_goal_column(tmp_path):
    path = write_log(tmp_path / "m.xlsx", [row()],
                     extra_sheets={"Metrics": [["Metric", "Threshold"], ["accuracy", 0.8]]},
                     metrics=False)
    report = aisdp_log.validate(path, offline=True)
    assert {(f.code, f.sheet, f.cell) for f in report.findings} == {("S001", "Metrics", "C1")}


def test_sheet_names_match_case_and_space_insensitively(tmp_path):
    path = write_log(tmp_path / "s.xlsx", [row()], metrics=False,
                     extra_sheets={" metrics ": [["metric", "goal"], ["accuracy", "max"]]})
    assert_findings(report_of(path), set())


# --------------------------------------------------------------------------- cells calamine hides

def test_excel_error_cells_are_wrong_values_not_empty_ones(tmp_path):
    import xlsxwriter

    path = tmp_path / "e.xlsx"
    workbook = xlsxwriter.Workbook(str(path))
    sheet = workbook.add_worksheet("Experiments")
    headers = list(BASE_ROW)
    sheet.write_row(0, 0, headers)
    for r in (1, 2):
        sheet.write_row(r, 0, [row(experiment_id=f"EXP-00{r}")[h] for h in headers])
    sheet.write_formula("I2", "=1/0", None, "#DIV/0!")
    sheet.write_formula("G3", "=NA()", None, "#N/A")
    sheet.write_formula("C3", "=A3", None, "EXP-002")  # a formula with a saved result is fine
    metrics = workbook.add_worksheet("Metrics")
    metrics.write_row(0, 0, ["Metric", "Goal"])
    metrics.write_row(1, 0, ["accuracy", "max"])
    workbook.close()
    assert_findings(report_of(path), {("S003", "I2"), ("S003", "G3")})


def test_a_row_of_only_unsaved_formulas_is_not_skipped_as_empty(tmp_path):
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.title = "Experiments"
    sheet.append(list(BASE_ROW))
    sheet.append(list(row().values()))
    sheet.append([None] * 6 + ["=G2+1"])
    metrics = workbook.create_sheet("Metrics")
    metrics.append(["Metric", "Goal"])
    metrics.append(["accuracy", "max"])
    workbook.save(tmp_path / "f.xlsx")
    found = report_of(tmp_path / "f.xlsx").codes()
    assert ("S003", "G3") in found
    assert ("S002", "A3") in found


def test_merged_header_cells_are_no_finding(tmp_path):
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.title = "Experiments"
    sheet.append(list(BASE_ROW) + ["Comment", None])
    sheet.append(list(row().values()))
    sheet.merge_cells("N1:O1")
    metrics = workbook.create_sheet("Metrics")
    metrics.append(["Metric", "Goal"])
    metrics.append(["accuracy", "max"])
    workbook.save(tmp_path / "m.xlsx")
    assert_findings(report_of(tmp_path / "m.xlsx"), set())


# --------------------------------------------------------------------------- suggestions

@pytest.mark.parametrize("typo, meant", [
    ("Random sed", "Random seed"), ("ExperimentID", "Experiment ID"),
    ("code_commit", "Code commit"), ("Artifact hash", "Artefact hash"),
    ("Outcomes", "Outcome"), ("metrics.acuracy", "metrics.accuracy"),
])
def test_suggest_finds_the_known_header(typo, meant):
    known = [c for c in list(BASE_ROW) if c != "Notes"]
    assert suggest(typo, known) == meant


@pytest.mark.parametrize("header", ["GPU", "Comment", "Reviewer", "batch"])
def test_suggest_leaves_real_extra_columns_alone(header):
    assert suggest(header, list(BASE_ROW)) is None
