"""Write sample_logs/ reproducibly: the acceptance cases of the offline validator.

    python tools/make_sample_logs.py            # (re)write sample_logs/
    python tools/make_sample_logs.py --check    # exit 1 if the committed files are stale

`sample_logs/valid/<case>.xlsx` must give no finding (or exactly those in a `<case>.expected.json`
beside it); `sample_logs/invalid/<case>.xlsx` must give exactly the [code, cell] pairs in
`<case>.expected.json`. A cell on another sheet than `Experiments` is written `Metrics!B2`.
The expected pairs are stated here by hand, per case, from the cell rules of
docs/workbook-format.md; they are never computed by the validator. Files are
byte-reproducible: zip timestamps and document dates are fixed, so `--check` (and
tests/test_sample_logs.py) can tell when a file is out of date.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import re
import sys
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_LOGS = ROOT / "sample_logs"

#: Only the standard headers (spec.py), in the template's order; params and metrics after
#: their anchors.
HEADERS = [
    "Experiment ID", "Date", "Hypothesis", "params.learning_rate", "params.optimizer",
    "Other params", "Data version", "Code commit", "Random seed", "Training duration",
    "metrics.accuracy", "Artefact hash", "Environment", "Outcome", "Notes", "Rerun",
    "Reproducibility",
]
METRICS = [["accuracy", "max", 0.85, "holdout accuracy"]]
FIXED_TIME = (2026, 7, 1, 0, 0, 0)
FIXED_STAMP = "2026-07-01T00:00:00Z"


def sha(character: str) -> str:
    return "sha256:" + character * 64


def clean_rows() -> list[dict]:
    """Three rows that pass every offline check: a baseline, a rejected and a selected run,
    all in 2026-Q3; the selected one meets the 0.85 accuracy threshold and was reproduced."""
    return [
        {"Experiment ID": "EXP-001", "Date": dt.date(2026, 7, 1),
         "Hypothesis": "A plain SGD baseline", "params.learning_rate": 0.01,
         "params.optimizer": "sgd", "Other params": "momentum=0.9; nesterov=false",
         "Data version": "3f2a9c1e", "Code commit": "9c1e4b7", "Random seed": 42,
         "Training duration": 12.5, "metrics.accuracy": 0.871, "Artefact hash": sha("a"),
         "Environment": "uv.lock sha256:" + "5e" * 32 + "; torch 2.13.0+cpu",
         "Outcome": "baseline", "Notes": "the reference run", "Rerun": None,
         "Reproducibility": None},
        {"Experiment ID": "EXP-002", "Date": dt.date(2026, 7, 8),
         "Hypothesis": "A higher learning rate converges faster", "params.learning_rate": 0.1,
         "params.optimizer": "sgd", "Other params": None, "Data version": "3f2a9c1e.dir",
         "Code commit": "9c1e4b7d2a", "Random seed": 7, "Training duration": 11,
         "metrics.accuracy": None, "Artefact hash": sha("b"),
         "Environment": "torch 2.13.0+cpu", "Outcome": "rejected",
         "Notes": "diverged after 3 epochs", "Rerun": "no", "Reproducibility": None},
        {"Experiment ID": "EXP-003", "Date": dt.date(2026, 7, 14),
         "Hypothesis": "Adam beats SGD at the same learning rate",
         "params.learning_rate": 0.001, "params.optimizer": "adam", "Other params": None,
         "Data version": "v1.0", "Code commit": "0123456789abcdef0123456789abcdef01234567",
         "Random seed": 4294967295, "Training duration": 14.25, "metrics.accuracy": 0.912,
         "Artefact hash": "c" * 64, "Environment": "torch 2.13.0+cpu",
         "Outcome": "Selected", "Notes": "beats the baseline by 4 points",
         "Rerun": "yes", "Reproducibility": "bitwise"},
    ]


@dataclass
class Case:
    """One sample log: what to write and, for an invalid one, the findings it must give.

    `expect` holds (code, header, row) with the header resolved to its column letter in
    *this* case's layout, or (code, cell) for a fixed cell such as `Metrics!B2`."""

    name: str
    valid: bool = False
    headers: list[str] = field(default_factory=lambda: list(HEADERS))
    rows: list[dict] = field(default_factory=clean_rows)
    metrics: list[list] | None = field(default_factory=lambda: [list(m) for m in METRICS])
    writer: str = "openpyxl"
    #: (workbook, experiments sheet) -> None, after the rows are written: merges, formulas.
    after: Callable | None = None
    expect: list[tuple] = field(default_factory=list)

    def expected_pairs(self) -> list[list[str]]:
        pairs = []
        for item in self.expect:
            if len(item) == 2:
                pairs.append([item[0], item[1]])
            else:
                code, header, row = item
                pairs.append([code, f"{letter(self.headers.index(header))}{row}"])
        return sorted(pairs)


