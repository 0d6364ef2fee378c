"""Runs as Slurm jobs: one `sbatch` job per run, their states (`squeue`, then `sacct` where
accounting is on), `scancel`, and each job's result read back as a run's result.

A job runs `python -m aisdp_log.rerun.slurmjob TASK.json` with the interpreter and package of
the process that submitted it (`slurmjob.py`): the same worktree, data checkout, variables,
timeout and hashing as a local run, on the node. Its task, batch script, Slurm's stdout and
stderr and its result sit in `.aisdp-log/slurm/<submission>/` beside the log, so the log's
folder, the repository and the artefacts must be on a file system the nodes share.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import secrets
import shlex
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import aisdp_log
from aisdp_log.config import SlurmConfig
from aisdp_log.errors import AisdpLogError
from aisdp_log.rerun.folders import read_json
from aisdp_log.rerun.plan import RowPlan, RunResult
from aisdp_log.rerun.records import (
    RECORD_VERSION,
    plan_to_json,
    result_from_json,
    write_json,
)
from aisdp_log.rerun.tail import stderr_tail
from aisdp_log.system.tooldir import tool_dir

#: States after which a job will not run again (squeue's and sacct's long names).
TERMINAL = {"COMPLETED", "FAILED", "TIMEOUT", "CANCELLED", "OUT_OF_MEMORY", "NODE_FAIL",
            "PREEMPTED", "BOOT_FAIL", "DEADLINE", "SPECIAL_EXIT", "REVOKED"}
#: What a job's state is when neither squeue nor sacct knows it any more.
GONE = "UNKNOWN"
#: File systems no other machine can see.
NODE_LOCAL_FS = {"tmpfs", "ramfs", "devtmpfs", "overlay", "squashfs", "aufs"}


def _client(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    """Run one of Slurm's client commands; a missing one is a one-line refusal."""
    try:
        return subprocess.run(list(args), capture_output=True, encoding="utf-8",
                              errors="replace", timeout=timeout, stdin=subprocess.DEVNULL)
    except FileNotFoundError:
        raise AisdpLogError(f"--executor slurm needs Slurm's `{args[0]}` on PATH (run on a "
                            "login node of the cluster)") from None
    except subprocess.TimeoutExpired:
        raise AisdpLogError(f"`{args[0]}` did not answer within {timeout:g} s: is slurmctld "
                            "up?") from None


