"""Write the empty experiment-log workbook from `spec.py` and the config's declared params and
metrics (xlsxwriter). The same inputs give a byte-identical file, so the template can be
committed and its regeneration checked in CI."""

from __future__ import annotations

import datetime as dt
import io
import math
from pathlib import Path

from aisdp_log import TEMPLATE_VERSION, __version__, spec
from aisdp_log.config import Config
from aisdp_log.errors import WriteRefused
from aisdp_log.system.atomic import write_bytes
from aisdp_log.workbook.guard import tool_dir, writer_lock

#: Data rows the Experiments table (and its validations) is pre-sized to: decades of runs for a
#: team with fewer than ten a quarter.
DATA_ROWS = 300
#: Rows of the Metrics table: the declared metrics plus room to add more.
METRIC_ROWS_MIN = 10
#: A fixed "created" date: xlsxwriter otherwise stamps the current time into docProps/core.xml
#: and the file would differ on every run.
CREATED = dt.datetime(2026, 1, 1, 0, 0, 0)
#: Excel's limits for data-validation prompts (counted in UTF-16 units).
TITLE_LIMIT = 32
MESSAGE_LIMIT = 255
EXPERIMENTS_TABLE = "ExperimentLog"
METRICS_TABLE = "MetricDeclarations"
#: Column kinds whose cells are text: formatted as Text (`@`) so Excel never turns a commit
#: such as 1234567 or 12e4567 into a number or a data version into a date.
TEXT_KINDS = ("id", "text", "other_params", "data_version", "commit", "artefact_hash")
#: The fill of an empty required cell in a row that has an ID (light yellow; `validate
#: --annotate` marks findings light red).
MISSING_FILL = "#FFEB9C"
#: Earliest date the Date validation accepts; it only guards against typos such as 0226.
EARLIEST_DATE = dt.date(2000, 1, 1)

_REQUIRED_TEXT = {
    "metric": "yes, unless the outcome is rejected",
    "param": "at least one params. column; a value where it applies",
}


def template_columns(config=None) -> list[spec.ColumnSpec]:
    """Every Experiments column in template order: the standard columns of `spec.py`, the
    declared `params.*` after `Hypothesis` and the declared `metrics.*` after
    `Training duration`. `config` is a `Config` (None: defaults, i.e. the example set)."""

    config = config if config is not None else Config()
    params = [spec.param_column(p.name, p.kind, p.choices) for p in config.template_params()]
    metrics = [spec.metric_column(m.name, m.description) for m in config.template_metrics()]
    columns: list[spec.ColumnSpec] = []
    for column in spec.STANDARD_COLUMNS:
        columns.append(column)
        if column is spec.HYPOTHESIS:
            columns.extend(params)
        elif column is spec.TRAINING_DURATION:
            columns.extend(metrics)
    return columns


def required_text(column: spec.ColumnSpec) -> str:
    """The Guide's "Required" cell for a column."""
    if column.kind in _REQUIRED_TEXT:
        return _REQUIRED_TEXT[column.kind]
    if column.written_by_tool:
        return "no (written by the tool)"
    if column is spec.OUTCOME:
        return "no (a warning until decided)"
    if column is spec.NOTES:
        return "expected for selected and rejected rows"
    return "yes" if column.required else "no"


def build_template(config=None) -> bytes:
    """The template workbook as bytes (see `write_template`)."""
    import xlsxwriter

    config = config if config is not None else Config()
    buffer = io.BytesIO()
    # Cell text is data: never let xlsxwriter read "=..." as a formula or "http..." as a link.
    workbook = xlsxwriter.Workbook(buffer, {
        "in_memory": True, "strings_to_formulas": False, "strings_to_urls": False,
        "strings_to_numbers": False})
    workbook.set_properties({
        "title": "AI system experiment log",
        "subject": "Model-development evidence (EU AI Act, Annex IV 2(b), 2(d), 2(g))",
        "author": "aisdp-log",
        "category": "Experiment log",
        "keywords": "AI Act, Annex IV, AISDP, experiment log",
        "comments": f"Written by aisdp-log {__version__} (template version {TEMPLATE_VERSION}). "
                    "Check it with `aisdp-log validate`.",
        "created": CREATED,
    })
    workbook.set_custom_property("aisdp-log version", __version__)
    workbook.set_custom_property("aisdp-log template version", TEMPLATE_VERSION)
    styles = _Styles(workbook)
    columns = template_columns(config)
    _experiments_sheet(workbook, styles, columns, config)
    _metrics_sheet(workbook, styles, config)
    _guide_sheet(workbook, styles, columns, __version__, TEMPLATE_VERSION)
    workbook.close()
    return buffer.getvalue()