def letter(index: int) -> str:
    letters = ""
    index += 1
    while index:
        index, rem = divmod(index - 1, 26)
        letters = chr(65 + rem) + letters
    return letters


def changed(row_number: int, **values) -> list[dict]:
    """The clean rows with sheet row `row_number` (2..4) changed; keys are headers with spaces
    and dots written as `_` and `__` (`Random_seed`, `metrics__accuracy`)."""
    rows = clean_rows()
    for key, value in values.items():
        rows[row_number - 2][key.replace("__", ".").replace("_", " ")] = value
    return rows


# --------------------------------------------------------------------------- the cases

def _older_template_property(workbook, sheet) -> None:
    """The custom property the 0.1 template (version 1) wrote."""
    from openpyxl.packaging.custom import StringProperty

    workbook.custom_doc_props.append(StringProperty(name="aisdp-log template version",
                                                    value="1"))


def _text_dates_and_durations() -> list[dict]:
    rows = clean_rows()
    for row, duration in zip(rows, (dt.timedelta(minutes=12, seconds=30),
                                    dt.timedelta(hours=1, minutes=2), dt.timedelta(0))):
        row["Date"] = row["Date"].isoformat()
        row["Training duration"] = duration
    rows[1]["Training duration"] = "1:02:00"  # typed as text, h:mm:ss
    return rows


def _layout_free_rows() -> list[dict]:
    # Headers in another order, other case and spacing, with empty rows between data rows.
    return clean_rows()


def _merge_hypothesis(workbook, sheet) -> None:
    sheet.merge_cells("C2:C3")


def _formula_without_value(workbook, sheet) -> None:
    # openpyxl stores the formula and no result: calamine reads it as an empty cell.
    sheet["I3"] = "=I2+1"


def _excel_error(workbook, sheet) -> None:
    sheet.write_formula("K3", "=1/0", None, "#DIV/0!")
    sheet.write_formula("K4", "=NA()", None, "#N/A")


def _formulas_with_values(workbook, sheet) -> None:
    # Formulas whose results xlsxwriter saves read as those results (J: seed, L: accuracy).
    sheet.write_formula("J4", "=J2-35", None, 7)
    sheet.write_formula("L6", "=ROUND(0.9123,3)", None, 0.912)


