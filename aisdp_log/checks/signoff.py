"""R006: a row changed after it was signed off in a review (workbook only, so it runs offline)."""

from __future__ import annotations

from typing import Iterator

from ..findings import Finding
from ..workbook import Log


def run(log: Log, ctx) -> Iterator[Finding]:
    from ..signoff import check

    yield from check(log)
