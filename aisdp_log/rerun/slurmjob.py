"""Inside a Slurm job: run one rerun task (`python -m aisdp_log.rerun.slurmjob TASK.json`) as a
local run would (`processes.Runner`: fresh worktree, data from DVC, `AISDP_*` variables,
timeout, hash) and write its result beside the task, for the submitting `rerun` to collect.

Exit 0 when the run succeeded, 1 when it failed (Slurm then shows FAILED), 2 for a task it
cannot read. SIGTERM (scancel, the time limit) stops the command, removes the worktree and
writes no result: the collector reports Slurm's state and the stderr tail instead.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

from aisdp_log.rerun.processes import Runner
from aisdp_log.rerun.records import RECORD_VERSION, plan_from_json, result_to_json, write_json


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    try:
        task = json.loads(Path(args[0]).read_text(encoding="utf-8"))
        if task.get("version") != RECORD_VERSION:
            raise ValueError(f"task version {task.get('version')!r}, not {RECORD_VERSION}")
        plan = plan_from_json(task["plan"])
    except (IndexError, OSError, ValueError, KeyError, TypeError) as exc:
        print(f"aisdp-log slurm job: cannot read its task {args[:1]}: {exc} (is the log's "
              "folder on a file system this node shares?)", file=sys.stderr)
        sys.exit(2)
    runner = Runner(Path(task["repo_root"]), tuple(task["command"]), task["timeout"], None)
    runner.job = os.environ.get("SLURM_JOB_ID") or "unknown"

    def stop(signum, frame):
        if not runner.cancelled.is_set():
            runner.stop_all()
            raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        result = runner.run(plan, Path(task["stamp_dir"]), task["number"], task["mode"],
                            task["seed"])
    except KeyboardInterrupt:
        print(f"aisdp-log slurm job: stopped ({plan.experiment_id} run {task['number']})",
              file=sys.stderr)
        sys.exit(143)
    result.executor = "slurm"
    result.job_id = os.environ.get("SLURM_JOB_ID")
    result.devices = os.environ.get("CUDA_VISIBLE_DEVICES")
    write_json(Path(task["result"]), {"version": RECORD_VERSION,
                                      "result": result_to_json(result)})
    sys.exit(0 if result.ok else 1)


if __name__ == "__main__":
    main()
