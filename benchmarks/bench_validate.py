"""Whole-process timings of `aisdp-log validate --offline` and `aisdp-log --help`.

    python benchmarks/bench_validate.py [--runs 5] [--rows 10,1000,10000] [--check] [--quick]

Writes logs of 10, 1,000 and 10,000 rows with 40 mixed columns (text, dates, numbers, hashes,
params, metrics, extra columns) to a temporary folder and prints the median of `--runs` runs
of each command, with ratios against a bare `python -c pass` and against reading the same
file with openpyxl (read-only, every row). Each validation does its whole work (no stored
report to replay, aisdp_log/lint/results.py); the `replayed` line is the same validation run
again with nothing changed. Goals: 10 rows within 150 ms, `--help` within
100 ms, 10,000 rows within 1 s; `--check` exits 1 when one is missed. Runs with the runtime
dependencies alone. `--quick`: one run of 10 and 300 rows, no goal judged (CI runs it so the
benchmark cannot rot).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

GOALS_MS = {"validate 10 rows": 150, "--help": 100, "validate 10000 rows": 1000}

PARAMS = ["learning_rate", "epochs", "batch_size", "optimizer", "dropout", "weight_decay",
          "warmup", "momentum", "scheduler", "layers"]
METRICS = ["accuracy", "f1", "precision", "recall", "auc", "loss", "ece", "latency_ms"]
EXTRA = ["GPU", "Owner", "Ticket", "Dataset note", "Cluster", "Wall clock", "Cost", "Link"]


def headers() -> list[str]:
    standard = ["Experiment ID", "Date", "Hypothesis", "Other params", "Data version",
                "Code commit", "Random seed", "Training duration", "Artefact hash",
                "Environment", "Outcome", "Notes", "Rerun", "Reproducibility"]
    columns = (standard[:3] + [f"params.{p}" for p in PARAMS] + standard[3:8]
               + [f"metrics.{m}" for m in METRICS] + standard[8:] + EXTRA)
    assert len(columns) == 40, len(columns)
    return columns


def write_log(path: Path, rows: int) -> Path:
    """A plausible log: every column filled with the type it expects, a few warnings."""
    import xlsxwriter

    columns = headers()
    book = xlsxwriter.Workbook(str(path), {"constant_memory": True})
    date_format = book.add_format({"num_format": "yyyy-mm-dd"})
    sheet = book.add_worksheet("Experiments")
    sheet.write_row(0, 0, columns)
    start = dt.date(2026, 1, 1)
    for number in range(1, rows + 1):
        outcome = ("baseline", "rejected", "selected", None)[number % 4]
        values = {
            "Experiment ID": f"EXP-{number:05}",
            "Date": start + dt.timedelta(days=number % 300),
            "Hypothesis": f"run {number}: a wider network generalises better",
            "Other params": f"seed_offset={number}; clip=1.0",
            "Data version": f"{number:08x}",
            "Code commit": f"{number * 7919:07x}"[-7:].rjust(7, "0"),
            "Random seed": number,
            "Training duration": 10 + number % 50 / 3,
            "Artefact hash": f"sha256:{number:064x}",
            "Environment": "uv.lock sha256:" + "ab" * 32 + "; torch 2.13.0+cpu",
            "Outcome": outcome,
            "Notes": "compared with the baseline" if outcome else None,
            "Rerun": "yes" if number % 10 == 0 else None,
            "Reproducibility": "statistical" if outcome == "selected" else None,
            "GPU": "none", "Owner": "ml-team", "Ticket": f"ML-{number}",
            "Dataset note": "holdout 20%", "Cluster": "cpu-2", "Wall clock": number * 1.5,
            "Cost": 0.12, "Link": f"https://example.org/runs/{number}",
        }
        values.update({f"params.{p}": (number % 13) / 100 + i for i, p in enumerate(PARAMS)})
        values["params.optimizer"] = ("sgd", "adam")[number % 2]
        values.update({f"metrics.{m}": 0.86 + (number % 10) / 100 for m in METRICS})
        for column, header in enumerate(columns):
            value = values.get(header)
            if value is None:
                continue
            if isinstance(value, dt.date):
                sheet.write_datetime(number, column, value, date_format)
            elif isinstance(value, str):
                sheet.write_string(number, column, value)
            else:
                sheet.write_number(number, column, value)
    metrics = book.add_worksheet("Metrics")
    metrics.write_row(0, 0, ["Metric", "Goal", "Threshold", "Description"])
    for index, name in enumerate(METRICS, start=1):
        metrics.write_row(index, 0, [name, "min" if name in ("loss", "ece", "latency_ms")
                                     else "max", None, name])
    book.close()
    return path


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(command: list[str], runs: int, cwd: Path, replay: bool = False) -> float:
    """Median wall time in ms of `runs` runs of `command` (one warm-up run first). The median
    CPU time (user + system) goes to CPU_MS: on a shared machine it varies less than wall time.
    Unless `replay`, no stored validation is left to replay (aisdp_log/lint/results.py)."""
    env = dict(os.environ, NO_COLOR="1")
    store = cwd / ".aisdp-log" / "results"
    subprocess.run(command, cwd=cwd, env=env, capture_output=True)
    times, cpu = [], []
    for _ in range(runs):
        if not replay:
            shutil.rmtree(store, ignore_errors=True)
        started, cpu_before = time.perf_counter(), _children_cpu()
        result = subprocess.run(command, cwd=cwd, env=env, capture_output=True)
        times.append((time.perf_counter() - started) * 1000)
        cpu.append((_children_cpu() - cpu_before) * 1000)
        if result.returncode not in (0, 1):
            raise SystemExit(f"{' '.join(command)} failed: {result.stderr.decode()[:300]}")
    CPU_MS[" ".join(command)] = statistics.median(cpu)
    return statistics.median(times)


CPU_MS: dict[str, float] = {}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--rows", default="10,1000,10000")
    parser.add_argument("--check", action="store_true", help="exit 1 if a goal is missed")
    parser.add_argument("--quick", action="store_true", help="one run of 10 and 300 rows")
    args = parser.parse_args(argv)
    if args.quick:
        args.runs, args.rows, args.check = 1, "10,300", False
    cli = shutil.which("aisdp-log")
    aisdp = [cli] if cli else [sys.executable, "-m", "aisdp_log"]
    python = sys.executable
    read_openpyxl = ("import sys, openpyxl\n"
                     "book = openpyxl.load_workbook(sys.argv[1], read_only=True)\n"
                     "rows = list(book['Experiments'].iter_rows(values_only=True))\n")
    results: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as folder:
        cwd = Path(folder)
        bare = timed([python, "-c", "pass"], args.runs, cwd)
        cpu = lambda command: CPU_MS[" ".join(command)]  # noqa: E731
        print(f"{'command':<28}{'median ms':>10}{'x python':>10}{'x openpyxl':>12}"
              f"{'cpu ms':>9}")
        print(f"{'python -c pass':<28}{bare:>10.0f}{1:>10.1f}{'':>12}"
              f"{cpu([python, '-c', 'pass']):>9.0f}")
        help_ms = timed(aisdp + ["--help"], args.runs, cwd)
        results["--help"] = help_ms
        print(f"{'aisdp-log --help':<28}{help_ms:>10.0f}{help_ms / bare:>10.1f}{'':>12}"
              f"{cpu(aisdp + ['--help']):>9.0f}")
        for rows in (int(n) for n in args.rows.split(",")):
            path = write_log(cwd / f"log-{rows}.xlsx", rows)
            ours = timed(aisdp + ["validate", str(path), "--offline"], args.runs, cwd)
            theirs = timed([python, "-c", read_openpyxl, str(path)], args.runs, cwd)
            results[f"validate {rows} rows"] = ours
            print(f"{f'validate {rows} rows':<28}{ours:>10.0f}{ours / bare:>10.1f}"
                  f"{ours / theirs:>12.2f}"
                  f"{cpu(aisdp + ['validate', str(path), '--offline']):>9.0f}")
            print(f"{f'  openpyxl read {rows} rows':<28}{theirs:>10.0f}{theirs / bare:>10.1f}"
                  f"{'':>12}{cpu([python, '-c', read_openpyxl, str(path)]):>9.0f}")
            replayed = timed(aisdp + ["validate", str(path), "--offline"], args.runs, cwd,
                             replay=True)
            print(f"{'  replayed (unchanged)':<28}{replayed:>10.0f}{replayed / bare:>10.1f}"
                  f"{replayed / theirs:>12.2f}"
                  f"{cpu(aisdp + ['validate', str(path), '--offline']):>9.0f}")
    missed = [f"{name}: {results[name]:.0f} ms > {goal} ms" for name, goal in GOALS_MS.items()
              if name in results and results[name] > goal]
    for line in missed:
        print(f"goal missed: {line}")
    if not missed:
        print("all goals met")
    return 1 if (missed and args.check) else 0


if __name__ == "__main__":
    sys.exit(main())
