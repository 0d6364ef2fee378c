"""The MLflow side of an export: one experiment reached through an MlflowClient, each row's
run created, updated in place or replaced, with MLflow's own chatter kept quiet."""

from __future__ import annotations

import contextlib
import logging
import os
import time
import warnings
from pathlib import Path

from aisdp_log.errors import AisdpLogError
from aisdp_log.export.diff import differences
from aisdp_log.export.runs import (
    ARTEFACT_STORE,
    BATCH_METRICS,
    BATCH_PARAMS_TAGS,
    DATASET_CONTEXT,
    DATASET_SOURCE_TYPE,
    EVIDENCE_FILE,
    EVIDENCE_TAG,
    ID_TAG,
    MANIFEST_FILE,
    REPLACED_BY_TAG,
    DatasetRef,
    RowResult,
    RunSpec,
    owned_tag,
    run_manifest_text,
)


class ExportError(AisdpLogError):
    """The tracking store cannot be reached or refused a write."""


#: MLflow settings used unless the user set them: no progress bars in our output, and 3
#: retries instead of 7 (with MLflow's backoff, 7 retries on a wrong URI take 4 minutes).
MLFLOW_ENV_DEFAULTS = {"MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
                       "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "3"}


@contextlib.contextmanager
def quiet_mlflow():
    """MLflow logs database migrations at INFO, warns about its own deprecations and draws
    upload progress bars: none of that is the user's business here."""
    names = ("mlflow", "alembic", "sqlalchemy", "urllib3")
    levels = {name: logging.getLogger(name).level for name in names}
    added = [key for key in MLFLOW_ENV_DEFAULTS if key not in os.environ]
    try:
        for key in added:
            os.environ[key] = MLFLOW_ENV_DEFAULTS[key]
        for name in names:
            logging.getLogger(name).setLevel(logging.ERROR)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)
        for key in added:
            os.environ.pop(key, None)


def _sqlite_path(tracking_uri: str) -> Path | None:
    prefix = "sqlite:///"
    if not tracking_uri.startswith(prefix):
        return None
    path = tracking_uri[len(prefix):]
    return None if path in ("", ":memory:") else Path(path.split("?")[0])


