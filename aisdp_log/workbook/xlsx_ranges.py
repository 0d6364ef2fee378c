"""Grow the ranges of a sheet's XML over a new row: the `<dimension>`, and the data
validations, conditional formats and autofilter after `<sheetData>` (both the plain and the
x14 `<xm:sqref>` forms)."""

from __future__ import annotations

import re

from aisdp_log.workbook.xlsx_package import (
    attributes,
    format_range,
    grow_sqref,
    parse_range,
    set_attribute,
)


def grow_dimension(head: bytes, written: tuple[int, int, int, int]) -> bytes:
    """The sheet XML before `<sheetData>` with its `<dimension>` grown over `written`
    (the bounds of the written cells)."""
    found = re.search(rb"<(?:\w+:)?dimension\b[^>]*>", head)
    if found is None:
        return head
    current = parse_range(attributes(found.group()).get("ref", ""))
    grown = written if current is None else (
        min(current[0], written[0]), min(current[1], written[1]),
        max(current[2], written[2]), max(current[3], written[3]))
    if grown == current:
        return head
    return head[:found.start()] + set_attribute(found.group(), "ref", format_range(grown)) + \
        head[found.end():]


_RANGE_OWNER = re.compile(rb"<(?:\w+:)?(?:dataValidation|conditionalFormatting|autoFilter)\b"
                          rb"[^>]*>")
_X14_BLOCK = re.compile(rb"<((?:\w+:)?)(dataValidation|conditionalFormatting)\b[^>]*>.*?"
                        rb"</\1\2\s*>", re.DOTALL)
_SQREF_ELEMENT = re.compile(rb"(<(?:\w+:)?sqref\s*>)(.*?)(</(?:\w+:)?sqref\s*>)", re.DOTALL)


def grow_in(tail: bytes, row: int) -> bytes:
    """The sheet XML after `<sheetData>` with validations, conditional formats and the
    autofilter grown over `row` (both the plain and the x14 `<xm:sqref>` forms)."""
    def owner(match: re.Match) -> bytes:
        tag = match.group()
        attrs = attributes(tag)
        name = "ref" if re.match(rb"<(?:\w+:)?autoFilter", tag) else "sqref"
        if name not in attrs:
            return tag
        grown = grow_sqref(attrs[name], row)
        return tag if grown == attrs[name] else set_attribute(tag, name, grown)

    tail = _RANGE_OWNER.sub(owner, tail)

    def block(match: re.Match) -> bytes:
        return _SQREF_ELEMENT.sub(
            lambda m: m.group(1) + grow_sqref(m.group(2).decode(), row).encode() + m.group(3),
            match.group())

    return _X14_BLOCK.sub(block, tail)
