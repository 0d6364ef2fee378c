"""`aisdp-log add`: turn an experiment's artefact folder (`run.json`, `metrics.json`, the model)
into a new row of the log, through the safe writer.

Everything is read and hashed before the workbook is opened for update, so the file is held
only for the load-append-save itself.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from aisdp_log import spec
from aisdp_log.artefacts.folders import artefact_folder
from aisdp_log.artefacts.hashing import artefact_hash
from aisdp_log.domain.nested import MISSING, lookup, unplaced
from aisdp_log.errors import WriteRefused
from aisdp_log.record.environment import summarise
from aisdp_log.repo.roots import config_for, resolve_repo
from aisdp_log.workbook.guard import writer_lock
from aisdp_log.workbook.writer import (
    append_row,
    find_rows,
    find_sheet,
    open_workbook_for_update,
)

#: The run.json `status` values a row may be made from (a record without one is accepted).
ACCEPTED_STATUS = ("completed",)


@dataclass
class AddResult:
    """What `add_experiment` wrote, for the CLI to print."""

    log: Path
    experiment_id: str
    row: int
    sheet: str
    written: dict[str, object]
    unrecorded_params: list[str] = field(default_factory=list)
    unlogged_metrics: list[str] = field(default_factory=list)
    missing_metrics: list[str] = field(default_factory=list)



def read_json(path: Path, what: str) -> dict:
    try:
        with open(path, "rb") as fh:
            data = json.load(fh)
    except FileNotFoundError:
        raise WriteRefused(f"{path}: no {what}") from None
    except (OSError, ValueError, RecursionError) as exc:  # RecursionError: nested too deep
        raise WriteRefused(f"{path}: not readable JSON ({' '.join(str(exc).split())[:150]})") \
            from None
    if not isinstance(data, dict):
        raise WriteRefused(f"{path}: expected a JSON object")
    return data


def run_date(started: object) -> dt.date | None:
    """The day the run started, as its own clock saw it (the offset in the ISO text)."""
    if not isinstance(started, str) or not started.strip():
        return None
    text = started.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        return dt.datetime.fromisoformat(text).date()
    except ValueError:
        try:
            return dt.date.fromisoformat(text[:10])
        except ValueError:
            return None


def environment_summary(environment: object) -> str | None:
    """run.json's `environment.summary`, else one built from what the record holds. The
    container image the run recorded (`environment.image`) is always named, first: a summary
    written by hand or by an older aisdp-log may lack it."""
    if isinstance(environment, str):
        return environment.strip() or None
    if not isinstance(environment, dict):
        return None
    summary = environment.get("summary")
    if isinstance(summary, str) and summary.strip():
        image = environment.get("image")
        if isinstance(image, str) and image.strip() and image.strip() not in summary:
            return f"image: {image.strip()}; {summary.strip()}"
        return summary.strip()

    try:
        built = summarise(environment)
    except (AttributeError, TypeError, KeyError):
        built = ""
    if built:
        return built
    parts = [f"{key} {value}" for key, value in environment.items()
             if isinstance(value, (str, int, float)) and not isinstance(value, bool)]
    return "; ".join(parts)[:500] or None


def _cell_value(value: object) -> object:
    """A run.json value as a cell takes it: lists and tables as JSON text."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _other_params_text(params: dict[str, object]) -> str:
    def text(value: object) -> str:
        value = _cell_value(value)
        if isinstance(value, bool):
            return "true" if value else "false"
        return str(value)

    return "; ".join(f"{name}={text(value)}" for name, value in params.items())


def _data_version(value: object) -> object:
    if isinstance(value, dict) and len(value) == 1:
        return _cell_value(next(iter(value.values())))
    return _cell_value(value)


