"""Render the finding-code catalogue as text, Markdown (the README's table) or JSON."""

from __future__ import annotations

import json

from .findings import CATALOGUE


def render_codes(output_format: str = "text") -> str:
    codes = list(CATALOGUE.values())
    if output_format == "json":
        return json.dumps([{"code": c.code, "severity": c.severity.value, "meaning": c.title,
                            "cell": c.cell, "help": c.help} for c in codes], indent=2)
    if output_format == "markdown":
        lines = ["| code | severity | meaning (cell) |", "|---|---|---|"]
        lines += [f"| {c.code} | {c.severity.value} | {c.title} ({c.cell}) |" for c in codes]
        return "\n".join(lines)
    return "\n".join(f"{c.code}  {c.severity.value:<7}  {c.title} ({c.cell})\n"
                     f"{'':15}{c.help}" for c in codes)
