"""The coverage figure a report carries: `N of N+M evidence cells verified`, and which cells
are unverified. Light on imports: a replayed report (`aisdp_log.lint.results`) builds one
without loading the checks."""

from __future__ import annotations

from collections.abc import Callable


class CoverageSummary:
    """The figure the report shows: `N of N+M evidence cells verified`, and which cells are
    unverified (named only when asked: a 10,000-row log checked offline has 200,000 of them,
    and the text output needs just the count). `cells` gives them ready-made (a replayed
    report), `missed` computes them on first use."""

    def __init__(self, verified: int = 0, unverified: int = 0, offline: bool = False,
                 sheet: str = "", missed: Callable[[], dict[int, set[int]]] | None = None,
                 *, cells: list[str] | None = None):
        self.verified = verified
        self.unverified = unverified
        self.offline = offline
        self.sheet = sheet
        self._missed = missed  # () -> {column index: unverified row numbers}
        self._cells: list[str] | None = cells

    @property
    def unverified_cells(self) -> list[str]:
        """`Experiments!M5`, ... in sheet order (row, then column)."""
        if self._cells is None:
            from aisdp_log.workbook.table import column_letter

            missed = self._missed() if self._missed is not None else {}
            pairs = sorted((number, index) for index, numbers in missed.items()
                           for number in numbers)
            letters = {index: column_letter(index) for index in missed}
            self._cells = [f"{self.sheet}!{letters[index]}{number}" for number, index in pairs]
        return self._cells

    def to_dict(self) -> dict:
        return {"verified": self.verified, "unverified": self.unverified,
                "unverified_cells": list(self.unverified_cells)}

    @property
    def total(self) -> int:
        return self.verified + self.unverified

    def line(self) -> str:
        text = f"{self.verified} of {self.total} evidence cells verified"
        if self.offline and self.unverified:
            text += " (--offline: nothing was compared with git, DVC or the artefact folders)"
        return text

    def __repr__(self) -> str:
        return f"CoverageSummary(verified={self.verified}, unverified={self.unverified})"
