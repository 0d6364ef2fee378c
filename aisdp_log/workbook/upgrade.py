"""`template --upgrade LOG`: bring a log made by an older template to the current one.

What it adds, through the safe writer (every row, every cell and every column a person made
keeps its bytes): the standard columns the log lacks, in `Experiments` and in `Metrics`
(`Tolerance`, template version 3) (after the sheet's last column, inside its table when the
table ends there), the template's data validation and input message on each standard column
that has none, the conditional formats that mark empty required cells (and a selected or
rejected row without Notes), the current `Guide` sheet, and the template version property.
Declared `params.*` / `metrics.*` columns are the team's own: none is added."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lxml import etree

from aisdp_log import TEMPLATE_VERSION, __version__, spec
from aisdp_log.errors import WriteRefused
from aisdp_log.spec import column_letters
from aisdp_log.workbook.doc_props import (
    TEMPLATE_VERSION_PROPERTY,
    TOOL_VERSION_PROPERTY,
    package_properties,
    set_properties,
)
from aisdp_log.workbook.template import build_template, missing_value_criteria, template_columns
from aisdp_log.workbook.writer import (
    ensure_sheet,
    find_sheet,
    header_columns,
    open_workbook_for_update,
)
from aisdp_log.workbook.xlsx_package import Package
from aisdp_log.workbook.xlsx_sheet import Sheet
from aisdp_log.workbook.xlsx_workbook import Workbook
from aisdp_log.workbook.xmlpart import (
    NS_X14,
    NS_XM,
    escape_ooxml,
    format_range,
    graft,
    local,
    parse_range,
    qn,
    set_inline_string,
    sub,
)

GUIDE_TITLE = "Experiment log: how to fill it in"
MISSING_DXF = b'<dxf><fill><patternFill><bgColor rgb="FFFFEB9C"/></patternFill></fill></dxf>'


@dataclass
class UpgradeResult:
    log: str
    from_version: str | None
    to_version: str
    columns: list[str] = field(default_factory=list)
    validations: list[str] = field(default_factory=list)
    marks: list[str] = field(default_factory=list)
    guide: str = ""

    def lines(self) -> list[str]:
        was = f"template version {self.from_version}" if self.from_version else \
            "no template version"
        return [f"upgraded {self.log} from {was} to {self.to_version}",
                "  columns added: " + (", ".join(self.columns) or "none"),
                "  validations and input messages added: " + (", ".join(self.validations)
                                                               or "none"),
                "  missing-value marks added: " + (", ".join(self.marks) or "none"),
                f"  Guide: {self.guide}"]


def upgrade_log(path: Path | str, *, force: bool = False) -> UpgradeResult:
    """Upgrade the log at `path` in place (see the module docstring). Raises WriteRefused /
    WorkbookError with a one-line reason."""

    template = Workbook(Package(build_template(), "the template"))
    with open_workbook_for_update(path, force=force) as wb:
        ws = find_sheet(wb, spec.SHEET_EXPERIMENTS)
        if ws is None:
            raise WriteRefused(f"{path}: has no sheet {spec.SHEET_EXPERIMENTS!r} to upgrade")
        result = UpgradeResult(str(path), package_properties(wb.package).get(
            TEMPLATE_VERSION_PROPERTY), TEMPLATE_VERSION)
        columns, last_row = _add_columns(
            wb, ws, template["Experiments"], [c.header for c in template_columns()],
            [(c.header, c.width) for c in spec.STANDARD_COLUMNS], 301, result)
        result.columns = [c.header for c in spec.STANDARD_COLUMNS
                          if c.header in result.columns]
        specs = list(spec.STANDARD_COLUMNS) + [
            spec.metric_column(header[len(spec.METRICS_PREFIX):])
            for header in columns if header.startswith(spec.METRICS_PREFIX)]
        letters = {c.key: column_letters(columns[spec.normalise_header(c.header)])
                   for c in specs}
        formulas = {(f.text or "").strip() for f in ws.tree().iter(qn("formula"))}
        dxf = None
        for column in specs:
            criteria = missing_value_criteria(column, letters)
            if criteria is None or criteria in formulas:
                continue
            if dxf is None:
                dxf = wb.styles.dxf_index(MISSING_DXF)
                if dxf is None:
                    break
            letter = letters[column.key]
            priority = max((int(r.get("priority")) for r in ws.tree().iter(qn("cfRule"))
                            if (r.get("priority") or "").isdigit()), default=0) + 1
            block = ws.add_element("conditionalFormatting",
                                   {"sqref": f"{letter}2:{letter}{last_row}"})
            rule = sub(block, "cfRule", {"type": "expression", "dxfId": str(dxf),
                                         "priority": str(priority)})
            sub(rule, "formula").text = criteria
            result.marks.append(column.header)
        metrics = find_sheet(wb, spec.SHEET_METRICS)
        if metrics is not None:
            _add_columns(wb, metrics, template[spec.SHEET_METRICS], list(spec.METRICS_COLUMNS),
                         [(h, 11) for h in spec.METRICS_COLUMNS], 11, result,
                         prefix=f"{spec.SHEET_METRICS} ")
        result.guide = _replace_guide(wb, template)
        set_properties(wb.package, {TOOL_VERSION_PROPERTY: __version__,
                                    TEMPLATE_VERSION_PROPERTY: TEMPLATE_VERSION})
    return result


def _add_columns(wb: Workbook, ws: Sheet, source: Sheet, source_headers: list[str],
                 wanted: list[tuple[str, int]], min_rows: int, result: UpgradeResult,
                 prefix: str = "") -> tuple[dict[str, int], int]:
    """Add the `wanted` (header, width) columns `ws` lacks after its last header (inside its
    table when the table ends there), and the template sheet `source`'s validation on each
    wanted column none covers; both recorded in `result`. Returns (normalised header ->
    column, new ones included; the last row the ranges cover)."""
    columns = header_columns(ws)
    last = max(columns.values(), default=0)
    missing = [(h, w) for h, w in wanted if spec.normalise_header(h) not in columns]
    for offset, (header, _) in enumerate(missing, start=1):
        columns[spec.normalise_header(header)] = last + offset
    last_row = max(ws.max_row, _table_end(ws), min_rows)
    _grow_table(ws, [h for h, _ in missing], last_column=last)
    added = _missing_validations(ws, _validations_by_column(source.tree()),
                                 [spec.normalise_header(h) for h in source_headers],
                                 {spec.normalise_header(h): h for h, _ in wanted}, columns,
                                 last_row)
    result.validations += [prefix + header for header in added]
    if missing:
        ensure_sheet(wb, ws.title, [h for h, _ in missing], widths=[w for _, w in missing])
        result.columns += [prefix + header for header, _ in missing]
    return columns, last_row


def _missing_validations(ws: Sheet, template_validations: dict[int, Any],
                         template_headers: list[str], wanted: dict[str, str],
                         columns: dict[str, int], last_row: int) -> list[str]:
    """Add the template's validation (and input message) to each `wanted` column
    (normalised header -> header) the sheet has and no validation covers; the headers."""
    covered = _validated_columns(ws.tree())
    added = []
    for normalised, header in wanted.items():
        index = columns.get(normalised)
        position = template_headers.index(normalised) + 1 \
            if normalised in template_headers else None
        source = template_validations.get(position) if position else None
        if index is None or index in covered or source is None:
            continue
        validations = ws.root_for_edit().find(qn("dataValidations"))
        if validations is None:
            validations = ws.add_element("dataValidations", {"count": "0"})
        letter = column_letters(index)
        graft(validations, source).set("sqref", f"{letter}2:{letter}{last_row}")
        validations.set("count", str(len([e for e in validations
                                          if local(e) == "dataValidation"])))
        added.append(header)
    return added


def _validations_by_column(root) -> dict[int, Any]:
    """1-based column -> the `<dataValidation>` element whose range starts at its row 2."""
    found: dict[int, Any] = {}
    for validation in root.iter(qn("dataValidation")):
        for item in validation.get("sqref", "").split():
            bounds = parse_range(item)
            if bounds is not None and bounds[0] == bounds[2]:
                found.setdefault(bounds[0], validation)
    return found


def _validated_columns(root) -> set[int]:
    """Columns whose row 2 a validation covers (also the x14 ones, lists from a sheet)."""
    covered = set()
    sqrefs = [v.get("sqref", "") for v in root.iter(qn("dataValidation"))]
    sqrefs += [s.text or "" for s in root.iter(qn("sqref", NS_XM))
               if s.getparent().tag == qn("dataValidation", NS_X14)]
    for sqref in sqrefs:
        for item in sqref.split():
            bounds = parse_range(item)
            if bounds is not None and bounds[1] <= 2 <= bounds[3]:
                covered |= set(range(bounds[0], bounds[2] + 1))
    return covered


def _table_end(ws: Sheet) -> int:
    ends = [parse_range(t.get("ref", "")) for t in ws.tables().values()]
    return max([b[3] for b in ends if b is not None], default=0)


def _grow_table(ws: Sheet, headers: list[str], *, last_column: int) -> None:
    """Widen the table whose header row is row 1 and whose last column is the sheet's last
    header column (`last_column`) over the new columns (a `tableColumn` each)."""
    if not headers:
        return
    for part, table in ws.tables().items():
        bounds = parse_range(table.get("ref", ""))
        columns = table.find(qn("tableColumns"))
        if bounds is None or bounds[1] != 1 or bounds[2] != last_column or columns is None:
            continue
        existing = [c for c in columns if local(c) == "tableColumn"]
        names = {c.get("name", "").casefold() for c in existing}
        if any(h.casefold() in names for h in headers):
            continue
        ids = [int(c.get("id")) for c in existing if (c.get("id") or "").isdigit()]
        ref = format_range((bounds[0], bounds[1], bounds[2] + len(headers), bounds[3]))
        table.set("ref", ref)
        for autofilter in table.findall(qn("autoFilter")):
            autofilter.set("ref", ref)
        for number, header in enumerate(headers, start=1):
            sub(columns, "tableColumn", {"id": str(max(ids, default=0) + number),
                                         "name": header})
        columns.set("count", str(len(existing) + len(headers)))
        ws.book.package.touch(part)
        return


def _replace_guide(wb: Workbook, template: Workbook) -> str:
    """Write the template's Guide sheet into the log (its styles copied over, its text as
    inline strings). A `Guide` sheet that is not the template's is left alone."""
    existing = find_sheet(wb, spec.SHEET_GUIDE)
    if existing is not None:
        title = existing.value(1, 1)
        if not (isinstance(title, str) and title.strip() == GUIDE_TITLE):
            return f"kept: sheet {existing.title!r} is not the template's Guide"
    source = template[spec.SHEET_GUIDE]
    guide = copy.deepcopy(template.package.xml(source.part))
    mapped: dict[int, int] = {}
    for cell in guide.iter(qn("c")):
        style = cell.get("s", "0")
        if style.isdigit() and style != "0":
            if int(style) not in mapped:
                mapped[int(style)] = wb.styles.import_xf(template.styles, int(style))
            if mapped[int(style)]:
                cell.set("s", str(mapped[int(style)]))
            else:
                del cell.attrib["s"]
        value = cell.find(qn("v"))
        if cell.get("t") == "s" and value is not None:
            text = template.shared_strings()[int(value.text or "0")]
            cell.remove(value)
            set_inline_string(cell, escape_ooxml(text))
    data = etree.tostring(guide, xml_declaration=True, encoding="UTF-8", standalone=True)
    if existing is None:
        existing = wb.create_sheet(spec.SHEET_GUIDE)
        wb.package.write(existing.part, data)
        return "added"
    wb.package.write(existing.part, data)
    return "replaced by the current one"
