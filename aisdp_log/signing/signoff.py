"""Sign-off of a review: canonical row hashes, the `Sign-off` sheet, and the R006 comparison.

What a `Sign-off` row holds (columns `Period`, `Name and role`, `Signed at`,
`Experiment IDs`, `Row hashes`):

- `Signed at`: ISO 8601 text in UTC, e.g. `2026-11-26T09:00:00Z`.
- `Experiment IDs`: the reviewed IDs, comma-separated.
- `Row hashes`: JSON, one entry per reviewed ID::

    {"EXP-003": {"row": "<sha256 hex>", "cells": {"hypothesis": "<16 hex>", ...},
                 "outcome": "selected"}}

  `row` is the sha256 of the row's values (see `fingerprint`); `cells` holds a short sha256 per
  non-empty cell, keyed by the normalised header, so a later change can be pointed at its cell;
  `outcome` keeps the signed outcome in the clear, so a review can say what it changed from.

A row's values are every column of `Experiments` except the tool-written `Reproducibility`
and the `Rerun` mark. Each value is hashed as canonical text of its typed value, so saving the
workbook again (Excel, LibreOffice, openpyxl) does not change the hash: dates as `YYYY-MM-DD`
whether typed as text or as an Excel date, whole numbers without `.0`, other numbers to the 15
significant digits a spreadsheet keeps, outcomes case-folded, text with its line endings unified.
Empty cells are left out, so adding an empty column does not disturb a signature.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass, field

from aisdp_log import spec
from aisdp_log.domain.values import as_text
from aisdp_log.workbook.table import cell_ref

#: Columns whose changes never break a signature: the rerun helper writes `Reproducibility`,
#: and the `Rerun` mark only asks for a rerun; neither is part of what was reviewed.
UNSIGNED_KEYS = frozenset({spec.REPRODUCIBILITY.key, spec.RERUN.key})
CELL_HASH_LENGTH = 16
EXCEL_CELL_LIMIT = 32767


# --------------------------------------------------------------------------- canonical values

def canonical(value: object) -> str | None:
    """The text a value is hashed as; None for an empty cell."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return repr(value)
        if value.is_integer() and abs(value) < 2**53:
            return str(int(value))
        # Spreadsheets keep 15 significant digits; a re-save may drop the 16th and 17th.
        return format(value, ".15g")
    if isinstance(value, dt.datetime):
        if value.time() == dt.time(0) and value.tzinfo is None:
            return value.date().isoformat()
        return value.isoformat(timespec="seconds")
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return canonical(value.total_seconds())
    if isinstance(value, dict):
        return json.dumps({str(k): canonical(v) for k, v in value.items()}, sort_keys=True,
                          ensure_ascii=False, separators=(",", ":"))
    text = str(value).replace("\r\n", "\n").replace("\r", "\n")
    text = "\n".join(line.rstrip() for line in text.split("\n")).strip()
    return text or None


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass
class Fingerprint:
    """The hashes of one row: `row` over all signed values, `cells` per non-empty cell."""

    experiment_id: str
    row_number: int
    row: str
    cells: dict[str, str]
    outcome: str | None
    #: normalised header -> the Column, to point a finding at a changed cell
    columns: dict = field(default_factory=dict)

    def record(self) -> dict:
        return {"row": self.row, "cells": dict(sorted(self.cells.items())),
                "outcome": self.outcome}


def signed_columns(log) -> dict:
    """Normalised header -> Column for every column a signature covers (a repeated header
    gets `#2`, `#3`, so its values are covered too)."""
    columns = {}
    for column in log.table.columns:
        if column.key in UNSIGNED_KEYS:
            continue
        key = spec.normalise_header(column.header)
        if not key:
            continue
        suffix = 2
        base = key
        while key in columns:
            key = f"{base}#{suffix}"
            suffix += 1
        columns[key] = column
    return columns


def fingerprint(log, row, columns: dict | None = None) -> Fingerprint:
    """Hash one row canonically: typed values where the column has a parser, else the cell."""
    columns = columns if columns is not None else signed_columns(log)
    values: dict[str, str] = {}
    for key, column in columns.items():
        raw = row.get(column)
        if raw is None:
            continue
        value = raw
        if column.spec is not None:  # a repeated header has no spec: hashed as typed
            typed, error = log.parse(row, column)
            if error is None and typed is not None:
                value = typed
        text = canonical(value)
        if text is not None:
            values[key] = text
    row_hash = _sha256(json.dumps(values, sort_keys=True, ensure_ascii=False,
                                  separators=(",", ":")))
    cells = {key: _sha256(json.dumps([key, text], ensure_ascii=False))[:CELL_HASH_LENGTH]
             for key, text in values.items()}
    return Fingerprint(log.experiment_id(row) or "", row.number, row_hash, cells,
                       log.typed(row, spec.OUTCOME.key), columns)


