"""The check families. Each module has `run(log, ctx) -> Iterator[Finding]`; this module runs
them in order and de-duplicates (one bad cell can fail two checks)."""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

from ..config import Config
from ..findings import Finding

#: Families that read only the workbook, then those that need the repository.
OFFLINE_FAMILIES = ("schema", "review", "signoff")
ONLINE_FAMILIES = ("git", "dvc", "artefacts")


@dataclass
class Context:
    """What the checks may consult besides the workbook."""

    config: Config
    repo: Path
    offline: bool = False
    remote: bool = False
    progress: bool = False
    #: Shared between families (the git repository handle, resolved commits, ...).
    cache: dict = field(default_factory=dict)


def families(offline: bool) -> tuple[str, ...]:
    return OFFLINE_FAMILIES if offline else OFFLINE_FAMILIES[:1] + ONLINE_FAMILIES + \
        OFFLINE_FAMILIES[1:]


def run_checks(log, ctx: Context) -> list[Finding]:
    findings: list[Finding] = []
    for family in families(ctx.offline):
        try:
            module = importlib.import_module(f"{__name__}.{family}")
        except ModuleNotFoundError as exc:
            if exc.name == f"{__name__}.{family}":
                continue  # a family not built yet in this checkout
            raise
        findings.extend(module.run(log, ctx))
    return sorted(deduplicate(findings), key=lambda f: f.sort_key)


def deduplicate(findings: Iterable[Finding]) -> Iterator[Finding]:
    seen = set()
    for finding in findings:
        # experiment_id too: A005 reports one orphan folder each at the same header cell
        key = (finding.code, finding.sheet, finding.cell, finding.column, finding.experiment_id)
        if key not in seen:
            seen.add(key)
            yield finding
