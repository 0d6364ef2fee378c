"""What a rerun will do, decided before anything runs: which rows, and for each its commit, the
data pinned there, its seed and params (the plan objects, and the results they collect).

A row that cannot be planned (unknown commit, a data version its commit does not pin, an ID
that would leave the artefact folder) gets a one-line reason and is not run.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from pathlib import Path

from aisdp_log import spec
from aisdp_log.artefacts.folders import artefact_folder
from aisdp_log.domain.values import as_text, decimals_typed, parse_param
from aisdp_log.errors import AisdpLogError
from aisdp_log.repo.data_versions import resolve_data_versions
from aisdp_log.repo.git import GitRepo
from aisdp_log.rerun.environment import RunEnvironment

MODES = ("auto", "bitwise", "statistical")
STATUS_OK = "ok"


# --------------------------------------------------------------------------- plans and results

@dataclass
class RowPlan:
    """Everything one row's reruns need, read from the log before anything runs."""

    row_number: int
    experiment_id: str
    commit: str                      # full SHA
    data_version: str
    data: list                       # dvcfiles.Out pinned at the commit
    targets: list[str]               # what `dvc checkout` is given
    seed: int
    params: dict
    artefact_dir: Path
    recorded_hash: str | None
    recorded_metrics: dict[str, float]
    metric_decimals: dict[str, int | None]
    environment_cell: str | None = None
    run_env: RunEnvironment | None = None   # set by the pre-flight (environment.prepare)


@dataclass
class RunResult:
    """One execution of the command."""

    experiment_id: str
    number: int
    mode: str
    seed: int
    folder: Path
    started: dt.datetime
    duration_s: float = 0.0
    command_s: float = 0.0
    status: str = STATUS_OK
    metrics: dict[str, float] = field(default_factory=dict)
    artefact_hash: str | None = None
    environment: dict | None = None
    bitwise_match: bool | None = None
    error: str | None = None                 # last lines of stderr of a failed run
    executor: str = "local"                  # local | slurm
    job_id: str | None = None                # the Slurm job that ran it
    devices: str | None = None               # CUDA_VISIBLE_DEVICES the run was given

    @property
    def ok(self) -> bool:
        return self.status == STATUS_OK

    @property
    def rerun_id(self) -> str:
        return f"{self.experiment_id}/{self.folder.parent.name}/{self.number}"


@dataclass
class RowOutcome:
    """What happened to one requested row; `verdict` is None for a row that was not run."""

    experiment_id: str
    plan: RowPlan | None = None
    error: str | None = None
    runs: list[RunResult] = field(default_factory=list)
    evidence: list[dict] = field(default_factory=list)   # Reproducibility rows
    verdict: str | None = None                           # bitwise | statistical | failed
    lines: list[str] = field(default_factory=list)
    stamp_dir: Path | None = None

    @property
    def reproduced(self) -> bool:
        return self.verdict in ("bitwise", "statistical")


@dataclass
class RerunReport:
    outcomes: list[RowOutcome]
    written: bool = False
    dry_run: bool = False
    lines: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        if self.dry_run:
            return 0 if all(o.error is None for o in self.outcomes) else 1
        return 0 if self.outcomes and all(o.reproduced for o in self.outcomes) else 1

    @property
    def overhead_s(self) -> list[float]:
        return [r.duration_s - r.command_s for o in self.outcomes for r in o.runs]


# --------------------------------------------------------------------------- planning

def _params(log, row) -> dict:
    """The row's hyperparameters as typed JSON values: `params.*` columns, then `Other
    params` (values typed as numbers where they read as numbers)."""

    params: dict[str, object] = {}
    for name in log.params:
        value = log.typed(row, spec.PARAMS_PREFIX + name)
        if value is None:
            continue
        if isinstance(value, (dt.date, dt.time, dt.timedelta)):
            value = as_text(value)
        params[name] = value
    other = log.typed(row, "other_params") or {}
    for name, text in other.items():
        lowered = text.casefold()
        if lowered in ("true", "false"):
            params.setdefault(name, lowered == "true")
        else:
            params.setdefault(name, parse_param(text) if text else text)
    return params