def current_fingerprints(log, only: set[str] | None = None) -> dict[str, Fingerprint]:
    """Experiment ID -> Fingerprint for every row with an ID (the first, where one repeats);
    `only` limits the hashing to those IDs (validation hashes the signed rows alone)."""
    columns = signed_columns(log)
    result: dict[str, Fingerprint] = {}
    for row in log.rows:
        experiment_id = log.experiment_id(row)
        if experiment_id is None or experiment_id in result or \
                (only is not None and experiment_id not in only):
            continue
        result[experiment_id] = fingerprint(log, row, columns)
    return result


# --------------------------------------------------------------------------- the Sign-off sheet

@dataclass
class SignoffRecord:
    """One row of the `Sign-off` sheet, as read back."""

    row_number: int
    period: str
    name_and_role: str
    signed_at: str
    experiment_ids: list[str]
    hashes: dict[str, dict]
    #: where to point a finding about this record: header -> cell reference
    cells: dict[str, str]
    problem: str | None = None
    #: the armored SSH signature and the statement text it signs ("" where absent)
    signature: str = ""
    statement: str = ""
    #: the Row hashes cell as typed, to compare with the signed statement
    hashes_text: str = ""


def read_signoffs(workbook) -> list[SignoffRecord]:
    """The `Sign-off` sheet's rows in the order they were appended; [] when there is none."""

    sheet = workbook.find_sheet(spec.SHEET_SIGNOFF)
    if sheet is None:
        return []
    table = workbook.table(sheet)
    headers = spec.SIGNOFF_COLUMNS + spec.SIGNOFF_SIGNATURE_COLUMNS
    columns = {header: table.column(header) for header in headers}
    records = []
    for row in table.rows:
        def text(header: str, row=row) -> str:
            value = row.get(columns[header])
            return "" if value is None else as_text(value)

        cells = {header: cell_ref(row.number, column.index)
                 for header, column in columns.items() if column is not None}
        hashes, problem = parse_row_hashes(row.get(columns["Row hashes"]))
        ids = [part.strip() for part in text("Experiment IDs").split(",") if part.strip()]
        records.append(SignoffRecord(row.number, text("Period"), text("Name and role"),
                                     text("Signed at"), ids or list(hashes), hashes, cells,
                                     problem, text("Signature").strip(),
                                     text("Statement").strip(), text("Row hashes")))
    return records


def parse_row_hashes(value: object) -> tuple[dict[str, dict], str | None]:
    """A `Row hashes` cell as {ID: {row, cells, outcome}}, or ({}, why it cannot be read)."""
    if value is None:
        return {}, "the Row hashes cell is empty"
    try:
        data = json.loads(str(value))
    except (ValueError, RecursionError):
        return {}, "the Row hashes cell is not valid JSON"
    if not isinstance(data, dict):
        return {}, "the Row hashes cell is not a JSON object of experiment IDs"
    hashes = {}
    for experiment_id, entry in data.items():
        if isinstance(entry, str):  # a bare row hash: still checkable, without the cell
            entry = {"row": entry, "cells": {}}
        if not isinstance(entry, dict) or not isinstance(entry.get("row"), str):
            return {}, f"the Row hashes entry for {experiment_id!r} has no row hash"
        cells = entry.get("cells")
        entry = {"row": entry["row"], "cells": cells if isinstance(cells, dict) else {},
                 "outcome": entry.get("outcome")}
        hashes[str(experiment_id)] = entry
    return hashes, None


