"""checks/review.py: R001-R005, is the log ready for a model-selection review?

(tests/test_review.py belongs to aisdp_log/review.py, the quarterly review report.)
"""

from __future__ import annotations

import datetime as dt

import pytest
from builders import BASE_ROW, assert_findings, row, write_log

import aisdp_log
from aisdp_log.domain.metrics import declared_metrics, meets
from aisdp_log.domain.periods import quarter
from aisdp_log.spec import MetricSpec
from aisdp_log.workbook.reader import load_log

# Columns of BASE_ROW + Reproducibility: I accuracy, L Outcome, M Notes, N Reproducibility.
HEADERS = list(BASE_ROW) + ["Reproducibility"]


def selected(experiment_id: str, **changes) -> dict:
    values = {"outcome": "selected", "notes": "best so far", "reproducibility": "bitwise"}
    values.update(changes)
    return row(experiment_id=experiment_id, **values)


def review_report(tmp_path, rows, **kwargs):
    """The offline report on `rows` (the tests compare its R-findings)."""
    kwargs.setdefault("headers", HEADERS)
    path = write_log(tmp_path / "log.xlsx", rows, **kwargs)
    return aisdp_log.validate(path, offline=True)


def test_a_complete_quarter_gives_no_review_finding(tmp_path):
    rows = [row(), selected("EXP-002"), row(experiment_id="EXP-003", outcome="rejected",
                                            notes="slower")]
    assert_findings(review_report(tmp_path, rows), set(), "R")


def test_r001_outcome_not_decided(tmp_path):
    assert_findings(review_report(tmp_path, [row(), row(experiment_id="EXP-002", outcome=None)]),
                    {("R001", "L3")}, "R")


@pytest.mark.parametrize("outcome", ["selected", "rejected"])
def test_r002_selected_or_rejected_without_notes(tmp_path, outcome):
    rows = [row(), selected("EXP-002", outcome=outcome, notes=None)]
    assert_findings(review_report(tmp_path, rows), {("R002", "M3")}, "R")


def test_r002_points_at_the_outcome_when_there_is_no_notes_column(tmp_path):
    headers = [h for h in HEADERS if h != "Notes"]
    rows = [row(), selected("EXP-002")]
    assert_findings(review_report(tmp_path, rows, headers=headers), {("R002", "L3")}, "R")


def test_baseline_needs_no_notes(tmp_path):
    assert_findings(review_report(tmp_path, [row(notes=None)]), set(), "R")


@pytest.mark.parametrize("goal, threshold, value, finding", [
    ("max", 0.85, 0.84, True), ("max", 0.85, 0.85, False), ("max", 0.85, 0.9, False),
    ("min", 0.2, 0.21, True), ("min", 0.2, 0.2, False), ("max", None, 0.1, False),
])
def test_r003_selected_row_misses_a_threshold(tmp_path, goal, threshold, value, finding):
    metrics = [{"Metric": "accuracy", "Goal": goal, "Threshold": threshold}]
    rows = [row(), selected("EXP-002", **{"metrics.accuracy": value})]
    expected = {("R003", "I3")} if finding else set()
    assert_findings(review_report(tmp_path, rows, metrics=metrics), expected, "R")


def test_r003_only_for_selected_rows(tmp_path):
    rows = [row(**{"metrics.accuracy": 0.5}),
            row(experiment_id="EXP-002", outcome="rejected", **{"metrics.accuracy": 0.5})]
    assert_findings(review_report(tmp_path, rows), set(), "R")


def test_r004_selected_row_in_a_quarter_without_baseline(tmp_path):
    rows = [row(date=dt.date(2026, 7, 1)),                         # baseline, Q3
            selected("EXP-002", date=dt.date(2026, 9, 30)),        # Q3: has a baseline
            selected("EXP-003", date="2026-10-01"),                # Q4: none
            selected("EXP-004", date=dt.date(2026, 12, 31)),       # Q4: none
            selected("EXP-005", date=dt.date(2025, 9, 1))]         # 2025-Q3: none
    assert_findings(review_report(tmp_path, rows),
                    {("R004", "L4"), ("R004", "L5"), ("R004", "L6")}, "R")