def plan_rows(log, rows, config, repo_root: Path) -> list[RowOutcome]:

    git_repo = GitRepo.open(repo_root)
    outcomes = []
    pending = []
    for row in rows:
        experiment_id = log.experiment_id(row) or f"row {row.number}"
        outcome = RowOutcome(experiment_id)
        outcomes.append(outcome)
        problems = []
        for key in ("code_commit", "random_seed", "data_version"):
            value, error = log.parse(row, log.columns.get(key))
            if value is None:
                header = spec.BY_KEY[key].header
                problems.append(f"{header}: {error or 'empty'}")
        seed = log.typed(row, "random_seed")
        if seed is not None and not 0 <= seed <= spec.SEED_MAX:
            problems.append(f"Random seed {seed} is outside 0..{spec.SEED_MAX}")
        if not config.id_regex.search(experiment_id):
            problems.append(f"experiment ID {experiment_id!r} does not match the id pattern")
        if problems:
            outcome.error = "; ".join(problems)
            continue
        try:
            artefact_dir = artefact_folder(config.artefacts_dir, experiment_id)
        except AisdpLogError as exc:
            outcome.error = str(exc)
            continue
        pending.append((outcome, row, artefact_dir))

    pairs = [(log.typed(row, "code_commit"), log.typed(row, "data_version"))
             for _, row, _ in pending]
    resolved = resolve_data_versions(git_repo, config, pairs)

    for (outcome, row, artefact_dir), (commit, version) in zip(pending, pairs):
        found = resolved[(commit, version)]
        assert found.commit is not None  # a row without a Code commit stopped above
        if found.commit.status != "found" or found.commit.sha is None:  # found: sha is set
            outcome.error = (f"commit {commit} matches several commits (G002)"
                             if found.commit.status == "ambiguous" else
                             f"commit {commit} is not in the repository (G001)")
            continue
        pinned = found.pinned
        if not pinned:
            outcome.error = f"commit {commit} pins no DVC-tracked data, so {version} cannot be " \
                            "checked out (D001)"
            continue
        if not found.matched and not found.ref_pins_the_same:
            described = ", ".join(f"{o.path} {o.md5}" for o in pinned)
            outcome.error = (f"data version {version} is not what commit {commit} pins "
                             f"({described}); the validator reports D002")
            continue
        targets = list(dict.fromkeys(
            o.source if o.source.endswith(".dvc") else o.path for o in pinned))
        recorded_metrics, decimals = {}, {}
        for name, column in log.metrics.items():
            value = log.typed(row, spec.METRICS_PREFIX + name)
            if value is not None:
                recorded_metrics[name] = value
                decimals[name] = decimals_typed(row.get(column))
        outcome.plan = RowPlan(
            row_number=row.number, experiment_id=outcome.experiment_id, commit=found.commit.sha,
            data_version=version, data=pinned, targets=targets,
            seed=log.typed(row, "random_seed"), params=_params(log, row),
            artefact_dir=artefact_dir, recorded_hash=log.typed(row, "artefact_hash"),
            recorded_metrics=recorded_metrics, metric_decimals=decimals,
            environment_cell=log.typed(row, "environment"))
    return outcomes


def select(log, ids, flagged) -> list:
    if flagged:
        rows = [row for row in log.rows if log.typed(row, "rerun") is True]
        if not rows:
            raise AisdpLogError(f"{log.name}: no row is marked in the Rerun column")
        return rows
    by_id: dict[str, list] = {}
    for row in log.rows:
        by_id.setdefault(log.experiment_id(row) or "", []).append(row)
    rows = []
    for experiment_id in dict.fromkeys(ids):
        found = by_id.get(experiment_id.strip(), [])
        if not found:
            raise AisdpLogError(f"{log.name}: no row with Experiment ID {experiment_id!r}")
        if len(found) > 1:
            raise AisdpLogError(f"{log.name}: Experiment ID {experiment_id!r} is used by "
                                f"{len(found)} rows (S004); fix the log first")
        rows.append(found[0])
    return rows


def describe_plan(outcomes: list[RowOutcome], config, mode: str, runs: int,
                   derive_seeds) -> list[str]:
    command = " ".join(config.rerun.command)
    timeout = "none" if config.rerun.timeout is None else f"{config.rerun.timeout:g} s"
    lines = []
    for outcome in outcomes:
        plan = outcome.plan
        if plan is None:
            lines.append(f"{outcome.experiment_id}: would not run: {outcome.error}")
            continue
        data = ", ".join(f"{o.path} {o.md5}" for o in plan.data)
        lines.append(f"{plan.experiment_id}: commit {plan.commit}, data version "
                     f"{plan.data_version} ({data}), mode {mode}")
        number = 1
        if mode in ("auto", "bitwise"):
            lines.append(f"  run 1 bitwise: seed {plan.seed}")
            number = 2
        if mode in ("auto", "statistical"):
            seeds = derive_seeds(plan.seed, runs)
            when = " if bitwise fails" if mode == "auto" else ""
            lines.append(f"  runs {number}-{number + runs - 1} statistical{when}: seeds "
                         f"{', '.join(map(str, seeds))}")
        lines.append(f"  command: {command} (no shell; cwd: a fresh worktree at "
                     f"{plan.commit[:12]}; timeout {timeout}; data of {', '.join(plan.targets)} "
                     "from the DVC cache, else its remote)")
        lines.append(f"  env: AISDP_EXPERIMENT_ID={plan.experiment_id} AISDP_SEED=<seed> "
                     f"AISDP_PARAMS={json.dumps(plan.params, sort_keys=True)} "
                     f"AISDP_ARTEFACT_DIR={outcome.stamp_dir}/<run>/")
    lines.append("dry run: nothing was run or written")
    return lines
