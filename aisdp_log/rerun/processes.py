"""Run the training command: once per run, in a fresh worktree with the row's data, in its own
process group with the `AISDP_*` variables and a timeout, several at a time; a timeout or
Ctrl-C stops each run's whole process tree (psutil, the same code on every OS)."""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import json
import math
import os
import secrets
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Protocol

from aisdp_log.artefacts.hashing import artefact_hash
from aisdp_log.domain.nested import leaves
from aisdp_log.repo.worktree import RerunError, checkout_data, isolated_worktree
from aisdp_log.rerun.container import container_variables
from aisdp_log.rerun.folders import read_json
from aisdp_log.rerun.plan import RowPlan, RunResult
from aisdp_log.rerun.preflight import resolve_first_word
from aisdp_log.rerun.tail import read_stderr_tail
from aisdp_log.system.containers import container_name, remove_argv, remove_containers
from aisdp_log.system.lifeline import Lifeline, die_with_parent
from aisdp_log.system.platform import kill_tree, own_process_group


class Runner:
    """Runs commands in worktrees, several at a time, and stops them all on Ctrl-C."""

    def __init__(self, repo_root: Path, command: tuple[str, ...], timeout: float | None,
                 progress: Callable[[str], None] | None):
        self.repo_root = repo_root
        self.command = list(command)
        self.timeout = timeout
        self.progress = progress
        self.cancelled = threading.Event()
        #: the Slurm job this runner runs in: its worktree is named after it and locked
        self.job: str | None = None
        self._live: set[subprocess.Popen] = set()
        self._lock = threading.Lock()

    def stop_all(self) -> None:
        self.cancelled.set()
        with self._lock:
            live = list(self._live)
        for process in live:
            _kill(process)

    def run(self, plan: RowPlan, stamp_dir: Path, number: int, mode: str, seed: int,
            extra_env: Mapping[str, str] | None = None) -> RunResult:
        """One run in a fresh worktree; `extra_env` is set on top of the row's variables
        (a device from the GPU pool)."""
        folder = stamp_dir / str(number)
        result = RunResult(plan.experiment_id, number, mode, seed, folder,
                           started=dt.datetime.now().replace(microsecond=0))
        clock = time.monotonic()
        try:
            if self.cancelled.is_set():
                raise KeyboardInterrupt
            folder.mkdir(parents=True)
            with isolated_worktree(self.repo_root, plan.commit, job=self.job) as tree:
                checkout_data(tree, self.repo_root, plan.targets, outs=plan.data)
                if self.cancelled.is_set():
                    raise KeyboardInterrupt
                self._execute(plan, tree, folder, seed, result, extra_env or {})
            collect(result)
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
                 result: RunResult, extra_env: Mapping[str, str]) -> None:
        env = plan.run_env.apply(os.environ) if plan.run_env else dict(os.environ)
        command = plan.run_env.command if plan.run_env else self.command
        env.update(extra_env)
        env.update(AISDP_EXPERIMENT_ID=plan.experiment_id, AISDP_SEED=str(seed),
                   AISDP_PARAMS=json.dumps(plan.params, sort_keys=True),
                   AISDP_ARTEFACT_DIR=str(folder))
        container = plan.run_env.container if plan.run_env else None
        name = None
        if container is not None:  # --env image: the engine starts the command inside
            name = container_name(secrets.token_hex(4))
            env["AISDP_ARTEFACT_DIR"] = str(folder.absolute())  # the same path inside
            leased = extra_env.get("CUDA_VISIBLE_DEVICES")  # the GPU pool's devices
            command = container.argv(command, tree, folder.absolute(),
                                     container_variables(env, container.image), name,
                                     devices=leased.split(",") if leased else None)
            env = dict(os.environ)
        # Logs go beside the folder while the run writes it, so they never enter its hash.
        out_path = folder.parent / f".{folder.name}.stdout.log"
        err_path = folder.parent / f".{folder.name}.stderr.log"
        # The file the run starts, found on the run's own PATH as the pre-flight found it
        # (Windows would otherwise search ours, and the folder of aisdp-log's Python first).
        executable = resolve_first_word(command, env, tree)
        with open(out_path, "wb") as out, open(err_path, "wb") as err, Lifeline() as lifeline:
            started = time.monotonic()
            process = None
            if executable is None:
                result.status = f"failed: cannot start {command[0]!r} (not found on the " \
                                "run's PATH)"
            else:
                try:
                    # Own process group: a terminal's Ctrl-C reaches us only, and we stop the
                    # run's whole tree. If we are killed outright, the kernel
                    # (PR_SET_PDEATHSIG, Linux) and the watchdog (every OS) stop it.
                    process = subprocess.Popen([executable, *command[1:]], cwd=tree, env=env,
                                               stdout=out, stderr=err,
                                               stdin=subprocess.DEVNULL,
                                               preexec_fn=die_with_parent(),
                                               **own_process_group())
                except OSError as exc:
                    result.status = f"failed: cannot start {command[0]!r} " \
                                    f"({exc.strerror or exc})"
            code = None
            if process is not None:
                lifeline.watch(process.pid)
                if container is not None and name is not None:
                    # killing the engine's client leaves its container running: if we die,
                    # the watchdog removes it
                    lifeline.on_death(name, remove_argv(container.engine, [name]))
                try:
                    code = self._wait(process, result)
                finally:
                    if container is not None and name is not None and \
                            (code is None or code < 0 or self.cancelled.is_set()):
                        remove_containers(container.engine, [name])  # stopped, timed out
                lifeline.forget(process.pid)
                if name is not None:
                    lifeline.cancel(name)
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
            _kill(process)
            process.wait()
            result.status = f"failed: timed out after {self.timeout:g} s"
            return None
        except BaseException:
            _kill(process)
            process.wait()
            raise
        finally:
            with self._lock:
                self._live.discard(process)



def collect(result: RunResult) -> None:
    """Read what a finished run recorded in its folder: its metrics (nested ones named as DVC
    flattens them, `eval.acc`, as the log's `metrics.*` columns name them), its environment,
    and a status other than `completed`."""
    folder = result.folder
    metrics = read_json(folder / "metrics.json")
    result.metrics = {name: float(value) for name, value in leaves(metrics)
                      if isinstance(value, (int, float)) and not isinstance(value, bool)
                      and math.isfinite(value)}
    record = read_json(folder / "run.json")
    environment = record.get("environment")
    result.environment = environment if isinstance(environment, dict) else None
    if result.ok and record.get("status") not in (None, "completed"):
        result.status = f"failed: run.json status {record.get('status')!r}"


def _kill(process: subprocess.Popen) -> None:
    """Stop a run and every process it started (system/platform's kill_tree)."""
    kill_tree(process.pid)
    if process.poll() is None:  # not in the table any more, yet not reaped by us
        try:
            process.kill()
        except OSError:
            pass


def _hash_or_none(folder: Path) -> str | None:

    try:
        return artefact_hash(folder)
    except (FileNotFoundError, OSError):
        return None


def run_all(runner: Runner, tasks: list[tuple], jobs: int) -> list[RunResult]:
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


class Stoppable(Protocol):
    """What Ctrl-C stops: a local Runner, or an executor's submitted jobs."""

    cancelled: threading.Event

    def stop_all(self) -> None: ...


def install_interrupt(runner: Stoppable):
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


def restore_interrupt(previous) -> None:
    if previous is not None:
        signal.signal(signal.SIGINT, previous)
