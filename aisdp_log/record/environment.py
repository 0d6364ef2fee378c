"""Capture, summarise and compare the compute environment a training run ran in.

A run's numbers depend on more than code, data and seed: the CPU's instruction set picks the
MKL / oneDNN kernels (measured: forcing AVX2 kernels on an AVX-512 CPU changes the weights;
tests/test_rerun.py shows it on any host), and
the torch, MKL and oneDNN versions pick the algorithms. `record_run` stores what this module
captures in `run.json`'s `environment`, and the rerun helper prints `diff_environments` when a
bitwise reproduction fails, so a person can see why.

    env = capture_environment(Path("."))
    summarise(env)   # 'uv.lock sha256:<hex>; python 3.11.7; torch 2.13.0+cpu; cpu avx512'
    diff_environments(recorded, env)   # ['CPU instruction set: avx512 → avx2', ...]

The dictionary (every key always present; a value is None where it does not apply):
    python     {version, implementation}
    os         {system, release, platform, machine}
    cpu        {model, isa, flags (sorted list of instruction-set flags that matter), count}
    torch      None without torch, else {version, mkl, onednn, cuda, cudnn, cpu_capability,
               num_threads, deterministic_algorithms}
    numpy      version or None
    env_vars   {name: value or None} for DETERMINISM_VARS
    lock_file  {path (relative to the repo, with /), sha256} or None
    image      the container image the run says it ran in (`AISDP_IMAGE`, set by whoever
               starts the container: `NAME@sha256:<hex>`), or None
    summary    the `Environment` cell text (see `summarise`)
"""

from __future__ import annotations

import os
import platform
import re
import sys
from pathlib import Path

from aisdp_log.artefacts.digests import file_sha256
from aisdp_log.system.platform import cpu_info

#: Variables that change which kernels run or how many threads split a reduction.
DETERMINISM_VARS = ("MKL_CBWR", "MKL_ENABLE_INSTRUCTIONS", "ATEN_CPU_CAPABILITY",
                    "CUBLAS_WORKSPACE_CONFIG", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
                    "PYTHONHASHSEED")
#: Variables whose value changes numerical results (thread counts, measured, do not), so the summary
#: names them when they are set.
RESULT_VARS = ("MKL_CBWR", "MKL_ENABLE_INSTRUCTIONS", "ATEN_CPU_CAPABILITY")
#: Lock files looked for at the repository root, most specific first; the first found is the
#: one the summary names (G005 checks it against the row's commit).
LOCK_FILES = ("uv.lock", "poetry.lock", "pdm.lock", "Pipfile.lock", "conda-lock.yml",
              "requirements.lock", "requirements.txt")
#: Set by whoever starts a training container: the image it runs, `NAME@sha256:<64 hex>`.
IMAGE_VAR = "AISDP_IMAGE"
#: Instruction-set flags that select different numeric kernels (x86 and Arm spellings).
ISA_FLAGS = frozenset({
    "sse4_1", "sse4_2", "fma", "f16c", "avx", "avx2", "avx_vnni", "avx512f", "avx512dq",
    "avx512cd", "avx512bw", "avx512vl", "avx512ifma", "avx512vbmi", "avx512_vbmi2",
    "avx512_vnni", "avx512_bf16", "avx512_fp16", "amx_tile", "amx_bf16", "amx_int8",
    "asimd", "asimdhp", "asimddp", "sve", "sve2", "bf16", "i8mm",
})
#: Highest level first: the first flag present names the CPU's instruction set.
ISA_LEVELS = (("avx512f", "avx512"), ("avx2", "avx2"), ("avx", "avx"), ("sse4_2", "sse4.2"),
              ("sve2", "sve2"), ("sve", "sve"), ("asimd", "neon"))


def capture_environment(repo: Path | str | None = None) -> dict:
    """What this process computes on: Python, OS, CPU, torch and its libraries, numpy,
    determinism-relevant variables and the repository's lock file. Imports torch and numpy
    when they are installed; never fails for want of them."""
    env = {
        "python": {"version": platform.python_version(),
                   "implementation": platform.python_implementation()},
        "os": {"system": platform.system(), "release": platform.release(),
               "platform": platform.platform(), "machine": platform.machine()},
        "cpu": _cpu(),
        "torch": _torch(),
        "numpy": _numpy_version(),
        "env_vars": {name: os.environ.get(name) for name in DETERMINISM_VARS},
        "lock_file": find_lock_file(Path(repo)) if repo is not None else None,
        "image": recorded_image(),
    }
    env["summary"] = summarise(env)
    return env


def recorded_image() -> str | None:
    """The image `AISDP_IMAGE` names, as given (`image:` before it dropped); validation
    reports one without a digest (G008) or malformed (S013)."""
    value = os.environ.get(IMAGE_VAR, "").strip()
    if value.lower().startswith("image:"):
        value = value[len("image:"):].strip()
    return value or None


def find_lock_file(repo: Path) -> dict | None:
    """`{path, sha256}` of the first lock file in LOCK_FILES at the repository root."""
    for name in LOCK_FILES:
        path = repo / name
        if path.is_file():
            return {"path": name, "sha256": file_sha256(path)}
    return None