def write_template(path: Path | str, config=None) -> Path:
    """Write the empty experiment log to `path`, atomically (a temp file in the same folder,
    then `os.replace`), so a failed write never leaves a half file behind.

    Sheets: `Experiments` (a pre-sized table with dropdowns, validations and a prompt on every
    column), `Metrics` (the declared metrics with goal and threshold) and `Guide` (what each
    column wants and which Annex IV point it serves). The same inputs give the same bytes.
    Raises `WriteRefused` (one line) when the file cannot be written."""
    path = Path(path)
    content = build_template(config)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise WriteRefused(f"{path}: folder {folder} does not exist")
    if path.is_dir():
        raise WriteRefused(f"{path}: is a folder")
    # Overwriting (`--force`) honours Office locks, permissions and the writer lock, and
    # writes through a symlink to its target; a hard-linked file becomes a new file.
    with writer_lock(path, hard_links_ok=True, must_exist=False) as target:
        write_bytes(target, content, temp_dir=tool_dir(target.parent))
    return path


# --------------------------------------------------------------------------- styles

class _Styles:
    """Formats shared by the sheets; created once, as xlsxwriter wants."""

    def __init__(self, workbook) -> None:
        self.header = workbook.add_format({
            "bold": True, "font_color": "#FFFFFF", "bg_color": "#1F4E78", "text_wrap": True,
            "valign": "top", "border": 1, "border_color": "#BFBFBF"})
        self.tool_header = workbook.add_format({
            "bold": True, "font_color": "#FFFFFF", "bg_color": "#7F7F7F", "text_wrap": True,
            "valign": "top", "border": 1, "border_color": "#BFBFBF"})
        self.title = workbook.add_format({"bold": True, "font_size": 14})
        self.heading = workbook.add_format({"bold": True, "font_size": 11})
        self.wrap = workbook.add_format({"text_wrap": True, "valign": "top"})
        self.code = workbook.add_format({"font_name": "Consolas", "valign": "top"})
        #: A required cell still empty: a fill only (conditional formats), see
        #: `_missing_value_formats`.
        self.missing = workbook.add_format({"bg_color": MISSING_FILL})
        self.guide_header = workbook.add_format({
            "bold": True, "bg_color": "#DDEBF7", "border": 1, "border_color": "#BFBFBF"})
        self._cells: dict[str, object] = {}
        self._workbook = workbook

    def cell(self, number_format: str | None):
        """The data-cell format for a number format (text, date, decimals)."""
        key = number_format or ""
        if key not in self._cells:
            options = {"valign": "top"}
            if number_format:
                options["num_format"] = number_format
            self._cells[key] = self._workbook.add_format(options)
        return self._cells[key]