def test_r004_not_for_a_row_whose_date_is_unreadable(tmp_path):
    rows = [row(), selected("EXP-002", date="someday")]
    assert_findings(review_report(tmp_path, rows), set(), "R")


@pytest.mark.parametrize("evidence, finding", [
    (None, True), ("failed", True), ("bitwise", False), ("Statistical", False)])
def test_r005_selected_row_without_reproducibility_evidence(tmp_path, evidence, finding):
    rows = [row(), selected("EXP-002", reproducibility=evidence)]
    assert_findings(review_report(tmp_path, rows), ({("R005", "L3")} if finding else set()), "R")


def test_no_review_findings_without_an_outcome_column(tmp_path):
    headers = [h for h in HEADERS if h != "Outcome"]
    report = review_report(tmp_path, [row(), selected("EXP-002", notes=None)], headers=headers)
    assert_findings(report, set(), "R")


def test_a_bad_outcome_is_s006_only(tmp_path):
    path = write_log(tmp_path / "log.xlsx", [row(outcome="picked", notes=None)])
    assert_findings(aisdp_log.validate(path, offline=True), [("S006", "L2")])


def test_review_findings_carry_the_experiment_id(tmp_path):
    path = write_log(tmp_path / "log.xlsx", [row(), row(experiment_id="EXP-009", outcome=None)],
                     headers=HEADERS)
    (finding,) = aisdp_log.validate(path, offline=True).findings
    assert (finding.code, finding.experiment_id, finding.row, finding.column) == \
        ("R001", "EXP-009", 3, "Outcome")


def test_declared_metrics_skip_bad_goals_and_thresholds(tmp_path):
    metrics = [{"Metric": "Accuracy", "Goal": " MAX ", "Threshold": 0.85},
               {"Metric": "loss", "Goal": "lower", "Threshold": 0.1},
               {"Metric": "f1", "Goal": "max", "Threshold": "high"},
               {"Metric": "auc"}]
    log = load_log(write_log(tmp_path / "log.xlsx", [row()], metrics=metrics))
    try:
        declared = declared_metrics(log)
    finally:
        log.workbook.close()
    assert declared == {"accuracy": MetricSpec("Accuracy", "max", 0.85, ""),
                        "f1": MetricSpec("f1", "max", None, ""),
                        "auc": MetricSpec("auc", "max", None, "")}


@pytest.mark.parametrize("day, period", [
    (dt.date(2026, 1, 1), "2026-Q1"), (dt.date(2026, 3, 31), "2026-Q1"),
    (dt.date(2026, 4, 1), "2026-Q2"), (dt.date(2026, 9, 30), "2026-Q3"),
    (dt.date(2026, 12, 31), "2026-Q4")])
def test_quarter(day, period):
    assert quarter(day) == period


def test_meets():
    assert meets(0.9, MetricSpec("a", "max", 0.9))
    assert not meets(0.89, MetricSpec("a", "max", 0.9))
    assert meets(0.1, MetricSpec("l", "min", 0.1))
    assert not meets(0.11, MetricSpec("l", "min", 0.1))
    assert meets(-1e9, MetricSpec("a", "max", None))


@pytest.mark.parametrize("reproducibility, options", [(None, []),
                                                      ("bitwise", ["--mode", "bitwise"])])
def test_r005_names_a_rerun_command_a_shell_reads_back_intact(tmp_path, reproducibility,
                                                              options):
    # the ID is cell text and the command is copied into a terminal: it must stay one word
    import shlex

    experiment_id = "EXP 2; touch $(pwned)"
    path = write_log(tmp_path / "my log.xlsx",
                     [row(), selected(experiment_id, reproducibility=reproducibility)],
                     headers=HEADERS, extra_sheets={"Reproducibility": [
                         ["Experiment ID", "Mode", "Date", "Verdict"]]})
    [finding] = [f for f in aisdp_log.validate(path, offline=True).findings
                 if f.code == "R005"]
    command = finding.message.split("`")[1]
    assert shlex.split(command) == ["aisdp-log", "rerun", str(path), "--id",
                                    experiment_id, *options]
