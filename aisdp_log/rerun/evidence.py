"""Write a rerun's evidence into the workbook: `Reruns` rows, `Reproducibility` rows and each
row's `Reproducibility` cell, through the safe writer; nothing else is touched."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from aisdp_log import __version__, spec
from aisdp_log.domain.metrics import passing_pairs
from aisdp_log.domain.stats import NOT_REPRODUCED
from aisdp_log.record.add import environment_summary
from aisdp_log.rerun.plan import RowOutcome
from aisdp_log.workbook.writer import (
    append_row,
    ensure_sheet,
    find_rows,
    find_sheet,
    header_columns,
    open_workbook_for_update,
    set_cell,
)

#: Extra column of `Reruns` (the format allows extra columns): why a run failed.
STATUS_HEADER = "Status"
#: Extra column after `Status`: the last lines of a failed run's stderr.
ERROR_HEADER = "Error"
#: Extra columns: where each run ran (`local` or `slurm`), its Slurm job, and the devices
#: (`CUDA_VISIBLE_DEVICES`) it was given.
EXECUTOR_HEADER, JOB_HEADER, DEVICES_HEADER = "Executor", "Slurm job ID", "Devices"


def _reruns_headers(declared: dict) -> list[str]:
    return [*spec.RERUNS_COLUMNS_BEFORE_METRICS,
            *(spec.METRICS_PREFIX + m.name for m in declared.values()),
            *spec.RERUNS_COLUMNS_AFTER_METRICS, STATUS_HEADER, ERROR_HEADER, EXECUTOR_HEADER,
            JOB_HEADER, DEVICES_HEADER]


RERUNS_FORMATS = {"Started": "yyyy-mm-dd hh:mm:ss", "Seed": "0", "Duration": "0.00"}
#: `Recorded` keeps General: it shows the row's value as typed, not rounded to four places.
REPRODUCIBILITY_FORMATS = {"Date": "yyyy-mm-dd hh:mm:ss", "Mean": "0.0000", "Std": "0.0000",
                           "CI low": "0.0000", "CI high": "0.0000", "Confidence": "0%"}


def write_back(log_path: Path, outcomes: list[RowOutcome], declared: dict, config,
                force: bool) -> None:
    """Append the evidence and set each row's cell, re-reading the workbook first."""

    now = dt.datetime.now().replace(microsecond=0)
    headers = _reruns_headers(declared)
    widths = {"Rerun ID": 34, "Experiment ID": 14, "Started": 19, "Code commit": 14,
              "Data version": 18, "Artefact hash": 24, "Environment": 40, STATUS_HEADER: 30,
              ERROR_HEADER: 60, EXECUTOR_HEADER: 10, JOB_HEADER: 12, DEVICES_HEADER: 12}
    with open_workbook_for_update(log_path, force=force) as wb:
        experiments = find_sheet(wb, spec.SHEET_EXPERIMENTS)
        reruns = ensure_sheet(wb, spec.SHEET_RERUNS, headers,
                              widths=[widths.get(h, 12) for h in headers],
                              number_formats=RERUNS_FORMATS)
        repro = ensure_sheet(wb, spec.SHEET_REPRODUCIBILITY,
                             list(spec.REPRODUCIBILITY_COLUMNS),
                             widths=[14, 19, 12, 16] + [10] * 8 + [10, 14, 58],
                             number_formats=REPRODUCIBILITY_FORMATS)
        earlier = _passing_modes(repro)
        for outcome in outcomes:
            plan = outcome.plan
            if plan is None:
                continue
            if outcome.runs and find_rows(reruns, "Rerun ID", outcome.runs[0].rerun_id):
                # Collected before (a detached rerun's collection cut short after the write):
                # its evidence is in the sheets already, and appended only once.
                outcome.lines.append("its evidence was already in the workbook")
                continue
            for result in outcome.runs:
                values = {
                    "Rerun ID": result.rerun_id, "Experiment ID": plan.experiment_id,
                    "Started": result.started, "Mode": result.mode, "Seed": result.seed,
                    "Code commit": plan.commit, "Data version": plan.data_version,
                    "Artefact hash": result.artefact_hash,
                    "Bitwise match": (None if result.bitwise_match is None else
                                      "yes" if result.bitwise_match else "no"),
                    "Duration": round(result.duration_s / 60, 4),
                    "Environment": (plan.run_env.describe(result.environment) if plan.run_env
                                    else environment_summary(result.environment)),
                    "Tool version": __version__, STATUS_HEADER: result.status,
                    ERROR_HEADER: result.error, EXECUTOR_HEADER: result.executor,
                    JOB_HEADER: result.job_id,
                    DEVICES_HEADER: (f"CUDA_VISIBLE_DEVICES={result.devices}"
                                     if result.devices is not None else None),
                }
                folded = {k.casefold(): v for k, v in result.metrics.items()}
                for metric in declared.values():
                    values[spec.METRICS_PREFIX + metric.name] = folded.get(metric.name.casefold())
                append_row(reruns, {k: v for k, v in values.items() if v is not None},
                           number_formats=RERUNS_FORMATS)
            for evidence in outcome.evidence:
                values = dict(evidence, **{"Experiment ID": plan.experiment_id, "Date": now})
                append_row(repro, {k: v for k, v in values.items() if v is not None},
                           number_formats=REPRODUCIBILITY_FORMATS)
            if experiments is None or outcome.verdict is None:
                continue
            found = find_rows(experiments, spec.EXPERIMENT_ID.header, plan.experiment_id)
            if len(found) != 1:
                outcome.lines.append(f"the Reproducibility cell was not set: {len(found)} rows "
                                     "now carry this ID")
                continue
            ensure_sheet(wb, experiments.title, [spec.REPRODUCIBILITY.header])
            current = _cell_text(experiments, found[0], spec.REPRODUCIBILITY.header)
            contradicted = any(row.get("Consistency") == NOT_REPRODUCED
                               for row in outcome.evidence)
            if outcome.verdict == "failed" and current in ("bitwise", "statistical") and \
                    current in earlier.get(plan.experiment_id, set()) and not contradicted:
                # A failed rerun is evidence too (in the sheets), but it does not erase a
                # level that earlier reruns passed: the cell keeps naming that level.
                # A recorded value the reruns contradict (`not reproduced`) is not such a
                # failure: the cell says `failed` (R005 reads the sheet the same way).
                outcome.lines.append(f"the row keeps `{current}`: the Reproducibility sheet "
                                     f"holds an earlier passing {current} rerun")
                continue
            set_cell(experiments, found[0], spec.REPRODUCIBILITY.header, outcome.verdict)


def _passing_modes(ws) -> dict[str, set[str]]:
    """Experiment ID -> modes that passed in a Reproducibility sheet (openpyxl), by the same
    rule as R005 (`checks.review.passing_pairs`)."""

    columns = header_columns(ws)
    found = [columns.get(spec.normalise_header(h)) for h in ("Experiment ID", "Mode", "Date",
                                                              "Verdict")]
    wanted = [c for c in found if c is not None]
    if len(wanted) != len(found):
        return {}
    consistency = columns.get(spec.normalise_header("Consistency"))
    if consistency is not None:  # absent from sheets written before 0.3
        wanted.append(consistency)
    records = ([values[c - 1] if c - 1 < len(values) else None for c in wanted]
               for values in ws.iter_rows(min_row=2, values_only=True))
    passed: dict[str, set[str]] = {}
    for experiment_id, mode in passing_pairs(records):
        passed.setdefault(experiment_id, set()).add(mode)
    return passed


def _cell_text(ws, row: int, header: str) -> str | None:

    column = header_columns(ws).get(spec.normalise_header(header))
    value = ws.cell(row=row, column=column).value if column else None
    return str(value).strip().casefold() if value is not None else None