def _fit(text: str, limit: int) -> str:
    """`text` cut to Excel's limit in UTF-16 units, ending in an ellipsis when cut."""
    if len(text.encode("utf-16-le")) // 2 <= limit:
        return text
    result = ""
    for ch in text:
        if (len((result + ch).encode("utf-16-le")) // 2) > limit - 1:
            break
        result += ch
    return result.rstrip() + "\u2026"


def _width(column: spec.ColumnSpec) -> int:
    # A params./metrics. header is longer than its values: wide enough not to wrap mid-name.
    if column.kind in ("param", "metric"):
        return min(max(column.width, len(column.header) + 2), 32)
    return column.width


def _number_format(column: spec.ColumnSpec) -> str | None:
    if column.number_format:
        return column.number_format
    if column.kind in TEXT_KINDS:
        return "@"
    return None


# --------------------------------------------------------------------------- Experiments

def _experiments_sheet(workbook, styles: _Styles, columns, config) -> None:
    sheet = workbook.add_worksheet(spec.SHEET_EXPERIMENTS)
    last_row = DATA_ROWS  # 0-based: header at 0, data rows 1..DATA_ROWS
    declared = {p.name: p for p in config.template_params()}
    table_columns = []
    for index, column in enumerate(columns):
        cell_format = styles.cell(_number_format(column))
        sheet.set_column(index, index, _width(column), cell_format)
        table_columns.append({
            "header": column.header,
            "header_format": styles.tool_header if column.written_by_tool else styles.header,
        })
        param = declared.get(column.header[len(spec.PARAMS_PREFIX):]) \
            if column.kind == "param" else None
        sheet.data_validation(1, index, last_row, index, _validation(column, param))
    sheet.add_table(0, 0, last_row, len(columns) - 1, {
        "name": EXPERIMENTS_TABLE, "columns": table_columns,
        "style": "Table Style Light 9", "autofilter": True})
    _missing_value_formats(sheet, styles, columns, last_row)
    sheet.set_row(0, 30)
    sheet.freeze_panes(1, 1)
    _page_setup(sheet, paper=8)  # A3: twenty-odd columns stay readable on one page width
    sheet.repeat_columns(0, 0)
    sheet.activate()


def missing_value_criteria(column: spec.ColumnSpec, letters: dict[str, str]) -> str | None:
    """The conditional-format formula (without `=`, for data row 2) that marks `column`'s
    cell as a missing value, or None; `letters` maps column keys to their column letters."""
    row_id = f"${letters[spec.EXPERIMENT_ID.key]}2"
    outcome = f"TRIM(${letters[spec.OUTCOME.key]}2)" if spec.OUTCOME.key in letters else None
    cell = f"{letters[column.key]}2"
    empty = f"LEN(TRIM({cell}))=0"
    if column.kind == "metric":
        if outcome is None:
            return f"AND(LEN(TRIM({row_id}))>0,{empty})"
        return f'AND(LEN(TRIM({row_id}))>0,{empty},{outcome}<>"rejected")'
    if column is spec.NOTES:
        return None if outcome is None else \
            f'AND(OR({outcome}="selected",{outcome}="rejected"),{empty})'
    if column.required and column.kind != "param" and column is not spec.EXPERIMENT_ID:
        return f"AND(LEN(TRIM({row_id}))>0,{empty})"
    return None


def _missing_value_formats(sheet, styles: _Styles, columns, last_row: int) -> None:
    """Conditional formats that show, as the log is filled, what `validate` would report:
    a required cell left empty once its row has an ID (S002; a metric unless the row is
    rejected), and a selected or rejected row without Notes (R002). Only fills: the cells'
    own formats are untouched, and a filled cell loses the mark."""
    from xlsxwriter.utility import xl_col_to_name

    letters = {column.key: xl_col_to_name(index) for index, column in enumerate(columns)}
    for index, column in enumerate(columns):
        criteria = missing_value_criteria(column, letters)
        if criteria is not None:
            sheet.conditional_format(1, index, last_row, index, {
                "type": "formula", "criteria": "=" + criteria, "format": styles.missing})


def _prompt(column: spec.ColumnSpec) -> dict:
    message = column.help
    if column.example:
        message += f" Example: {column.example}"
    return {"input_title": _fit(column.header, TITLE_LIMIT),
            "input_message": _fit(message, MESSAGE_LIMIT)}


def _list_fits(values) -> bool:
    # Excel's list source is one comma-separated string of at most 255 characters.
    return bool(values) and all("," not in v and '"' not in v for v in values) and \
        len(",".join(values).encode("utf-16-le")) // 2 <= MESSAGE_LIMIT


def _validation(column: spec.ColumnSpec, param=None) -> dict:
    """The data validation of one Experiments column; every column gets at least the prompt."""
    options = _prompt(column)
    kind = column.kind
    rule: dict
    if column is spec.RERUN:
        # Only yes/no in the dropdown, but the other marks (x, y, true, 1) stay allowed: a
        # warning, not a stop. The validator has the last word (S006).
        rule = {"validate": "list", "source": ["yes", "no"], "error_type": "warning",
                "error_message": "Write yes (or y, x, true, 1) to flag the row for a rerun, "
                                 "or leave it empty."}
    elif kind == "choice" or (kind == "param" and column.allowed and _list_fits(column.allowed)):
        # a declared choice param's list too, where Excel's 255-character source holds it
        rule = {"validate": "list", "source": list(column.allowed),
                "error_message": "Choose one of: " + ", ".join(column.allowed) + "."}
    elif kind == "seed":
        rule = {"validate": "integer", "criteria": "between", "minimum": 0,
                "maximum": spec.SEED_MAX,
                "error_message": f"A seed is a whole number from 0 to {spec.SEED_MAX}."}
    elif kind == "date":
        rule = {"validate": "date", "criteria": ">=", "value": EARLIEST_DATE,
                "error_message": "Enter a date such as 2026-07-14."}
    elif kind == "duration":
        rule = {"validate": "decimal", "criteria": ">=", "value": 0,
                "error_message": "Minutes as a number (12.5), or a duration such as 1:30:00."}
    elif kind == "metric":
        rule = {"validate": "decimal", "criteria": "between", "minimum": -1e300,
                "maximum": 1e300, "error_message": "A metric is a number."}
    elif kind == "param" and param is not None and param.kind == "int":
        rule = {"validate": "integer", "criteria": "between", "minimum": -2**53,
                "maximum": 2**53, "error_message": "This parameter is a whole number."}
    elif kind == "param" and param is not None and param.kind == "float":
        rule = {"validate": "decimal", "criteria": "between", "minimum": -1e300,
                "maximum": 1e300, "error_message": "This parameter is a number."}
    elif kind == "param" and param is not None and param.kind == "bool":
        rule = {"validate": "list", "source": ["true", "false"], "error_type": "warning",
                "error_message": "This parameter is true or false."}
    else:
        rule = {"validate": "any"}
    if "error_message" in rule:
        rule["error_title"] = _fit(column.header, TITLE_LIMIT)
        rule["error_message"] = _fit(rule["error_message"], MESSAGE_LIMIT)
    options.update(rule)
    return options


# --------------------------------------------------------------------------- Metrics

_METRICS_HELP = {
    "Metric": ("The metric's name: the part after metrics. in its Experiments column.",
               "accuracy"),
    "Goal": ("max when higher is better, min when lower is better.", "max"),
    "Threshold": ("The value a selected model must meet (at least, for max; at most, for "
                  "min). May be empty.", "0.85"),
    "Tolerance": ("How far a recorded value may lie from the mean of its statistical reruns "
                  "and still count as reproduced. Empty: the reruns' prediction interval "
                  "decides.", "0.01"),
    "Description": ("What the metric measures and on which data.", "holdout accuracy"),
}
_METRICS_WIDTHS = {"Metric": 18, "Goal": 8, "Threshold": 11, "Tolerance": 11, "Description": 48}


def _metrics_sheet(workbook, styles: _Styles, config) -> None:
    sheet = workbook.add_worksheet(spec.SHEET_METRICS)
    metrics = config.template_metrics()
    last_row = max(len(metrics), METRIC_ROWS_MIN)
    for index, header in enumerate(spec.METRICS_COLUMNS):
        # Numbers in General format, so 0.85 shows as typed rather than as 0.850.
        number_format = None if header in ("Threshold", "Tolerance") else "@"
        sheet.set_column(index, index, _METRICS_WIDTHS[header], styles.cell(number_format))
        help_text, example = _METRICS_HELP[header]
        options: dict[str, object] = {
            "input_title": header,
            "input_message": _fit(f"{help_text} Example: {example}", MESSAGE_LIMIT)}
        if header == "Goal":
            options.update({"validate": "list", "source": list(spec.GOALS),
                            "error_title": header, "error_message": "Choose max or min."})
        elif header == "Threshold":
            options.update({"validate": "decimal", "criteria": "between", "minimum": -1e300,
                            "maximum": 1e300, "error_title": header,
                            "error_message": "A threshold is a number, or empty."})
        elif header == "Tolerance":
            options.update({"validate": "decimal", "criteria": "between", "minimum": 0,
                            "maximum": 1e300, "error_title": header,
                            "error_message": "A tolerance is a number of 0 or more, or empty."})
        else:
            options["validate"] = "any"
        sheet.data_validation(1, index, last_row, index, options)
    sheet.add_table(0, 0, last_row, len(spec.METRICS_COLUMNS) - 1, {
        "name": METRICS_TABLE, "style": "Table Style Light 9", "autofilter": True,
        "columns": [{"header": h, "header_format": styles.header}
                    for h in spec.METRICS_COLUMNS]})
    text = styles.cell("@")
    column = {header: index for index, header in enumerate(spec.METRICS_COLUMNS)}
    for row, metric in enumerate(metrics, start=1):
        sheet.write_string(row, column["Metric"], metric.name, text)
        sheet.write_string(row, column["Goal"], metric.goal, text)
        for header, number in (("Threshold", metric.threshold),
                               ("Tolerance", metric.tolerance)):
            if number is not None:
                sheet.write_number(row, column[header], number, styles.cell(None))
        if metric.description:
            sheet.write_string(row, column["Description"], metric.description, text)
    sheet.freeze_panes(1, 0)
    _page_setup(sheet)


def _page_setup(sheet, paper: int = 9) -> None:
    """Print landscape, one page wide, header row repeated: the log is printed as evidence."""
    sheet.set_landscape()
    sheet.set_paper(paper)
    sheet.fit_to_pages(1, 0)
    sheet.repeat_rows(0)
    sheet.set_footer("&L&A&RPage &P of &N")


# --------------------------------------------------------------------------- Guide

_INTRO = (
    "One row per training run, written when the run is started (Hypothesis) and completed "
    "when it ends. The log is the model-development evidence of the AI system's technical "
    "documentation (EU AI Act, Article 11 and Annex IV): which data and code produced each "
    "model, how it was validated, and why the deployed model was chosen.",
    "Keep the headers of the Experiments sheet as they are; add params.<name> and "
    "metrics.<name> columns as needed (declare each metric in the Metrics sheet). Columns "
    "the tool does not know are kept and never touched. Every cell shows what it wants when "
    "selected.",
)
_COMMANDS = (
    ("aisdp-log validate experiment-log.xlsx",
     "check every row against git, DVC and the artefact folders"),
    ("aisdp-log validate experiment-log.xlsx --offline", "check the workbook alone"),
    ("aisdp-log validate experiment-log.xlsx --annotate",
     "also write the findings into this workbook: notes, highlights, sheet Findings"),
    ("aisdp-log hash artefacts/EXP-001", "print the Artefact hash of a run's folder"),
    ("aisdp-log add experiment-log.xlsx EXP-001", "append a row from the run's artefact folder"),
    ("aisdp-log rerun experiment-log.xlsx --flagged", "reproduce the rows marked in Rerun"),
    ("aisdp-log review experiment-log.xlsx --sign \"Name, Role\"",
     "write and sign the quarterly model-selection review"),
    ("aisdp-log template --upgrade experiment-log.xlsx",
     "bring a log made by an older template up to date"),
)
_GUIDE_HEADERS = ("Column", "What to enter", "Example", "Required", "Annex IV")
_GUIDE_WIDTHS = (24, 70, 32, 22, 62)


def _guide_sheet(workbook, styles: _Styles, columns, version: str, template_version: str):
    sheet = workbook.add_worksheet(spec.SHEET_GUIDE)
    for index, width in enumerate(_GUIDE_WIDTHS):
        sheet.set_column(index, index, width)
    sheet.write_string(0, 0, "Experiment log: how to fill it in", styles.title)
    row = 1
    for paragraph in _INTRO:
        sheet.merge_range(row, 0, row, 4, "", styles.wrap)
        sheet.write_string(row, 0, paragraph, styles.wrap)
        sheet.set_row(row, 48)
        row += 1
    row += 1
    sheet.write_string(row, 0, "Commands", styles.heading)
    row += 1
    for command, what in _COMMANDS:
        sheet.write_string(row, 0, command, styles.code)
        sheet.write_string(row, 2, what)
        row += 1
    row += 1
    sheet.write_string(row, 0, "Columns of the Experiments sheet", styles.heading)
    row += 1
    row = _guide_table(sheet, styles, row, [
        (c.header, c.help, c.example, required_text(c), spec.ANNEX_TEXT[c.annex])
        for c in columns])
    row += 1
    sheet.write_string(row, 0, "Columns of the Metrics sheet", styles.heading)
    row += 1
    row = _guide_table(sheet, styles, row, [
        (header, *_METRICS_HELP[header], "yes" if header in ("Metric", "Goal") else "no",
         spec.ANNEX_TEXT[spec.ANNEX_VALIDATION]) for header in spec.METRICS_COLUMNS])
    row += 1
    sheet.write_string(row, 0, f"Template version {template_version}, written by aisdp-log "
                               f"{version}.")
    sheet.set_landscape()
    sheet.set_paper(9)
    sheet.fit_to_pages(1, 0)


def _guide_table(sheet, styles: _Styles, row: int, entries) -> int:
    for index, header in enumerate(_GUIDE_HEADERS):
        sheet.write_string(row, index, header, styles.guide_header)
    row += 1
    for entry in entries:
        for index, text in enumerate(entry):
            sheet.write_string(row, index, text, styles.wrap)
        # Neither xlsxwriter nor a headless LibreOffice fits row heights to wrapped text.
        lines = max(math.ceil(len(text) * 1.1 / _GUIDE_WIDTHS[index])
                    for index, text in enumerate(entry))
        sheet.set_row(row, 15 * max(lines, 1))
        row += 1
    return row
