"""Findings, the report that collects them, and the catalogue of finding codes."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from aisdp_log.spec import column_number


class Severity(str, Enum):
    ERROR = "error"
    WARNING = "warning"

    def __str__(self) -> str:  # pragma: no cover - trivial
        return self.value


@dataclass(frozen=True)
class Code:
    """One entry of the catalogue: what a code means and where its finding points."""

    code: str
    severity: Severity
    title: str
    cell: str
    help: str = ""


E, W = Severity.ERROR, Severity.WARNING

_CATALOGUE = [
    # Schema: the workbook alone
    Code("S001", E, "a required column is missing", "the header row's first empty cell",
         "Add the column with exactly this header (case and spacing are free)."),
    Code("S002", E, "a required value is empty", "that cell",
         "Fill in the value; metrics may stay empty only on a rejected row."),
    Code("S003", E, "a value has the wrong type or format", "that cell",
         "Dates as YYYY-MM-DD, commits as 7-40 hex characters, numbers as numbers."),
    Code("S004", E, "experiment ID used twice", "the later ID cell",
         "Give every run its own ID; the ID names its artefact folder."),
    Code("S005", E, "experiment ID does not match the id pattern", "ID cell",
         "The pattern is `id_pattern` in aisdp.toml, by default ^[A-Za-z0-9][A-Za-z0-9_.-]*$."),
    Code("S006", E, "a value outside the allowed set: outcome, goal", "that cell",
         "Outcome: selected, rejected or baseline. Goal: max or min."),
    Code("S007", E, "random seed outside 0..4294967295", "seed cell",
         "Seeds are unsigned 32-bit integers, as NumPy accepts them."),
    Code("S008", E, "a `metrics.` column without a `Metrics` row, or the reverse", "header cell",
         "Declare every metric once in the Metrics sheet with its goal and threshold."),
    Code("S009", W, "an unknown column that looks like a typo of a known one", "header cell",
         "Rename the header to the suggested name; unknown columns are otherwise kept as they "
         "are."),
    Code("S010", E, "merged cells in the data area", "the merged range's first cell",
         "Unmerge the cells: every row needs its own values."),
    Code("S011", E, "a column header appears twice", "the later header cell",
         "Keep one column per header; the tool cannot tell which one holds the truth."),
    Code("S012", W, "the log was made by an older template than this aisdp-log writes",
         "A1 of Experiments", "Run `aisdp-log template --upgrade LOG`: it adds the new columns, "
         "validations, marks and Guide, keeping every row and column."),
    Code("S013", E, "a malformed container image entry in the Environment (`image:` with no "
         "reference, a bad name or tag, a digest that is not `sha256:<64 hex>`)",
         "environment cell", "Write `image: NAME@sha256:<64 hex>`, the digest the engine "
         "reports (`docker image inspect` or `podman image inspect --format '{{.Digest}}'`)."),
    # Git
    Code("G001", E, "code commit not in the repository", "commit cell",
         "Push or fetch the commit, or correct the SHA."),
    Code("G002", E, "short commit matches several commits", "commit cell",
         "Write more characters of the SHA."),
    Code("G003", E, "the commit is dated after the experiment's date", "commit cell",
         "The run cannot come from a later commit: check the date and the commit."),
    Code("G004", W, "the commit is on no branch or tag, or only on local branches of a "
         "repository with a remote, so a fresh clone lacks it", "commit cell",
         "Push the branch, or merge or tag the commit, so it is in the shared history."),
    Code("G005", E, "the Environment names a lock file whose hash at the row's commit differs, "
         "or that the commit lacks", "environment cell",
         "Write the lock file as `<path> sha256:<hex>` with the hash of the file at that commit."),
    Code("G006", E, "the repository is a shallow clone, so the checks that need history "
         "(G001-G004, D001, D002) were not run", "row 1, Code commit column",
         "Fetch full history (`git fetch --unshallow`, or `fetch-depth: 0` in actions/checkout)."),
    Code("G007", W, "a `sha256:` in the Environment that no lock file is tied to, so nothing "
         "checks it", "environment cell",
         "Write `<path> sha256:<hex>` (also read: `path: sha256:`, `path=sha256:`, "
         "`sha256:<hex> path`); a container image as `image: NAME@sha256:<hex>`."),
    Code("G008", W, "the Environment names a container image by tag without a digest: a tag "
         "moves, so nothing pins the image the run used", "environment cell",
         "Write `image: NAME@sha256:<64 hex>` with the digest of the image the run used "
         "(`rerun --env image` runs only a pinned image)."),
    Code("G009", W, "with --remote: the container image is neither in the local engine's "
         "store nor pullable, or no engine (docker, podman) was there to ask", "environment cell",
         "Push the image to a registry the team can reach, or validate where an engine runs."),
    # DVC
    Code("D001", E, "data version resolves to no DVC-tracked data", "data version cell",
         "Use the md5 from the .dvc file (8+ hex characters) or a git tag/commit that pins it."),
    Code("D002", E, "the data version differs from what the .dvc files pin at the row's commit",
         "data version cell", "The run's commit tracked other data: correct one of the two."),
    Code("D003", W, "the data is in neither the local DVC cache nor a reachable remote",
         "data version cell", "Push the data (`dvc push`) so the run can be reproduced."),
    Code("D004", W, "a `params.*` value differs from the DVC params file at the row's commit",
         "that cell", "Checking out that commit would train with other parameters: record "
         "the experiment's own commit."),
    # Artefacts
    Code("A001", E, "the artefact folder is missing or holds no model file", "ID cell",
         "Keep the model under <artefacts>/<Experiment ID>/."),
    Code("A002", E, "the artefact hash differs from the files on disk", "hash cell",
         "Run `aisdp-log hash <folder>`; if the files changed, find out why."),
    Code("A003", E, "a metric differs from metrics.json by more than the rounding of the value "
         "typed in the cell", "metric cell", "Copy the metric from metrics.json."),
    Code("A004", E, "run.json disagrees with the row: seed, commit, data version or a param",
         "that cell", "The row must describe the run that produced the artefact."),
    Code("A005", W, "an artefact folder that no row names", "row 1, ID column",
         "Add a row for it (`aisdp-log add`) or remove the folder."),
    Code("A006", W, "run.json records uncommitted changes in the working tree when the run was "
         "trained", "ID cell", "Commit before training so the code commit recreates the run."),
    Code("A007", E, "the ID or a path inside the artefact folder escapes the artefacts root",
         "ID cell", "Artefact folders must be real folders under the artefacts root."),
    Code("A008", W, "a witness (run.json, metrics.json) exists but lacks the row's param or "
         "metric, so the cell is unverified", "that cell",
         "Record the value in run.json / metrics.json, or check the column's name."),
    # Review
    Code("R001", W, "outcome not yet decided", "outcome cell",
         "Decide: selected, rejected or baseline."),
    Code("R002", W, "a selected or rejected row without a rationale in Notes", "notes cell",
         "Say why: the assessor reads this."),
    Code("R003", E, "a selected row misses a declared threshold", "metric cell",
         "A selected model must meet every declared threshold."),
    Code("R004", W, "a quarter with a selected row but no baseline", "outcome cell of the "
         "selected row", "Record the baseline the selection was compared with."),
    Code("R005", W, "a selected row without passing reproducibility evidence", "outcome cell",
         "Run `aisdp-log rerun LOG --id <ID>`."),
    Code("R006", E, "a row changed after it was signed off in a review", "the changed cell",
         "Signed rows are evidence: record the change in a new row or sign a new review."),
    # Signatures (checked by `verify`, and by `validate` when allowed signers are configured)
    Code("R007", E, "a sign-off's SSH signature does not verify, or its Sign-off cells differ "
         "from the statement it signs", "the Signature, Statement or differing cell",
         "The statement or its signature changed after signing: sign the review again."),
    Code("R008", E, "a sign-off whose key the allowed signers do not list for the principal "
         "(e-mail) it names, or that names no principal (names the key's fingerprint and the "
         "claimed signer)", "Signature cell",
         "List the signer's public key for their e-mail in the allowed signers file, or treat "
         "it as forged."),
    Code("R009", E, "the chain of signed statements is broken: a Sign-off row was removed, "
         "reordered or replaced", "Statement cell",
         "Restore the Sign-off sheet from a trusted copy (the bundle or the review folder)."),
    Code("R010", W, "a sign-off that is not cryptographically signed", "Signature cell",
         "Sign with `aisdp-log review LOG --sign \"Name, Role <email>\" --key KEY`."),
    Code("R011", E, "a sign-off's name or role differs from the one `[signers]` in aisdp.toml "
         "allows its principal", "Name and role cell",
         "Sign as the name and role `[signers]` gives your e-mail, or correct the table."),
    Code("R012", E, "identity not established: the signatures were checked only against the "
         "allowed signers the evidence itself brings (a bundle's own list, or a repository's "
         "uncommitted one)", "`allowed_signers` in the bundle, or `.aisdp/allowed_signers`",
         "Compare the principals and key fingerprints with a list you hold and pass it with "
         "--allowed-signers, or accept the bundle's list with --trust-bundle-signers."),
    Code("R013", E, "a signed sign-off recorded elsewhere (`.aisdp/signoffs/` at HEAD or in the "
         "history, or the earlier bundle of `--since`) is missing from the Sign-off sheet",
         "the record's path",
         "A sign-off was removed: restore the Sign-off sheet from a trusted copy."),
    Code("R014", W, "the allowed signers file in the work tree differs from its committed "
         "version (the committed one was used)", "`.aisdp/allowed_signers`",
         "Commit the change if it is meant; otherwise restore the file."),
    # Bundles
    Code("B001", E, "a bundled file is missing, not covered by SHA256SUMS, or differs from its "
         "sha256 there or in its signed statement", "the file's path in the bundle",
         "The bundle changed after it was written: get the original."),
    Code("B002", E, "the bundle lacks a file a Sign-off row requires: its statement, its "
         "signature or a review file the statement names", "the missing file's path",
         "The bundle is incomplete: write it again with `aisdp-log bundle`."),
]

CATALOGUE: dict[str, Code] = {c.code: c for c in _CATALOGUE}


@dataclass(frozen=True)
class Finding:
    """One problem, at the cell to fix."""

    code: str
    severity: Severity
    sheet: str
    cell: str
    row: int
    column: str | None
    experiment_id: str | None
    message: str

    def to_dict(self) -> dict:
        return {
            "code": self.code,
            "severity": self.severity.value,
            "sheet": self.sheet,
            "cell": self.cell,
            "row": self.row,
            "column": self.column,
            "experiment_id": self.experiment_id,
            "message": self.message,
        }

    @property
    def sort_key(self) -> tuple:
        return (self.sheet != "Experiments", self.sheet, self.row, column_number(self.cell),
                self.code)



@dataclass
class Report:
    """The result of validating one log."""

    log: str
    rows: int = 0
    findings: list[Finding] = field(default_factory=list)
    #: the aisdp.toml the checks used, as shown to the user; None means defaults
    config: str | None = None
    #: `coverage.CoverageSummary` of the evidence cells, when checks ran
    coverage: Any = None
    #: `verify` only: the allowed signers the signatures were checked against
    #: ({"source": ..., "independent": bool}) and one entry per sign-off (who, which key)
    trust: dict | None = None
    signoffs: list[dict] | None = None

    @property
    def errors(self) -> int:
        return sum(1 for f in self.findings if f.severity is Severity.ERROR)

    @property
    def warnings(self) -> int:
        return sum(1 for f in self.findings if f.severity is Severity.WARNING)

    @property
    def ok(self) -> bool:
        return self.errors == 0

    def codes(self) -> list[tuple[str, str]]:
        """(code, cell) pairs, the way tests and scripts compare reports."""
        return [(f.code, f.cell) for f in self.findings]

    def exit_code(self, strict: bool = False) -> int:
        if self.errors or (strict and self.warnings):
            return 1
        return 0

    def to_dict(self) -> dict:
        return {
            "log": self.log,
            "rows": self.rows,
            "summary": {"errors": self.errors, "warnings": self.warnings,
                        **({"coverage": self.coverage.to_dict()} if self.coverage else {})},
            "findings": [f.to_dict() for f in self.findings],
            "config": self.config,
            **({"trust": self.trust} if self.trust is not None else {}),
            **({"signoffs": self.signoffs} if self.signoffs is not None else {}),
        }
