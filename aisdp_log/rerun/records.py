"""A rerun's plans and results as JSON, so they outlive the process that made them: the task
file a Slurm job reads, the result file it writes, and a detached submission's record."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from pathlib import Path

from aisdp_log.repo.dvcfiles import Out
from aisdp_log.rerun.environment import RunEnvironment
from aisdp_log.rerun.plan import RowPlan, RunResult
from aisdp_log.system.atomic import write_bytes

#: Bumped when a record's shape changes; a record of another version is refused, not guessed.
RECORD_VERSION = 1


def plain(value):
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def plan_to_json(plan: RowPlan) -> dict:
    return plain(plan)


def _fields_of(cls: type, data: dict) -> dict:
    """The entries of `data` that are fields of the dataclass `cls` (others are ignored)."""
    names = {f.name for f in dataclasses.fields(cls)}
    return {k: v for k, v in data.items() if k in names}


def plan_from_json(data: dict) -> RowPlan:
    values = _fields_of(RowPlan, data)
    values["artefact_dir"] = Path(values["artefact_dir"])
    values["data"] = [Out(**out) for out in values.get("data", [])]
    env = values.get("run_env")
    if env is not None:
        values["run_env"] = RunEnvironment(**_fields_of(RunEnvironment, env))
    return RowPlan(**values)


def result_to_json(result: RunResult) -> dict:
    return plain(result)


def result_from_json(data: dict) -> RunResult:
    values = _fields_of(RunResult, data)
    values["folder"] = Path(values["folder"])
    values["started"] = dt.datetime.fromisoformat(values["started"])
    return RunResult(**values)


def write_json(path: Path, data: dict) -> None:
    """Write atomically (`system.atomic.write_bytes`), so a reader never sees half a record."""
    write_bytes(path, (json.dumps(data, indent=1, sort_keys=True) + "\n").encode("utf-8"))
