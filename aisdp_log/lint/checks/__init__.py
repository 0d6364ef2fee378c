"""The check families. Each module has `run(log, ctx) -> Iterator[Finding]`; this module runs
them in order and de-duplicates (one bad cell can fail two checks)."""

from __future__ import annotations

import importlib
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

from aisdp_log.config import Config
from aisdp_log.findings import Finding
from aisdp_log.lint.coverage import Coverage, CoverageSummary, conclude

#: Families that read only the workbook, then those that need the repository.
OFFLINE_FAMILIES = ("schema", "review", "signoff", "template")
ONLINE_FAMILIES = ("git", "dvc", "params", "artefacts")
#: Families that mostly wait for git processes. They run in a thread beside the artefact
#: checks (after schema, which parses every cell they read), so on two cores git works while
#: Python lists artefact folders: on a 10,000-row log that hides ~0.2 s of git's time.
BACKGROUND_FAMILIES = ("git", "dvc", "params")
#: Below this many rows git answers in milliseconds and a thread costs more than it hides.
BACKGROUND_MIN_ROWS = 200


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
    #: The evidence cells each check compared with a witness (see `aisdp_log.lint.coverage`).
    coverage: Coverage = field(default_factory=Coverage)
    #: Set by `run_checks`: the figure `N of N+M evidence cells verified`.
    coverage_summary: CoverageSummary | None = None

    def close(self) -> None:
        """Release what the families opened: the shared `git cat-file` process."""
        repo = self.cache.get("git")
        if repo is not None:
            repo.close()


def families(offline: bool) -> tuple[str, ...]:
    return OFFLINE_FAMILIES if offline else OFFLINE_FAMILIES[:1] + ONLINE_FAMILIES + \
        OFFLINE_FAMILIES[1:]


def run_checks(log, ctx: Context) -> list[Finding]:
    names = list(families(ctx.offline))
    background = [family for family in names if family in BACKGROUND_FAMILIES]
    # a thread pays only on a long log, where other repository checks run meanwhile
    overlap = len(log.rows) >= BACKGROUND_MIN_ROWS and any(
        f in ONLINE_FAMILIES and f not in BACKGROUND_FAMILIES for f in names)
    found: dict[str, list[Finding]] = {}
    worker = None
    for family in names:
        if family in BACKGROUND_FAMILIES and overlap:
            if worker is None:
                worker = _Background(log, ctx, background)
                worker.start()
            continue
        if worker is not None and family not in ONLINE_FAMILIES:
            worker.finish(found)  # later families may read what the git checks cached
            worker = None
        found[family] = list(_module(family).run(log, ctx))
    if worker is not None:
        worker.finish(found)
    # in the families' order, so de-duplication keeps the same finding as ever
    findings = [finding for family in names for finding in found.get(family, ())]
    # git knows more about a cell than the schema: its S003 (a tag in `Code commit`, with the
    # commit it points to) is kept over the schema's at the same cell
    findings = [f for f in found.get("git", ()) if f.code.startswith("S")] + findings
    # last: whether a cell was verified depends on every family (A008 only where none did)
    unverified, ctx.coverage_summary = conclude(log, ctx, findings)
    findings += unverified
    return sorted(deduplicate(findings), key=lambda f: f.sort_key)


def _module(family: str):
    return importlib.import_module(f"{__name__}.{family}")


class _Background(threading.Thread):
    """Runs some families in order in a thread; `finish` waits and re-raises what they
    raised (a RepositoryError stays the one-line error it is)."""

    def __init__(self, log, ctx: Context, names: list[str]):
        super().__init__(name="aisdp-log git checks", daemon=True)
        self.log, self.ctx, self.names = log, ctx, names
        self.found: dict[str, list[Finding]] = {}
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            for family in self.names:
                self.found[family] = list(_module(family).run(self.log, self.ctx))
        except BaseException as exc:  # handed to the main thread
            self.error = exc

    def finish(self, found: dict[str, list[Finding]]) -> None:
        self.join()
        if self.error is not None:
            raise self.error
        found.update(self.found)


def deduplicate(findings: Iterable[Finding]) -> Iterator[Finding]:
    seen = set()
    for finding in findings:
        # experiment_id too: A005 reports one orphan folder each at the same header cell
        key = (finding.code, finding.sheet, finding.cell, finding.column, finding.experiment_id)
        if key not in seen:
            seen.add(key)
            yield finding