def latest_signatures(records: list[SignoffRecord], trusted: set[int] | None = None
                      ) -> dict[str, tuple[SignoffRecord, dict]]:
    """Experiment ID -> (the record that signed it last, its entry). A later review that signs
    the row again accepts its values as they were then.

    With `trusted` (the Sign-off row numbers whose SSH signature verified against the allowed
    signers), a row's reference is its latest trusted sign-off, and an unsigned or untrusted
    sign-off counts only for rows no trusted one covers: signing a changed row again with a
    key nobody listed does not make the change disappear."""
    latest: dict[str, tuple[SignoffRecord, dict]] = {}
    for record in records:
        for experiment_id, entry in record.hashes.items():
            latest[experiment_id] = (record, entry)
    if trusted is None:
        return latest
    for record in records:
        if record.row_number in trusted:
            for experiment_id, entry in record.hashes.items():
                latest[experiment_id] = (record, entry)
    # a trusted sign-off after an untrusted one still wins; an untrusted one after a trusted
    # one never does (the loop above overwrote it)
    return latest


@dataclass
class Change:
    """A signed row that differs from its signature."""

    experiment_id: str
    record: SignoffRecord
    deleted: bool = False
    #: normalised headers whose value differs (added, changed or cleared)
    headers: list[str] = field(default_factory=list)
    old_outcome: str | None = None
    new_outcome: str | None = None


def changes(log, records: list[SignoffRecord] | None = None,
            current: dict[str, Fingerprint] | None = None,
            trusted: set[int] | None = None) -> list[Change]:
    """Every signed row whose values differ now from what its latest sign-off recorded
    (its latest trusted one, given `trusted`: see `latest_signatures`)."""
    records = read_signoffs(log.workbook) if records is None else records
    current = current_fingerprints(log) if current is None else current
    result = []
    for experiment_id, (record, entry) in latest_signatures(records, trusted).items():
        now = current.get(experiment_id)
        if now is None:
            result.append(Change(experiment_id, record, deleted=True,
                                 old_outcome=entry.get("outcome")))
            continue
        if now.row == entry["row"]:
            continue
        signed_cells = entry["cells"]
        headers = sorted(h for h in set(signed_cells) | set(now.cells)
                         if signed_cells.get(h) != now.cells.get(h))
        result.append(Change(experiment_id, record, headers=headers,
                             old_outcome=entry.get("outcome"), new_outcome=now.outcome))
    return result


def check(log, records: list[SignoffRecord] | None = None,
          trusted: set[int] | None = None) -> Iterator:
    """R006 findings: at the changed cell of a signed row; for a deleted signed row, at the
    `Experiment IDs` cell of the Sign-off row that signed it; for an unreadable `Row hashes`
    cell, at that cell (a signature that cannot be read protects nothing). `records` and
    `trusted` come from the signature checks (`verify.check_signoffs`) when they ran."""

    records = read_signoffs(log.workbook) if records is None else records
    if not records:
        return
    sheet = log.workbook.find_sheet(spec.SHEET_SIGNOFF) or spec.SHEET_SIGNOFF
    for record in records:
        if record.problem:
            cell = record.cells.get("Row hashes") or cell_ref(record.row_number, 0)
            yield log.finding_at("R006", sheet, cell, record.row_number, "Row hashes",
                                 f"sign-off of {record.period or 'a review'}: {record.problem}, "
                                 "so its rows cannot be checked")
    current = current_fingerprints(log, set(latest_signatures(records, trusted)))
    for change in changes(log, records, current, trusted):
        record = change.record
        signed = f"signed in the {record.period or 'unnamed'} review by " \
                 f"{record.name_and_role or 'someone'} at {record.signed_at or 'an unknown time'}"
        if change.deleted:
            cell = record.cells.get("Experiment IDs") or cell_ref(record.row_number, 0)
            yield log.finding_at("R006", sheet, cell, record.row_number, "Experiment IDs",
                                 f"{change.experiment_id} was {signed} but is no longer in "
                                 "Experiments (deleted or renamed)", change.experiment_id)
            continue
        # the fingerprinted row is the first with this ID, as the findings want it
        now = current[change.experiment_id]
        row, experiment_id = now.row_number, change.experiment_id
        pointed = False
        for header in change.headers:
            column = now.columns.get(header)
            if column is not None:
                yield log.finding("R006", row, column,
                                  f"{column.header} changed after the row was {signed}",
                                  experiment_id=experiment_id)
            else:
                yield log.finding("R006", row, None,
                                  f"column {header!r} was removed after the row was {signed}",
                                  experiment_id=experiment_id, column_name=header)
            pointed = True
        if not pointed:
            yield log.finding("R006", row, None, f"the row's values differ from what was "
                              f"{signed} (the signature records no per-cell hashes)",
                              experiment_id=experiment_id)
