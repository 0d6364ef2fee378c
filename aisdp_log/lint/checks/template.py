"""S012: a log made by an older template than this aisdp-log writes (`template --upgrade`)."""

from __future__ import annotations

from collections.abc import Iterator

from aisdp_log import TEMPLATE_VERSION
from aisdp_log.findings import Finding
from aisdp_log.workbook.doc_props import (
    TEMPLATE_VERSION_PROPERTY,
    older_template,
    read_properties,
)

#: The finding codes this family may emit (see `aisdp_log.lint.registry`).
CODES = ("S012",)


def run(log, ctx) -> Iterator[Finding]:

    if log.path is None:
        return
    version = read_properties(log.path).get(TEMPLATE_VERSION_PROPERTY)
    if older_template(version, TEMPLATE_VERSION):
        yield log.finding_at(
            "S012", log.sheet, "A1", 1, None,
            f"made by template version {version}; this aisdp-log writes version "
            f"{TEMPLATE_VERSION}: run `aisdp-log template --upgrade {log.name}` for its new "
            "columns, validations, marks and Guide (every row and column is kept)")
