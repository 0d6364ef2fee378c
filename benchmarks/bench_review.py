"""Whole-process timings of `aisdp-log review` against `aisdp-log validate` of the same log.

    python benchmarks/bench_review.py [--runs 5] [--project DIR] [--check] [--quick]

Needs the `torch` extra (it builds the demo project with `aisdp-log demo`, which trains four
tiny models: about 15 s), unless `--project` names a demo project built before. Prints the
median wall time of `validate` and of `review` (each review draws its figures afresh: there
is no figure cache, so every review is a first review) and the ratio. Neither replays a stored
validation (`.aisdp-log/results/` is removed before each run): both do their whole work.
Goal: a review within 5 x a validate of the same log; `--check` exits 1 when it is missed.
`--quick` runs each command once (CI runs it so the benchmark cannot rot).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

GOAL_RATIO = 5.0


def timed(command: list[str], cwd: Path) -> float:
    """Wall time in ms of one run of `command`, with no stored validation to replay (both
    commands do their whole work: see aisdp_log/lint/results.py)."""
    shutil.rmtree(cwd / ".aisdp-log" / "results", ignore_errors=True)
    env = dict(os.environ, NO_COLOR="1")
    started = time.perf_counter()
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True)
    elapsed = (time.perf_counter() - started) * 1000
    if result.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(command)} failed: {result.stderr.decode()[:300]}")
    return elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--project", type=Path, help="a demo project built before")
    parser.add_argument("--check", action="store_true", help="exit 1 if the goal is missed")
    parser.add_argument("--quick", action="store_true", help="one run of each command")
    args = parser.parse_args(argv)
    runs = 1 if args.quick else args.runs
    cli = shutil.which("aisdp-log")
    aisdp = [cli] if cli else [sys.executable, "-m", "aisdp_log"]
    with tempfile.TemporaryDirectory() as folder:
        project = args.project
        if project is None:
            project = Path(folder) / "demo"
            print("building the demo project (aisdp-log demo) ...", flush=True)
            built = subprocess.run(aisdp + ["demo", str(project)], capture_output=True)
            if built.returncode not in (0, 1):
                raise SystemExit(f"aisdp-log demo failed: {built.stderr.decode()[-300:]}")
        log = str(project / "experiment-log.xlsx")
        output = str(Path(folder) / "reviews")
        commands = (aisdp + ["validate", log], aisdp + ["review", log, "-o", output])
        for command in commands:  # one untimed warm-up run each (page cache, .pyc files)
            timed(command, project)
        # the two commands alternate, so a change in the machine's load reaches both
        validate_times, review_times = [], []
        for _ in range(runs):
            validate_times.append(timed(commands[0], project))
            review_times.append(timed(commands[1], project))
        validate, review = statistics.median(validate_times), statistics.median(review_times)
    print(f"{'command (demo, 4 rows)':<34}{'median ms':>10}{'x validate':>12}")
    print(f"{'validate':<34}{validate:>10.0f}{1:>12.2f}")
    print(f"{'review (figures drawn)':<34}{review:>10.0f}{review / validate:>12.2f}")
    ratio = review / validate
    if ratio > GOAL_RATIO:
        print(f"goal missed: review {ratio:.2f} x validate > {GOAL_RATIO:g} x")
        return 1 if args.check else 0
    print(f"goal met: review {ratio:.2f} x validate <= {GOAL_RATIO:g} x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