def _column_lookup(headers: dict[str, int]) -> tuple[dict[str, str], dict[str, str],
                                                     dict[str, str]]:
    """Standard key -> header, param name (folded) -> header, metric name (folded) -> header,
    from the sheet's own header texts."""
    by_norm = {spec.normalise_header(c.header): c.key for c in spec.STANDARD_COLUMNS}
    standard: dict[str, str] = {}
    params: dict[str, str] = {}
    metrics: dict[str, str] = {}
    for header in headers:
        key = by_norm.get(spec.normalise_header(header))
        if key is not None:
            standard.setdefault(key, header)
            continue
        prefixed = spec.split_prefixed(header)
        if prefixed:
            family, name = prefixed
            (params if family == "params" else metrics).setdefault(name.casefold(), header)
    return standard, params, metrics


def build_values(headers: list[str], experiment_id: str, run: dict, metrics: dict,
                 artefact_hash: str) -> tuple[dict[str, object], list[str], list[str],
                                              list[str]]:
    """The row to append (header -> value) from the record, for the columns the sheet has;
    plus params that found no place, metrics without a column, and metric columns without a
    value."""
    standard, param_headers, metric_headers = _column_lookup(
        {h: i for i, h in enumerate(headers)})
    values: dict[str, object] = {}

    def put(key: str, value: object) -> None:
        if key in standard and value is not None:
            values[standard[key]] = value

    put("experiment_id", experiment_id)
    put("date", run_date(run.get("started")))
    params = run.get("params")
    if not isinstance(params, dict):
        params = {}
    # a column `params.train.n_est` takes `{"train": {"n_est": 50}}` as DVC names it
    for name, header in param_headers.items():
        value = lookup(params, name)
        if value is not MISSING and value is not None:
            values[header] = _cell_value(value)
    other = unplaced(params, set(param_headers))
    unrecorded: list[str] = []
    if other:
        if "other_params" in standard:
            values[standard["other_params"]] = _other_params_text(other)
        else:
            unrecorded = list(other)
    put("data_version", _data_version(run.get("data_version")))
    put("code_commit", _cell_value(run.get("commit")))
    seed = run.get("seed")
    put("random_seed", seed if isinstance(seed, int) and not isinstance(seed, bool)
        else _cell_value(seed))
    duration = run.get("duration_s")
    if isinstance(duration, (int, float)) and not isinstance(duration, bool) \
            and math.isfinite(duration):
        put("training_duration", round(duration / 60, 2))
    missing = []
    for name, header in metric_headers.items():
        value = lookup(metrics, name)
        if value is MISSING or value is None:
            missing.append(header)
        else:
            values[header] = _cell_value(value)
    unlogged = list(unplaced(metrics, set(metric_headers)))
    put("artefact_hash", artefact_hash)
    put("environment", environment_summary(run.get("environment")))
    return values, unrecorded, unlogged, missing


def add_experiment(log_path: Path | str, experiment_id: str, *, repo: Path | str | None = None,
                   force: bool = False) -> AddResult:
    """Append a row for `experiment_id` to the log from its artefact folder.

    Raises WriteRefused (one line) for a failed or missing record, an ID already in the log or
    one that escapes the artefacts folder, a model whose files changed since the run recorded
    them, or a workbook that is open elsewhere (`force` overrides a stale Excel/LibreOffice
    lock only).

    The checks before writing (Office locks, permissions, owner, hard links) come first and
    the writer lock is held from there to the write: a refusal costs no hashing."""

    with writer_lock(log_path, force=force):
        return _add_experiment(Path(log_path), experiment_id, repo=repo, force=force)


