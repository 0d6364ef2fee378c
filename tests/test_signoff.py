"""`review --sign`: the Sign-off row it appends (row hashes of the reviewed rows), the rows it
never changes, the changes the next review reports. The R006 findings `validate` reports once a
signed row is edited are in test_checks_signoff.py."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from builders import libreoffice_convert, needs_soffice, row, write_log
from signoffs import SIGNER, edit, read_signoffs_of, signed_project
from test_review import _text, make_project

from aisdp_log.cli.main import main
from aisdp_log.lint.runner import validate
from aisdp_log.review.write import write_review
from aisdp_log.signing.signoff import canonical
from aisdp_log.workbook.reader import load_log


def r006(log: Path) -> list[tuple[str, str, str]]:
    """(code, sheet, cell) of every R006, from the offline validator (workbook only)."""
    report = validate(log, offline=True)
    return [(f.code, f.sheet, f.cell) for f in report.findings if f.code == "R006"]


@pytest.fixture
def signed(tmp_path: Path):
    """The review project with 2026-Q3 reviewed and signed."""
    return signed_project(tmp_path)


def test_canonical_text_ignores_how_a_value_was_stored():
    assert canonical(12.0) == canonical(12) == "12"
    assert canonical(0.1 + 0.2) == canonical(0.3)  # a re-save keeps 15 significant digits
    assert canonical(dt.datetime(2026, 7, 14)) == canonical(dt.date(2026, 7, 14)) == "2026-07-14"
    assert canonical("two\r\nlines  ") == canonical("two\nlines") == "two\nlines"
    assert canonical(None) is None and canonical("   ") is None
    assert canonical(True) == "true"


@pytest.mark.slow
def test_sign_appends_a_signoff_row_with_row_hashes(signed):
    [record] = read_signoffs_of(signed.log)
    # without <email>, the principal is git's user.email
    assert record.period == "2026-Q3" and record.name_and_role == f"{SIGNER} <test@example.com>"
    assert record.experiment_ids == ["EXP-003", "EXP-004", "EXP-005", "EXP-006"]
    assert dt.datetime.strptime(record.signed_at, "%Y-%m-%dT%H:%M:%SZ")
    entry = record.hashes["EXP-004"]
    assert len(entry["row"]) == 64 and entry["outcome"] == "selected"
    assert "hypothesis" in entry["cells"] and "reproducibility" not in entry["cells"]
    assert "rerun" not in entry["cells"]
    # A fresh sign-off validates clean.
    assert r006(signed.log) == []


@pytest.mark.slow
def test_signing_never_changes_the_rows(tmp_path):
    project = make_project(tmp_path)
    before = experiment_values(project.log)
    write_review(project.log, output_dir=tmp_path / "out", sign=SIGNER)
    assert experiment_values(project.log) == before


def experiment_values(path: Path) -> list[list]:
    log = load_log(path)
    try:
        return [[log.parse(r, c) for c in log.table.columns] for r in log.rows]
    finally:
        log.workbook.close()


@pytest.mark.slow
def test_a_new_signed_review_accepts_the_change_and_reports_it(signed, tmp_path):
    cell = signed.cell("EXP-006", "Outcome")
    edit(signed.log, "Experiments", cell, "rejected")
    edit(signed.log, "Experiments", signed.cell("EXP-006", "Notes"), "below EXP-004")
    result = write_review(signed.log, output_dir=tmp_path / "again", sign="Ben Ode, QA lead")
    changes = result.review.changes
    assert changes.last_signoff.name_and_role == f"{SIGNER} <test@example.com>"
    assert [(c.experiment_id, c.headers) for c in changes.changed] == \
        [("EXP-006", ["notes", "outcome"])]
    assert [(c.old_outcome, c.new_outcome) for c in changes.outcome_changes] == \
        [(None, "rejected")]
    markdown = result.markdown_path.read_text()
    assert "- Changed signed rows (1): EXP-006: notes, outcome" in markdown
    assert "- Changed outcomes (1): EXP-006: undecided → rejected" in markdown
    assert "Signed by Ben Ode, QA lead &lt;test@example.com&gt; at" in \
        _text(result.html_path.read_text())
    # The second sign-off is the reference now.
    assert r006(signed.log) == []


@pytest.mark.slow
def test_changes_since_last_review_lists_new_rows(tmp_path):
    project = make_project(tmp_path)
    write_review(project.log, period="2026-Q2", output_dir=tmp_path / "q2", sign=SIGNER)
    result = write_review(project.log, output_dir=tmp_path / "q3")
    assert result.review.changes.new_ids == ["EXP-003", "EXP-004", "EXP-005", "EXP-006"]
    markdown = result.markdown_path.read_text()
    assert "Last signed review: 2026-Q2 signed by Ana Ruiz, Head of ML " \
        "&lt;test@example.com&gt; at" in markdown
    assert "- New rows (4): EXP-003, EXP-004, EXP-005, EXP-006" in markdown
    assert "- Changed signed rows (0): none" in markdown


@pytest.mark.slow
@needs_soffice
def test_libreoffice_resave_keeps_the_signature(signed, tmp_path):
    resaved = libreoffice_convert(signed.log, "xlsx", tmp_path / "resaved", tmp_path / "lo")
    assert resaved.read_bytes() != signed.log.read_bytes()
    assert r006(resaved) == []


def test_bad_signer_is_a_one_line_error_and_nothing_is_written(tmp_path, capsys):
    log = write_log(tmp_path / "log.xlsx", [row()])
    before = log.read_bytes()
    with pytest.raises(SystemExit) as exit_info:
        main(["review", str(log), "-o", str(tmp_path), "--sign", "Ana"])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.startswith("aisdp-log: error: --sign 'Ana'")
    assert log.read_bytes() == before


def test_signing_refused_while_the_log_is_open_in_libreoffice(tmp_path, capsys):
    log = write_log(tmp_path / "log.xlsx", [row()])
    (tmp_path / ".~lock.log.xlsx#").write_text(",Ana,ana,host,26.11.2026 09:00,file;")
    with pytest.raises(SystemExit) as exit_info:
        main(["review", str(log), "-o", str(tmp_path / "out"), "--sign", SIGNER])
    assert exit_info.value.code == 2
    assert "open in LibreOffice" in capsys.readouterr().err
    assert read_signoffs_of(log) == []
