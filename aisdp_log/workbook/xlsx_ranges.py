"""Grow a worksheet's ranges over a new row, on its lxml tree and its tables' trees: tables and
their autofilters, the sheet's autofilter, data validations and conditional formats (the plain
ones and the x14 ones in `<extLst>`), and the `<dimension>`."""

from __future__ import annotations

from typing import Any

from aisdp_log.workbook.xmlpart import (
    NS_X14,
    NS_XM,
    format_range,
    grow_attribute,
    grow_sqref,
    local,
    parse_range,
    qn,
)

Bounds = tuple[int, int, int, int]


def grow_sheet_ranges(root, tables: dict[str, Any], row: int
                      ) -> tuple[bool, set[Bounds], list[str]]:
    """Stretch what ends on the row above `row` down over it. Returns whether the sheet's
    tree changed, the ranges of the tables and autofilter that grew (as they were: defined
    names over them grow too), and the table parts that changed. A table with a totals row
    does not grow (its last row is the totals)."""
    grown: set[Bounds] = set()
    tables_grown = []
    for part, table in tables.items():
        bounds = parse_range(table.get("ref", ""))
        totals = table.get("totalsRowCount", "0")
        if bounds is None or bounds[3] != row - 1 or bounds[1] >= row or \
                (totals.isdigit() and int(totals) > 0):
            continue
        grown.add(bounds)
        ref = format_range((bounds[0], bounds[1], bounds[2], row))
        table.set("ref", ref)
        for autofilter in table.findall(qn("autoFilter")):
            autofilter.set("ref", ref)
        tables_grown.append(part)
    changed = False
    for element in root:
        name = local(element)
        if name == "autoFilter":
            bounds = parse_range(element.get("ref", ""))
            if grow_attribute(element, "ref", row) and bounds is not None:
                grown.add(bounds)
                changed = True
        elif name == "conditionalFormatting":
            changed |= grow_attribute(element, "sqref", row)
        elif name == "dataValidations":
            for validation in element:
                changed |= grow_attribute(validation, "sqref", row)
    for sqref in root.iter(qn("sqref", NS_XM)):
        if sqref.getparent().tag in (qn("conditionalFormatting", NS_X14),
                                     qn("dataValidation", NS_X14)):
            text = (sqref.text or "").strip()
            grown_text = grow_sqref(text, row)
            if grown_text != text:
                sqref.text = grown_text
                changed = True
    return changed, grown, tables_grown


def grow_dimension(dimension, written: Bounds) -> None:
    """The `<dimension>` element (if any) grown over `written`, the bounds of written cells."""
    if dimension is None:
        return
    current = parse_range(dimension.get("ref", ""))
    grown = written if current is None else (
        min(current[0], written[0]), min(current[1], written[1]),
        max(current[2], written[2]), max(current[3], written[3]))
    if grown != current:
        dimension.set("ref", format_range(grown))