def summarise(env: dict) -> str:
    """The `Environment` cell: `image: NAME@sha256:<hex>` first when the run says it ran in a
    container, `<lock path> sha256:<hex>` when there is a lock file (the form G005 parses),
    then `python X; torch Y; cpu <isa>` and any result-changing variable."""
    parts = []
    image = env.get("image")
    if isinstance(image, str) and image:
        parts.append(f"image: {image}")
    lock = env.get("lock_file")
    if lock and lock.get("path") and lock.get("sha256"):
        parts.append(f"{lock['path']} sha256:{lock['sha256']}")
    python = (env.get("python") or {}).get("version")
    if python:
        parts.append(f"python {python}")
    torch = env.get("torch") or {}
    if torch.get("version"):
        parts.append(f"torch {torch['version']}")
    if env.get("numpy") and not torch:
        parts.append(f"numpy {env['numpy']}")
    isa = (env.get("cpu") or {}).get("isa")
    if isa:
        parts.append(f"cpu {isa}")
    for name in RESULT_VARS:
        value = (env.get("env_vars") or {}).get(name)
        if value:
            parts.append(f"{name}={value}")
    return "; ".join(parts)


def diff_environments(recorded: dict, current: dict) -> list[str]:
    """Human lines for what differs between a recorded environment and this one, most likely
    cause of a bitwise mismatch first: `CPU instruction set: avx512 → avx2`, `torch 2.13.0 →
    2.14.1`, `threads 2 → 4`. Empty when nothing recorded differs. Tolerates missing keys (an
    older or hand-edited run.json)."""
    recorded, current = recorded or {}, current or {}

    def get(env: object, *keys: str):
        for key in keys:
            env = env.get(key) if isinstance(env, dict) else None
        return env

    def show(value) -> str:
        return "(none)" if value is None or value == "" else str(value)

    lines = []

    def compare(label: str, *keys: str, sep: str = " ") -> None:
        old, new = get(recorded, *keys), get(current, *keys)
        if old != new:
            lines.append(f"{label}{sep}{show(old)} → {show(new)}")

    compare("container image:", "image")
    compare("CPU instruction set:", "cpu", "isa")
    compare("torch CPU capability:", "torch", "cpu_capability")
    for name in RESULT_VARS:
        compare(f"{name}:", "env_vars", name)
    compare("torch", "torch", "version")
    compare("MKL", "torch", "mkl")
    compare("oneDNN", "torch", "onednn")
    compare("CUDA", "torch", "cuda")
    compare("cuDNN", "torch", "cudnn")
    compare("numpy", "numpy")
    compare("python", "python", "version")
    compare("python implementation:", "python", "implementation")
    old_flags, new_flags = get(recorded, "cpu", "flags"), get(current, "cpu", "flags")
    if isinstance(old_flags, list) and isinstance(new_flags, list):
        lost = sorted(set(old_flags) - set(new_flags))
        gained = sorted(set(new_flags) - set(old_flags))
        if lost:
            lines.append("CPU flags missing now: " + ", ".join(lost))
        if gained:
            lines.append("CPU flags new now: " + ", ".join(gained))
    compare("CPU model:", "cpu", "model")
    compare("threads", "torch", "num_threads")
    compare("deterministic algorithms:", "torch", "deterministic_algorithms")
    for name in DETERMINISM_VARS:
        if name not in RESULT_VARS:
            compare(f"{name}:", "env_vars", name)
    compare("OS:", "os", "platform")
    old_lock, new_lock = get(recorded, "lock_file"), get(current, "lock_file")
    if (old_lock or None) != (new_lock or None):
        def lock_text(lock):
            return f"{lock.get('path')} sha256:{str(lock.get('sha256'))[:12]}" if lock else None
        lines.append(f"lock file: {show(lock_text(old_lock))} → {show(lock_text(new_lock))}")
    return lines


def _cpu() -> dict:
    """The CPU from the OS's own source (system/platform); `isa` is "unknown" where the OS
    does not say which instruction set the CPU has, so the summary never just omits it."""
    model, flags = cpu_info()
    if model is None:
        model = platform.processor() or platform.machine() or None
    if not flags and platform.machine().lower() in ("arm64", "aarch64"):
        flags = {"asimd"}  # every 64-bit Arm CPU has NEON
    found = flags or set()
    isa = next((name for flag, name in ISA_LEVELS if flag in found), None)
    if isa is None:
        isa = "unknown"
    return {"model": model, "isa": isa, "flags": sorted(found & ISA_FLAGS),
            "count": os.cpu_count()}


def _numpy_version() -> str | None:
    try:
        import numpy
    except ImportError:
        return None
    return numpy.__version__


def _torch() -> dict | None:
    try:
        import torch
    except ImportError:
        return None
    # torch has no API for the MKL and oneDNN versions; its build summary names them.
    try:
        config = torch.__config__.show()
    except Exception:  # a stripped build; the versions are then unknown, not an error
        config = ""
    mkl = re.search(r"Math Kernel Library Version ([0-9][0-9.]*)", config)
    onednn = re.search(r"(?:MKL-DNN|oneDNN) v([0-9][0-9.]*)", config)
    cudnn = None
    try:
        cudnn = torch.backends.cudnn.version()
    except Exception:  # cuDNN absent or unloadable on this build
        cudnn = None
    try:
        capability = torch.backends.cpu.get_cpu_capability()
    except AttributeError:  # torch < 2.1
        capability = None
    return {
        "version": torch.__version__,
        "mkl": mkl[1].rstrip(".") if mkl else None,
        "onednn": onednn[1].rstrip(".") if onednn else None,
        "cuda": torch.version.cuda,
        "cudnn": None if cudnn is None else str(cudnn),
        "cpu_capability": capability,
        "num_threads": torch.get_num_threads(),
        "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
    }


if __name__ == "__main__":  # `python -m aisdp_log.record.environment`: print what would be recorded
    import json

    json.dump(capture_environment(Path.cwd()), sys.stdout, indent=2, sort_keys=True)
    print()
