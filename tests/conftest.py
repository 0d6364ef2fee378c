"""Shared fixtures: a freshly generated template, and that template filled in the way a person
fills it (openpyxl writing into the table rows, as Excel would)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest


def fill_workbook(source: Path, target: Path, rows: list[dict]) -> Path:
    """Copy the workbook `source` to `target` with `rows` typed into the Experiments sheet
    from row 2, each value under the column whose header is its key (dates as real dates)."""
    import openpyxl

    workbook = openpyxl.load_workbook(source)
    sheet = workbook["Experiments"]
    headers = {cell.value: cell.column for cell in sheet[1]}
    for number, values in enumerate(rows, start=2):
        for header, value in values.items():
            cell = sheet.cell(row=number, column=headers[header])
            cell.value = value
            if isinstance(value, (dt.date, dt.datetime)):
                cell.number_format = "yyyy-mm-dd"
    workbook.save(target)
    return target


@pytest.fixture
def template_path(tmp_path: Path) -> Path:
    """The default template (no config), freshly written."""
    from aisdp_log.template import write_template

    return write_template(tmp_path / "experiment-log.xlsx")


@pytest.fixture
def fill_template(tmp_path: Path, template_path: Path):
    """A function rows -> path of a copy of the default template holding those rows."""
    counter = iter(range(1000))

    def fill(rows: list[dict], name: str | None = None) -> Path:
        target = tmp_path / (name or f"filled-{next(counter)}.xlsx")
        return fill_workbook(template_path, target, rows)

    return fill
