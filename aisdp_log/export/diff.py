"""Comparing a run already in MLflow with what its row now becomes: the changes MLflow can
make in place, those that need a new run, and the artefact files to add."""

from __future__ import annotations

from pathlib import Path

from aisdp_log.export.runs import (
    ARTEFACTS_TAG,
    EVIDENCE_TAG,
    MANIFEST_FILE,
    RunSpec,
    owned_tag,
    parse_manifest,
)


def differences(client, run, run_spec: RunSpec) -> tuple[list[str], list[str], list[str]]:
    """(changes MLflow cannot make in place, changes it can, artefact files to add)."""
    immutable: list[str] = []
    mutable: list[str] = []
    if run.info.status not in ("FINISHED",):
        immutable.append(f"run left {run.info.status} by an interrupted export")
    if run.info.start_time != run_spec.start_ms:
        immutable.append("start date")
    params = run.data.params
    changed = sorted(k for k in set(params) | set(run_spec.params)
                     if params.get(k) != run_spec.params.get(k))
    if changed:
        immutable.append("params " + ", ".join(changed))
    logged = run.data.metrics
    removed = sorted(k for k in logged if k not in run_spec.metrics and
                     k not in {p.key for p in run_spec.history})
    if removed:
        immutable.append("metrics removed " + ", ".join(removed))
    have = {(d.dataset.name, d.dataset.digest)
            for d in (run.inputs.dataset_inputs if run.inputs else [])}
    want = {(d.name, d.digest) for d in run_spec.datasets}
    if have != want:
        immutable.append("data version")
    tags = run.data.tags
    added: list[str] = []
    if tags.get(ARTEFACTS_TAG) != run_spec.tags.get(ARTEFACTS_TAG):
        uploaded = _uploaded_manifest(client, run)
        kept = uploaded is not None and all(run_spec.manifest.get(rel) == hex_digest
                                            for rel, hex_digest in uploaded.items())
        if uploaded is not None and kept:  # `kept` holds only with a manifest uploaded
            added = sorted(set(run_spec.manifest) - set(uploaded))
            mutable.append("artefact files added " + ", ".join(added[:5]) +
                           (f" and {len(added) - 5} more" if len(added) > 5 else ""))
        else:
            immutable.append("artefact files changed or removed")
    if run_spec.evidence is None and EVIDENCE_TAG in tags:
        immutable.append("rerun evidence removed")
    new_history = {p.key for p in run_spec.history} - set(logged)
    if new_history:
        immutable.append("history " + ", ".join(sorted(new_history)))

    metric_changes = sorted(k for k, v in run_spec.metrics.items() if logged.get(k) != v)
    if metric_changes:
        mutable.append("metrics " + ", ".join(metric_changes))
    tag_changes = sorted(k for k in set(run_spec.tags) | {k for k in tags if owned_tag(k)}
                         if k != ARTEFACTS_TAG and tags.get(k) != run_spec.tags.get(k))
    if tag_changes:
        mutable.append("tags " + ", ".join(tag_changes))
    if run.info.end_time != run_spec.end_ms:
        mutable.append("end time")
    return immutable, mutable, added


def _uploaded_manifest(client, run) -> dict[str, str] | None:
    """The manifest an earlier export uploaded, or None (none, or unreadable)."""
    import tempfile

    from mlflow.exceptions import MlflowException

    with tempfile.TemporaryDirectory(prefix="aisdp-export-") as temp:
        try:
            path = client.download_artifacts(run.info.run_id, MANIFEST_FILE, temp)
            return parse_manifest(Path(path).read_text(encoding="utf-8"))
        except (MlflowException, OSError, UnicodeDecodeError):
            return None