class Store:
    """One MLflow experiment reached through an MlflowClient; `client` is None in a dry run
    whose store does not exist yet (every row would then be created)."""

    def __init__(self, client, experiment_id: str | None, artifact_location: str | None,
                 name: str):
        self.client = client
        self.experiment_id = experiment_id
        self.artifact_location = artifact_location
        self.name = name
        self._runs: dict[str, list] | None = None

    @classmethod
    def open(cls, tracking_uri: str, name: str, *, create: bool) -> Store:
        from mlflow.exceptions import MlflowException
        from mlflow.tracking import MlflowClient

        db = _sqlite_path(tracking_uri)
        location = None
        if db is not None:
            if not create and not db.exists():
                return cls(None, None, None, name)  # opening it would create the database
            db.parent.mkdir(parents=True, exist_ok=True)
            location = (db.parent / ARTEFACT_STORE).resolve().as_uri()
        try:
            client = MlflowClient(tracking_uri=tracking_uri)
            experiment = client.get_experiment_by_name(name)
            if experiment is None and create:
                experiment_id = client.create_experiment(
                    name, artifact_location=location,
                    tags={"aisdp.exported_by": "aisdp-log"})
            elif experiment is None:
                return cls(client, None, location, name)
            else:
                if experiment.lifecycle_stage != "active":
                    raise ExportError(f"MLflow experiment {name!r} is deleted; restore it or "
                                      "pass --experiment with another name")
                experiment_id = experiment.experiment_id
        except MlflowException as exc:
            if "Max retries exceeded" in str(exc) or "Connection" in type(exc.__cause__).__name__:
                raise ExportError(f"{tracking_uri}: cannot reach the MLflow tracking server "
                                  "(is it running? check --tracking-uri)") from None
            raise ExportError(f"{tracking_uri}: {_one_line(exc)}") from None
        except OSError as exc:
            raise ExportError(f"{tracking_uri}: cannot be reached ({_one_line(exc)})") from None
        return cls(client, experiment_id, location, name)

    def runs_by_id(self) -> dict[str, list]:
        """Active runs of the experiment by their `aisdp.experiment_id` tag, newest first."""
        if self._runs is None:
            self._runs = {}
            if self.client is not None and self.experiment_id is not None:
                token = None
                while True:
                    page = self.client.search_runs(
                        [self.experiment_id], filter_string=f"tags.`{ID_TAG}` != ''",
                        max_results=1000, order_by=["attributes.start_time DESC"],
                        page_token=token)
                    for run in page:
                        self._runs.setdefault(run.data.tags.get(ID_TAG), []).append(run)
                    token = page.token
                    if not token:
                        break
        return self._runs

    def sync(self, result: RowResult, run_spec: RunSpec, *, dry_run: bool) -> RowResult:
        """Bring the run of one row up to date (or, in a dry run, say what that would take)."""
        from mlflow.exceptions import MlflowException

        existing = self.runs_by_id().get(run_spec.experiment_id, [])
        try:
            if not existing:
                result.action = "create"
                if not dry_run:
                    result.run_id = self._write_new(run_spec)
                return result
            run = existing[0]
            result.run_id = run.info.run_id
            immutable, mutable, added = differences(self.client, run, run_spec)
            if len(existing) > 1:
                result.changes.append(f"{len(existing)} runs carry this ID; the newest is used")
            if immutable:
                result.action = "replace"
                result.changes += immutable + mutable
                if not dry_run:
                    new_id = self._write_new(run_spec)
                    self.client.set_tag(run.info.run_id, REPLACED_BY_TAG, new_id)
                    self.client.delete_run(run.info.run_id)
                    result.changes.append(f"old run {run.info.run_id} deleted (restorable)")
                    result.run_id = new_id
            elif mutable:
                result.action = "update"
                result.changes += mutable
                if not dry_run:
                    self._update(run, run_spec, added)
            else:
                result.action = "unchanged"
        except MlflowException as exc:
            raise ExportError(f"MLflow refused {run_spec.experiment_id}: {_one_line(exc)} "
                              "(rows before it are exported; run the export again)") from None
        except OSError as exc:
            raise ExportError(f"{run_spec.experiment_id}: an artefact could not be stored "
                              f"({_one_line(exc)}); run the export again") from None
        return result

    def _write_new(self, run_spec: RunSpec) -> str:
        from mlflow.entities import Metric, Param, RunTag

        client = self.client
        run = client.create_run(self.experiment_id, start_time=run_spec.start_ms,
                                tags={ID_TAG: run_spec.experiment_id},
                                run_name=run_spec.experiment_id)
        run_id = run.info.run_id
        params = [Param(k, v) for k, v in run_spec.params.items()]
        tags = [RunTag(k, v) for k, v in run_spec.tags.items()]
        metrics = [Metric(p.key, p.value, p.timestamp, p.step) for p in run_spec.history]
        metrics += [Metric(k, v, run_spec.end_ms, run_spec.final_step)
                    for k, v in run_spec.metrics.items()]
        for chunk in _chunks(params, BATCH_PARAMS_TAGS):
            client.log_batch(run_id, params=chunk)
        for chunk in _chunks(tags, BATCH_PARAMS_TAGS):
            client.log_batch(run_id, tags=chunk)
        for chunk in _chunks(metrics, BATCH_METRICS):
            client.log_batch(run_id, metrics=chunk)
        if run_spec.datasets:
            client.log_inputs(run_id, datasets=[_dataset_input(d) for d in run_spec.datasets])
        for rel, path in run_spec.files:
            # the local path ends in the name listed (a symlink's own name), so MLflow
            # stores it at `rel`
            client.log_artifact(run_id, str(path), os.path.dirname(rel) or None)
        if run_spec.manifest:
            client.log_text(run_id, run_manifest_text(run_spec.manifest), MANIFEST_FILE)
        if run_spec.evidence is not None:
            client.log_text(run_id, run_spec.evidence, EVIDENCE_FILE)
        # FINISHED last: a run left RUNNING by an interrupted export is replaced next time
        client.set_terminated(run_id, "FINISHED", end_time=run_spec.end_ms)
        return run_id

    def _update(self, run, run_spec: RunSpec, added: list[str]) -> None:
        from mlflow.entities import Metric, RunTag

        client = self.client
        run_id = run.info.run_id
        current = run.data.tags
        tags = [RunTag(k, v) for k, v in run_spec.tags.items() if current.get(k) != v]
        # a later timestamp at the same step makes the new value the latest; the old one
        # stays in the metric's history, so the edit is visible
        now = max(int(time.time() * 1000), run_spec.end_ms + 1)
        metrics = [Metric(k, v, now, run_spec.final_step) for k, v in run_spec.metrics.items()
                   if run.data.metrics.get(k) != v]
        # files before the digest tags that describe them: an upload cut short leaves the old
        # digests, so the next export tries again
        if added:
            local = dict(run_spec.files)
            for rel in added:
                client.log_artifact(run_id, str(local[rel]), os.path.dirname(rel) or None)
            client.log_text(run_id, run_manifest_text(run_spec.manifest), MANIFEST_FILE)
        if run_spec.evidence is not None and current.get(EVIDENCE_TAG) != \
                run_spec.tags.get(EVIDENCE_TAG):
            client.log_text(run_id, run_spec.evidence, EVIDENCE_FILE)
        for chunk in _chunks(metrics, BATCH_METRICS):
            client.log_batch(run_id, metrics=chunk)
        for chunk in _chunks(tags, BATCH_PARAMS_TAGS):
            client.log_batch(run_id, tags=chunk)
        for key in current:
            if owned_tag(key) and key not in run_spec.tags:
                client.delete_tag(run_id, key)
        if run.info.end_time != run_spec.end_ms or run.info.status != "FINISHED":
            client.set_terminated(run_id, "FINISHED", end_time=run_spec.end_ms)


def _dataset_input(ref: DatasetRef):
    from mlflow.entities import Dataset, DatasetInput, InputTag

    dataset = Dataset(name=ref.name, digest=ref.digest, source_type=DATASET_SOURCE_TYPE,
                      source=ref.source_json)
    return DatasetInput(dataset, tags=[InputTag("mlflow.data.context", DATASET_CONTEXT)])


def _chunks(items: list, size: int):
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:300]
