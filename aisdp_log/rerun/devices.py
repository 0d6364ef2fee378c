"""One GPU per run, locally: the pool of devices this process may use (`CUDA_VISIBLE_DEVICES`,
else the GPUs `nvidia-smi -L` lists), leased to concurrent runs `[rerun] gpus` at a time, so
two runs never share a device; a run waits while every device is leased."""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
from collections.abc import Mapping
from pathlib import Path

from aisdp_log.errors import AisdpLogError
from aisdp_log.rerun.plan import RowPlan, RunResult
from aisdp_log.rerun.processes import Runner

VARIABLE = "CUDA_VISIBLE_DEVICES"


def visible_devices(env: Mapping[str, str] | None = None) -> list[str]:
    """The devices this process may use: `CUDA_VISIBLE_DEVICES` as CUDA reads it (ids or
    UUIDs, comma-separated, up to the first invalid entry), else one index per GPU that
    `nvidia-smi -L` lists, else none."""
    env = os.environ if env is None else env
    if VARIABLE in env:
        devices = []
        for entry in env[VARIABLE].split(","):
            entry = entry.strip()
            if not entry or entry.startswith("-"):  # CUDA stops at an invalid entry
                break
            devices.append(entry)
        return devices
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return []
    try:
        listed = subprocess.run([smi, "-L"], capture_output=True, encoding="utf-8",
                                errors="replace", timeout=30)
    except (OSError, subprocess.SubprocessError):
        return []
    lines = [line for line in listed.stdout.splitlines() if line.startswith("GPU ")]
    return [str(index) for index in range(len(lines))] if listed.returncode == 0 else []


class DevicePool:
    """Devices leased `per_run` at a time; `acquire` blocks until enough are free."""

    def __init__(self, devices: list[str], per_run: int):
        self.free = list(devices)
        self.per_run = per_run
        self._ready = threading.Condition()

    def acquire(self, cancelled: threading.Event) -> list[str]:
        with self._ready:
            while len(self.free) < self.per_run:
                if cancelled.is_set():
                    raise KeyboardInterrupt
                self._ready.wait(0.2)
            lease, self.free = self.free[:self.per_run], self.free[self.per_run:]
            return lease

    def release(self, lease: list[str]) -> None:
        with self._ready:
            self.free += lease
            self._ready.notify_all()


def device_pool(per_run: int, jobs: int, env: Mapping[str, str] | None = None
                ) -> DevicePool | None:
    """The pool for `[rerun] gpus = per_run` (None for 0: runs see the parent's devices, as
    before); refuses in one line when the pool cannot give one run its devices."""
    if per_run <= 0:
        return None
    devices = visible_devices(env)
    if len(devices) < per_run:
        seen = ", ".join(devices) if devices else "none"
        raise AisdpLogError(f"[rerun] gpus = {per_run} asks for {per_run} device"
                            f"{'s' if per_run > 1 else ''} per run, but this process sees "
                            f"{len(devices)} ({VARIABLE}: {seen})")
    return DevicePool(devices, per_run)


class PooledRunner(Runner):
    """A Runner whose every run holds its own devices from the pool while it runs."""

    def __init__(self, repo_root: Path, command: tuple[str, ...], timeout: float | None,
                 progress, pool: DevicePool):
        super().__init__(repo_root, command, timeout, progress)
        self.pool = pool

    def run(self, plan: RowPlan, stamp_dir: Path, number: int, mode: str, seed: int,
            extra_env: Mapping[str, str] | None = None) -> RunResult:
        lease = self.pool.acquire(self.cancelled)
        try:
            devices = ",".join(lease)
            result = super().run(plan, stamp_dir, number, mode, seed,
                                 dict(extra_env or {}, **{VARIABLE: devices}))
            result.devices = devices
            return result
        finally:
            self.pool.release(lease)
