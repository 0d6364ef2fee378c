"""What a row becomes in MLflow and what the export did with it: the names of the tags and
files the export owns, MLflow's limits, and the records planning, comparing and storing share."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from aisdp_log.artefacts.digests import manifest_text

ID_TAG = "aisdp.experiment_id"
COMMIT_TAG = "mlflow.source.git.commit"
NOTE_TAG = "mlflow.note.content"
#: Digests of what MLflow cannot edit in place: a change means a new run.
ARTEFACTS_TAG = "aisdp.artefacts_sha256"
EVIDENCE_TAG = "aisdp.evidence_sha256"
REPLACED_BY_TAG = "aisdp.replaced_by"
#: Tags this tool owns on a run; others (set by a person in MLflow) are never deleted.
OWNED_TAG_PREFIXES = ("aisdp.",)
OWNED_TAGS = (COMMIT_TAG, NOTE_TAG)
EVIDENCE_FILE = "aisdp/reproducibility.json"
#: `sha256sum`-style list of the exported files, so a later export can tell files added (upload
#: them) from files changed or removed (MLflow cannot delete an artefact: a new run).
MANIFEST_FILE = "aisdp/artefacts.sha256"
DATASET_SOURCE_TYPE = "dvc"
DATASET_CONTEXT = "training"
DB_NAME = "mlruns.db"
ARTEFACT_STORE = "mlartefacts"

# MLflow's limits (mlflow.utils.validation): longer values are cut, the full text stays in the log.
MAX_TAG_VALUE = 8000
MAX_PARAM_VALUE = 6000
BATCH_PARAMS_TAGS = 100
BATCH_METRICS = 1000

ACTIONS = ("create", "update", "replace", "unchanged", "skip")


@dataclass
class DatasetRef:
    """The data a row was trained on, as an MLflow dataset input: the DVC out's path and md5."""

    name: str
    digest: str
    source: dict

    @property
    def source_json(self) -> str:
        return json.dumps(self.source, sort_keys=True)


@dataclass
class HistoryPoint:
    key: str
    value: float
    step: int
    timestamp: int


@dataclass
class RunSpec:
    """Everything one row becomes in MLflow."""

    experiment_id: str
    row_number: int
    start_ms: int
    end_ms: int
    params: dict[str, str]
    metrics: dict[str, float]
    final_step: int
    history: list[HistoryPoint]
    tags: dict[str, str]
    datasets: list[DatasetRef]
    files: list[tuple[str, Path]]   # (artefact path in the run, local file)
    manifest: dict[str, str]        # artefact path -> sha256 hex
    evidence: str | None            # JSON text of Reruns/Reproducibility rows, or None


@dataclass
class RowResult:
    """What the export did (or, in a dry run, would do) with one row."""

    experiment_id: str | None
    row: int
    action: str
    run_id: str | None = None
    changes: list[str] = field(default_factory=list)
    reason: str = ""

    def line(self, dry_run: bool) -> str:
        label = self.experiment_id or f"row {self.row}"
        verb = ("would " + self.action) if dry_run and self.action in ("create", "update",
                                                                       "replace") else self.action
        text = f"{label}: {verb}"
        if self.run_id and self.action != "skip":
            text += f" (run {self.run_id})"
        if self.changes:
            text += ": " + "; ".join(self.changes)
        if self.reason:
            text += ": " + self.reason
        return text


@dataclass
class ExportReport:
    """The outcome of one export; `exit_code` is 1 when a row was skipped for its errors."""

    log: str
    tracking_uri: str
    experiment_name: str
    dry_run: bool
    rows: list[RowResult]

    def count(self, action: str) -> int:
        return sum(1 for r in self.rows if r.action == action)

    @property
    def exit_code(self) -> int:
        return 1 if self.count("skip") else 0

    @property
    def lines(self) -> list[str]:
        lines = [r.line(self.dry_run) for r in self.rows]
        done = {"create": "created", "update": "updated", "replace": "replaced",
                "unchanged": "unchanged", "skip": "skipped"}
        if self.dry_run:
            done.update(create="to create", update="to update", replace="to replace")
        counts = ", ".join(f"{self.count(a)} {done[a]}" for a in ACTIONS if self.count(a))
        where = f"experiment {self.experiment_name!r} at {self.tracking_uri}"
        if self.dry_run:
            lines.append(f"dry run, nothing written: {counts or 'no rows'} ({where})")
        else:
            lines.append(f"exported {self.log} to {where}: {counts or 'no rows'}")
        if self.count("skip"):
            lines.append("skipped rows have errors: fix them (`aisdp-log validate`) or pass "
                         "--force to export them as they are")
        return lines


def owned_tag(key: str) -> bool:
    """A tag this tool owns on a run (so may change or delete)."""
    return key.startswith(OWNED_TAG_PREFIXES) or key in OWNED_TAGS


def run_manifest_text(manifest: dict[str, str]) -> str:
    """The uploaded `sha256sum`-style listing of {relpath: hex}, as hashing writes it."""

    return manifest_text([(hex_digest, rel) for rel, hex_digest in manifest.items()])


def parse_manifest(text: str) -> dict[str, str]:
    result = {}
    for line in text.splitlines():
        hex_digest, sep, rel = line.partition("  ")
        if sep:
            result[rel] = hex_digest
    return result

