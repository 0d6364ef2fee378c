"""`aisdp-log rerun`: reproduce rows from their exact commit, data version and seed, judge the
result bitwise or statistically, and append the evidence to the workbook.

Order of work, so the user's workbook is held only for the final write:
1. read the log (calamine) and plan each row: commit, data pinned there, seed(s), params;
   a row that cannot be planned (unknown commit, a data version its commit does not pin, an ID
   that would leave the artefact folder) is reported with a one-line reason and not run
   (`plan.py`); pre-flight the interpreter each row runs with (`environment.py`);
2. run `[rerun] command` once per run, each in a fresh worktree (`repo/worktree.py`) with the
   `AISDP_*` variables, a timeout and its output kept in the run's artefact folder
   (`processes.py`, `folders.py`);
3. judge: `bitwise` (same seed, same artefact hash and metrics), `statistical` (per metric a
   t interval against the threshold, and the recorded value against the tolerance or the
   prediction interval, `domain/stats.py`), `auto` (bitwise, then statistical when bitwise
   fails) (`judge.py`);
4. re-open the workbook through the safe writer and append `Reruns` and `Reproducibility`
   rows and set the row's `Reproducibility` cell; nothing else is touched (`evidence.py`).

Where the runs execute is the executor's business (`executor.py`): this machine (`local`,
one GPU per run from the pool when `[rerun] gpus` is set) or one Slurm job per run (`slurm`);
`detached.py` submits without waiting and collects later, through the same steps.

Ctrl-C kills the running commands (cancels the jobs), removes every worktree and the run
folders of this invocation, and leaves the workbook as it was.
"""

from __future__ import annotations

import contextlib
import shlex
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from aisdp_log.config import Config
from aisdp_log.domain.metrics import declared_metrics, unusable_declarations
from aisdp_log.domain.stats import derive_seeds
from aisdp_log.errors import AisdpLogError
from aisdp_log.repo.roots import config_for, resolve_repo
from aisdp_log.repo.worktree import remove_stale
from aisdp_log.rerun.environment import Preparation, prepare
from aisdp_log.rerun.evidence import write_back
from aisdp_log.rerun.executor import EXECUTORS, make_executor
from aisdp_log.rerun.folders import (
    free_stamp,
    mark_running,
    remove_if_empty,
    remove_stale_run_folders,
    unmark_running,
)
from aisdp_log.rerun.judge import BITWISE_METRIC, judge_bitwise, judge_statistical
from aisdp_log.rerun.plan import (
    MODES,
    RerunReport,
    RowOutcome,
    RowPlan,
    describe_plan,
    plan_rows,
    select,
)
from aisdp_log.rerun.processes import install_interrupt, restore_interrupt
from aisdp_log.rerun.slurm import check_shared, sbatch_options
from aisdp_log.system.containers import remove_stale_containers
from aisdp_log.workbook.guard import writer_lock
from aisdp_log.workbook.reader import load_log


@dataclass
class Prepared:
    """A rerun settled before anything runs: the rows' plans and run folders, the declared
    metrics, and what the pre-flight said."""

    log_path: Path
    root: Path
    config: Config
    outcomes: list[RowOutcome]
    declared: dict
    runs: int
    confidence: float
    preparation: Preparation
    report: RerunReport
    planned: list[RowOutcome] = field(default_factory=list)


