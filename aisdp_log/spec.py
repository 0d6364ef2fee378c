"""The one source of truth for the workbook's sheets and columns.

The template, the checks, the pandera schema and the README's column guide all read these
definitions, so a column's name, type, help text and Annex IV reference live in one place.
"""

from __future__ import annotations

from dataclasses import dataclass

SHEET_EXPERIMENTS = "Experiments"
SHEET_METRICS = "Metrics"
SHEET_GUIDE = "Guide"
SHEET_RERUNS = "Reruns"
SHEET_REPRODUCIBILITY = "Reproducibility"
SHEET_SIGNOFF = "Sign-off"

PARAMS_PREFIX = "params."
METRICS_PREFIX = "metrics."

DEFAULT_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"
SEED_MAX = 4294967295

OUTCOMES = ("selected", "rejected", "baseline")
GOALS = ("max", "min")
RERUN_MARKS = ("yes", "y", "x", "true", "1")
RERUN_NO_MARKS = ("no", "n", "false", "0")
REPRODUCIBILITY_VALUES = ("bitwise", "statistical", "failed")

ANNEX_DESIGN = "2(b)"
ANNEX_DATA = "2(d)"
ANNEX_VALIDATION = "2(g)"
ANNEX_TEXT = {
    ANNEX_DESIGN: "Annex IV 2(b): design specifications, key design choices and their rationale",
    ANNEX_DATA: "Annex IV 2(d): data requirements, training data sets and their provenance",
    ANNEX_VALIDATION: "Annex IV 2(g): validation and testing procedures, metrics and results",
}


@dataclass(frozen=True)
class ColumnSpec:
    """One column of the `Experiments` sheet.

    `kind` names the value parser in `domain/values.py`; `key` is the name code uses.
    """

    key: str
    header: str
    kind: str
    required: bool
    width: int
    help: str
    example: str
    annex: str
    number_format: str | None = None
    allowed: tuple[str, ...] = ()
    written_by_tool: bool = False


EXPERIMENT_ID = ColumnSpec(
    "experiment_id", "Experiment ID", "id", True, 14,
    "A unique name for the run; it also names the artefact folder <artefacts>/<ID>/.",
    "EXP-001", ANNEX_DESIGN,
)
DATE = ColumnSpec(
    "date", "Date", "date", True, 12,
    "The day the run started: an Excel date or ISO text YYYY-MM-DD.",
    "2026-07-14", ANNEX_DESIGN, number_format="yyyy-mm-dd",
)
HYPOTHESIS = ColumnSpec(
    "hypothesis", "Hypothesis", "text", True, 40,
    "What the run was meant to show, written before the run.",
    "Adam converges faster than SGD at the same learning rate", ANNEX_DESIGN,
)
OTHER_PARAMS = ColumnSpec(
    "other_params", "Other params", "other_params", False, 24,
    "Hyperparameters without a params.<name> column, as key=value; key=value.",
    "dropout=0.1; warmup=100", ANNEX_DESIGN,
)
DATA_VERSION = ColumnSpec(
    "data_version", "Data version", "data_version", True, 18,
    "The DVC hash of the training data (md5 from its .dvc file, full or 8+ hex characters, "
    ".dir allowed), or a git tag/commit at which the .dvc files pin the data.",
    "3f2a9c1e", ANNEX_DATA,
)
CODE_COMMIT = ColumnSpec(
    "code_commit", "Code commit", "commit", True, 14,
    "The git commit the run was trained from, 7 to 40 hex characters.",
    "9c1e4b7", ANNEX_DESIGN,
)
RANDOM_SEED = ColumnSpec(
    "random_seed", "Random seed", "seed", True, 12,
    "The seed the run used: a whole number from 0 to 4294967295.",
    "42", ANNEX_VALIDATION, number_format="0",
)
TRAINING_DURATION = ColumnSpec(
    "training_duration", "Training duration", "duration", True, 12,
    "How long training took: minutes as a number, or a duration such as 1:30:00.",
    "12.5", ANNEX_DESIGN, number_format="0.0",
)
ARTEFACT_HASH = ColumnSpec(
    "artefact_hash", "Artefact hash", "artefact_hash", True, 24,
    "sha256:<64 hex> of the model artefact; `aisdp-log hash <folder>` prints it.",
    "sha256:9f86d081884c7d65...", ANNEX_VALIDATION,
)
ENVIRONMENT = ColumnSpec(
    "environment", "Environment", "text", True, 30,
    "What recreates the compute environment: a lock file as <path> sha256:<hex>, an image "
    "digest, framework versions.",
    "uv.lock sha256:5e88...; torch 2.13.0+cpu", ANNEX_VALIDATION,
)
OUTCOME = ColumnSpec(
    "outcome", "Outcome", "choice", False, 11,
    "selected, rejected or baseline; leave empty while undecided.",
    "selected", ANNEX_DESIGN, allowed=OUTCOMES,
)
NOTES = ColumnSpec(
    "notes", "Notes", "text", False, 40,
    "The rationale: why this run was selected or rejected.",
    "Beats the baseline by 2.1 points; meets the 0.85 threshold", ANNEX_DESIGN,
)
RERUN = ColumnSpec(
    "rerun", "Rerun", "rerun", False, 8,
    "Mark (yes, y, x, true, 1) to have `aisdp-log rerun --flagged` reproduce this row.",
    "yes", ANNEX_VALIDATION, allowed=RERUN_MARKS,
)
REPRODUCIBILITY = ColumnSpec(
    "reproducibility", "Reproducibility", "choice", False, 14,
    "Written by `aisdp-log rerun`: bitwise, statistical or failed.",
    "bitwise", ANNEX_VALIDATION, allowed=REPRODUCIBILITY_VALUES, written_by_tool=True,
)