def _add_experiment(log_path: Path, experiment_id: str, *, repo: Path | str | None,
                    force: bool) -> AddResult:

    root = resolve_repo(log_path, repo, offline=True)
    config = config_for(log_path, root)
    if not config.id_regex.search(experiment_id):
        raise WriteRefused(f"experiment ID {experiment_id!r} does not match the id pattern "
                           f"{config.id_pattern}")
    folder = artefact_folder(config.artefacts_dir, experiment_id)
    if not folder.is_dir():
        raise WriteRefused(f"{folder}: no artefact folder for {experiment_id} (train it with "
                           "the recording API, or check the ID)")
    run = read_json(folder / "run.json", "run.json (the run's record)")
    recorded_id = run.get("experiment_id")
    if recorded_id is not None and str(recorded_id) != experiment_id:
        raise WriteRefused(f"{folder / 'run.json'}: records experiment {recorded_id!r}, "
                           f"not {experiment_id!r}")
    status = run.get("status")
    if status is not None and status not in ACCEPTED_STATUS:
        reason = run.get("error")
        raise WriteRefused(f"{experiment_id}: the run's status is {status!r}" + (
            f" ({' '.join(str(reason).split())[:120]})" if reason else "")
            + "; only a completed run becomes a row")
    metrics_path = folder / "metrics.json"
    if metrics_path.exists():
        metrics = read_json(metrics_path, "metrics.json")
    else:
        in_run = run.get("metrics")
        metrics = in_run if isinstance(in_run, dict) else {}

    with open_workbook_for_update(log_path, force=force) as workbook:
        sheet = find_sheet(workbook, spec.SHEET_EXPERIMENTS)
        if sheet is None:
            raise WriteRefused(f"{log_path}: no sheet named 'Experiments'")
        headers = [str(cell.value) for cell in sheet[1] if cell.value is not None]
        id_header = next((h for h in headers if spec.normalise_header(h)
                          == spec.normalise_header(spec.EXPERIMENT_ID.header)), None)
        if id_header is None:
            raise WriteRefused(f"{log_path}: the Experiments sheet has no 'Experiment ID' "
                               "column")
        if find_rows(sheet, id_header, experiment_id):
            raise _duplicate(experiment_id, log_path)
        # hashed once the log is known to take the row, under the writer lock: the workbook
        # is read once, and a refused ID costs no hashing of a possibly large model
        on_disk = _model_hash(folder, run)
        values, unrecorded, unlogged, missing = build_values(
            headers, experiment_id, run, metrics, on_disk)
        row = append_row(sheet, values, number_formats=_template_formats(headers))
    return AddResult(log_path, experiment_id, row, sheet.title, values, unrecorded, unlogged,
                     missing)


def _model_hash(folder: Path, run: dict) -> str:
    """The artefact hash of the model files, refused where there are none or where they
    changed since run.json recorded them."""
    try:
        on_disk = artefact_hash(folder)
    except FileNotFoundError:
        raise WriteRefused(f"{folder}: holds no model file (only run.json, metrics.json, "
                           "history.csv or reruns/)") from None
    recorded = run.get("artefact_hash")
    if isinstance(recorded, str) and recorded.strip() and \
            recorded.strip().lower().removeprefix("sha256:") != on_disk.removeprefix("sha256:"):
        raise WriteRefused(f"{folder}: the model files changed since the run recorded them "
                           f"(run.json {recorded.strip()[:20]}..., on disk {on_disk[:20]}...)")
    return on_disk


def _template_formats(headers: list[str]) -> dict[str, str]:
    """The template's number formats by header: what a first row gets when nothing above it
    or in its table says otherwise."""
    by_norm = {spec.normalise_header(c.header): c.number_format for c in spec.STANDARD_COLUMNS
               if c.number_format}
    formats = {}
    for header in headers:
        prefixed = spec.split_prefixed(header)
        if prefixed and prefixed[0] == "metrics":
            number_format = spec.metric_column(prefixed[1]).number_format
            if number_format is not None:  # always: a metric column has one
                formats[header] = number_format
        elif spec.normalise_header(header) in by_norm:
            formats[header] = by_norm[spec.normalise_header(header)]
    return formats


def _duplicate(experiment_id: str, log_path: Path) -> WriteRefused:
    return WriteRefused(f"{log_path}: experiment {experiment_id!r} is already in the log; "
                        "each run gets one row (use a new ID for a new run)")
