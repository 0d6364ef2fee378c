"""How much time does `aisdp-log rerun` add beyond the training command itself?

Builds the test suite's project (real git + DVC, a tiny torch script, tests/test_rerun.py's
`build_project`) in a temp folder and measures, in-process:

- end to end: `rerun()` wall time minus the time the training command ran (`command_s`, from
  process start to exit), divided by the number of runs: the overhead a user waits for
  (reading the log, planning, worktree, data, hashing, write-back), for `--mode bitwise` (one
  run) and `--mode statistical --runs N` (N runs, jobs 1);
- its parts, each repeated: worktree add + remove, the data copy from the DVC cache, the same
  through `dvc checkout` (the fallback path), and the write-back through the safe writer.
- the scheduling overhead on Slurm next to local (when a cluster is up: tools/slurm_up.sh):
  one bitwise run's wall time minus the command's time (submission, queue, the job's start-up,
  polling, collection), and the wall time per run of an N-run statistical rerun (local with
  --jobs 1 and 2, Slurm with every run a job).

    python benchmarks/bench_rerun.py [--runs 5] [--repeat 3] [--quick] [--slurm-only]

Needs the `torch` and `test` extras (the project is tests/test_rerun.py's, which imports
pytest). `--quick`: the bitwise rerun and each part once (CI runs it so it cannot rot);
`--slurm-only`: only the Slurm-versus-local rows.

Goal: under 1 s per run locally. The training command's own time (mostly `import torch`) is
reported but not counted.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))


def timed(function, repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="runs of the statistical rerun")
    parser.add_argument("--repeat", type=int, default=3, help="repetitions of each measure")
    parser.add_argument("--slurm-only", action="store_true",
                        help="measure only the Slurm-versus-local scheduling overhead")
    parser.add_argument("--quick", action="store_true", help="bitwise only, each part once")
    args = parser.parse_args()
    if args.quick:
        args.repeat = 1

    import test_rerun as project_builder

    from aisdp_log.repo.worktree import checkout_data, copy_from_cache, isolated_worktree
    from aisdp_log.rerun.runner import rerun

    with tempfile.TemporaryDirectory(prefix="bench-rerun-") as base:
        print("building the project (git, DVC, two trained runs) ...", file=sys.stderr)
        project = project_builder.build_project(Path(base))
        root = project.root
        log = project_builder.make_log(root, project)
        plan_outs = None

        def end_to_end(mode: str, runs: int) -> tuple[float, float, int]:
            start = time.perf_counter()
            report = rerun(log, ids=["EXP-001"], mode=mode, runs=runs)
            wall = time.perf_counter() - start
            results = [r for o in report.outcomes for r in o.runs]
            assert all(r.ok for r in results), report.lines
            nonlocal plan_outs
            plan_outs = report.outcomes[0].plan.data
            command = sum(r.command_s for r in results)
            return wall, command, len(results)

        if args.slurm_only:
            print_rows(slurm_rows(rerun, log, args))
            return
        # One untimed rerun warms the page cache and imports (scipy, openpyxl) as a second
        # invocation of the CLI would not have them: the timed runs below are in-process,
        # so add the import cost measured separately.
        if not args.quick:
            end_to_end("bitwise", 1)
        rows = []
        modes = (("bitwise", 1),) if args.quick else (("bitwise", 1), ("statistical", args.runs))
        for mode, runs in modes:
            per_run = []
            for _ in range(args.repeat):
                wall, command, count = end_to_end(mode, runs)
                per_run.append((wall - command) / count)
            rows.append((f"end to end, --mode {mode} ({runs} run{'s' if runs > 1 else ''})",
                         per_run))

        sha = project.deterministic

        def worktree_only():
            with isolated_worktree(root, sha):
                pass

        def worktree_and_copy():
            with isolated_worktree(root, sha) as tree:
                assert copy_from_cache(tree, plan_outs, root / ".dvc" / "cache")

        def worktree_and_dvc():
            with isolated_worktree(root, sha) as tree:
                assert checkout_data(tree, root, ["data/train.csv.dvc"]) == "dvc"

        rows.append(("worktree add + remove", timed(worktree_only, args.repeat * 3)))
        rows.append(("worktree + data copied from the cache",
                     timed(worktree_and_copy, args.repeat * 3)))
        rows.append(("worktree + `dvc checkout` (fallback path)",
                     timed(worktree_and_dvc, args.repeat)))

        import subprocess

        # The whole CLI process with a command that does nothing (`true`): Python start-up,
        # imports, reading, planning, worktree, data, hashing and the write-back; the verdict
        # is `failed` (no model), which costs the same bookkeeping.
        config = (root / "aisdp.toml").read_text()
        (root / "aisdp.toml").write_text(config.replace(f'command = ["{sys.executable}", '
                                                        '"train.py"]', 'command = ["true"]'))
        assert 'command = ["true"]' in (root / "aisdp.toml").read_text()
        for runs in (1,) if args.quick else (1, 5):
            mode = ["--mode", "bitwise"] if runs == 1 else ["--mode", "statistical",
                                                            "--runs", str(runs)]
            walls = timed(lambda: subprocess.run(
                [sys.executable, "-m", "aisdp_log", "rerun", str(log), "--id", "EXP-001",
                 *mode], capture_output=True), args.repeat)
            rows.append((f"CLI process, no-op command, {runs} run{'s' if runs > 1 else ''}, "
                         "per run", [w / runs for w in walls]))
        (root / "aisdp.toml").write_text(config)

        imports = timed(lambda: subprocess.run(
            [sys.executable, "-c", "import openpyxl, scipy.stats"], check=True), args.repeat)
        bare = timed(lambda: subprocess.run([sys.executable, "-c", "pass"], check=True),
                     args.repeat)
        rows.append(("imports an invocation adds once (openpyxl, scipy.stats)",
                     [a - b for a, b in zip(imports, bare)]))

        rows += slurm_rows(rerun, log, args)
    print_rows(rows)


def print_rows(rows) -> None:
    print(f"{'measure':66} {'median s':>9} {'min s':>7}")
    for name, values in rows:
        print(f"{name:66} {statistics.median(values):9.3f} {min(values):7.3f}")


def slurm_rows(rerun, log, args) -> list:
    """Local and Slurm side by side: one run's overhead, and wall time per run of N runs."""
    import shutil
    import subprocess

    up = shutil.which("sinfo") and "idle" in subprocess.run(
        ["sinfo", "--noheader", "--format=%T"], capture_output=True, text=True).stdout
    if not up:
        print("no Slurm cluster is up (tools/slurm_up.sh): Slurm rows skipped", file=sys.stderr)
        return []
    rows = []
    for executor in ("local", "slurm"):
        overheads = []
        for _ in range(args.repeat):
            start = time.perf_counter()
            report = rerun(log, ids=["EXP-001"], mode="bitwise", executor=executor)
            wall = time.perf_counter() - start
            [result] = report.outcomes[0].runs
            assert result.ok, report.lines
            overheads.append(wall - result.command_s)
        rows.append((f"{executor}: one bitwise run, overhead beyond the command", overheads))
    for executor, jobs in () if args.quick else (("local", 1), ("local", 2), ("slurm", 1)):
        walls = []
        for _ in range(args.repeat):
            start = time.perf_counter()
            report = rerun(log, ids=["EXP-001"], mode="statistical", runs=args.runs,
                           executor=executor, jobs=jobs)
            walls.append((time.perf_counter() - start) / args.runs)
            assert report.exit_code == 0, report.lines
        what = f"--jobs {jobs}" if executor == "local" else "one job per run"
        rows.append((f"{executor} ({what}): {args.runs} statistical runs, wall per run", walls))
    return rows


if __name__ == "__main__":
    main()
