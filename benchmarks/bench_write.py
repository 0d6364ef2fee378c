"""Timings of one write: `aisdp-log add`, and the writer alone, against openpyxl load + save.

    python benchmarks/bench_write.py [--runs 5] [--rows 10,10000] [--quick]

Writes logs of 10 and 10,000 rows with 40 mixed columns (bench_validate's log) into a fresh
git repository with one artefact folder, then prints medians of `--runs` runs (each on a fresh
copy of the log) of:
- `add (process)`: the whole `python -m aisdp_log add log.xlsx EXP-NEW` process;
- `writer`: in-process `open_workbook_for_update` + `append_row` (40 cells) + atomic save;
- `openpyxl`: in-process `load_workbook` + `ws.append` (40 cells) + `save`, what a writer
  built on openpyxl costs at least (the 0.1 writer did this and more),
with the ratio writer / openpyxl. Run it with PYTHONPATH pointing at another checkout to time
that checkout's writer. Runs with the runtime dependencies alone; `--quick`: one run of 10
and 300 rows (CI runs it so the benchmark cannot rot).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_validate import headers, write_log


def new_row() -> dict[str, object]:
    values: dict[str, object] = {h: f"value of {h}" for h in headers()}
    values.update({"Experiment ID": "EXP-NEW", "Random seed": 7, "Training duration": 1.5})
    values.update({h: 0.9 for h in headers() if h.startswith("metrics.")})
    return values


def project(folder: Path) -> None:
    subprocess.run(["git", "init", "-q", str(folder)], check=True)
    artefacts = folder / "artefacts" / "EXP-NEW"
    artefacts.mkdir(parents=True)
    (artefacts / "model.bin").write_bytes(b"weights" * 1000)
    (artefacts / "run.json").write_text(json.dumps({
        "experiment_id": "EXP-NEW", "seed": 7, "commit": "9c1e4b7d" * 5, "dirty": False,
        "data_version": "3f2a9c1e5d", "params": {"learning_rate": 0.01},
        "started": "2026-07-20T23:30:00+02:00", "duration_s": 90.0, "status": "completed"}))
    (artefacts / "metrics.json").write_text(json.dumps({"accuracy": 0.91}))


def median_ms(action, source: Path, work: Path, runs: int) -> float:
    times = []
    for _ in range(runs + 1):  # the first is a warm-up
        shutil.copy(source, work)
        started = time.perf_counter()
        action(work)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times[1:])


def add_process(log: Path) -> None:
    # cwd: `python -m` puts the current folder first on sys.path, before PYTHONPATH.
    result = subprocess.run([sys.executable, "-m", "aisdp_log", "add", str(log), "EXP-NEW"],
                            capture_output=True, text=True, check=False, cwd=log.parent)
    if result.returncode != 0:
        raise SystemExit(f"add failed: {result.stderr.strip()[:300]}")


def writer(log: Path) -> None:
    from aisdp_log.workbook.writer import append_row, open_workbook_for_update

    with open_workbook_for_update(log) as wb:
        append_row(wb["Experiments"], new_row())


def openpyxl_baseline(log: Path) -> None:
    import openpyxl

    wb = openpyxl.load_workbook(log)
    wb["Experiments"].append(list(new_row().values()))
    wb.save(log)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--rows", default="10,10000")
    parser.add_argument("--quick", action="store_true", help="one run of 10 and 300 rows")
    args = parser.parse_args()
    if args.quick:
        args.runs, args.rows = 1, "10,300"
    with tempfile.TemporaryDirectory() as temp:
        root = Path(temp)
        print(f"{'rows':>6} {'add (process)':>14} {'writer':>10} {'openpyxl':>10} "
              f"{'writer/openpyxl':>16}")
        for rows in (int(r) for r in args.rows.split(",")):
            folder = root / f"rows{rows}"
            project(folder)
            source = write_log(root / f"source{rows}.xlsx", rows)
            work = folder / "log.xlsx"
            add_ms = median_ms(add_process, source, work, args.runs)
            writer_ms = median_ms(writer, source, work, args.runs)
            baseline_ms = median_ms(openpyxl_baseline, source, work, args.runs)
            print(f"{rows:>6} {add_ms:>11.0f} ms {writer_ms:>7.0f} ms {baseline_ms:>7.0f} ms "
                  f"{writer_ms / baseline_ms:>16.3f}")


if __name__ == "__main__":
    main()