CASES: list[Case] = [
    # ---- valid
    Case("clean-openpyxl", valid=True),
    Case("text-dates-and-durations", valid=True, rows=_text_dates_and_durations()),
    Case("xlsxwriter-layout-free", valid=True, writer="xlsxwriter",
         headers=[" notes ", "OUTCOME", "experiment  id", "date", "Hypothesis",
                  "Params.learning_rate", "params.optimizer", "data version", "code commit",
                  "random seed", "training duration", "metrics.accuracy", "artefact hash",
                  "environment", "My own column", "reproducibility"],
         rows=_layout_free_rows(), after=_formulas_with_values),
    # ---- one case per code
    Case("S001-missing-column", headers=[h for h in HEADERS if h != "Code commit"],
         expect=[("S001", "Q1")]),
    Case("S001-no-params-column",
         headers=[h for h in HEADERS if not h.startswith("params.")],
         expect=[("S001", "P1")]),
    Case("S002-empty-value", rows=changed(3, Hypothesis=None),
         expect=[("S002", "Hypothesis", 3)]),
    Case("S003-wrong-type", rows=changed(3, Code_commit="not-a-sha", Random_seed="forty-two"),
         expect=[("S003", "Code commit", 3), ("S003", "Random seed", 3)]),
    Case("S003-text-date", rows=changed(4, Date="14/07/2026"),
         expect=[("S003", "Date", 4)]),
    Case("S003-formula-without-value", after=_formula_without_value,
         expect=[("S003", "Random seed", 3)]),
    Case("S003-excel-error", writer="xlsxwriter", after=_excel_error,
         expect=[("S003", "metrics.accuracy", 3), ("S003", "metrics.accuracy", 4)]),
    Case("S004-duplicate-id", rows=changed(4, Experiment_ID="EXP-001"),
         expect=[("S004", "Experiment ID", 4)]),
    Case("S005-id-pattern", rows=changed(3, Experiment_ID="EXP 002"),
         expect=[("S005", "Experiment ID", 3)]),
    Case("S006-outcome", rows=changed(3, Outcome="chosen"),
         expect=[("S006", "Outcome", 3)]),
    Case("S006-goal", metrics=[["accuracy", "maximise", 0.85, "holdout accuracy"]],
         expect=[("S006", "Metrics!B2")]),
    Case("S007-seed-range", rows=changed(3, Random_seed=4294967296),
         expect=[("S007", "Random seed", 3)]),
    Case("S008-metric-not-declared", headers=HEADERS + ["metrics.f1"],
         rows=[dict(r, **{"metrics.f1": 0.5}) for r in clean_rows()],
         expect=[("S008", "metrics.f1", 1)]),
    Case("S008-declared-metric-without-column",
         metrics=METRICS + [["loss", "min", None, "holdout loss"]],
         expect=[("S008", "Metrics!A3")]),
    Case("S009-typo-header", headers=[h if h != "Rerun" else "Rerunn" for h in HEADERS],
         rows=[dict(r, Rerunn=r["Rerun"]) for r in clean_rows()],
         expect=[("S009", "Rerunn", 1)]),
    Case("S010-merged-cells", after=_merge_hypothesis,
         expect=[("S010", "Hypothesis", 2), ("S002", "Hypothesis", 3)]),
    Case("S011-duplicate-header", headers=HEADERS + ["Notes"],
         expect=[("S011", "R1")]),
    Case("S012-older-template", after=_older_template_property, expect=[("S012", "A1")]),
    Case("S013-image-entry-malformed",
         rows=changed(3, Environment="image: Acme/Train@sha256:12; python 3.11.7"),
         expect=[("S013", "Environment", 3)]),
    Case("G008-image-by-tag", rows=changed(3, Environment="image: ghcr.io/acme/train:2026-12"),
         expect=[("G008", "Environment", 3)]),
    Case("R001-outcome-undecided", rows=changed(3, Outcome=None, metrics__accuracy=0.79),
         expect=[("R001", "Outcome", 3)]),
    Case("R002-no-rationale", rows=changed(3, Notes=None),
         expect=[("R002", "Notes", 3)]),
    Case("R003-below-threshold", rows=changed(4, metrics__accuracy=0.8),
         expect=[("R003", "metrics.accuracy", 4)]),
    Case("R004-no-baseline-in-quarter", rows=changed(4, Date=dt.date(2026, 6, 30)),
         expect=[("R004", "Outcome", 4)]),
    Case("R005-not-reproduced", rows=changed(4, Reproducibility=None),
         expect=[("R005", "Outcome", 4)]),
]


# --------------------------------------------------------------------------- writers

def _cell_value(header: str, row: dict):
    for key, value in row.items():
        if " ".join(key.split()).casefold() == " ".join(header.split()).casefold():
            return value
    return None


