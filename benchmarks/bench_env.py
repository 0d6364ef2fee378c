"""How long does `rerun --env lock` take to get the demo's environment, against what a person
would do by hand (`python -m venv` + `pip install -r requirements.txt`)?

Uses the demo's requirements (aisdp_log.demo.project's `requirements.txt`: torch, numpy,
safetensors at this machine's versions) and pip's configured indexes (on these machines torch
comes from a local wheel folder). Measures, each in a fresh temp folder:

- lock, cold: `lockenv.ensure_environment` with an empty aisdp-log cache and an empty uv
  cache (what the first `--env lock` on a new machine pays);
- lock, warm uv cache: a new environment folder, uv's cache kept (another lock file sharing
  the packages, or a cache wiped of environments only);
- lock, reuse: the environment already built (every later rerun);
- pre-flight: the one-process probe of the interpreter `--env current` runs before training;
- venv + pip: `python -m venv` + `pip install -r`, pip's own cache as the machine has it.

    python benchmarks/bench_env.py [--repeat 1] [--skip-pip] [--quick]

Needs the `rerun` extra (uv) and the demo's packages on pip's configured indexes (on these
machines torch comes from a local wheel folder). `--quick` locks an environment of no packages
and skips pip: the same code paths in seconds (CI runs it so the benchmark cannot rot).
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

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def seconds(function) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--skip-pip", action="store_true")
    parser.add_argument("--quick", action="store_true",
                        help="an environment of no packages, no pip: that it runs")
    options = parser.parse_args()
    if options.quick:
        options.repeat, options.skip_pip = 1, True

    from aisdp_log.demo.project import _requirements
    from aisdp_log.rerun.environment import RunEnvironment
    from aisdp_log.rerun.lockenv import (
        ensure_environment,
        env_folder,
        environment_variables,
        python_in,
    )
    from aisdp_log.rerun.preflight import check_interpreter

    requirements = "# --quick: no packages\n" if options.quick else _requirements()
    blob = requirements.encode()
    lock_hex = __import__("hashlib").sha256(blob).hexdigest()
    print("requirements.txt:", "; ".join(line for line in requirements.splitlines()
                                         if not line.startswith("#")))
    results: dict[str, list[float]] = {}
    base = sys.executable
    for _ in range(options.repeat):
        with tempfile.TemporaryDirectory(prefix="bench-env-") as work:
            work = Path(work)
            os.environ["XDG_CACHE_HOME"] = str(work / "cache")  # aisdp-log's and uv's caches
            folder = env_folder(lock_hex, base)

            def build():
                ensure_environment(folder, "requirements.txt", blob, base, work, "HEAD")

            results.setdefault("lock, cold (empty uv cache)", []).append(seconds(build))
            results.setdefault("lock, reuse", []).append(seconds(build))
            shutil.rmtree(folder)
            results.setdefault("lock, warm uv cache", []).append(seconds(build))
            recorded = {"python": {"version": None}} if options.quick else \
                {"python": {"version": None}, "torch": {"version": "x"}, "numpy": "x"}
            results.setdefault("pre-flight probe", []).append(seconds(
                lambda: check_interpreter(
                    "EXP", [str(python_in(folder)), "train.py"],
                    RunEnvironment([], "", environment_variables(folder))
                    .apply(os.environ), work, recorded, "bench", True, "")))
            if not options.skip_pip:
                listed = work / "requirements.txt"
                listed.write_text(requirements)

                def by_hand():
                    subprocess.run([base, "-m", "venv", str(work / "venv")], check=True)
                    subprocess.run([str(work / "venv" / "bin" / "python"), "-m", "pip",
                                    "install", "-q", "-r", str(listed)], check=True)

                os.environ.pop("XDG_CACHE_HOME")  # pip's cache as the machine has it
                results.setdefault("python -m venv + pip install -r", []).append(
                    seconds(by_hand))
    width = max(map(len, results))
    for name, times in results.items():
        print(f"{name:<{width}}  median {statistics.median(times):7.2f} s  "
              f"({', '.join(f'{t:.2f}' for t in times)})")


if __name__ == "__main__":
    main()
