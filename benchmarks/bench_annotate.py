"""Timings of `validate --annotate`'s write: notes, highlight and Findings sheet.

    python benchmarks/bench_annotate.py [--runs 3] [--rows 10,10000] [--quick]

Runs with the runtime dependencies alone. `--quick`: one run of 10 and 300 rows (CI runs it so
the benchmark cannot rot).

Writes bench_validate's log (40 mixed columns, a few warnings per row), validates it offline
once, then prints medians of `--runs` runs of `annotate` in-process (each on a fresh copy of
the log: every note is new) and of a second `annotate` over an annotated copy (every note is
replaced), with the number of findings written.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_validate import write_log


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rows", default="10,10000")
    parser.add_argument("--quick", action="store_true", help="one run of 10 and 300 rows")
    args = parser.parse_args()
    if args.quick:
        args.runs, args.rows = 1, "10,300"
    from aisdp_log.lint.annotate import annotate
    from aisdp_log.lint.runner import validate

    with tempfile.TemporaryDirectory() as folder:
        for rows in (int(r) for r in args.rows.split(",")):
            source = write_log(Path(folder) / f"log-{rows}.xlsx", rows)
            report = validate(source, offline=True)
            annotated = Path(folder) / f"annotated-{rows}.xlsx"
            shutil.copy(source, annotated)
            annotate(annotated, report)
            first, again = [], []
            for _ in range(args.runs):
                for origin, times in ((source, first), (annotated, again)):
                    work = Path(folder) / "work.xlsx"
                    shutil.copy(origin, work)
                    started = time.perf_counter()
                    annotate(work, report)
                    times.append((time.perf_counter() - started) * 1000)
            print(f"{rows:>6} rows, {len(report.findings):>6} findings: first annotate "
                  f"{statistics.median(first):8.0f} ms, again {statistics.median(again):8.0f} ms")


if __name__ == "__main__":
    main()
