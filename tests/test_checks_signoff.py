"""R006 as `validate` reports it (offline, the workbook alone): a signed row edited later is
caught at the changed cell, a deleted signed row or unreadable row hashes at the Sign-off cell;
the tool-written Reproducibility cell and the Rerun mark are not part of the signature. With
`.aisdp/allowed_signers` in the repository, validate reports R007-R010 as `verify` does (R008
for a sign-off signed with a key not allowed). Writing sign-offs is in test_signoff.py; SSH
signatures and `verify` in test_signatures.py."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import pytest
from builders import assert_findings
from signoffs import edit, mallory_resigns, signed_project, ssh_signed_project

from aisdp_log.cli.main import main
from aisdp_log.lint.runner import validate


@pytest.fixture
def signed(tmp_path: Path):
    """The review project with 2026-Q3 reviewed and signed."""
    return signed_project(tmp_path)


def offline(log: Path):
    """The offline validator's report (workbook only)."""
    return validate(log, offline=True)


def r006_sheets(report) -> set[str]:
    """The sheets the R006 findings of `report` point at."""
    return {f.sheet for f in report.findings if f.code == "R006"}


@pytest.mark.slow
def test_edit_of_a_signed_hypothesis_is_r006_at_that_cell(signed, capsys):
    cell = signed.cell("EXP-004", "Hypothesis")
    edit(signed.log, "Experiments", cell, "a better story, written after the fact")
    report = offline(signed.log)
    assert_findings(report, [("R006", cell)], codes=("R006",))
    assert r006_sheets(report) == {"Experiments"}
    with pytest.raises(SystemExit) as exit_info:
        main(["validate", str(signed.log), "--offline", "--format", "json"])
    assert exit_info.value.code == 1
    findings = json.loads(capsys.readouterr().out)["findings"]
    [finding] = [f for f in findings if f["code"] == "R006"]
    assert (finding["cell"], finding["column"], finding["experiment_id"]) == \
        (cell, "Hypothesis", "EXP-004")


@pytest.mark.slow
def test_rerun_after_signing_is_not_a_change(signed):
    edit(signed.log, "Experiments", signed.cell("EXP-004", "Reproducibility"), "bitwise")
    edit(signed.log, "Experiments", signed.cell("EXP-005", "Rerun"), "yes")
    edit(signed.log, "Experiments", signed.cell("EXP-006", "Reproducibility"), "failed")
    assert_findings(offline(signed.log), [], codes=("R006",))


@pytest.mark.slow
def test_metric_outcome_and_cleared_cells_each_point_at_their_cell(signed):
    edit(signed.log, "Experiments", signed.cell("EXP-005", "metrics.accuracy"), 0.86)
    edit(signed.log, "Experiments", signed.cell("EXP-006", "Outcome"), "selected")
    edit(signed.log, "Experiments", signed.cell("EXP-003", "Notes"), None)
    report = offline(signed.log)
    assert_findings(report, [
        ("R006", signed.cell("EXP-005", "metrics.accuracy")),
        ("R006", signed.cell("EXP-006", "Outcome")),
        ("R006", signed.cell("EXP-003", "Notes")),
    ], codes=("R006",))
    assert r006_sheets(report) == {"Experiments"}
    # Same value stored differently (text date -> Excel date, 12.5 -> "12.5" stays a number)
    # is not a change.
    edit(signed.log, "Experiments", signed.cell("EXP-005", "metrics.accuracy"), 0.83)
    edit(signed.log, "Experiments", signed.cell("EXP-006", "Outcome"), None)
    edit(signed.log, "Experiments", signed.cell("EXP-003", "Notes"), "Q3 reference")
    edit(signed.log, "Experiments", signed.cell("EXP-004", "Date"), dt.datetime(2026, 8, 3))
    edit(signed.log, "Experiments", signed.cell("EXP-004", "Outcome"), "Selected")
    assert_findings(offline(signed.log), [], codes=("R006",))


@pytest.mark.slow
def test_deleted_signed_row_is_r006_at_the_signoff_row(signed):
    import openpyxl

    workbook = openpyxl.load_workbook(signed.log)
    workbook["Experiments"].delete_rows(7)  # EXP-006
    workbook.save(signed.log)
    report = offline(signed.log)
    assert_findings(report, [("R006", "D2")], codes=("R006",))
    assert r006_sheets(report) == {"Sign-off"}


@pytest.mark.slow
def test_unreadable_row_hashes_is_r006_at_that_cell(signed):
    edit(signed.log, "Sign-off", "E2", "{not json")
    report = offline(signed.log)
    assert_findings(report, [("R006", "E2")], codes=("R006",))
    assert r006_sheets(report) == {"Sign-off"}


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("ssh-keygen") is None,
                    reason="ssh-keygen (openssh-client) not installed")
def test_mallorys_edit_resigned_with_her_own_key_is_r006_and_r008(tmp_path):
    """validate's view of test_signatures' forgery, since .aisdp/allowed_signers is there."""
    signed = ssh_signed_project(tmp_path)
    cell = mallory_resigns(signed)
    assert_findings(offline(signed.log), {("R006", cell), ("R008", "F3")},
                    codes=("R003", "R006", "R007", "R008", "R009"))