def write_openpyxl(case: Case, path: Path) -> None:
    import openpyxl

    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.title = "Experiments"
    sheet.append(case.headers)
    for row in case.rows:
        sheet.append([_cell_value(h, row) for h in case.headers])
    for row_cells in sheet.iter_rows(min_row=2):
        for cell in row_cells:
            if isinstance(cell.value, dt.date):
                cell.number_format = "yyyy-mm-dd"
            elif isinstance(cell.value, dt.timedelta):
                cell.number_format = "[h]:mm:ss"
    if case.metrics is not None:
        metrics = workbook.create_sheet("Metrics")
        metrics.append(["Metric", "Goal", "Threshold", "Description"])
        for metric in case.metrics:
            metrics.append(metric)
    if case.after:
        case.after(workbook, sheet)
    workbook.save(path)


def write_xlsxwriter(case: Case, path: Path) -> None:
    import xlsxwriter

    workbook = xlsxwriter.Workbook(str(path))
    date_format = workbook.add_format({"num_format": "yyyy-mm-dd"})
    sheet = workbook.add_worksheet("Experiments")
    sheet.write_row(0, 0, case.headers)
    layout_free = case.name == "xlsxwriter-layout-free"
    for index, row in enumerate(case.rows):
        # the layout-free case leaves an empty row between data rows
        sheet_row = 1 + index * (2 if layout_free else 1)
        for column, header in enumerate(case.headers):
            value = _cell_value(header, row)
            if value is None:
                continue
            if isinstance(value, dt.date):
                sheet.write_datetime(sheet_row, column, value, date_format)
            elif isinstance(value, str):
                sheet.write_string(sheet_row, column, value)
            else:
                sheet.write(sheet_row, column, value)
    if case.metrics is not None:
        metrics = workbook.add_worksheet("Metrics")
        metrics.write_row(0, 0, ["Metric", "Goal", "Threshold", "Description"])
        for index, metric in enumerate(case.metrics, start=1):
            metrics.write_row(index, 0, metric)
    if case.after:
        case.after(workbook, sheet)
    workbook.close()


WRITERS = {"openpyxl": write_openpyxl, "xlsxwriter": write_xlsxwriter}


def fix_timestamps(data: bytes) -> bytes:
    """The same zip with fixed member times and document dates, so output is reproducible."""
    source = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            content = source.read(info)
            if info.filename == "docProps/core.xml":
                content = re.sub(rb"(<dcterms:(?:created|modified)[^>]*>)[^<]*",
                                 rb"\g<1>" + FIXED_STAMP.encode(), content)
            fixed = zipfile.ZipInfo(info.filename, FIXED_TIME)
            fixed.compress_type = zipfile.ZIP_DEFLATED
            fixed.external_attr = 0o644 << 16
            target.writestr(fixed, content)
    return out.getvalue()


def build(case: Case) -> bytes:
    """The case's workbook as bytes."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "log.xlsx"
        WRITERS[case.writer](case, path)
        return fix_timestamps(path.read_bytes())


def outputs(case: Case) -> dict[Path, bytes]:
    """Every file the case writes, relative to sample_logs/."""
    folder = Path("valid" if case.valid else "invalid")
    files = {folder / f"{case.name}.xlsx": build(case)}
    if not case.valid or case.expect:
        files[folder / f"{case.name}.expected.json"] = \
            (json.dumps(case.expected_pairs()) + "\n").encode()
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="compare with the files on disk instead of writing them")
    parser.add_argument("--out", type=Path, default=SAMPLE_LOGS, help="target folder")
    args = parser.parse_args(argv)
    stale = []
    for case in CASES:
        for relative, content in outputs(case).items():
            target = args.out / relative
            if args.check:
                if not target.exists() or target.read_bytes() != content:
                    stale.append(str(relative))
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)
    if args.check:
        for name in stale:
            print(f"stale: {name}", file=sys.stderr)
        return 1 if stale else 0
    print(f"wrote {len(CASES)} sample logs to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
