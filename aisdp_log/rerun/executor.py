"""Where a rerun's runs execute: the seam between `runner.py`'s plan-run-judge loop and the
machines. `local` runs them on this machine, `--jobs` at a time, each with its own devices from
the GPU pool when `[rerun] gpus` is set (`devices.py`); `slurm` submits each run as a Slurm
job, waits for them all while showing pending / running / done, and reads their results
(`slurm.py`). Both give results in task order, and both stop everything on Ctrl-C."""

from __future__ import annotations

import collections
import contextlib
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from aisdp_log.config import Config
from aisdp_log.errors import AisdpLogError
from aisdp_log.repo.worktree import release_job_worktrees
from aisdp_log.rerun.devices import PooledRunner, device_pool
from aisdp_log.rerun.plan import RunResult
from aisdp_log.rerun.processes import Runner, run_all
from aisdp_log.rerun.slurm import (
    Job,
    cancel,
    finished,
    new_submission,
    read_result,
    remove_files,
    sbatch_options,
    states,
    submit,
    wait_gone,
)

EXECUTORS = ("local", "slurm")


class Executor(Protocol):
    name: str
    cancelled: threading.Event

    def run_all(self, tasks: list[tuple]) -> list[RunResult]:
        """Run tasks (outcome, number, mode, seed); their results, in task order."""

    def stop_all(self) -> None:
        """Stop every run (Ctrl-C); quick, safe to call twice."""

    def cleanup(self) -> None:
        """After stop_all: wait for what it stopped and remove what it left."""


class LocalExecutor:
    name = "local"

    def __init__(self, root: Path, config: Config, jobs: int,
                 progress: Callable[[str], None] | None):
        pool = device_pool(config.rerun.gpus, jobs)
        command, timeout = config.rerun.command, config.rerun.timeout
        self.runner = (Runner(root, command, timeout, progress) if pool is None else
                       PooledRunner(root, command, timeout, progress, pool))
        self.cancelled = self.runner.cancelled
        self.jobs = jobs

    def run_all(self, tasks: list[tuple]) -> list[RunResult]:
        return run_all(self.runner, tasks, self.jobs)

    def stop_all(self) -> None:
        self.runner.stop_all()

    def cleanup(self) -> None:
        """Nothing: each run's worktree went as its thread unwound."""


class SlurmExecutor:
    """Attached Slurm runs: submit, wait (progress), collect; Ctrl-C cancels the jobs."""

    name = "slurm"

    def __init__(self, root: Path, config: Config, log_path: Path,
                 progress: Callable[[str], None] | None):
        self.root = root
        self.config = config
        self.log_path = log_path
        self.progress = progress
        self.options = sbatch_options(config.rerun.slurm, config.rerun.gpus)
        self.cancelled = threading.Event()
        self.folder: Path | None = None
        self.jobs: list[Job] = []
        self._lock = threading.Lock()

    def submit(self, tasks: list[tuple]) -> list[Job]:
        """sbatch every task; the jobs, in task order."""
        if self.folder is None:
            self.folder = new_submission(self.log_path)
        submitted = []
        for outcome, number, mode, seed in tasks:
            if self.cancelled.is_set():
                raise KeyboardInterrupt
            job = submit(self.folder, outcome.plan, outcome.stamp_dir, number, mode, seed,
                         repo_root=self.root, command=_command(outcome, self.config),
                         timeout=self.config.rerun.timeout, options=self.options,
                         extra_args=self.config.rerun.slurm.sbatch_args)
            with self._lock:
                self.jobs.append(job)
            submitted.append(job)
        return submitted

    def run_all(self, tasks: list[tuple]) -> list[RunResult]:
        if not tasks:
            return []
        try:
            jobs = self.submit(tasks)
            final = self._wait(jobs)
        except BaseException:
            self.stop_all()
            raise
        results = [read_result(job, final[job.job_id], outcome.stamp_dir)
                   for job, (outcome, *_) in zip(jobs, tasks)]
        release_job_worktrees(self.root, [job.job_id for job in jobs])
        for job in jobs:
            remove_files(job)
        if self.folder is not None:
            with contextlib.suppress(OSError):
                self.folder.rmdir()   # a later phase makes a new one
                self.folder = None
        return results

    def _wait(self, jobs: list[Job]) -> dict[str, str]:
        ids = [job.job_id for job in jobs]
        started, shown = time.monotonic(), ""
        while True:
            now = states(ids)
            counts: collections.Counter = collections.Counter(
                "done" if finished(s) else "pending" if s == "PENDING" else "running"
                for s in now.values())
            line = (f"slurm: {counts['pending']} pending, {counts['running']} running, "
                    f"{counts['done']} done of {len(ids)} job{'s' if len(ids) > 1 else ''}")
            if self.progress and line != shown:
                self.progress(line)
            shown = line
            if counts["done"] == len(ids):
                return now
            elapsed = time.monotonic() - started
            time.sleep(0.25 if elapsed < 30 else 2 if elapsed < 600 else 10)

    def stop_all(self) -> None:
        if self.cancelled.is_set():
            return
        self.cancelled.set()
        with self._lock:
            ids = [job.job_id for job in self.jobs]
        cancel(ids)

    def cleanup(self) -> None:
        """Wait until the cancelled jobs have stopped (each removes its worktree as it
        stops), remove the worktrees of jobs killed outright, remove the job files."""
        ids = [job.job_id for job in self.jobs]
        wait_gone(ids)
        release_job_worktrees(self.root, ids)
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)


def _command(outcome, config: Config) -> list[str]:
    plan = outcome.plan
    return list(plan.run_env.command if plan.run_env else config.rerun.command)


def make_executor(name: str, root: Path, config: Config, log_path: Path, jobs: int,
                  progress: Callable[[str], None] | None) -> LocalExecutor | SlurmExecutor:
    if name == "local":
        return LocalExecutor(root, config, jobs, progress)
    if name == "slurm":
        return SlurmExecutor(root, config, log_path, progress)
    raise AisdpLogError(f"--executor must be one of {', '.join(EXECUTORS)}, not {name!r}")