#: The fixed columns, in template order. `params.*` go after `Hypothesis`; `metrics.*` after
#: `Training duration`.
STANDARD_COLUMNS: tuple[ColumnSpec, ...] = (
    EXPERIMENT_ID, DATE, HYPOTHESIS, OTHER_PARAMS, DATA_VERSION, CODE_COMMIT, RANDOM_SEED,
    TRAINING_DURATION, ARTEFACT_HASH, ENVIRONMENT, OUTCOME, NOTES, RERUN, REPRODUCIBILITY,
)
BY_KEY = {c.key: c for c in STANDARD_COLUMNS}

PARAM_HELP = "A hyperparameter declared for every run; one column per parameter."
METRIC_HELP = ("A final metric on the holdout test set, as declared in the Metrics sheet; "
               "required unless the outcome is rejected.")


def param_column(name: str, kind: str = "float", choices: tuple[str, ...] = ()) -> ColumnSpec:
    """The spec of a declared `params.<name>` column."""
    example = {"int": "20", "float": "0.001", "str": "adam"}.get(kind, "0.001")
    if choices:
        example = choices[0]
    help_text = PARAM_HELP
    if choices:
        help_text += " One of: " + ", ".join(choices) + "."
    elif kind in ("int", "float"):
        help_text += " A number." if kind == "float" else " A whole number."
    return ColumnSpec(
        "params." + name, PARAMS_PREFIX + name, "param", True, 14, help_text, example,
        ANNEX_DESIGN, number_format="0" if kind == "int" else None,
        allowed=tuple(choices),
    )


def metric_column(name: str, description: str = "") -> ColumnSpec:
    """The spec of a declared `metrics.<name>` column."""
    help_text = METRIC_HELP + (f" {description}." if description else "")
    return ColumnSpec(
        "metrics." + name, METRICS_PREFIX + name, "metric", True, 12, help_text, "0.912",
        ANNEX_VALIDATION, number_format="0.000",
    )


@dataclass(frozen=True)
class MetricSpec:
    name: str
    goal: str = "max"
    threshold: float | None = None
    description: str = ""
    #: Added in 0.3 (issue 27): how far a recorded value may lie from the reruns' mean.
    tolerance: float | None = None


METRICS_COLUMNS = ("Metric", "Goal", "Threshold", "Tolerance", "Description")
RERUNS_COLUMNS_BEFORE_METRICS = ("Rerun ID", "Experiment ID", "Started", "Mode", "Seed",
                                 "Code commit", "Data version")
RERUNS_COLUMNS_AFTER_METRICS = ("Artefact hash", "Bitwise match", "Duration", "Environment",
                                "Tool version")
REPRODUCIBILITY_COLUMNS = ("Experiment ID", "Date", "Mode", "Metric", "Runs", "Mean", "Std",
                           "CI low", "CI high", "Confidence", "Threshold", "Verdict",
                           "Recorded", "Consistency", "Consistency bounds")
#: Values of the Reproducibility sheet's `Verdict` (threshold) and `Consistency` columns.
THRESHOLD_VERDICTS = ("pass", "fail", "no threshold")
CONSISTENCY_VERDICTS = ("consistent", "not reproduced", "too few runs")
SIGNOFF_COLUMNS = ("Period", "Name and role", "Signed at", "Experiment IDs", "Row hashes")
#: Added in 0.2 (issue 13): the armored SSH signature and the statement it signs.
SIGNOFF_SIGNATURE_COLUMNS = ("Signature", "Statement")


def normalise_header(text: object) -> str:
    """Header text as compared: case-folded, surrounding and repeated white space removed."""
    return " ".join(str(text).split()).casefold()


def split_prefixed(header: str) -> tuple[str, str] | None:
    """(`params`|`metrics`, name) for a `params.<name>` / `metrics.<name>` header, else None."""
    norm = " ".join(str(header).split())
    low = norm.casefold()
    for prefix in (PARAMS_PREFIX, METRICS_PREFIX):
        if low.startswith(prefix) and len(norm) > len(prefix):
            return prefix[:-1], norm[len(prefix):].strip()
    return None


def column_letters(number: int) -> str:
    """A 1-based column number as Excel's letters (1 -> `A`, 27 -> `AA`, 16384 -> `XFD`)."""
    letters = ""
    while number > 0:
        number, rest = divmod(number - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


def column_number(reference: str) -> int:
    """The 1-based column number of Excel letters or of a cell reference's leading letters
    (`A` -> 1, `m5` -> 13); 0 when it starts with no letter."""
    number = 0
    for char in reference:
        if not char.isalpha():
            break
        number = number * 26 + ord(char.upper()) - 64
    return number
