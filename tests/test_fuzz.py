"""Fuzzing the offline validator: whatever a workbook holds, `validate` returns a Report or
raises AisdpLogError (one line, exit 2), and the CLI never prints a traceback."""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import tempfile
from pathlib import Path

import pytest
from builders import BASE_ROW
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import aisdp_log
from aisdp_log.cli.main import main
from aisdp_log.errors import AisdpLogError
from aisdp_log.findings import CATALOGUE, Report

KNOWN = list(BASE_ROW) + ["Other params", "Rerun", "Reproducibility", "params.epochs",
                          "metrics.f1"]
TYPOS = ["Experiment Id ", "ExperimentID", "Random sed", "code_commit", "Outcomes", "Nots",
         "metrics.acuracy", "params.", "metrics.", "PARAMS.LR", "GPU", "", "  ", "Ünïcode 🚀"]
TRICKY_TEXT = ["", " ", "=1+1", "'quoted", "selected", "REJECTED", "2026-07-14", "14/07/2026",
               "9c1e4b7", "sha256:" + "a" * 64, "a=1; b", "1:30:00", "-0", "1e400", "nan",
               "inf", "#N/A", "<b>x</b>", "&amp;", "\x00", "x" * 300, "🚀" * 20, "\t\n"]

values = st.one_of(
    st.none(),
    st.text(max_size=40),
    st.sampled_from(TRICKY_TEXT),
    st.integers(min_value=-(2**63), max_value=2**63),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.dates(min_value=dt.date(1900, 3, 1), max_value=dt.date(9999, 12, 31)),
    st.datetimes(min_value=dt.datetime(1900, 3, 1), max_value=dt.datetime(9999, 12, 31)),
    st.timedeltas(min_value=dt.timedelta(0), max_value=dt.timedelta(days=400)),
)


@st.composite
def workbooks(draw):
    """Sheets of random headers (known, typo'd, duplicated, shuffled, missing) and cells."""
    headers = draw(st.lists(st.sampled_from(KNOWN + TYPOS), max_size=24))
    headers = draw(st.permutations(headers))
    rows = draw(st.lists(st.lists(values, min_size=len(headers), max_size=len(headers)),
                         max_size=6))
    sheet_names = draw(st.lists(st.sampled_from(
        ["Experiments", " experiments", "Metrics", "METRICS", "Reruns", "Sign-off", "Notes"]),
        min_size=0, max_size=4, unique_by=lambda s: " ".join(s.split()).casefold()))
    metrics = draw(st.lists(st.lists(values, min_size=4, max_size=4), max_size=4))
    writer = draw(st.sampled_from(["xlsxwriter", "openpyxl"]))
    return headers, rows, sheet_names, metrics, writer


def _cell(value):
    if isinstance(value, str):
        # what a spreadsheet can hold: no control characters but tab and newline, 32,767 max
        return "".join(ch for ch in value if ch in "\t\n" or ord(ch) >= 32)[:32_767]
    return value


def write(path: Path, headers, rows, sheet_names, metrics, writer) -> None:
    grids = {}
    for name in sheet_names:
        if "metrics" in name.casefold():
            grids[name] = [["Metric", "Goal", "Threshold", "Description"], *metrics]
        else:
            grids[name] = [headers, *rows]
    if writer == "xlsxwriter":
        import xlsxwriter

        # NaN and infinities become Excel error cells (#NUM!, #DIV/0!), as Excel shows them
        book = xlsxwriter.Workbook(str(path), {"nan_inf_to_errors": True,
                                               "strings_to_formulas": False,
                                               "strings_to_urls": False})
        date_format = book.add_format({"num_format": "yyyy-mm-dd hh:mm"})
        for name, grid in grids.items():
            sheet = book.add_worksheet(name)
            for r, line in enumerate(grid):
                for c, value in enumerate(line):
                    value = _cell(value)
                    if value is None:
                        continue
                    if isinstance(value, (dt.date, dt.timedelta)):
                        sheet.write_datetime(r, c, value, date_format)
                    elif isinstance(value, str):
                        sheet.write_string(r, c, value)
                    elif isinstance(value, int) and not isinstance(value, bool) \
                            and abs(value) > 2**53:
                        sheet.write_number(r, c, float(value))
                    else:
                        sheet.write(r, c, value)
        if not grids:
            book.add_worksheet("Sheet1")
        book.close()
    else:
        import openpyxl

        book = openpyxl.Workbook()
        book.remove(book.active)
        for name, grid in grids.items():
            sheet = book.create_sheet(name)
            for r, line in enumerate(grid, start=1):
                for c, value in enumerate(line, start=1):
                    value = _cell(value)
                    if isinstance(value, int) and not isinstance(value, bool) \
                            and abs(value) > 2**53:
                        value = float(value)
                    if isinstance(value, str) and value.startswith("="):
                        value = " " + value  # keep text text; formulas are tested elsewhere
                    sheet.cell(row=r, column=c, value=value)
        if not grids:
            book.create_sheet("Sheet1")
        book.save(path)


@settings(max_examples=60, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(workbooks())
def test_validate_returns_a_report_or_raises_aisdp_log_error(case):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "fuzz.xlsx"
        write(path, *case)
        try:
            report = aisdp_log.validate(path, offline=True)
        except AisdpLogError as exc:
            assert "\n" not in str(exc)
            return
        assert isinstance(report, Report)
        for finding in report.findings:
            assert finding.code in CATALOGUE
            assert finding.severity is CATALOGUE[finding.code].severity
            assert finding.row >= 1 and finding.cell.endswith(str(finding.row))
            assert len(finding.message) < 400
        # every finding appears once per (code, cell)
        assert len(set(report.codes())) == len(report.codes()) or any(
            f.code == "S001" for f in report.findings)

        stdout, stderr = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr), \
                pytest.raises(SystemExit) as exited:
            main(["validate", str(path), "--offline", "--format", "json"])
        assert exited.value.code in (0, 1, 2)
        assert "Traceback" not in stderr.getvalue()
        assert "internal error" not in stderr.getvalue()


@settings(max_examples=40, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2048), st.sampled_from([b"", b"PK\x03\x04", b"PK\x05\x06",
                                                   b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"]))
def test_random_bytes_are_refused_with_one_line(noise, magic):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "noise.xlsx"
        path.write_bytes(magic + noise)
        stderr = io.StringIO()
        with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()), \
                pytest.raises(SystemExit) as exited:
            main(["validate", str(path), "--offline"])
        assert exited.value.code == 2
        assert len(stderr.getvalue().splitlines()) == 1
        assert "internal error" not in stderr.getvalue()
