"""The registry of check families: which modules run, in which order, and the finding codes
each may emit (declared beside its `run`; a finding with a code its family did not declare
is an internal error, not a report)."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType

from aisdp_log.findings import Finding
from aisdp_log.lint import coverage


class UndeclaredCode(AssertionError):
    """A finding whose code its emitter does not declare: a bug in aisdp-log."""


@dataclass(frozen=True)
class Family:
    """One check module: `run(log, ctx) -> Iterator[Finding]`, its `CODES` (the catalogue
    codes it owns) and its optional `SHARED` (codes another family owns that it may also emit
    at a cell: the git checks' S003 names the commit a tag in `Code commit` points to)."""

    name: str
    #: the module, `aisdp_log.lint.checks.<name>`, loaded when the family first runs
    module_name: str
    #: needs the repository (git, DVC, the artefact folders): skipped by `--offline`
    online: bool = False

    @property
    def module(self) -> ModuleType:
        # The one place our own modules load by name, from this table: a validation imports
        # only the families it runs, so `--offline` never loads the repository families and
        # what they bring (git, DVC records, the digest cache): 10 ms of a 100 ms run
        # (benchmarks/bench_validate.py; docs/architecture.md, "Speed").
        return importlib.import_module(self.module_name)

    @property
    def codes(self) -> tuple[str, ...]:
        return self.module.CODES

    @property
    def shared(self) -> tuple[str, ...]:
        return getattr(self.module, "SHARED", ())

    @property
    def emits(self) -> frozenset[str]:
        return frozenset(self.module.CODES) | frozenset(self.shared)

    def run(self, log, ctx) -> list[Finding]:
        """The family's findings, each checked against what it declares."""
        findings = list(self.module.run(log, ctx))
        check_declared(self.module.__name__, findings, self.emits)
        return findings


#: Every family, in the order they run and report (schema first: the others read its parses;
#: the repository families next; review, sign-off and template last).
_CHECKS = "aisdp_log.lint.checks."
FAMILIES = (
    Family("schema", _CHECKS + "schema"),
    Family("images", _CHECKS + "images"),
    Family("git", _CHECKS + "git", online=True),
    Family("dvc", _CHECKS + "dvc", online=True),
    Family("params", _CHECKS + "params", online=True),
    Family("artefacts", _CHECKS + "artefacts", online=True),
    Family("review", _CHECKS + "review"),
    Family("signoff", _CHECKS + "signoff"),
    Family("template", _CHECKS + "template"),
)
#: The families that need the repository.
ONLINE_FAMILIES = tuple(family.name for family in FAMILIES if family.online)

#: Codes emitted outside the families, by emitter. `coverage` adds A008 once every family
#: has run (a cell is unverified only where none verified it); `aisdp_log.signing.verify`
#: checks bundles (B001) for `aisdp-log verify`, never during validation. (`lint.frame`
#: labels a data frame's failures with the schema family's codes; it emits no finding.)
OUTSIDE_FAMILIES: dict[str, tuple[str, ...]] = {
    coverage.__name__: coverage.CODES,
    # `verify` alone: bundles, the trust anchor, records outside the log
    "aisdp_log.signing.verify": ("B001", "B002", "R012", "R013"),
}


def families(offline: bool) -> tuple[Family, ...]:
    """The families a validation runs, in order."""
    return tuple(family for family in FAMILIES if not (offline and family.online))


def declared_codes() -> dict[str, tuple[str, ...]]:
    """Emitter (module name) -> the codes it owns: every family and every outside emitter."""
    owned = {family.module_name: family.codes for family in FAMILIES}
    owned.update(OUTSIDE_FAMILIES)
    return owned


def check_declared(emitter: str, findings: list[Finding], codes) -> None:
    """Raise UndeclaredCode for a finding whose code `emitter` does not declare."""
    for finding in findings:
        if finding.code not in codes:
            raise UndeclaredCode(f"{emitter} emitted {finding.code} at {finding.cell}, a code "
                                 f"it does not declare (it declares {', '.join(sorted(codes))})")