def prepare_rerun(log_path: Path | str, *, ids=(), flagged: bool = False,
                  runs: int | None = None, mode: str = "auto", jobs: int = 1,
                  dry_run: bool = False, repo: Path | str | None = None, config=None,
                  progress: Callable[[str], None] | None = None, env: str = "current",
                  executor: str | None = None) -> Prepared:
    """Steps before any run: check the arguments, read and plan the rows, name the run
    folders, pre-flight the interpreter (see the module docstring). Raises AisdpLogError."""

    log_path = Path(log_path)
    if mode not in MODES:
        raise AisdpLogError(f"--mode must be one of {', '.join(MODES)}, not {mode!r}")
    if executor is not None and executor not in EXECUTORS:
        raise AisdpLogError(f"--executor must be one of {', '.join(EXECUTORS)}, "
                            f"not {executor!r}")
    if bool(ids) == bool(flagged):
        raise AisdpLogError("name the rows to rerun: --id ID (repeatable) or --flagged")
    if jobs < 1:
        raise AisdpLogError("--jobs must be 1 or more")
    if runs is not None and not 1 <= runs <= 100:
        raise AisdpLogError("--runs must be a whole number from 1 to 100")
    root = resolve_repo(log_path, repo, offline=False)
    config = config_for(log_path, root, config)
    if not config.rerun.command:
        raise AisdpLogError(f"{config.path or root / 'aisdp.toml'}: set [rerun] command, e.g. "
                            'command = ["python", "train.py"], to say how a run is trained')
    runs = runs if runs is not None else config.rerun.runs
    if env == "image" and (executor or config.rerun.executor) != "local":
        raise AisdpLogError("--env image runs with the local executor only: a Slurm job "
                            "would need the container engine and the image on its node")

    log = load_log(log_path, config)
    try:
        rows = select(log, ids, flagged)
        unusable = unusable_declarations(log) if mode != "bitwise" else []
        if unusable:  # judged against another declaration than the one written: refuse
            raise AisdpLogError(f"{log_path}: {unusable[0]}: fix it (validate reports S003 "
                                "there) before a rerun is judged against it")
        declared = declared_metrics(log)
        outcomes = plan_rows(log, rows, config, root)
    finally:
        log.workbook.close()

    report = RerunReport(outcomes, dry_run=dry_run)
    stamp = free_stamp([o.plan.artefact_dir for o in outcomes if o.plan is not None])
    for outcome in outcomes:
        if outcome.plan is not None:
            outcome.stamp_dir = outcome.plan.artefact_dir / "reruns" / stamp
    # Before any worktree or run folder: is the interpreter able to run the rows? (exit 2)
    prepared = prepare(outcomes, config.rerun.command, env, root, dry_run, progress,
                       settings=config.rerun)
    for outcome in outcomes:
        if outcome.plan is not None:
            outcome.plan.run_env = prepared.by_experiment.get(outcome.experiment_id)
    return Prepared(log_path, root, config, outcomes, declared, runs, config.rerun.confidence,
                    prepared, report, [o for o in outcomes if o.plan is not None])


def check_cluster(ready: Prepared) -> None:
    """Refuse in one line when a folder a Slurm job needs is not visible from the nodes."""
    config = ready.config
    check_shared({"log's folder": ready.log_path.resolve().parent,
                  "repository": ready.root, "artefact folder": config.artefacts_dir},
                 config.rerun.slurm)


def rerun(log_path: Path | str, *, ids: tuple[str, ...] | list[str] = (), flagged: bool = False,
          runs: int | None = None, mode: str = "auto", jobs: int = 1, dry_run: bool = False,
          repo: Path | str | None = None, force: bool = False, config=None,
          progress: Callable[[str], None] | None = None, env: str = "current",
          executor: str | None = None) -> RerunReport:
    """Reproduce the rows named by `ids` (or marked in `Rerun` with `flagged`) and append the
    evidence to the workbook; see the module docstring. `env` is `current` (the command as
    configured, after a pre-flight of its interpreter), `lock` (an environment built from
    the row's lock file; `lockenv.py`) or `image` (inside the row's container image;
    `container.py`; local executor only). `executor` is `local` or `slurm` (default:
    `[rerun] executor`). Raises AisdpLogError (one line, exit 2) for bad arguments, an
    unreadable log or a missing `[rerun] command`."""

    ready = prepare_rerun(log_path, ids=ids, flagged=flagged, runs=runs, mode=mode, jobs=jobs,
                          dry_run=dry_run, repo=repo, config=config, progress=progress,
                          env=env, executor=executor)
    log_path, root, config, outcomes = ready.log_path, ready.root, ready.config, ready.outcomes
    report, declared, planned = ready.report, ready.declared, ready.planned
    executor = executor or config.rerun.executor
    if dry_run:
        report.lines = ready.preparation.lines + describe_plan(outcomes, config, mode,
                                                               ready.runs, derive_seeds)
        if executor == "slurm":
            options = [*sbatch_options(config.rerun.slurm, config.rerun.gpus),
                       *config.rerun.slurm.sbatch_args]
            report.lines.insert(-1, "executor slurm: each run one job, sbatch "
                                + (shlex.join(options) or "with the cluster's defaults"))
        return report
    if executor == "slurm" and planned:
        check_cluster(ready)
    runner = make_executor(executor, root, config, log_path, jobs, progress)
    # Refuse (Office lock, permissions, another writer) now, not after minutes of training;
    # the lock is held through the write-back. Then clear what killed reruns left.
    lock = contextlib.ExitStack()
    lock.enter_context(writer_lock(log_path, force=force))
    previous = install_interrupt(runner)
    try:
        remove_stale(root)
        remove_stale_run_folders(config.artefacts_dir)
        if ready.preparation.engine is not None:  # containers of reruns killed (--env image)
            remove_stale_containers(ready.preparation.engine)
        mark_running([o.stamp_dir for o in planned])
        if mode in ("auto", "bitwise"):
            results = runner.run_all([(o, 1, "bitwise", _plan(o).seed) for o in planned])
            for outcome, result in zip(planned, results):
                judge_bitwise_phase(outcome, result)
        if mode in ("auto", "statistical"):
            todo = [o for o in planned if needs_statistical(o, mode)]
            tasks = statistical_tasks(todo, ready.runs)
            results = runner.run_all(tasks)
            for outcome in todo:
                mine = [r for (o, *_), r in zip(tasks, results) if o is outcome]
                judge_statistical_phase(outcome, mine, declared, ready.confidence)
    except KeyboardInterrupt:
        runner.stop_all()
        runner.cleanup()
        for outcome in planned:
            if outcome.stamp_dir is not None:
                shutil.rmtree(outcome.stamp_dir, ignore_errors=True)
                remove_if_empty(outcome.stamp_dir.parent)
        lock.close()
        raise
    except BaseException:
        runner.stop_all()   # an error (sbatch refused a job): stop what was started
        runner.cleanup()
        unmark_running([o.stamp_dir for o in planned])
        lock.close()
        raise
    finally:
        restore_interrupt(previous)

    with lock:
        try:
            if planned:
                write_back(log_path, outcomes, declared, config, force)
                report.written = True
        finally:
            unmark_running([o.stamp_dir for o in planned])
    report.lines = ready.preparation.lines + summary(outcomes, log_path)
    return report


