"""One GPU per local run: with `[rerun] gpus = 1` and `--jobs N`, each concurrent run gets its own
device from the parent's `CUDA_VISIBLE_DEVICES` (a fake device list here: the pool is only
text handed to the runs), never two runs on one device, and the `Reruns` row names it."""

from __future__ import annotations

import json
import threading

import pytest
from builders import commit, run_cli, write_log
from test_rerun import copy, log_row, project, sheet, write_config  # noqa: F401

pytestmark = pytest.mark.slow

#: Records the device it was given and when it held it; sleeps so runs overlap.
DEVICE_PY = '''\
import json, os, time
from pathlib import Path
folder = Path(os.environ["AISDP_ARTEFACT_DIR"])
folder.mkdir(parents=True, exist_ok=True)
start = time.time()
time.sleep(1.5)
(folder / "metrics.json").write_text(json.dumps({"accuracy": 0.9}))
(folder.parent / f"device-{folder.name}.json").write_text(json.dumps(
    {"device": os.environ.get("CUDA_VISIBLE_DEVICES"), "start": start, "end": time.time()}))
'''


@pytest.fixture
def device_project(copy, project):  # noqa: F811
    root, _ = copy()
    sha = commit(root, {"train.py": DEVICE_PY}, message="a training that reports its device")
    log = root / "devices.xlsx"
    # the script reports a constant 0.9: a declared tolerance judges the recorded value
    # (without one, runs without spread are `too few runs`, issue 27)
    write_log(log, [log_row("EXP-001", dict(project.records["EXP-001"], commit=sha),
                            project.data_v1)],
              metrics=[{"Metric": "accuracy", "Goal": "max", "Threshold": 0.5,
                        "Tolerance": 0.5}])
    return root, log


def with_gpus(root, gpus: int) -> None:
    write_config(root)
    text = (root / "aisdp.toml").read_text()
    (root / "aisdp.toml").write_text(text.replace("runs = 3\n", f"runs = 3\ngpus = {gpus}\n"))


def test_each_concurrent_run_holds_its_own_device(device_project):
    root, log = device_project
    with_gpus(root, 1)
    result = run_cli("rerun", str(log), "--id", "EXP-001", "--mode", "statistical", "--runs",
                     "4", "--jobs", "3", cwd=root, env={"CUDA_VISIBLE_DEVICES": "3,GPU-5a"})
    # (the verdict is not the point here: every run ran, each on its device)
    assert result.returncode in (0, 1) and "Traceback" not in result.stderr, result.stderr
    assert [r["Status"] for r in sheet(log, "Reruns")] == ["ok"] * 4, result.stdout
    [stamp] = (root / "artefacts" / "EXP-001" / "reruns").iterdir()
    held = [json.loads(p.read_text()) for p in sorted(stamp.glob("device-*.json"))]
    assert len(held) == 4 and {h["device"] for h in held} == {"3", "GPU-5a"}
    for i, a in enumerate(held):          # never two runs on one device at once
        for b in held[i + 1:]:
            if a["device"] == b["device"]:
                assert a["end"] <= b["start"] or b["end"] <= a["start"], (a, b)
    assert max(sum(1 for h in held if h["start"] < t["end"] and t["start"] < h["end"])
               for t in held) == 2          # the two devices ran side by side
    runs = sheet(log, "Reruns")
    by_number = {int(r["Rerun ID"].rsplit("/", 1)[1]): r["Devices"] for r in runs}
    assert by_number == {int(p.stem.split("-")[1]): f"CUDA_VISIBLE_DEVICES={h['device']}"
                         for p, h in zip(sorted(stamp.glob("device-*.json")), held)}
    assert {r["Executor"] for r in runs} == {"local"}


def test_without_gpus_runs_see_the_parents_devices(device_project):
    root, log = device_project
    write_config(root)
    result = run_cli("rerun", str(log), "--id", "EXP-001", "--mode", "statistical", "--runs",
                     "2", "--jobs", "2", cwd=root, env={"CUDA_VISIBLE_DEVICES": "3,5"})
    assert [r["Status"] for r in sheet(log, "Reruns")] == ["ok"] * 2, result.stdout
    [stamp] = (root / "artefacts" / "EXP-001" / "reruns").iterdir()
    assert {json.loads(p.read_text())["device"] for p in stamp.glob("device-*.json")} == {"3,5"}
    assert [r["Devices"] for r in sheet(log, "Reruns")] == [None, None]


def test_more_devices_per_run_than_visible_is_refused_in_one_line(device_project):
    root, log = device_project
    with_gpus(root, 2)
    result = run_cli("rerun", str(log), "--id", "EXP-001", cwd=root,
                     env={"CUDA_VISIBLE_DEVICES": "0"})
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert "gpus = 2" in line and "CUDA_VISIBLE_DEVICES: 0" in line
    assert not (root / "artefacts" / "EXP-001" / "reruns").exists()


def test_the_pool_leases_whole_devices_and_reads_cuda_as_cuda_does():
    from aisdp_log.rerun.devices import DevicePool, visible_devices

    assert visible_devices({"CUDA_VISIBLE_DEVICES": "2, 0,-1,3"}) == ["2", "0"]
    assert visible_devices({"CUDA_VISIBLE_DEVICES": ""}) == []
    pool = DevicePool(["0", "1", "2", "3"], per_run=2)
    cancelled = threading.Event()
    first, second = pool.acquire(cancelled), pool.acquire(cancelled)
    assert sorted(first + second) == ["0", "1", "2", "3"]
    cancelled.set()
    with pytest.raises(KeyboardInterrupt):   # a waiting run gives up on Ctrl-C
        pool.acquire(cancelled)
    pool.release(first)
    assert pool.acquire(threading.Event()) == first
