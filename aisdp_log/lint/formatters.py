"""Report formatters: text (for people), json (documented in docs/), github (annotations)."""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Callable
from itertools import groupby

from aisdp_log.findings import Report, Severity

_COLOURS = {"error": "\033[31m", "warning": "\033[33m", "dim": "\033[2m", "bold": "\033[1m",
            "reset": "\033[0m"}


#: C0 and C1 control characters: cell text (IDs, headers, sheet names) must not move the cursor,
#: retitle the window or break a report line on the reader's terminal.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _inert(text: str) -> str:
    """`text` with every control character shown escaped (`\\x1b`), as text for a terminal."""
    return _CONTROL.sub(lambda match: repr(match.group())[1:-1], text)


def use_colour(stream=None) -> bool:
    """Colour only on a terminal, and never when NO_COLOR is set (https://no-color.org)."""
    if os.environ.get("NO_COLOR"):
        return False
    stream = stream or sys.stdout
    return hasattr(stream, "isatty") and stream.isatty()


def format_text(report: Report, colour: bool = False) -> str:
    def paint(text: str, style: str) -> str:
        return f"{_COLOURS[style]}{text}{_COLOURS['reset']}" if colour else text

    lines = []
    ordered = sorted(report.findings, key=lambda f: f.sort_key)
    for (sheet, row), grouped in groupby(ordered, key=lambda f: (f.sheet, f.row)):
        group = list(grouped)
        ids = {f.experiment_id for f in group if f.experiment_id}
        label = f"{sheet} row {row}" + (f" ({', '.join(sorted(ids))})" if ids else "")
        lines.append(paint(_inert(label), "bold"))
        for f in group:
            where = _inert(f"{f.sheet}!{f.cell}")
            severity = paint(f"{f.severity.value:<7}", f.severity.value)
            lines.append(f"  {where:<16} {f.code}  {severity}  {_inert(f.message)}")
    errors, warnings = report.errors, report.warnings
    summary = _inert(_summary(report))
    if lines:
        lines.append("")
    lines.append(paint(_inert(f"config: {report.config or 'defaults'}"), "dim"))
    style = "error" if errors else ("warning" if warnings else "bold")
    lines.append(paint(summary, style) if (errors or warnings) else summary + " - ok")
    if report.coverage is not None:
        lines.append(_inert(report.coverage.line()))
    return "\n".join(lines)


def _summary(report: Report) -> str:
    errors, warnings = report.errors, report.warnings
    return (f"{report.log}: {errors} error{'s' * (errors != 1)}, "
            f"{warnings} warning{'s' * (warnings != 1)} in {report.rows} "
            f"row{'s' * (report.rows != 1)}")


def format_json(report: Report, colour: bool = False) -> str:
    # UTF-8 where stdout takes it; \u escapes (still valid JSON) where it would not.
    encoding = (getattr(sys.stdout, "encoding", None) or "").replace("-", "").lower()
    return json.dumps(report.to_dict(), ensure_ascii=encoding != "utf8")


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def format_github(report: Report, colour: bool = False) -> str:
    lines = []
    for f in sorted(report.findings, key=lambda f: f.sort_key):
        level = "error" if f.severity is Severity.ERROR else "warning"
        title = f"{f.code} {f.sheet}!{f.cell}"
        lines.append(f"::{level} file={_escape_property(report.log)},"
                     f"title={_escape_property(title)}::{_escape_data(f.message)}")
    lines.append(_summary(report))
    if report.coverage is not None:  # as the text format ends: never silent on what's unchecked
        lines.append(report.coverage.line())
    return "\n".join(lines)


FORMATTERS: dict[str, Callable[[Report, bool], str]] = {
    "text": format_text,
    "json": format_json,
    "github": format_github,
}