# --------------------------------------------------------------------------- judging phases

def judge_bitwise_phase(outcome: RowOutcome, result) -> None:
    """Record the bitwise run of a row and its verdict."""
    outcome.runs.append(result)
    match, lines = judge_bitwise(_plan(outcome), result)
    outcome.lines += lines
    outcome.evidence.append({"Mode": "bitwise", "Metric": BITWISE_METRIC,
                             "Runs": 1 if result.ok else 0,
                             "Verdict": "pass" if match else "fail"})
    outcome.verdict = "bitwise" if match else "failed"


def needs_statistical(outcome: RowOutcome, mode: str) -> bool:
    return outcome.verdict is None or (mode == "auto" and outcome.verdict == "failed")


def statistical_tasks(todo: list[RowOutcome], runs: int) -> list[tuple]:
    """(outcome, run number, mode, seed) of the statistical runs, numbered after the runs a
    row already has."""
    return [(o, len(o.runs) + i + 1, "statistical", seed)
            for o in todo for i, seed in enumerate(derive_seeds(_plan(o).seed, runs))]


def judge_statistical_phase(outcome: RowOutcome, mine: list, declared: dict,
                            confidence: float) -> None:
    """Record a row's statistical runs, its Reproducibility rows and its verdict."""
    outcome.runs += mine
    passed, rows, lines = judge_statistical(_plan(outcome), mine, declared, confidence)
    outcome.lines += lines
    outcome.evidence += [dict(row, Mode="statistical") for row in rows]
    outcome.verdict = "statistical" if passed else "failed"


def _plan(outcome: RowOutcome) -> RowPlan:
    """The plan of an outcome in `planned`, which holds only outcomes with one."""
    assert outcome.plan is not None
    return outcome.plan


# --------------------------------------------------------------------------- text

def summary(outcomes: list[RowOutcome], log_path: Path) -> list[str]:
    lines = []
    for outcome in outcomes:
        if outcome.error is not None:
            lines.append(f"{outcome.experiment_id}: not rerun: {outcome.error}")
            continue
        runs = len(outcome.runs)
        failed = sum(1 for r in outcome.runs if not r.ok)
        lines.append(f"{outcome.experiment_id}: {outcome.verdict} ({runs} run"
                     f"{'s' if runs != 1 else ''}{f', {failed} failed' if failed else ''}; "
                     f"output in {outcome.stamp_dir})")
        lines += [f"  {line}" for line in outcome.lines]
        for run in outcome.runs:
            if run.error:
                lines.append(f"  run {run.number} {run.status}; its stderr ends:")
                lines += [f"    | {line}" for line in run.error.splitlines()]
    if any(o.plan is not None for o in outcomes):
        lines.append(f"appended the evidence to the Reruns and Reproducibility sheets of "
                     f"{log_path}")
    return lines