def _last_line(text: str) -> str:
    """The client's last non-empty line (its reason), cut to 300 characters."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1][:300] if lines else "no message"


# --------------------------------------------------------------------------- options

def sbatch_options(settings: SlurmConfig, gpus_default: int) -> list[str]:
    """`#SBATCH` options from `[rerun.slurm]`; `gpus_per_run` defaults to `[rerun] gpus`."""
    options = []
    for key, flag in (("partition", "partition"), ("account", "account"), ("mem", "mem"),
                      ("time", "time"), ("cpus_per_run", "cpus-per-task")):
        value = getattr(settings, key)
        if value is not None:
            options.append(f"--{flag}={value}")
    gpus = settings.gpus_per_run if settings.gpus_per_run is not None else gpus_default
    if gpus:
        options.append(f"--gres=gpu:{gpus}")
    return options


# --------------------------------------------------------------------------- shared file system

def _partition_nodes(partition: str | None) -> list[str]:
    listing = _client("scontrol", "show", "partition", "--oneliner")
    if listing.returncode != 0:
        raise AisdpLogError(f"scontrol show partition: {_last_line(listing.stderr)}")
    for line in listing.stdout.splitlines():
        fields = dict(item.split("=", 1) for item in line.split() if "=" in item)
        if (fields.get("PartitionName") == partition) if partition else \
                fields.get("Default") == "YES":
            expression = fields.get("Nodes", "")
            if not expression or expression == "(null)":
                return []
            names = _client("scontrol", "show", "hostnames", expression)
            return names.stdout.split()
    raise AisdpLogError(f"Slurm has no partition {partition!r}" if partition else
                        "Slurm has no default partition: set [rerun.slurm] partition")


def file_system(path: Path) -> str | None:
    """The type of the file system holding `path` (/proc/self/mountinfo), None elsewhere."""
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return None
    best, found = -1, None
    target = str(path.resolve())
    for line in lines:
        before, _, after = line.partition(" - ")
        fields = before.split()
        if len(fields) < 5 or not after:
            continue
        mount = fields[4].replace("\\040", " ")
        inside = target == mount or target.startswith(mount.rstrip("/") + "/")
        if inside and len(mount) > best:
            best, found = len(mount), after.split()[0]
    return found


def check_shared(paths: dict[str, Path], settings: SlurmConfig) -> None:
    """Refuse in one line when a folder the jobs need cannot be seen from the partition's
    nodes: the nodes are other machines and the folder is on a file system only this one
    has (tmpfs, overlay, ...). A partition of this host alone sees everything."""
    nodes = _partition_nodes(settings.partition)
    here = {socket.gethostname(), socket.gethostname().split(".")[0], "localhost"}
    if nodes and set(nodes) <= here:
        return
    for what, path in paths.items():
        kind = file_system(path)
        if kind in NODE_LOCAL_FS:
            raise AisdpLogError(
                f"{path}: the {what} is on {kind}, which the Slurm nodes "
                f"({', '.join(nodes[:3])}{', ...' if len(nodes) > 3 else ''}) cannot see; "
                "put the log, repository and artefacts on a file system the nodes share")


# --------------------------------------------------------------------------- submissions

@dataclass
class Job:
    """One submitted run: which, and where its files are (`base` + `.task.json`, `.sbatch`,
    `.out`, `.err`, `.result.json`)."""

    experiment_id: str
    number: int
    mode: str
    seed: int
    job_id: str
    base: Path
    submitted: str

    def file(self, suffix: str) -> Path:
        return self.base.with_name(self.base.name + suffix)


def new_submission(log_path: Path) -> Path:
    """A new folder for one invocation's jobs in the tool's folder beside the log."""
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    folder = tool_dir(log_path.parent) / "slurm" / f"{stamp}-{secrets.token_hex(3)}"
    folder.mkdir(parents=True)
    return folder


def _job_name(experiment_id: str, number: int) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", f"{experiment_id}-{number}")


def _placement(job: Job, repo_root: Path) -> list[str]:
    """Name, output files and working folder: on sbatch's command line, where a path with a
    space stays one argument (an `#SBATCH` line would split it)."""
    return [f"--job-name=aisdp-{_job_name(job.experiment_id, job.number)}",
            f"--output={job.file('.out')}", f"--error={job.file('.err')}",
            f"--chdir={repo_root}"]


def _script(task: Path, options: list[str], command: list[str]) -> str:
    package_parent = Path(aisdp_log.__file__).resolve().parent.parent
    bootstrap = (f"import sys; sys.path.insert(0, {str(package_parent)!r}); "
                 "from aisdp_log.rerun.slurmjob import main; main()")
    lines = ["#!/bin/sh", *(f"#SBATCH {option}" for option in options),
             "# aisdp-log rerun: one run of one row, its task in the JSON file below;",
             f"# submitted with: {shlex.join(command)}",
             f"exec {shlex.quote(sys.executable)} -c {shlex.quote(bootstrap)} "
             f"{shlex.quote(str(task))}", ""]
    return "\n".join(lines)


def submit(folder: Path, plan: RowPlan, stamp_dir: Path, number: int, mode: str, seed: int,
           *, repo_root: Path, command: list[str], timeout: float | None,
           options: list[str], extra_args: tuple[str, ...]) -> Job:
    """Write the run's task and batch script and `sbatch` it; the Job, with its id."""
    base = folder / _job_name(plan.experiment_id, number)
    job = Job(plan.experiment_id, number, mode, seed, "", base,
              dt.datetime.now().replace(microsecond=0).isoformat())
    task = job.file(".task.json")
    write_json(task, {"version": RECORD_VERSION, "repo_root": str(repo_root),
                      "command": command, "timeout": timeout, "plan": plan_to_json(plan),
                      "stamp_dir": str(stamp_dir), "number": number, "mode": mode,
                      "seed": seed, "result": str(job.file(".result.json"))})
    script = job.file(".sbatch")
    command = ["sbatch", "--parsable", *_placement(job, repo_root), *extra_args, str(script)]
    script.write_text(_script(task, options, command), encoding="utf-8")
    done = _client(*command)
    job_id = done.stdout.strip().split(";")[0]
    if done.returncode != 0 or not job_id.isdigit():
        raise AisdpLogError(f"sbatch refused {script.name}: {_last_line(done.stderr)}")
    job.job_id = job_id
    return job


