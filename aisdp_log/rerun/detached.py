"""Detached reruns on Slurm: `rerun ... --detach` submits the jobs and returns at once,
recording what it submitted in `.aisdp-log/slurm/<submission>/submission.json` beside the log;
`rerun LOG --collect` gathers every finished row (judges it and appends its evidence, as an
attached rerun does) and leaves unfinished ones pending; `rerun LOG --status` lists them.

A row in `--mode auto` whose bitwise run did not reproduce gets its statistical runs submitted
by the collection that judged it, and stays pending until they finish. Collecting is
idempotent: a row's record is dropped once its evidence is written, and `evidence.write_back`
skips a row whose `Rerun ID`s the `Reruns` sheet already holds (a collection cut short between
the two).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

from aisdp_log.domain.metrics import declared_metrics, unusable_declarations
from aisdp_log.errors import AisdpLogError
from aisdp_log.repo.roots import config_for, resolve_repo
from aisdp_log.repo.worktree import release_job_worktrees
from aisdp_log.rerun.evidence import write_back
from aisdp_log.rerun.executor import SlurmExecutor
from aisdp_log.rerun.folders import read_json, remove_if_empty
from aisdp_log.rerun.plan import RowOutcome
from aisdp_log.rerun.processes import install_interrupt, restore_interrupt
from aisdp_log.rerun.records import (
    RECORD_VERSION,
    plain,
    plan_from_json,
    plan_to_json,
    result_from_json,
    result_to_json,
    write_json,
)
from aisdp_log.rerun.runner import (
    check_cluster,
    judge_bitwise_phase,
    judge_statistical_phase,
    needs_statistical,
    prepare_rerun,
    statistical_tasks,
    summary,
)
from aisdp_log.rerun.slurm import Job, finished, read_result, remove_files, states
from aisdp_log.system.tooldir import tool_dir
from aisdp_log.workbook.guard import writer_lock
from aisdp_log.workbook.reader import load_log

RECORD_NAME = "submission.json"


@dataclass
class Listing:
    """What `--detach`, `--collect` and `--status` print, and their exit code."""

    lines: list[str] = field(default_factory=list)
    exit_code: int = 0


# --------------------------------------------------------------------------- records

def _row_record(outcome: RowOutcome, jobs: list[Job]) -> dict:
    assert outcome.plan is not None and outcome.stamp_dir is not None
    return {"experiment_id": outcome.experiment_id, "plan": plan_to_json(outcome.plan),
            "stamp_dir": str(outcome.stamp_dir), "jobs": [plain(job) for job in jobs],
            "runs": [result_to_json(r) for r in outcome.runs], "evidence": outcome.evidence,
            "lines": outcome.lines, "verdict": outcome.verdict}


def _outcome(row: dict) -> RowOutcome:
    outcome = RowOutcome(row["experiment_id"], plan=plan_from_json(row["plan"]),
                         stamp_dir=Path(row["stamp_dir"]),
                         runs=[result_from_json(r) for r in row["runs"]],
                         evidence=list(row["evidence"]), lines=list(row["lines"]),
                         verdict=row["verdict"])
    return outcome


def _jobs(row: dict) -> list[Job]:
    return [Job(**dict(job, base=Path(job["base"]))) for job in row["jobs"]]


def submissions(log_path: Path) -> list[tuple[Path, dict]]:
    """The pending submissions of this log: (record file, record), oldest first."""
    folder = tool_dir(log_path.parent, create=False) / "slurm"
    found = []
    for path in sorted(folder.glob(f"*/{RECORD_NAME}")):
        record = read_json(path)
        if record.get("log") != log_path.name:
            continue
        if record.get("version") != RECORD_VERSION:
            raise AisdpLogError(f"{path}: a submission record of another aisdp-log version; "
                                "collect it with that version")
        found.append((path, record))
    return found


# --------------------------------------------------------------------------- submit

def submit_detached(log_path: Path | str, *, progress=None, executor: str | None = None,
                    **options) -> Listing:
    """Plan as `rerun` does, submit the first runs of every row (bitwise for `auto` and
    `bitwise`, else the statistical ones) and record them; return at once."""
    mode = options.get("mode", "auto")
    ready = prepare_rerun(log_path, progress=progress, executor=executor, **options)
    if (executor or ready.config.rerun.executor) != "slurm":
        raise AisdpLogError("--detach needs --executor slurm (or [rerun] executor = "
                            "\"slurm\"): local runs end with the process that runs them")
    listing = Listing(list(ready.preparation.lines))
    listing.lines += [f"{o.experiment_id}: not submitted: {o.error}"
                      for o in ready.outcomes if o.plan is None]
    listing.exit_code = 0 if all(o.plan is not None for o in ready.outcomes) else 1
    if not ready.planned:
        return listing
    check_cluster(ready)
    slurm = SlurmExecutor(ready.root, ready.config, ready.log_path, progress)
    if mode in ("auto", "bitwise"):
        tasks = [(o, 1, "bitwise", o.plan.seed) for o in ready.planned if o.plan]
    else:
        tasks = statistical_tasks(ready.planned, ready.runs)
    previous = install_interrupt(slurm)
    try:
        jobs = slurm.submit(tasks)
    except BaseException:   # Ctrl-C, or sbatch refused one: nothing stays submitted
        slurm.stop_all()
        slurm.cleanup()
        for outcome in ready.planned:
            if outcome.stamp_dir is not None:
                shutil.rmtree(outcome.stamp_dir, ignore_errors=True)
                remove_if_empty(outcome.stamp_dir.parent)
        raise
    finally:
        restore_interrupt(previous)
    assert slurm.folder is not None
    rows = []
    for outcome in ready.planned:
        mine = [job for job, (o, *_) in zip(jobs, tasks) if o is outcome]
        rows.append(_row_record(outcome, mine))
        listing.lines.append(f"{outcome.experiment_id}: submitted {_describe(mine)}; output "
                             f"in {outcome.stamp_dir}")
    write_json(slurm.folder / RECORD_NAME, {
        "version": RECORD_VERSION, "log": ready.log_path.name, "mode": mode,
        "runs": ready.runs, "confidence": ready.confidence, "rows": rows})
    listing.lines.append(f"collect the evidence when the jobs have finished: aisdp-log rerun "
                         f"{ready.log_path} --collect (progress: --status)")
    return listing


def _describe(jobs: list[Job]) -> str:
    runs = ", ".join(f"run {job.number} ({job.mode}, seed {job.seed}) as job {job.job_id}"
                     for job in jobs)
    return runs or "nothing"


# --------------------------------------------------------------------------- collect

def collect(log_path: Path | str, *, repo=None, force: bool = False, config=None,
            progress=None) -> Listing:
    """Judge and append every row whose jobs have all finished; see the module docstring."""
    log_path = Path(log_path)
    if not log_path.is_file():
        raise AisdpLogError(f"{log_path}: no such file")
    root = resolve_repo(log_path, repo, offline=False)
    config = config_for(log_path, root, config)
    listing = Listing()
    with writer_lock(log_path, force=force):
        pending = submissions(log_path)
        if not pending:
            listing.lines.append(f"{log_path}: no pending Slurm submission to collect")
            return listing
        log = load_log(log_path, config)
        try:
            unusable = unusable_declarations(log)
            if unusable:  # as `rerun` refuses it: the submissions stay to collect once fixed
                raise AisdpLogError(f"{log_path}: {unusable[0]}: fix it (validate reports "
                                    "S003 there) before reruns are judged against it")
            declared = declared_metrics(log)
        finally:
            log.workbook.close()
        concluded: list[RowOutcome] = []
        settled: list[tuple[Path, dict, list[dict]]] = []
        for path, record in pending:
            kept, done = [], []
            all_jobs = [job for row in record["rows"] for job in _jobs(row)]
            now = states([job.job_id for job in all_jobs])
            for row in record["rows"]:
                row_jobs = _jobs(row)
                waiting = [j for j in row_jobs if not finished(now[j.job_id])]
                if waiting:
                    kept.append(row)
                    listing.lines.append(f"{row['experiment_id']}: pending: " + ", ".join(
                        f"job {j.job_id} {now[j.job_id]}" for j in waiting))
                    continue
                outcome = _outcome(row)
                results = [read_result(j, now[j.job_id], Path(row["stamp_dir"]))
                           for j in row_jobs]
                if row_jobs and row_jobs[0].mode == "bitwise":
                    judge_bitwise_phase(outcome, results[0])
                    if needs_statistical(outcome, record["mode"]) and \
                            record["mode"] == "auto":
                        try:
                            new = _submit_statistical(outcome, record, root, config,
                                                      path.parent)
                        except AisdpLogError as exc:  # kept as it was: the next collection
                            kept.append(row)          # judges it again and retries
                            listing.lines.append(f"{outcome.experiment_id}: bitwise did not "
                                                 f"reproduce; the statistical runs could not "
                                                 f"be submitted: {exc}")
                            listing.exit_code = 1
                            continue
                        kept.append(_row_record(outcome, new))
                        listing.lines.append(f"{outcome.experiment_id}: bitwise did not "
                                             f"reproduce; submitted {_describe(new)}")
                        done += row_jobs
                        continue
                else:
                    judge_statistical_phase(outcome, results, declared, record["confidence"])
                concluded.append(outcome)
                done += row_jobs
            settled.append((path, record, kept))
            record["_done"] = done
        if concluded:
            write_back(log_path, concluded, declared, config, force)
            listing.lines += summary(concluded, log_path)
        for path, record, kept in settled:
            done = record.pop("_done")
            release_job_worktrees(root, [job.job_id for job in done])
            for job in done:
                remove_files(job)
            if kept:
                record["rows"] = kept
                write_json(path, record)
            else:
                shutil.rmtree(path.parent, ignore_errors=True)
    if not all(o.reproduced for o in concluded):
        listing.exit_code = 1
    return listing


def _submit_statistical(outcome: RowOutcome, record: dict, root: Path, config,
                        folder: Path) -> list[Job]:
    executor = SlurmExecutor(root, config, folder, None)
    executor.folder = folder
    return executor.submit(statistical_tasks([outcome], record["runs"]))


# --------------------------------------------------------------------------- status

def status(log_path: Path | str) -> Listing:
    """Every pending submission of the log, each job with its Slurm state."""
    log_path = Path(log_path)
    if not log_path.is_file():
        raise AisdpLogError(f"{log_path}: no such file")
    pending = submissions(log_path)
    listing = Listing()
    if not pending:
        listing.lines.append(f"{log_path}: no pending Slurm submission")
        return listing
    jobs = {path: [j for row in record["rows"] for j in _jobs(row)] for path, record in pending}
    now = states([j.job_id for group in jobs.values() for j in group])
    for path, record in pending:
        listing.lines.append(f"submission {path.parent.name} (mode {record['mode']}):")
        for job in jobs[path]:
            listing.lines.append(f"  {job.experiment_id} run {job.number} ({job.mode}, seed "
                                 f"{job.seed}): job {job.job_id} {now[job.job_id]}")
    return listing
