"""Render the finding-code catalogue as text, Markdown (the README's table) or JSON."""

from __future__ import annotations

import json

from aisdp_log import spec
from aisdp_log.findings import CATALOGUE


def render_codes(output_format: str = "text") -> str:
    codes = list(CATALOGUE.values())
    if output_format == "json":
        return json.dumps([{"code": c.code, "severity": c.severity.value, "meaning": c.title,
                            "cell": c.cell, "help": c.help} for c in codes], indent=2)
    if output_format == "markdown":
        lines = ["| code | severity | meaning (cell) |", "|---|---|---|"]
        lines += [f"| {c.code} | {c.severity.value} | {_markdown_cell(f'{c.title} ({c.cell})')} |"
                  for c in codes]
        return "\n".join(lines)
    return "\n".join(f"{c.code}  {c.severity.value:<7}  {c.title} ({c.cell})\n"
                     f"{'':15}{c.help}" for c in codes)


def render_column_guide() -> str:
    """The README's column guide, from the same spec the template and the checks use."""

    lines = ["| column | required | what to enter | example | Annex IV |", "|---|---|---|---|---|"]
    rows = [spec.EXPERIMENT_ID, spec.DATE, spec.HYPOTHESIS,
            spec.param_column("<name>"), spec.OTHER_PARAMS, spec.DATA_VERSION,
            spec.CODE_COMMIT, spec.RANDOM_SEED, spec.TRAINING_DURATION,
            spec.metric_column("<name>"), spec.ARTEFACT_HASH, spec.ENVIRONMENT, spec.OUTCOME,
            spec.NOTES, spec.RERUN, spec.REPRODUCIBILITY]
    for column in rows:
        if column.kind == "param":
            required = "at least one column"
        elif column.kind == "metric":
            required = "yes, unless rejected"
        elif column.written_by_tool:
            required = "written by the tool"
        else:
            required = "yes" if column.required else "no"
        help_text = _markdown_cell(spec.PARAM_HELP if column.kind == "param" else column.help)
        lines.append(f"| `{column.header}` | {required} | {help_text} | `{column.example}` | "
                     f"{column.annex} |")
    return "\n".join(lines)


def _markdown_cell(text: str) -> str:
    """Text for a Markdown table cell: a `|` would end the cell, a `<` open an HTML tag."""
    return text.replace("|", "\\|").replace("<", "&lt;")


README_BLOCKS = {
    "codes": lambda: render_codes("markdown"),
    "columns": render_column_guide,
}


def sync_readme(text: str) -> str:
    """README text with every generated block (`<!-- NAME:start -->`...`<!-- NAME:end -->`)
    replaced by a fresh rendering."""
    import re

    for name, render in README_BLOCKS.items():
        pattern = re.compile(rf"(<!-- {name}:start -->\n)(?:.*?\n)?(<!-- {name}:end -->)", re.S)
        block = render()  # once per block, however often the text holds it

        # a def, not a lambda: mypy cannot infer a lambda with a default for re.sub's overloads
        def fill(m: re.Match[str], block: str = block) -> str:
            return m.group(1) + block + "\n" + m.group(2)

        text = pattern.sub(fill, text)
    return text


if __name__ == "__main__":  # python -m aisdp_log.lint.catalogue README.md  (rewrites the blocks)
    import sys
    from pathlib import Path

    from aisdp_log.system.atomic import write_bytes

    readme = Path(sys.argv[1] if len(sys.argv) > 1 else "README.md")
    write_bytes(readme, sync_readme(readme.read_text(encoding="utf-8")).encode("utf-8"))