def states(job_ids: list[str]) -> dict[str, str]:
    """Each job's state: squeue while the controller remembers it, then sacct (where
    accounting is on), else GONE."""
    found: dict[str, str] = {}
    if not job_ids:
        return found
    listed = _client("squeue", "--noheader", "--states=all", f"--jobs={','.join(job_ids)}",
                     "--format=%i|%T")
    for line in listed.stdout.splitlines():
        job_id, _, state = line.strip().partition("|")
        if job_id in job_ids:
            found[job_id] = state.strip()
    missing = [j for j in job_ids if j not in found]
    if missing:
        accounted = _client("sacct", "--noheader", "--parsable2", "--allocations",
                            f"--jobs={','.join(missing)}", "--format=JobID,State")
        if accounted.returncode == 0:
            for line in accounted.stdout.splitlines():
                job_id, _, state = line.strip().partition("|")
                if job_id in missing and state:
                    found[job_id] = state.split()[0]  # "CANCELLED by 0" -> CANCELLED
    return {j: found.get(j, GONE) for j in job_ids}


def finished(state: str) -> bool:
    return state in TERMINAL or state == GONE


def cancel(job_ids: list[str]) -> None:
    if job_ids:
        _client("scancel", *job_ids)


def wait_gone(job_ids: list[str], limit_s: float = 120) -> None:
    """Wait until no job of `job_ids` is pending or running (after `cancel`), up to a
    limit: a cancelled job removes its worktree as it stops."""
    deadline = time.monotonic() + limit_s
    while job_ids and time.monotonic() < deadline:
        if all(finished(s) for s in states(job_ids).values()):
            return
        time.sleep(0.3)


def read_result(job: Job, state: str, stamp_dir: Path) -> RunResult:
    """The run's result as the job wrote it; for a job that wrote none (timed out,
    cancelled, killed, its node unable to see the folder) a failed result naming Slurm's
    state, with the tail of the run's and the job's stderr."""
    folder = stamp_dir / str(job.number)
    record = read_json(job.file(".result.json"))
    if record.get("version") == RECORD_VERSION and isinstance(record.get("result"), dict):
        result = result_from_json(record["result"])
        result.executor, result.job_id = "slurm", job.job_id
        if not result.ok:
            result.status += f" (Slurm job {job.job_id} {state})"
        return result
    result = RunResult(job.experiment_id, job.number, job.mode, job.seed, folder,
                       started=dt.datetime.fromisoformat(job.submitted),
                       executor="slurm", job_id=job.job_id)
    shown = "no longer known to Slurm" if state == GONE else state
    result.status = f"failed: Slurm job {job.job_id} {shown}"
    err = job.file(".err")
    if not err.exists() and state != "CANCELLED":
        result.status += (f"; it wrote no output: can its node see {job.base.parent}? "
                          "(the log's folder must be on a file system the nodes share)")
    data = b""
    for path in (folder / "stderr.log", stamp_dir / f".{job.number}.stderr.log", err):
        try:
            data += path.read_bytes()[-32 * 1024:] + b"\n"
        except OSError:
            continue
    result.error = "\n".join(stderr_tail(data)) or None
    return result


def remove_files(job: Job) -> None:
    for suffix in (".task.json", ".sbatch", ".out", ".err", ".result.json"):
        try:
            os.unlink(job.file(suffix))
        except OSError:
            pass
