"""The generated template: columns from spec.py and the config, validations, determinism, and
that a filled copy validates."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import openpyxl
import pytest
from builders import libreoffice_convert, run_cli
from click.testing import CliRunner
from conftest import CLEAN_TEMPLATE_ROW as CLEAN_ROW

import aisdp_log
from aisdp_log import spec
from aisdp_log.cli.main import cli
from aisdp_log.config import load_config
from aisdp_log.errors import WriteRefused
from aisdp_log.workbook.template import DATA_ROWS, build_template, template_columns, write_template

REPO_ROOT = Path(__file__).resolve().parent.parent
COMMITTED = REPO_ROOT / "templates" / "experiment-log.xlsx"

CONFIG = """
id_pattern = "^RUN-[0-9]{3}$"

[template]
params = { lr = "float", layers = "int", use_bn = "bool", arch = ["resnet18", "vit_s"], \
tag = "str" }
metrics.auroc = { goal = "max", threshold = 0.9, description = "holdout AUROC" }
metrics.ece = { goal = "min", threshold = 0.05, tolerance = 0.01 }
"""



@pytest.fixture
def config(tmp_path: Path):
    path = tmp_path / "aisdp.toml"
    path.write_text(CONFIG)
    return load_config(tmp_path, path)


def headers(sheet) -> list[str]:
    return [cell.value for cell in sheet[1] if cell.value is not None]


def validations_by_column(sheet) -> dict[str, object]:
    """Header -> the data validation covering its data cells."""
    names = {cell.column_letter: cell.value for cell in sheet[1]}
    result = {}
    for validation in sheet.data_validations.dataValidation:
        for cell_range in validation.sqref.ranges:
            letter = openpyxl.utils.get_column_letter(cell_range.min_col)
            result[names[letter]] = validation
            assert cell_range.min_row == 2
    return result


# --------------------------------------------------------------------------- columns

def test_default_columns_follow_spec_order(template_path):
    sheet = openpyxl.load_workbook(template_path)["Experiments"]
    standard = [c.header for c in spec.STANDARD_COLUMNS]
    params = ["params.learning_rate", "params.epochs", "params.batch_size", "params.optimizer"]
    metrics = ["metrics.accuracy", "metrics.f1"]
    at_params = standard.index("Hypothesis") + 1
    at_metrics = standard.index("Training duration") + 1
    expected = standard[:at_params] + params + standard[at_params:at_metrics] + metrics + \
        standard[at_metrics:]
    assert headers(sheet) == expected
    assert [c.header for c in template_columns()] == expected


def test_config_declares_params_and_metrics(tmp_path, config):
    path = write_template(tmp_path / "log.xlsx", config)
    workbook = openpyxl.load_workbook(path)
    found = headers(workbook["Experiments"])
    assert [h for h in found if h.startswith("params.")] == [
        "params.lr", "params.layers", "params.use_bn", "params.arch", "params.tag"]
    assert [h for h in found if h.startswith("metrics.")] == ["metrics.auroc", "metrics.ece"]
    metrics = [[c.value for c in row] for row in workbook["Metrics"].iter_rows(max_row=3)]
    assert metrics == [["Metric", "Goal", "Threshold", "Tolerance", "Description"],
                       ["auroc", "max", 0.9, None, "holdout AUROC"],
                       ["ece", "min", 0.05, 0.01, None]]
    tolerance = validations_by_column(workbook["Metrics"])["Tolerance"]
    assert (tolerance.type, tolerance.formula1) == ("decimal", "0")


def test_param_validations_follow_declared_kinds(tmp_path, config):
    path = write_template(tmp_path / "log.xlsx", config)
    by_column = validations_by_column(openpyxl.load_workbook(path)["Experiments"])
    assert by_column["params.lr"].type == "decimal"
    assert by_column["params.layers"].type == "whole"
    assert by_column["params.arch"].type == "list"
    assert by_column["params.arch"].formula1 == '"resnet18,vit_s"'
    assert by_column["params.use_bn"].type == "list"
    assert by_column["params.tag"].type is None  # free text: the prompt only
    assert by_column["metrics.ece"].type == "decimal"


# --------------------------------------------------------------------------- validations

def test_every_column_has_a_prompt_within_excel_limits(tmp_path, config):
    for path in (write_template(tmp_path / "a.xlsx"), write_template(tmp_path / "b.xlsx", config)):
        sheet = openpyxl.load_workbook(path)["Experiments"]
        by_column = validations_by_column(sheet)
        assert set(by_column) == set(headers(sheet))
        for header, validation in by_column.items():
            assert validation.showInputMessage, header
            assert validation.promptTitle and len(validation.promptTitle) <= 32, header
            assert validation.prompt and len(validation.prompt) <= 255, header
            assert [r.max_row for r in validation.sqref.ranges] == [DATA_ROWS + 1]


def test_dropdowns_and_ranges(template_path):
    workbook = openpyxl.load_workbook(template_path)
    by_column = validations_by_column(workbook["Experiments"])
    assert by_column["Outcome"].type == "list"
    assert by_column["Outcome"].formula1 == '"selected,rejected,baseline"'
    assert by_column["Outcome"].errorStyle in (None, "stop")
    assert by_column["Reproducibility"].formula1 == '"bitwise,statistical,failed"'
    assert by_column["Rerun"].type == "list"
    assert by_column["Rerun"].errorStyle == "warning"  # x, y, true, 1 stay allowed
    assert by_column["params.optimizer"].formula1 == '"sgd,adam"'
    seed = by_column["Random seed"]
    assert (seed.type, seed.formula1, seed.formula2) == ("whole", "0", str(spec.SEED_MAX))
    assert seed.operator in (None, "between")  # between is the default, left out
    assert by_column["Date"].type == "date"
    duration = by_column["Training duration"]
    assert (duration.type, duration.operator, duration.formula1) == (
        "decimal", "greaterThanOrEqual", "0")
    assert by_column["params.epochs"].type == "whole"
    assert by_column["params.learning_rate"].type == "decimal"
    goal = validations_by_column(workbook["Metrics"])["Goal"]
    assert (goal.type, goal.formula1) == ("list", '"max,min"')


def test_tables_freeze_panes_formats_and_properties(template_path):
    workbook = openpyxl.load_workbook(template_path)
    sheet = workbook["Experiments"]
    assert workbook.sheetnames == ["Experiments", "Metrics", "Guide"]
    (table,) = sheet.tables.values()
    last = openpyxl.utils.get_column_letter(len(headers(sheet)))
    assert table.ref == f"A1:{last}{DATA_ROWS + 1}"
    assert [c.name for c in table.tableColumns] == headers(sheet)
    (metrics_table,) = workbook["Metrics"].tables.values()
    assert metrics_table.ref.startswith("A1:E")
    assert sheet.freeze_panes == "B2"
    dims = {cell.value: sheet.column_dimensions[cell.column_letter] for cell in sheet[1]}
    for column in spec.STANDARD_COLUMNS:
        assert dims[column.header].width == pytest.approx(column.width, abs=1)
    # Number formats are column formats, so every cell typed in Excel inherits them.
    formats = {header: dim.number_format for header, dim in dims.items()}
    assert formats["Date"] == "yyyy-mm-dd"
    assert formats["Random seed"] == "0"
    assert formats["metrics.accuracy"] == "0.000"
    assert formats["Code commit"] == "@"  # text, so 1234567 stays a commit
    assert sheet["A1"].font.b
    custom = {prop.name: prop.value for prop in workbook.custom_doc_props.props}
    assert custom == {"aisdp-log version": aisdp_log.__version__,
                      "aisdp-log template version": aisdp_log.TEMPLATE_VERSION}
    assert workbook.properties.title == "AI system experiment log"


def test_guide_lists_every_column_with_annex_point(tmp_path, config):
    path = write_template(tmp_path / "log.xlsx", config)
    guide = openpyxl.load_workbook(path)["Guide"]
    rows = {r[0]: r for r in guide.iter_rows(values_only=True) if r[0]}
    for column in template_columns(config):
        header, help_text, example, required, annex = rows[column.header][:5]
        assert help_text == column.help and example == column.example
        assert annex == spec.ANNEX_TEXT[column.annex]
        assert required
    assert rows["Experiment ID"][3] == "yes"
    assert rows["Notes"][3] != "yes"
    assert {rows[h][4] for h in rows if h.startswith(("params.", "metrics."))} >= {
        spec.ANNEX_TEXT["2(b)"], spec.ANNEX_TEXT["2(g)"]}
    assert rows["Data version"][4] == spec.ANNEX_TEXT["2(d)"]
    for header in spec.METRICS_COLUMNS:
        assert header in rows


def test_text_is_never_a_formula(tmp_path):
    path = tmp_path / "aisdp.toml"
    path.write_text('[template]\nparams = { x = "float" }\n'
                    'metrics.acc = { goal = "max", description = "=HYPERLINK(\\"http://e\\")" }\n')
    out = write_template(tmp_path / "log.xlsx", load_config(tmp_path, path))
    cell = openpyxl.load_workbook(out)["Metrics"]["E2"]
    assert cell.data_type == "s" and cell.value.startswith("=HYPERLINK")


# --------------------------------------------------------------------------- determinism

def test_same_inputs_give_identical_bytes(tmp_path, config):
    assert build_template() == build_template()
    first = write_template(tmp_path / "one.xlsx", config).read_bytes()
    second = write_template(tmp_path / "two.xlsx", config).read_bytes()
    assert first == second
    assert first != build_template()  # the config changes the file


def test_committed_template_is_current():
    assert COMMITTED.read_bytes() == build_template(), (
        "templates/experiment-log.xlsx is stale: regenerate it with "
        "`aisdp-log template -o templates/experiment-log.xlsx --force` (no aisdp.toml)")


def test_write_is_atomic_and_leaves_no_temp_file(tmp_path):
    target = tmp_path / "log.xlsx"
    target.write_bytes(b"old")
    target.chmod(0o640)
    write_template(target)
    assert target.read_bytes() == build_template()
    assert target.stat().st_mode & 0o777 == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == [".aisdp-log", "log.xlsx"]
    assert sorted(p.name for p in (tmp_path / ".aisdp-log").iterdir()) == [".gitignore"]


def test_unwritable_target_is_a_one_line_error(tmp_path):
    with pytest.raises(WriteRefused):
        write_template(tmp_path / "missing" / "log.xlsx")
    (tmp_path / "folder.xlsx").mkdir()
    with pytest.raises(WriteRefused):
        write_template(tmp_path / "folder.xlsx")


# --------------------------------------------------------------------------- validates

def test_empty_template_has_no_rows_and_no_findings(template_path):
    report = aisdp_log.validate(template_path, offline=True)
    assert report.rows == 0
    assert report.codes() == []


def test_empty_template_from_config_has_no_findings(tmp_path, config):
    path = write_template(tmp_path / "log.xlsx", config)
    report = aisdp_log.validate(path, offline=True, config=config)
    assert (report.rows, report.codes()) == (0, [])


def test_filled_template_with_a_clean_row_validates(fill_template):
    path = fill_template([CLEAN_ROW])
    report = aisdp_log.validate(path, offline=True)
    assert report.rows == 1
    assert report.codes() == []


def test_filled_template_reports_defects_at_their_cells(fill_template):
    path = fill_template([CLEAN_ROW, dict(CLEAN_ROW, **{
        "Experiment ID": "EXP-002", "Random seed": -1, "Outcome": "chosen"})])
    report = aisdp_log.validate(path, offline=True)
    letters = {c.header: openpyxl.utils.get_column_letter(i + 1)
               for i, c in enumerate(template_columns())}
    assert sorted(report.codes()) == sorted([
        ("S007", f"{letters['Random seed']}3"), ("S006", f"{letters['Outcome']}3")])


# --------------------------------------------------------------------------- the command

def test_cli_writes_and_refuses_overwrite(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no aisdp.toml here: the example set
    runner = CliRunner()
    result = runner.invoke(cli, ["template", "-o", "log.xlsx"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "log.xlsx").read_bytes() == build_template()
    result = run_cli("template", "-o", "log.xlsx", cwd=tmp_path)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    result = runner.invoke(cli, ["template", "-o", "log.xlsx", "--force"])
    assert result.exit_code == 0


def test_cli_uses_config(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "aisdp.toml").write_text(CONFIG)
    result = CliRunner().invoke(cli, ["template", "-o", "log.xlsx"])
    assert result.exit_code == 0, result.output
    sheet = openpyxl.load_workbook(tmp_path / "log.xlsx")["Experiments"]
    assert "metrics.auroc" in headers(sheet)


@pytest.mark.parametrize("threshold", ["nan", "inf", "-inf"])
def test_a_threshold_that_is_not_finite_is_a_config_error(tmp_path, threshold):
    from aisdp_log.errors import ConfigError

    path = tmp_path / "aisdp.toml"
    path.write_text(f'[template.metrics]\naccuracy = {{ goal = "max", threshold = {threshold} }}\n')
    with pytest.raises(ConfigError):
        load_config(tmp_path)


@pytest.mark.parametrize("tolerance", ["nan", "inf", "-0.01", "true", '"0.01"'])
def test_a_tolerance_that_is_no_number_of_0_or_more_is_a_config_error(tmp_path, tolerance):
    from aisdp_log.errors import ConfigError

    path = tmp_path / "aisdp.toml"
    path.write_text(f'[template.metrics.accuracy]\ngoal = "max"\ntolerance = {tolerance}\n')
    with pytest.raises(ConfigError, match="tolerance"):
        load_config(tmp_path)


def test_a_declared_tolerance_reaches_the_template_and_the_log(tmp_path):
    from aisdp_log.domain.metrics import declared_metrics
    from aisdp_log.workbook.reader import load_log

    path = tmp_path / "aisdp.toml"
    path.write_text('[template.metrics.accuracy]\ngoal = "max"\nthreshold = 0.8\n'
                    'tolerance = 0.02\n\n[template.metrics."eval.f1"]\ngoal = "max"\n')
    config = load_config(tmp_path)
    assert [m.tolerance for m in config.metrics] == [0.02, None]
    log_path = write_template(tmp_path / "log.xlsx", config)
    log = load_log(log_path, config)
    try:
        declared = declared_metrics(log)
    finally:
        log.workbook.close()
    assert {k: (m.threshold, m.tolerance) for k, m in declared.items()} == {
        "accuracy": (0.8, 0.02), "eval.f1": (None, None)}


# --------------------------------------------------------------------------- missing values

def test_empty_required_cells_are_marked_once_the_row_has_an_id(template_path):
    """Conditional formats (fills only) show S002 and R002 as the log is typed."""
    sheet = openpyxl.load_workbook(template_path)["Experiments"]
    letters = {c.header: openpyxl.utils.get_column_letter(i + 1)
               for i, c in enumerate(template_columns())}
    rules = {str(cf_range.sqref): [r.formula[0] for r in cf_rules]
             for cf_range, cf_rules in sheet.conditional_formatting._cf_rules.items()}
    last = DATA_ROWS + 1
    outcome = letters["Outcome"]
    for column in template_columns():
        letter = letters[column.header]
        formulas = rules.get(f"{letter}2:{letter}{last}")
        if column.header == "Notes":
            assert formulas == [f'AND(OR(TRIM(${outcome}2)="selected",TRIM(${outcome}2)='
                                f'"rejected"),LEN(TRIM({letter}2))=0)']
        elif column.kind == "metric":
            assert formulas == [f"AND(LEN(TRIM($A2))>0,LEN(TRIM({letter}2))=0,"
                                f'TRIM(${outcome}2)<>"rejected")']
        elif column.required and column.kind != "param" and column is not spec.EXPERIMENT_ID:
            assert formulas == [f"AND(LEN(TRIM($A2))>0,LEN(TRIM({letter}2))=0)"], column
        else:
            assert formulas is None, column.header
    fills = {rule.dxf.fill.bgColor.rgb for cf_rules in
             sheet.conditional_formatting._cf_rules.values() for rule in cf_rules}
    assert fills == {"FFFFEB9C"}


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("soffice") is None or shutil.which("pdftoppm") is None,
                    reason="LibreOffice or pdftoppm is not installed")
def test_libreoffice_shows_the_mark_only_on_a_row_with_an_id(fill_template, tmp_path):
    from aisdp_log.workbook.template import MISSING_FILL

    image_module = pytest.importorskip("PIL.Image")
    wanted = tuple(int(MISSING_FILL[i:i + 2], 16) for i in (1, 3, 5))

    def marked_pixels(path: Path) -> int:
        outdir = tmp_path / path.stem
        libreoffice_convert(path, "pdf", outdir, tmp_path / "profile")
        subprocess.run(["pdftoppm", "-png", "-r", "60", "-f", "1", "-l", "1",
                        str(outdir / f"{path.stem}.pdf"), str(outdir / "page")],
                       check=True, timeout=120)
        colours = image_module.open(next(outdir.glob("page*.png"))).convert("RGB") \
            .getcolors(1 << 24)
        return sum(count for count, pixel in colours
                   if all(abs(a - b) <= 6 for a, b in zip(pixel, wanted)))

    clean = fill_template([CLEAN_ROW], name="clean.xlsx")
    seedless = fill_template([dict(CLEAN_ROW, **{"Random seed": None})], name="seedless.xlsx")
    assert marked_pixels(clean) == 0
    assert marked_pixels(seedless) > 50
