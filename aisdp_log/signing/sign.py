"""Making a sign-off: the `Sign-off` row's values (row hashes of the period's rows) and the
row appended through the safe writer (the signer's `Name, Role <email>`: `identity`). Reading and
comparing sign-offs is `signoff`'s, which a validation imports without the writer."""

from __future__ import annotations

import datetime as dt
import json

from aisdp_log import spec
from aisdp_log.errors import AisdpLogError
from aisdp_log.signing.signoff import EXCEL_CELL_LIMIT, fingerprint, signed_columns
from aisdp_log.workbook.writer import append_row, ensure_sheet, open_workbook_for_update


def signoff_values(log, period: str, rows, signer: str,
                   signed_at: dt.datetime | None = None) -> dict[str, str]:
    """The Sign-off row for `rows` (the period's rows), keyed by the sheet's headers
    (`spec.SIGNOFF_COLUMNS`)."""
    columns = signed_columns(log)
    hashes: dict[str, dict] = {}
    for row in rows:
        experiment_id = log.experiment_id(row)
        if experiment_id is None or experiment_id in hashes:
            continue
        hashes[experiment_id] = fingerprint(log, row, columns).record()
    if not hashes:
        raise AisdpLogError(f"{log.name}: no rows with an Experiment ID in {period}; "
                            "nothing to sign")
    text = json.dumps(hashes, ensure_ascii=False, separators=(",", ":"))
    if len(text) > EXCEL_CELL_LIMIT:
        raise AisdpLogError(f"{log.name}: the row hashes of {period} need {len(text)} "
                            f"characters, more than a cell holds ({EXCEL_CELL_LIMIT})")
    when = (signed_at or dt.datetime.now(dt.timezone.utc)).astimezone(dt.timezone.utc)
    return {
        "Period": period,
        "Name and role": signer,
        "Signed at": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "Experiment IDs": ", ".join(hashes),
        "Row hashes": text,
    }


def append_signoff(path, values: dict[str, str], *, force: bool = False) -> int:
    """Append one Sign-off row through the safe writer; returns its sheet row number."""

    with open_workbook_for_update(path, force=force) as workbook:
        headers = list(spec.SIGNOFF_COLUMNS)
        # the signature columns only when this sign-off has a statement, so a caller that
        # writes none leaves a 0.1 log's sheet as it was
        if values.get("Statement"):
            headers += list(spec.SIGNOFF_SIGNATURE_COLUMNS)
        sheet = ensure_sheet(workbook, spec.SHEET_SIGNOFF, headers,
                             widths=[10, 30, 22, 40, 100, 60, 100])
        return append_row(sheet, {h: v for h, v in values.items() if v or h in headers})
