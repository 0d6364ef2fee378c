"""Benchmark of signing, verifying and bundling on the demo-like test project (6 rows, 4 in
the signed quarter), whole `aisdp-log` processes, medians of several runs:

- `review` without and with `--sign ... --key` (the cost of a signature),
- `verify LOG` with one, and with N, signed sign-offs,
- `bundle` and `verify BUNDLE.zip`,
- `validate --offline` with and without an allowed signers file (the cost `validate` pays).

    python benchmarks/bench_signatures.py            # --runs N, --quick

Needs the `test` extra (the project is tests/test_review.py's, which imports pytest) and
OpenSSH's ssh-keygen. `--quick`: one run of each (CI runs it so the benchmark cannot rot).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))


def timed(args: list[str], runs: int, cwd: Path) -> float:
    """Median wall time of `aisdp-log ARGS` in ms. A run that could not do its work (exit 2,
    or a crash) stops the benchmark: timing a refusal would measure nothing."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "aisdp_log", *args], cwd=cwd,
                              capture_output=True, text=True)
        times.append((time.perf_counter() - start) * 1000)
        if done.returncode not in (0, 1):
            sys.exit(f"bench_signatures: `aisdp-log {' '.join(args[:1])}` exited "
                     f"{done.returncode}: {done.stderr.strip()[-400:]}")
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="one run of each")
    options = parser.parse_args()
    if options.quick:
        options.runs = 1
    from signoffs import allow, make_key
    from test_review import make_project

    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        project = make_project(tmp, tamper=None)
        key = make_key(tmp, "ada")
        log, out = str(project.log), str(tmp / "out")
        base = ["review", log, "--period", "2026-Q3", "-o", out]
        allowed = allow(project.repo, "ada@example.com", key)
        results = {
            "review (unsigned)": timed(base, options.runs, tmp),
        }
        # each signed run appends one sign-off: the log grows by `runs` sign-offs here
        signer = "Ada, ML lead <ada@example.com>"  # the principal the allowed signers list
        results["review --sign --key"] = timed(base + ["--sign", signer, "--key", str(key)],
                                               options.runs, tmp)
        results[f"verify LOG ({options.runs} sign-offs)"] = timed(["verify", log],
                                                                  options.runs, tmp)
        results[f"validate --offline, allowed signers ({options.runs} sign-offs)"] = \
            timed(["validate", log, "--offline"], options.runs, tmp)
        hidden = allowed.rename(allowed.with_name("hidden"))
        results[f"validate --offline, no allowed signers ({options.runs} sign-offs)"] = \
            timed(["validate", log, "--offline"], options.runs, tmp)
        hidden.rename(allowed)
        zip_path = str(tmp / "evidence.zip")
        results["bundle"] = timed(["bundle", log, "-o", zip_path, "--reviews", out],
                                  options.runs, tmp)
        results["verify BUNDLE.zip"] = timed(["verify", zip_path], options.runs, tmp)
        size = os.path.getsize(zip_path)
    print(f"aisdp-log signatures, medians of {options.runs} whole-process runs")
    for name, value in results.items():
        print(f"  {name:<58} {value:8.0f} ms")
    print(f"  bundle size {size} bytes")


if __name__ == "__main__":
    main()
