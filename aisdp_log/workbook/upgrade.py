"""`template --upgrade LOG`: bring a log made by an older template to the current one.

What it adds, through the safe writer (every row, every cell and every column a person made
keeps its bytes): the standard columns the log lacks, in `Experiments` and in `Metrics`
(`Tolerance`, template version 3) (after the sheet's last column, inside its table when the
table ends there), the template's data validation and input message on each standard column
that has none, the conditional formats that mark empty required cells (and a selected or
rejected row without Notes), the current `Guide` sheet, and the template version property.
Declared `params.*` / `metrics.*` columns are the team's own: none is added."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from aisdp_log import TEMPLATE_VERSION, __version__, spec
from aisdp_log.errors import WriteRefused
from aisdp_log.spec import column_letters
from aisdp_log.workbook.comments import insert_in_worksheet
from aisdp_log.workbook.doc_props import (
    TEMPLATE_VERSION_PROPERTY,
    TOOL_VERSION_PROPERTY,
    package_properties,
    set_properties,
)
from aisdp_log.workbook.template import (
    build_template,
    missing_value_criteria,
    template_columns,
)
from aisdp_log.workbook.writer import (
    ensure_sheet,
    escape_ooxml,
    find_sheet,
    header_columns,
    open_workbook_for_update,
)
from aisdp_log.workbook.xlsx_package import (
    REL_TABLE,
    Package,
    attributes,
    escape_xml,
    format_range,
    insert_before_close,
    locate_parts,
    matched,
    parse_range,
    read_rels,
    set_attribute,
    unescape_xml,
)
from aisdp_log.workbook.xlsx_sheet import Sheet
from aisdp_log.workbook.xlsx_styles import Styles
from aisdp_log.workbook.xlsx_workbook import Workbook

GUIDE_TITLE = "Experiment log: how to fill it in"
MISSING_DXF = b'<dxf><fill><patternFill><bgColor rgb="FFFFEB9C"/></patternFill></fill></dxf>'
_VALIDATION = re.compile(rb"<(?:\w+:)?dataValidation\b[^>]*?(?:/>|>.*?"
                         rb"</(?:\w+:)?dataValidation\s*>)", re.DOTALL)
_CELL = re.compile(rb"<c\b([^>]*?)(/>|>(.*?)</c>)", re.DOTALL)


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
    template_sheet = template.package.read(template["Experiments"].part)
    template_validations = _validations_by_column(template_sheet)
    template_headers = [spec.normalise_header(c.header) for c in _template_order()]
    with open_workbook_for_update(path, force=force) as wb:
        ws = find_sheet(wb, spec.SHEET_EXPERIMENTS)
        if ws is None:
            raise WriteRefused(f"{path}: has no sheet {spec.SHEET_EXPERIMENTS!r} to upgrade")
        result = UpgradeResult(str(path), package_properties(wb.package).get(
            TEMPLATE_VERSION_PROPERTY), TEMPLATE_VERSION)
        reader = Sheet(wb, ws.entry)  # read-only view: `ws` itself loads after the edits
        columns = header_columns(reader)
        next_column = max(columns.values(), default=0) + 1
        missing = [c for c in spec.STANDARD_COLUMNS
                   if spec.normalise_header(c.header) not in columns]
        for column in missing:
            columns[spec.normalise_header(column.header)] = next_column
            next_column += 1
        last_row = max(reader.max_row, _table_end(wb, ws.part), 301)
        letters = {c.key: column_letters(columns[spec.normalise_header(c.header)])
                   for c in spec.STANDARD_COLUMNS}
        _grow_table(wb, ws.part, [c.header for c in missing], last_column=next_column - 1
                    - len(missing))
        text, added = _missing_validations(
            wb.package.read(ws.part), template_validations, template_headers,
            {spec.normalise_header(c.header): c.header for c in spec.STANDARD_COLUMNS},
            columns, last_row)
        result.validations += added
        specs = list(spec.STANDARD_COLUMNS) + [
            spec.metric_column(header[len(spec.METRICS_PREFIX):])
            for header in columns if header.startswith(spec.METRICS_PREFIX)]
        for column in specs:
            letters.setdefault(column.key, column_letters(
                columns[spec.normalise_header(column.header)]))
        dxf = None
        for column in specs:
            criteria = missing_value_criteria(column, letters)
            if criteria is None or escape_xml(criteria) in text or criteria.encode() in text:
                continue
            if dxf is None:
                dxf = wb.styles.dxf_index(MISSING_DXF)
                if dxf is None:
                    break
            letter = letters[column.key]
            priority = max((int(p) for p in re.findall(rb'\spriority="(\d+)"', text)),
                           default=0) + 1
            text = insert_in_worksheet(text, "conditionalFormatting", (
                f'<conditionalFormatting sqref="{letter}2:{letter}{last_row}"><cfRule '
                f'type="expression" dxfId="{dxf}" priority="{priority}"><formula>'
                ).encode() + escape_xml(criteria) + b"</formula></cfRule></conditionalFormatting>")
            result.marks.append(column.header)
        wb.package.write(ws.part, text)
        if missing:
            ensure_sheet(wb, ws.title, [c.header for c in missing],
                         widths=[c.width for c in missing])
            result.columns = [c.header for c in missing]
        metrics = find_sheet(wb, spec.SHEET_METRICS)
        if metrics is not None:
            result.columns += _upgrade_metrics(wb, metrics, template, result)
        result.guide = _replace_guide(wb, template)
        set_properties(wb.package, {TOOL_VERSION_PROPERTY: __version__,
                                    TEMPLATE_VERSION_PROPERTY: TEMPLATE_VERSION})
    return result


def _upgrade_metrics(wb: Workbook, metrics, template: Workbook,
                     result: UpgradeResult) -> list[str]:
    """Add the Metrics columns the sheet lacks (`Tolerance`, new in template version 3) after
    its last header, inside its table when the table ends there, and the template's
    validations on its columns; returns the added columns as `Metrics <header>`."""
    reader = Sheet(wb, metrics.entry)
    columns = header_columns(reader)
    next_column = max(columns.values(), default=0) + 1
    missing = [h for h in spec.METRICS_COLUMNS if spec.normalise_header(h) not in columns]
    for header in missing:
        columns[spec.normalise_header(header)] = next_column
        next_column += 1
    _grow_table(wb, metrics.part, missing, last_column=next_column - 1 - len(missing))
    source = template.package.read(template[spec.SHEET_METRICS].part)
    metrics_text, added = _missing_validations(
        wb.package.read(metrics.part), _validations_by_column(source),
        [spec.normalise_header(h) for h in spec.METRICS_COLUMNS],
        {spec.normalise_header(h): h for h in spec.METRICS_COLUMNS},
        columns, max(reader.max_row, _table_end(wb, metrics.part), 11))
    wb.package.write(metrics.part, metrics_text)
    result.validations += [f"{spec.SHEET_METRICS} {header}" for header in added]
    if missing:
        ensure_sheet(wb, metrics.title, missing, widths=[11] * len(missing))
    return [f"{spec.SHEET_METRICS} {header}" for header in missing]


def _missing_validations(text: bytes, template_validations: dict[int, bytes],
                         template_headers: list[str], wanted: dict[str, str],
                         columns: dict[str, int], last_row: int) -> tuple[bytes, list[str]]:
    """Sheet XML `text` with the template's validation (and input message) added to each
    `wanted` column (normalised header -> header) the log has and no validation covers."""
    covered = _validated_columns(text)
    added, headers = [], []
    for normalised, header in wanted.items():
        index = columns.get(normalised)
        position = template_headers.index(normalised) + 1 \
            if normalised in template_headers else None
        source = template_validations.get(position) if position else None
        if index is None or index in covered or source is None:
            continue
        letter = column_letters(index)
        added.append(set_attribute(source, "sqref", f"{letter}2:{letter}{last_row}"))
        headers.append(header)
    return _add_validations(text, added), headers


def _template_order() -> list[spec.ColumnSpec]:

    return template_columns()


def _validations_by_column(text: bytes) -> dict[int, bytes]:
    """1-based column -> the `<dataValidation>` element whose range starts at its row 2."""
    found: dict[int, bytes] = {}
    for match in _VALIDATION.finditer(text):
        head = match.group()[:match.group().index(b">") + 1]
        for item in attributes(head).get("sqref", "").split():
            bounds = parse_range(item)
            if bounds is not None and bounds[0] == bounds[2]:
                found.setdefault(bounds[0], match.group())
    return found


def _validated_columns(text: bytes) -> set[int]:
    covered = set()
    for match in _VALIDATION.finditer(text):
        head = match.group()[:match.group().index(b">") + 1]
        for item in attributes(head).get("sqref", "").split():
            bounds = parse_range(item)
            if bounds is not None and bounds[1] <= 2 <= bounds[3]:
                covered |= set(range(bounds[0], bounds[2] + 1))
    sqrefs = re.findall(rb"<(?:\w+:)?sqref\s*>(.*?)</(?:\w+:)?sqref\s*>", text, re.DOTALL)
    for sqref in sqrefs:  # x14 validations (lists from another sheet)
        for item in sqref.decode(errors="replace").split():
            bounds = parse_range(item)
            if bounds is not None and bounds[1] <= 2 <= bounds[3]:
                covered |= set(range(bounds[0], bounds[2] + 1))
    return covered


def _add_validations(text: bytes, elements: list[bytes]) -> bytes:
    if not elements:
        return text
    block = re.search(rb"<(?:\w+:)?dataValidations\b[^>]*?(/?)>", text)
    if block is None:
        return insert_in_worksheet(text, "dataValidations", b'<dataValidations count="'
                                   + str(len(elements)).encode() + b'">' + b"".join(elements)
                                   + b"</dataValidations>")
    text = insert_before_close(text, b"dataValidations", b"".join(elements))
    block = matched(re.search(rb"<(?:\w+:)?dataValidations\b[^>]*>", text),
                    "a worksheet's <dataValidations>")
    count = len(_VALIDATION.findall(text[block.start():]))
    return text[:block.start()] + set_attribute(block.group(), "count", str(count)) + \
        text[block.end():]


def _tables(wb: Workbook, part: str) -> list[str]:
    return [rel.target for rel in read_rels(wb.package, part)
            if rel.rel_type == REL_TABLE and wb.package.has(rel.target)]


def _table_end(wb: Workbook, part: str) -> int:
    ends = [0]
    for table in _tables(wb, part):
        head = re.search(rb"<(?:\w+:)?table\b[^>]*>", wb.package.read(table))
        bounds = parse_range(attributes(head.group()).get("ref", "")) if head else None
        if bounds:
            ends.append(bounds[3])
    return max(ends)


def _grow_table(wb: Workbook, part: str, headers: list[str], *, last_column: int) -> None:
    """Widen the table whose header row is row 1 and whose last column is the sheet's last
    header column (`last_column`) over the new columns (a `tableColumn` each)."""
    if not headers:
        return
    for table in _tables(wb, part):
        text = wb.package.read(table)
        head = re.search(rb"<(?:\w+:)?table\b[^>]*>", text)
        bounds = parse_range(attributes(head.group()).get("ref", "")) if head else None
        if head is None or bounds is None or bounds[1] != 1 or bounds[2] != last_column:
            continue
        columns = re.search(rb"<(?:\w+:)?tableColumns\b[^>]*>", text)
        if columns is None:
            continue
        ids = [int(i) for i in re.findall(rb"<(?:\w+:)?tableColumn\b[^>]*?\sid=\"(\d+)\"", text)]
        names = {unescape_xml(n).casefold() for n in
                 re.findall(rb"<(?:\w+:)?tableColumn\b[^>]*?\sname=\"([^\"]*)\"", text)}
        if any(h.casefold() in names for h in headers):
            continue
        ref = format_range((bounds[0], bounds[1], bounds[2] + len(headers), bounds[3]))
        entries = b"".join(b'<tableColumn id="' + str(max(ids, default=0) + n).encode()
                           + b'" name="' + escape_xml(h, attribute=True) + b'"/>'
                           for n, h in enumerate(headers, start=1))
        text = text[:head.start()] + set_attribute(head.group(), "ref", ref) + \
            text[head.end():]
        text = re.sub(rb"(<(?:\w+:)?autoFilter\b[^>]*?\sref=\")[^\"]*", rb"\g<1>" +
                      ref.encode(), text, count=1)
        text = insert_before_close(text, b"tableColumns", entries)
        columns = matched(re.search(rb"<(?:\w+:)?tableColumns\b[^>]*>", text),
                          f"{wb.package.name}: <tableColumns> in {table}")
        count = len(re.findall(rb"<(?:\w+:)?tableColumn\b", text))
        text = text[:columns.start()] + set_attribute(columns.group(), "count", str(count)) + \
            text[columns.end():]
        wb.package.write(table, text)
        return


def _replace_guide(wb: Workbook, template: Workbook) -> str:
    """Write the template's Guide sheet into the log (its styles copied over, its text as
    inline strings). A `Guide` sheet that is not the template's is left alone."""
    existing = find_sheet(wb, spec.SHEET_GUIDE)
    if existing is not None:
        title = Sheet(wb, existing.entry).value(1, 1)
        if not (isinstance(title, str) and title.strip() == GUIDE_TITLE):
            return f"kept: sheet {existing.title!r} is not the template's Guide"
    source_part = template[spec.SHEET_GUIDE].part
    source_styles = Styles(template.package, locate_parts(template.package).styles)
    strings = template.shared_strings()
    mapped: dict[int, int] = {}

    def cell(match: re.Match) -> bytes:
        attrs = attributes(b"<c" + match.group(1) + b">")
        style = attrs.get("s", "0")
        head = b'<c r="' + attrs.get("r", "").encode() + b'"'
        if style.isdigit() and style != "0":
            index = int(style)
            if index not in mapped:
                mapped[index] = wb.styles.import_xf(source_styles, index)
            if mapped[index]:
                head += b' s="' + str(mapped[index]).encode() + b'"'
        inner = match.group(3) or b""
        value = re.search(rb"<v>(.*?)</v>", inner, re.DOTALL)
        if attrs.get("t") == "s" and value is not None:

            text = escape_ooxml(strings[int(value.group(1))])
            space = b' xml:space="preserve"' if text != text.strip() or "\n" in text else b""
            return head + b' t="inlineStr"><is><t' + space + b">" + escape_xml(text) + \
                b"</t></is></c>"
        return head + b"/>" if value is None else head + b">" + inner + b"</c>"

    xml = _CELL.sub(cell, template.package.read(source_part))
    if existing is None:
        existing = wb.create_sheet(spec.SHEET_GUIDE)
        wb.package.write(existing.part, xml)
        return "added"
    wb.package.write(existing.part, xml)
    return "replaced by the current one"
