"""What does running a rerun inside its container image cost, next to the run itself?

Builds (once per machine) the small Debian Python image the tests use (tests/containers.py,
Podman), then measures, each as the median of --repeat rounds:

- start-up: `podman run --rm --network none IMAGE python -c pass` against `python -c pass` on
  the host: what every run in a container pays before training starts;
- a run: a pure-Python training script doing `--work` seconds of arithmetic, in the image and
  on the host (the same Python work; the difference is the engine's share);
- a rerun: `aisdp-log rerun --mode bitwise` of one row, `--env image` against `--env current`,
  end to end (plan, pre-flight or image probe, worktree, run, judge, write-back).

    python benchmarks/bench_image.py [--repeat 5] [--work 2.0] [--quick]

`--quick` (what CI runs) measures each once with 0.2 s of work. Needs Podman (and runc), DVC
(the `rerun` extra) and pytest (the `test` extra: the image is built by tests/containers.py).

Measured on the 2-core sandbox shared with other work (Podman 4.3.1 + runc, 2026-12-05,
--repeat 5 --work 2; host runs with Debian's python3.11, as the image, no torch):

| | seconds |
|---|---|
| container start-up (`python -c pass`) | 0.41 (host: 0.02) |
| a 2 s run, in the image / on the host | 3.34 / 2.27 |
| one bitwise rerun, `--env image` / `--env current` | 5.71 / 3.44 |

The start-up is 0.4 s, an eighth of a 2 s run; a run in this image pays about 0.7 s more,
mostly compiling sources that have no `.pyc` (the test image's stdlib is unpacked, not
installed, and the mounted aisdp_log is read-only). `--env image` starts two containers per
row (the probe and the run): about 2 s per rerun here, next to the minutes of a real training
run.
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

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

TRAIN_PY = '''\
import json, random
from aisdp_log.training import record_run

with record_run() as run:
    rng = random.Random(run.seed)
    total = 0.0
    for _ in range(int(run.params.get("steps", 1000))):
        total += sum(rng.random() for _ in range(1000))
    run.save_model(json.dumps([round(rng.random(), 6) for _ in range(4)]).encode(), "model.json")
    run.log_metrics(accuracy=0.9)
'''


def timed(command: list[str], **kwargs) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, **kwargs)
    return time.perf_counter() - start


def steps_for(seconds: float) -> int:
    """Steps of the training loop that take about `seconds` in this Python."""
    import random

    rng, start, steps = random.Random(0), time.perf_counter(), 0
    while time.perf_counter() - start < 0.3:
        sum(rng.random() for _ in range(1000))
        steps += 1
    return max(1, int(steps * seconds / (time.perf_counter() - start)))


def median(function, repeat: int) -> float:
    return statistics.median(function() for _ in range(repeat))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--work", type=float, default=2.0, help="seconds of training work")
    parser.add_argument("--quick", action="store_true",
                        help="each figure once, with 0.2 s of work (CI: the script still runs)")
    args = parser.parse_args()
    if args.quick:
        args.repeat, args.work = 1, 0.2

    from builders import commit, init_repo, run_cli
    from containers import build_image, podman

    import aisdp_log

    engine = podman()
    image = build_image()
    # The host's runs use a Python without torch where there is one (Debian's), as the image
    # has none: `record_run` imports torch to record its version, which would dwarf the rest.
    host_python = next((p for p in ("/usr/bin/python3", sys.executable) if Path(p).exists()
                        and subprocess.run([p, "-c", "import torch"], capture_output=True)
                        .returncode != 0), sys.executable)
    startup = median(lambda: timed([engine, "run", "--rm", "--network", "none", image,
                                    "python", "-c", "pass"]), args.repeat)
    host = median(lambda: timed([host_python, "-c", "pass"]), args.repeat)

    with tempfile.TemporaryDirectory(prefix="bench-image-") as scratch:
        root = init_repo(Path(scratch) / "proj")
        (root / "data.csv").write_text("x,y\n1,0\n")
        for dvc in (["init", "-q"], ["add", "-q", "data.csv"]):
            subprocess.run([sys.executable, "-m", "dvc", *dvc], cwd=root, check=True,
                           capture_output=True, env=dict(os.environ, DVC_NO_ANALYTICS="1"))
        commit(root, {"train.py": TRAIN_PY, ".gitignore": "/artefacts/\n", "aisdp.toml": (
            '[rerun]\ncommand = ["python3", "train.py"]\nengine = "podman"\n'
            '[template]\nparams = { steps = "int" }\n'
            'metrics.accuracy = { goal = "max", threshold = 0.5 }\n')})
        package = Path(aisdp_log.__file__).resolve().parent
        bin_dir = Path(scratch) / "bin"  # `python3` of the rerun's command: host_python
        bin_dir.mkdir()
        (bin_dir / "python3").symlink_to(host_python)
        os.environ["PATH"] = f"{bin_dir}{os.pathsep}{os.environ['PATH']}"
        os.environ["PYTHONPATH"] = str(ROOT)
        env = dict(os.environ, AISDP_PARAMS=f'{{"steps": {steps_for(args.work)}}}',
                   AISDP_SEED="1")

        def in_image(experiment_id: str) -> float:
            return timed([engine, "run", "--rm", "--network", "none", "-v", f"{root}:{root}",
                          "-w", str(root), "-v", f"{package}:/opt/t/aisdp_log:ro",
                          "-e", "PYTHONPATH=/opt/t", "-e", f"AISDP_IMAGE={image}",
                          "-e", f"AISDP_EXPERIMENT_ID={experiment_id}", "-e", "AISDP_SEED=1",
                          "-e", f"AISDP_PARAMS={env['AISDP_PARAMS']}", image,
                          "python3", "train.py"])

        def on_host(experiment_id: str) -> float:
            return timed([host_python, "train.py"], cwd=root,
                         env=dict(env, AISDP_EXPERIMENT_ID=experiment_id))

        runs_image = [in_image(f"EXP-{100 + i}") for i in range(args.repeat)]
        runs_host = [on_host(f"EXP-{200 + i}") for i in range(args.repeat)]
        log = root / "experiment-log.xlsx"
        run_cli("template", "-o", str(log), "--config", str(root / "aisdp.toml"))
        assert run_cli("add", str(log), "EXP-100", cwd=root).returncode == 0

        def rerun(mode: str) -> float:
            start = time.perf_counter()
            result = run_cli("rerun", str(log), "--id", "EXP-100", "--env", mode, "--mode",
                             "bitwise", cwd=root)
            assert result.returncode == 0, result.stdout + result.stderr
            return time.perf_counter() - start

        rerun_image = median(lambda: rerun("image"), args.repeat)
        rerun_current = median(lambda: rerun("current"), args.repeat)

    run_image, run_host = statistics.median(runs_image), statistics.median(runs_host)
    print(f"host Python: {host_python}; image: {image}")
    print(f"{'':34} {'seconds':>8}")
    print(f"{'container start-up (python -c pass)':34} {startup:8.2f}")
    print(f"{'host python -c pass':34} {host:8.2f}")
    print(f"{f'a {args.work:g} s run in the image':34} {run_image:8.2f}")
    print(f"{f'a {args.work:g} s run on the host':34} {run_host:8.2f}")
    print(f"{'rerun --env image (bitwise, 1 run)':34} {rerun_image:8.2f}")
    print(f"{'rerun --env current (bitwise, 1 run)':34} {rerun_current:8.2f}")
    print(f"start-up / run in the image: {startup / run_image:.2f}; "
          f"rerun image / current: {rerun_image / rerun_current:.2f}")


if __name__ == "__main__":
    main()
