"""The registry of check families: which modules run, in which order, and the finding codes
each may emit (declared beside its `run`; a finding with a code its family did not declare
is an internal error, not a report)."""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType

from aisdp_log.findings import Finding
from aisdp_log.lint import coverage
from aisdp_log.lint.checks import artefacts, dvc, git, params, review, schema, signoff, template


class UndeclaredCode(AssertionError):
    """A finding whose code its emitter does not declare: a bug in aisdp-log."""


@dataclass(frozen=True)
class Family:
    """One check module: `run(log, ctx) -> Iterator[Finding]`, its `CODES` (the catalogue
    codes it owns) and its optional `SHARED` (codes another family owns that it may also emit
    at a cell: the git checks' S003 names the commit a tag in `Code commit` points to)."""

    name: str
    module: ModuleType
    #: needs the repository (git, DVC, the artefact folders): skipped by `--offline`
    online: bool = False

    @property
    def codes(self) -> tuple[str, ...]:
        return self.module.CODES

    @property
    def emits(self) -> frozenset[str]:
        return frozenset(self.module.CODES) | frozenset(getattr(self.module, "SHARED", ()))

    def run(self, log, ctx) -> list[Finding]:
        """The family's findings, each checked against what it declares."""
        findings = list(self.module.run(log, ctx))
        check_declared(self.module.__name__, findings, self.emits)
        return findings


#: Every family, in the order they run and report (schema first: the others read its parses;
#: the repository families next; review, sign-off and template last).
FAMILIES = (
    Family("schema", schema),
    Family("git", git, online=True),
    Family("dvc", dvc, online=True),
    Family("params", params, online=True),
    Family("artefacts", artefacts, online=True),
    Family("review", review),
    Family("signoff", signoff),
    Family("template", template),
)
BY_NAME = {family.name: family for family in FAMILIES}
#: Families that read only the workbook, then those that need the repository.
OFFLINE_FAMILIES = tuple(family.name for family in FAMILIES if not family.online)
ONLINE_FAMILIES = tuple(family.name for family in FAMILIES if family.online)

#: Codes emitted outside the families, by emitter. `coverage` adds A008 once every family
#: has run (a cell is unverified only where none verified it); `aisdp_log.signing.verify`
#: checks bundles (B001) for `aisdp-log verify`, never during validation. (`lint.frame`
#: labels a data frame's failures with the schema family's codes; it emits no finding.)
OUTSIDE_FAMILIES: dict[str, tuple[str, ...]] = {
    coverage.__name__: coverage.CODES,
    "aisdp_log.signing.verify": ("B001",),
}


def families(offline: bool) -> tuple[Family, ...]:
    """The families a validation runs, in order."""
    return tuple(family for family in FAMILIES if not (offline and family.online))


def declared_codes() -> dict[str, tuple[str, ...]]:
    """Emitter (module name) -> the codes it owns: every family and every outside emitter."""
    owned = {family.module.__name__: family.codes for family in FAMILIES}
    owned.update(OUTSIDE_FAMILIES)
    return owned


def check_declared(emitter: str, findings: list[Finding], codes) -> None:
    """Raise UndeclaredCode for a finding whose code `emitter` does not declare."""
    for finding in findings:
        if finding.code not in codes:
            raise UndeclaredCode(f"{emitter} emitted {finding.code} at {finding.cell}, a code "
                                 f"it does not declare (it declares {', '.join(sorted(codes))})")
