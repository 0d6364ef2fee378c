"""`aisdp-log rerun`: reproduce rows from their exact commit, data version and seed, judge the
result bitwise or statistically, and append the evidence to the workbook.

Order of work, so the user's workbook is held only for the final write:
1. read the log (calamine) and plan each row: commit, data pinned there, seed(s), params;
   a row that cannot be planned (unknown commit, a data version its commit does not pin, an ID
   that would leave the artefact folder) is reported with a one-line reason and not run;
2. run `[rerun] command` once per run, each in a fresh worktree (`worktree.py`) with the
   `AISDP_*` variables, a timeout and its output kept in the run's artefact folder;
3. judge: `bitwise` (same seed, same artefact hash and metrics), `statistical` (t intervals,
   `stats.py`), `auto` (bitwise, then statistical when bitwise fails);
4. re-open the workbook through the safe writer and append `Reruns` and `Reproducibility`
   rows and set the row's `Reproducibility` cell; nothing else is touched.

Ctrl-C kills the running commands, removes every worktree and the run folders of this
invocation, and leaves the workbook as it was.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import datetime as dt
import json
import math
import os
import shutil
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from aisdp_log import __version__, spec
from aisdp_log.artefacts.folders import artefact_folder
from aisdp_log.artefacts.hashing import artefact_hash
from aisdp_log.domain.metrics import declared_metrics, passing_pairs
from aisdp_log.domain.stats import derive_seeds, judge, t_interval
from aisdp_log.domain.values import as_text, decimals_typed, parse_param
from aisdp_log.errors import AisdpLogError
from aisdp_log.record.add import environment_summary
from aisdp_log.record.environment import diff_environments
from aisdp_log.repo.data_versions import resolve_data_versions
from aisdp_log.repo.git import GitRepo
from aisdp_log.repo.roots import config_for, resolve_repo
from aisdp_log.repo.worktree import (
    RerunError,
    checkout_data,
    isolated_worktree,
    remove_stale,
)
from aisdp_log.rerun.environment import RunEnvironment, prepare, read_stderr_tail
from aisdp_log.system.lifeline import Lifeline, die_with_parent
from aisdp_log.system.tooldir import pid_alive
from aisdp_log.workbook.guard import writer_lock
from aisdp_log.workbook.reader import load_log
from aisdp_log.workbook.writer import (
    append_row,
    ensure_sheet,
    find_rows,
    find_sheet,
    header_columns,
    open_workbook_for_update,
    set_cell,
)

MODES = ("auto", "bitwise", "statistical")
STATUS_OK = "ok"
#: Extra column of `Reruns` (the SPEC leaves extra columns open): why a run failed.
STATUS_HEADER = "Status"
#: Extra column after `Status`: the last lines of a failed run's stderr.
ERROR_HEADER = "Error"
BITWISE_METRIC = "artefact hash"


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
    run_env: RunEnvironment | None = None   # set by the pre-flight (rerun_env.prepare)


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


def _plan_rows(log, rows, config, repo_root: Path) -> list[RowOutcome]:

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
        if found.commit.status != "found":
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


# --------------------------------------------------------------------------- running

class _Runner:
    """Runs commands in worktrees, several at a time, and stops them all on Ctrl-C."""

    def __init__(self, repo_root: Path, command: tuple[str, ...], timeout: float | None,
                 progress: Callable[[str], None] | None):
        self.repo_root = repo_root
        self.command = list(command)
        self.timeout = timeout
        self.progress = progress
        self.cancelled = threading.Event()
        self._live: set[subprocess.Popen] = set()
        self._lock = threading.Lock()

    def stop_all(self) -> None:
        self.cancelled.set()
        with self._lock:
            live = list(self._live)
        for process in live:
            _kill_group(process)

    def run(self, plan: RowPlan, stamp_dir: Path, number: int, mode: str, seed: int
            ) -> RunResult:
        folder = stamp_dir / str(number)
        result = RunResult(plan.experiment_id, number, mode, seed, folder,
                           started=dt.datetime.now().replace(microsecond=0))
        clock = time.monotonic()
        try:
            if self.cancelled.is_set():
                raise KeyboardInterrupt
            folder.mkdir(parents=True)
            with isolated_worktree(self.repo_root, plan.commit) as tree:
                checkout_data(tree, self.repo_root, plan.targets, outs=plan.data)
                if self.cancelled.is_set():
                    raise KeyboardInterrupt
                self._execute(plan, tree, folder, seed, result)
            self._collect(result)
        except RerunError as exc:
            result.status = f"failed: {exc}"
        except OSError as exc:
            result.status = f"failed: {exc.strerror or exc}"
        if not result.ok:
            result.error = read_stderr_tail(folder / "stderr.log")
        result.duration_s = time.monotonic() - clock
        if self.progress:
            self.progress(f"{plan.experiment_id} run {number} ({mode}, seed {seed}): "
                          f"{result.status} in {result.duration_s:.1f} s")
        return result

    def _execute(self, plan: RowPlan, tree: Path, folder: Path, seed: int,
                 result: RunResult) -> None:
        env = plan.run_env.apply(os.environ) if plan.run_env else dict(os.environ)
        command = plan.run_env.command if plan.run_env else self.command
        env.update(AISDP_EXPERIMENT_ID=plan.experiment_id, AISDP_SEED=str(seed),
                   AISDP_PARAMS=json.dumps(plan.params, sort_keys=True),
                   AISDP_ARTEFACT_DIR=str(folder))
        # Logs go beside the folder while the run writes it, so they never enter its hash.
        out_path = folder.parent / f".{folder.name}.stdout.log"
        err_path = folder.parent / f".{folder.name}.stderr.log"
        with open(out_path, "wb") as out, open(err_path, "wb") as err, Lifeline() as lifeline:
            started = time.monotonic()
            try:
                # Own session: a terminal's Ctrl-C reaches us only, and we stop the whole
                # process group (a training script's data-loader workers included). If we
                # are killed outright, the kernel (PR_SET_PDEATHSIG) and the watchdog stop it.
                process = subprocess.Popen(command, cwd=tree, env=env, stdout=out,
                                           stderr=err, stdin=subprocess.DEVNULL,
                                           start_new_session=True,
                                           preexec_fn=die_with_parent())
            except OSError as exc:
                process = None
                result.status = f"failed: cannot start {command[0]!r} " \
                                f"({exc.strerror or exc})"
            code = None
            if process is not None:
                lifeline.watch(process.pid)
                code = self._wait(process, result)
                lifeline.forget(process.pid)
            result.command_s = time.monotonic() - started
        if self.cancelled.is_set():
            raise KeyboardInterrupt
        if code is not None and code != 0:
            result.status = f"failed: exit code {code}"
        # Hash first, then move the logs in: they are records, not the model.
        result.artefact_hash = _hash_or_none(folder)
        for path, name in ((out_path, "stdout.log"), (err_path, "stderr.log")):
            os.replace(path, folder / name)

    def _wait(self, process: subprocess.Popen, result: RunResult) -> int | None:
        with self._lock:
            self._live.add(process)
        try:
            return process.wait(timeout=self.timeout)
        except subprocess.TimeoutExpired:
            _kill_group(process)
            process.wait()
            result.status = f"failed: timed out after {self.timeout:g} s"
            return None
        except BaseException:
            _kill_group(process)
            process.wait()
            raise
        finally:
            with self._lock:
                self._live.discard(process)

    def _collect(self, result: RunResult) -> None:
        folder = result.folder
        metrics = _read_json(folder / "metrics.json")
        result.metrics = {k: float(v) for k, v in metrics.items()
                          if isinstance(v, (int, float)) and not isinstance(v, bool)
                          and math.isfinite(v)}
        record = _read_json(folder / "run.json")
        environment = record.get("environment")
        result.environment = environment if isinstance(environment, dict) else None
        if result.ok and record.get("status") not in (None, "completed"):
            result.status = f"failed: run.json status {record.get('status')!r}"


def _kill_group(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except OSError:  # gone already, or not ours to signal
        try:
            process.kill()
        except OSError:
            pass


def _hash_or_none(folder: Path) -> str | None:

    try:
        return artefact_hash(folder)
    except (FileNotFoundError, OSError):
        return None


def _read_json(path: Path) -> dict:
    try:
        with open(path, "rb") as fh:
            data = json.load(fh)
    except (OSError, ValueError, RecursionError):  # RecursionError: nested too deep
        return {}
    return data if isinstance(data, dict) else {}


# --------------------------------------------------------------------------- judging

def _metrics_agree(plan: RowPlan, result: RunResult) -> list[str]:
    """Metrics that differ between the rerun and the row's record: the original metrics.json
    exactly where there is one, else the cells within the rounding typed into them."""
    recorded = _read_json(plan.artefact_dir / "metrics.json")
    differ = []
    if recorded:
        for name, value in recorded.items():
            if name in result.metrics and isinstance(value, (int, float)) \
                    and result.metrics[name] != float(value):
                differ.append(f"{name} {value} → {result.metrics[name]}")
        return differ
    folded = {k.casefold(): v for k, v in result.metrics.items()}
    for name, value in plan.recorded_metrics.items():
        new = folded.get(name.casefold())
        if new is None:
            continue
        decimals = plan.metric_decimals.get(name)
        tolerance = 0.5 * 10 ** -decimals if decimals is not None else 0.0
        if abs(new - value) > tolerance + 1e-12:
            differ.append(f"{name} {value} → {new}")
    return differ


def judge_bitwise(plan: RowPlan, result: RunResult) -> tuple[bool, list[str]]:
    """Whether one same-seed run reproduced the row bitwise, and the lines saying why not
    (including what differs in the environment)."""
    lines = []
    if not result.ok:
        lines.append(f"bitwise run {result.status}")
    elif plan.recorded_hash is None:
        lines.append("the row has no artefact hash to compare with")
    elif result.artefact_hash != plan.recorded_hash:
        lines.append(f"artefact hash {_short(result.artefact_hash)} differs from the row's "
                     f"{_short(plan.recorded_hash)}")
    differ = _metrics_agree(plan, result) if result.ok else []
    if differ:
        lines.append("metrics differ: " + "; ".join(differ))
    match = not lines
    result.bitwise_match = match
    if not match and result.ok:

        recorded = _read_json(plan.artefact_dir / "run.json").get("environment")
        if not isinstance(recorded, dict):
            lines.append("the row's run.json records no environment to compare with")
        elif result.environment is None:
            lines.append("this run wrote no run.json environment to compare with (does the "
                         "command use aisdp_log.training.record_run?)")
        else:
            changes = diff_environments(recorded, result.environment or {})
            lines.append("environment: " + ("; ".join(changes) if changes else
                                            "no recorded difference (the training is not "
                                            "deterministic at this seed?)"))
    return match, lines


def _short(value: str | None) -> str:
    return "(none)" if value is None else value[:19] + "…"


def judge_statistical(plan: RowPlan, runs: list[RunResult], declared: dict, confidence: float
                      ) -> tuple[bool, list[dict], list[str]]:
    """Per declared metric a t interval over the runs and a verdict; (all passed, the
    Reproducibility rows, lines)."""

    rows, lines = [], []
    failed = [r for r in runs if not r.ok]
    if failed:
        lines.append(f"{len(failed)} of {len(runs)} runs failed: " +
                     "; ".join(f"run {r.number} {r.status}" for r in failed))
    if not declared:
        lines.append("no metric is declared in the Metrics sheet, so there is nothing to judge")
        return False, [{"Metric": "(none declared)", "Runs": len(runs) - len(failed),
                        "Verdict": "fail"}], lines
    folded = [{k.casefold(): v for k, v in r.metrics.items()} for r in runs if r.ok]
    passed = True
    for metric in declared.values():
        name = metric.name.casefold()
        values = [metrics[name] for metrics in folded if name in metrics]
        interval = t_interval(values, confidence)
        verdict = judge(interval, metric.goal, metric.threshold, expected_runs=len(runs))
        passed = passed and verdict.passed
        rows.append({"Metric": metric.name, "Runs": interval.n, "Mean": interval.mean,
                     "Std": interval.std, "CI low": interval.low, "CI high": interval.high,
                     "Confidence": confidence, "Threshold": metric.threshold,
                     "Verdict": verdict.verdict})
        shown = (f"[{interval.low:.4g}, {interval.high:.4g}]" if interval.exists
                 else "no interval")
        mean = "-" if interval.mean is None else f"{interval.mean:.4g}"
        lines.append(f"{metric.name}: mean {mean} over {interval.n} runs, "
                     f"{confidence:.0%} CI {shown}: {verdict.verdict} ({verdict.reason})")
    return passed, rows, lines


# --------------------------------------------------------------------------- the command

def rerun(log_path: Path | str, *, ids: tuple[str, ...] | list[str] = (), flagged: bool = False,
          runs: int | None = None, mode: str = "auto", jobs: int = 1, dry_run: bool = False,
          repo: Path | str | None = None, force: bool = False, config=None,
          progress: Callable[[str], None] | None = None, env: str = "current") -> RerunReport:
    """Reproduce the rows named by `ids` (or marked in `Rerun` with `flagged`) and append the
    evidence to the workbook; see the module docstring. `env` is `current` (the command as
    configured, after a pre-flight of its interpreter) or `lock` (an environment built from
    the row's lock file; `rerun_env.py`). Raises AisdpLogError (one line, exit
    2) for bad arguments, an unreadable log or a missing `[rerun] command`."""

    log_path = Path(log_path)
    if mode not in MODES:
        raise AisdpLogError(f"--mode must be one of {', '.join(MODES)}, not {mode!r}")
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
    confidence = config.rerun.confidence

    log = load_log(log_path, config)
    try:
        rows = _select(log, ids, flagged)
        declared = declared_metrics(log)
        outcomes = _plan_rows(log, rows, config, root)
    finally:
        log.workbook.close()

    report = RerunReport(outcomes, dry_run=dry_run)
    stamp = _free_stamp([o.plan.artefact_dir for o in outcomes if o.plan is not None])
    for outcome in outcomes:
        if outcome.plan is not None:
            outcome.stamp_dir = outcome.plan.artefact_dir / "reruns" / stamp
    # Before any worktree or run folder: is the interpreter able to run the rows? (exit 2)
    prepared = prepare(outcomes, config.rerun.command, env, root, dry_run, progress)
    for outcome in outcomes:
        if outcome.plan is not None:
            outcome.plan.run_env = prepared.by_experiment.get(outcome.experiment_id)
    if dry_run:
        report.lines = prepared.lines + _describe_plan(outcomes, config, mode, runs,
                                                       derive_seeds)
        return report

    runner = _Runner(root, config.rerun.command, config.rerun.timeout, progress)
    planned = [o for o in outcomes if o.plan is not None]
    # Refuse (Office lock, permissions, another writer) now, not after minutes of training;
    # the lock is held through the write-back. Then clear what killed reruns left.
    lock = contextlib.ExitStack()
    lock.enter_context(writer_lock(log_path, force=force))
    previous = _install_interrupt(runner)
    try:
        remove_stale(root)
        _remove_stale_run_folders(config.artefacts_dir)
        _mark_running([o.stamp_dir for o in planned])
        if mode in ("auto", "bitwise"):
            results = _run_all(runner, [(o, 1, "bitwise", o.plan.seed) for o in planned], jobs)
            for outcome, result in zip(planned, results):
                outcome.runs.append(result)
                match, lines = judge_bitwise(outcome.plan, result)
                outcome.lines += lines
                outcome.evidence.append({"Mode": "bitwise", "Metric": BITWISE_METRIC,
                                         "Runs": 1 if result.ok else 0,
                                         "Verdict": "pass" if match else "fail"})
                outcome.verdict = "bitwise" if match else "failed"
        if mode in ("auto", "statistical"):
            todo = [o for o in planned if o.verdict is None or
                    (mode == "auto" and o.verdict == "failed")]
            tasks = [(o, len(o.runs) + i + 1, "statistical", seed)
                     for o in todo for i, seed in enumerate(derive_seeds(o.plan.seed, runs))]
            results = _run_all(runner, tasks, jobs)
            for outcome in todo:
                mine = [r for (o, *_), r in zip(tasks, results) if o is outcome]
                outcome.runs += mine
                passed, rows, lines = judge_statistical(outcome.plan, mine, declared,
                                                        confidence)
                outcome.lines += lines
                outcome.evidence += [dict(row, Mode="statistical") for row in rows]
                outcome.verdict = "statistical" if passed else "failed"
    except KeyboardInterrupt:
        runner.stop_all()
        for outcome in planned:
            if outcome.stamp_dir is not None:
                shutil.rmtree(outcome.stamp_dir, ignore_errors=True)
                _remove_if_empty(outcome.stamp_dir.parent)
        lock.close()
        raise
    except BaseException:
        _unmark_running([o.stamp_dir for o in planned])
        lock.close()
        raise
    finally:
        _restore_interrupt(previous)

    with lock:
        try:
            if planned:
                _write_back(log_path, outcomes, declared, config, force)
                report.written = True
        finally:
            _unmark_running([o.stamp_dir for o in planned])
    report.lines = prepared.lines + _summary(outcomes, log_path)
    return report


def _free_stamp(artefact_dirs: list[Path]) -> str:
    """A UTC timestamp naming this invocation's run folders, suffixed where a rerun in the same
    second already used it: evidence is never overwritten."""
    base = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    stamp, suffix = base, 1
    while any((folder / "reruns" / stamp).exists() for folder in artefact_dirs):
        suffix += 1
        stamp = f"{base}-{suffix}"
    return stamp


def _select(log, ids, flagged) -> list:
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


def _run_all(runner: _Runner, tasks: list[tuple], jobs: int) -> list[RunResult]:
    """Run tasks (outcome, number, mode, seed) `jobs` at a time; results in task order."""
    if not tasks:
        return []
    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = [pool.submit(runner.run, o.plan, o.stamp_dir, number, mode, seed)
                   for o, number, mode, seed in tasks]
        try:
            pending = set(futures)
            while pending:  # a timed wait, so Ctrl-C is seen promptly in the main thread
                _, pending = concurrent.futures.wait(pending, timeout=0.2)
        except BaseException:
            runner.stop_all()
            for future in futures:
                future.cancel()
            concurrent.futures.wait(futures)
            raise
    return [future.result() for future in futures]


def _install_interrupt(runner: _Runner):
    """On the first SIGINT stop every command and raise KeyboardInterrupt; ignore further
    ones, so a second Ctrl-C cannot cut the clean-up short."""
    if threading.current_thread() is not threading.main_thread():
        return None

    def handler(signum, frame):
        if runner.cancelled.is_set():
            return
        runner.stop_all()
        raise KeyboardInterrupt

    return signal.signal(signal.SIGINT, handler)


def _restore_interrupt(previous) -> None:
    if previous is not None:
        signal.signal(signal.SIGINT, previous)


#: In a rerun's `reruns/<stamp>/` folder while it runs: pid and host of the rerun. A folder
#: still holding it after its rerun died (SIGKILL) is unrecorded output: the next rerun
#: removes it, as Ctrl-C would have.
RUNNING_MARKER = ".aisdp-log-running"


def _mark_running(stamp_dirs: list[Path | None]) -> None:
    import socket

    for folder in stamp_dirs:
        if folder is not None:
            folder.mkdir(parents=True, exist_ok=True)
            (folder / RUNNING_MARKER).write_text(
                json.dumps({"pid": os.getpid(), "host": socket.gethostname()}) + "\n",
                encoding="utf-8")


def _unmark_running(stamp_dirs: list[Path | None]) -> None:
    for folder in stamp_dirs:
        if folder is not None:
            with contextlib.suppress(OSError):
                (folder / RUNNING_MARKER).unlink()


def _remove_stale_run_folders(artefacts_dir: Path) -> list[Path]:
    """Remove `reruns/<stamp>/` folders of reruns that died (their pid is gone, this host)."""
    import socket


    removed = []
    for marker in Path(artefacts_dir).glob(f"*/reruns/*/{RUNNING_MARKER}"):
        record = _read_json(marker)
        pid = record.get("pid")
        if record.get("host") == socket.gethostname() and isinstance(pid, int) \
                and not pid_alive(pid):
            shutil.rmtree(marker.parent, ignore_errors=True)
            _remove_if_empty(marker.parent.parent)
            removed.append(marker.parent)
    return removed


def _remove_if_empty(folder: Path) -> None:
    try:
        folder.rmdir()
    except OSError:
        pass


# --------------------------------------------------------------------------- writing back

def _reruns_headers(declared: dict) -> list[str]:
    return [*spec.RERUNS_COLUMNS_BEFORE_METRICS,
            *(spec.METRICS_PREFIX + m.name for m in declared.values()),
            *spec.RERUNS_COLUMNS_AFTER_METRICS, STATUS_HEADER, ERROR_HEADER]


RERUNS_FORMATS = {"Started": "yyyy-mm-dd hh:mm:ss", "Seed": "0", "Duration": "0.00"}
REPRODUCIBILITY_FORMATS = {"Date": "yyyy-mm-dd hh:mm:ss", "Mean": "0.0000", "Std": "0.0000",
                           "CI low": "0.0000", "CI high": "0.0000", "Confidence": "0%"}


def _write_back(log_path: Path, outcomes: list[RowOutcome], declared: dict, config,
                force: bool) -> None:
    """Append the evidence and set each row's cell, re-reading the workbook first."""

    now = dt.datetime.now().replace(microsecond=0)
    headers = _reruns_headers(declared)
    widths = {"Rerun ID": 34, "Experiment ID": 14, "Started": 19, "Code commit": 14,
              "Data version": 18, "Artefact hash": 24, "Environment": 40, STATUS_HEADER: 30,
              ERROR_HEADER: 60}
    with open_workbook_for_update(log_path, force=force) as wb:
        experiments = find_sheet(wb, spec.SHEET_EXPERIMENTS)
        reruns = ensure_sheet(wb, spec.SHEET_RERUNS, headers,
                              widths=[widths.get(h, 12) for h in headers],
                              number_formats=RERUNS_FORMATS)
        repro = ensure_sheet(wb, spec.SHEET_REPRODUCIBILITY,
                             list(spec.REPRODUCIBILITY_COLUMNS),
                             widths=[14, 19, 12, 16] + [10] * 8,
                             number_formats=REPRODUCIBILITY_FORMATS)
        earlier = _passing_modes(repro)
        for outcome in outcomes:
            plan = outcome.plan
            if plan is None:
                continue
            for result in outcome.runs:
                values = {
                    "Rerun ID": result.rerun_id, "Experiment ID": plan.experiment_id,
                    "Started": result.started, "Mode": result.mode, "Seed": result.seed,
                    "Code commit": plan.commit, "Data version": plan.data_version,
                    "Artefact hash": result.artefact_hash,
                    "Bitwise match": (None if result.bitwise_match is None else
                                      "yes" if result.bitwise_match else "no"),
                    "Duration": round(result.duration_s / 60, 4),
                    "Environment": (plan.run_env.describe(result.environment) if plan.run_env
                                    else environment_summary(result.environment)),
                    "Tool version": __version__, STATUS_HEADER: result.status,
                    ERROR_HEADER: result.error,
                }
                folded = {k.casefold(): v for k, v in result.metrics.items()}
                for metric in declared.values():
                    values[spec.METRICS_PREFIX + metric.name] = folded.get(metric.name.casefold())
                append_row(reruns, {k: v for k, v in values.items() if v is not None},
                           number_formats=RERUNS_FORMATS)
            for evidence in outcome.evidence:
                values = dict(evidence, **{"Experiment ID": plan.experiment_id, "Date": now})
                append_row(repro, {k: v for k, v in values.items() if v is not None},
                           number_formats=REPRODUCIBILITY_FORMATS)
            if experiments is None or outcome.verdict is None:
                continue
            found = find_rows(experiments, spec.EXPERIMENT_ID.header, plan.experiment_id)
            if len(found) != 1:
                outcome.lines.append(f"the Reproducibility cell was not set: {len(found)} rows "
                                     "now carry this ID")
                continue
            ensure_sheet(wb, experiments.title, [spec.REPRODUCIBILITY.header])
            current = _cell_text(experiments, found[0], spec.REPRODUCIBILITY.header)
            if outcome.verdict == "failed" and current in ("bitwise", "statistical") and \
                    current in earlier.get(plan.experiment_id, set()):
                # A failed rerun is evidence too (in the sheets), but it does not erase a
                # level that earlier reruns passed: the cell keeps naming that level.
                outcome.lines.append(f"the row keeps `{current}`: the Reproducibility sheet "
                                     f"holds an earlier passing {current} rerun")
                continue
            set_cell(experiments, found[0], spec.REPRODUCIBILITY.header, outcome.verdict)


def _passing_modes(ws) -> dict[str, set[str]]:
    """Experiment ID -> modes that passed in a Reproducibility sheet (openpyxl), by the same
    rule as R005 (`checks.review.passing_pairs`)."""

    columns = header_columns(ws)
    wanted = [columns.get(spec.normalise_header(h)) for h in ("Experiment ID", "Mode", "Date",
                                                               "Verdict")]
    if any(c is None for c in wanted):
        return {}
    records = ([values[c - 1] if c - 1 < len(values) else None for c in wanted]
               for values in ws.iter_rows(min_row=2, values_only=True))
    passed: dict[str, set[str]] = {}
    for experiment_id, mode in passing_pairs(records):
        passed.setdefault(experiment_id, set()).add(mode)
    return passed


def _cell_text(ws, row: int, header: str) -> str | None:

    column = header_columns(ws).get(spec.normalise_header(header))
    value = ws.cell(row=row, column=column).value if column else None
    return str(value).strip().casefold() if value is not None else None


# --------------------------------------------------------------------------- text

def _summary(outcomes: list[RowOutcome], log_path: Path) -> list[str]:
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


def _describe_plan(outcomes: list[RowOutcome], config, mode: str, runs: int,
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
