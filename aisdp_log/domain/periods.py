"""Review periods: calendar quarters such as `2026-Q3`."""

from __future__ import annotations

import datetime as dt


def quarter(date: dt.date) -> str:
    """`2026-Q3` for a date in July to September 2026."""
    return f"{date.year}-Q{(date.month - 1) // 3 + 1}"
