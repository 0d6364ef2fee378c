"""Capturing, summarising and comparing the compute environment (aisdp_log.record.environment)."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import subprocess
import sys
from pathlib import Path

import pytest

from aisdp_log.record.environment import (
    DETERMINISM_VARS,
    capture_environment,
    diff_environments,
    find_lock_file,
    summarise,
)

#: How G005 reads a lock file out of the `Environment` cell.
LOCK_IN_CELL = re.compile(r"^(\S+) sha256:([0-9a-f]{64})(;|$)")


def capture_in_subprocess(repo: Path | None = None, env: dict | None = None,
                          block: str | None = None) -> dict:
    """capture_environment() in a fresh interpreter, optionally with a module made unimportable."""
    code = ("import json, sys\n"
            + (f"sys.modules[{block!r}] = None\n" if block else "")
            + "from aisdp_log.record.environment import capture_environment\n"
            + f"print(json.dumps(capture_environment({str(repo)!r} if {repo is not None} "
              "else None)))\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env={**os.environ, **(env or {})}, check=True)
    return json.loads(result.stdout)


@pytest.fixture(autouse=True)
def clean_variables(monkeypatch):
    for name in DETERMINISM_VARS:
        monkeypatch.delenv(name, raising=False)


def test_capture_records_python_os_cpu_and_variables(tmp_path, monkeypatch):
    monkeypatch.setenv("MKL_CBWR", "AVX2")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    env = capture_environment(tmp_path)
    assert env["python"] == {"version": platform.python_version(),
                             "implementation": platform.python_implementation()}
    assert env["os"]["system"] == platform.system()
    assert env["os"]["machine"] == platform.machine()
    assert env["cpu"]["count"] == os.cpu_count()
    assert env["cpu"]["model"]
    assert env["env_vars"]["MKL_CBWR"] == "AVX2"
    assert env["env_vars"]["OMP_NUM_THREADS"] == "1"
    assert env["env_vars"]["ATEN_CPU_CAPABILITY"] is None
    assert set(env["env_vars"]) == set(DETERMINISM_VARS)
    assert env["lock_file"] is None
    # The result-changing variable is named in the cell; a thread count is not (measured:
    # thread counts do not change results).
    assert "MKL_CBWR=AVX2" in env["summary"]
    assert "OMP_NUM_THREADS" not in env["summary"]


@pytest.mark.skipif(not Path("/proc/cpuinfo").is_file(), reason="reads /proc/cpuinfo")
def test_cpu_flags_come_from_proc_cpuinfo():
    line = next(line for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.split(":")[0].strip() in ("flags", "Features"))
    hardware = set(line.split(":", 1)[1].split())
    cpu = capture_environment(None)["cpu"]
    assert set(cpu["flags"]) <= hardware
    assert cpu["flags"] == sorted(cpu["flags"])
    if "avx512f" in hardware:
        assert cpu["isa"] == "avx512" and "avx512f" in cpu["flags"]
    elif "avx2" in hardware:
        assert cpu["isa"] == "avx2"
    for flag in ("avx2", "avx512_vnni", "amx_tile"):
        assert (flag in cpu["flags"]) == (flag in hardware)


def test_lock_file_hash_and_summary_in_g005_form(tmp_path):
    (tmp_path / "requirements.txt").write_text("torch==2.13.0\n")
    lock = tmp_path / "uv.lock"
    lock.write_bytes(b"version = 1\n[[package]]\nname = \"torch\"\n")
    found = find_lock_file(tmp_path)
    # uv.lock pins every transitive version; requirements.txt only what a person typed.
    assert found == {"path": "uv.lock",
                     "sha256": hashlib.sha256(lock.read_bytes()).hexdigest()}
    env = capture_environment(tmp_path)
    match = LOCK_IN_CELL.match(env["summary"])
    assert match and match.group(1) == "uv.lock" and match.group(2) == found["sha256"]
    assert f"python {platform.python_version()}" in env["summary"]


def test_requirements_txt_counts_as_a_lock_file(tmp_path):
    (tmp_path / "requirements.txt").write_text("numpy==2.4.6\n")
    assert find_lock_file(tmp_path)["path"] == "requirements.txt"
    assert find_lock_file(tmp_path / "missing") is None


def test_summary_without_lock_file_or_torch():
    env = {"python": {"version": "3.11.7"}, "torch": None, "numpy": "2.4.6",
           "cpu": {"isa": "avx2"}, "env_vars": {}, "lock_file": None}
    assert summarise(env) == "python 3.11.7; numpy 2.4.6; cpu avx2"
    assert summarise({}) == ""


def test_torch_versions_recorded():
    torch = pytest.importorskip("torch")
    info = capture_environment(None)["torch"]
    assert info["version"] == torch.__version__
    assert info["num_threads"] == torch.get_num_threads()
    assert info["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert info["cuda"] == torch.version.cuda
    config = torch.__config__.show()
    if "Math Kernel Library" in config:
        assert info["mkl"] and info["mkl"] in config
    if "MKL-DNN" in config or "oneDNN" in config:
        assert info["onednn"] and f"v{info['onednn']}" in config
    assert f"torch {torch.__version__}" in capture_environment(None)["summary"]


def test_diff_lists_what_changed_and_nothing_when_equal(tmp_path):
    captured = capture_environment(tmp_path)
    assert diff_environments(captured, json.loads(json.dumps(captured))) == []
    # Both machines are built here, so the test holds on an AVX2, AVX-512 or ARM host alike.
    current = json.loads(json.dumps(captured))
    current["cpu"]["isa"] = "avx512"
    current["python"]["version"] = "3.12.4"
    current["env_vars"].pop("MKL_CBWR", None)
    recorded = json.loads(json.dumps(current))
    recorded["cpu"]["isa"] = "avx2"
    recorded["python"]["version"] = "3.10.0"
    recorded["env_vars"]["MKL_CBWR"] = "AVX2"
    recorded["lock_file"] = {"path": "uv.lock", "sha256": "ab" * 32}
    lines = diff_environments(recorded, current)
    assert "CPU instruction set: avx2 → avx512" in lines
    assert "python 3.10.0 → 3.12.4" in lines
    assert "MKL_CBWR: AVX2 → (none)" in lines
    assert any(line.startswith("lock file: uv.lock sha256:abab") for line in lines)
    # The instruction set, the likeliest cause of a bitwise mismatch, comes first.
    assert lines[0].startswith("CPU instruction set:")


def test_diff_of_torch_versions_and_threads():
    recorded = {"torch": {"version": "2.13.0", "num_threads": 2, "mkl": "2024.2"}}
    current = {"torch": {"version": "2.14.1", "num_threads": 4, "mkl": "2024.2"}}
    assert diff_environments(recorded, current) == ["torch 2.13.0 → 2.14.1", "threads 2 → 4"]


def test_diff_tolerates_missing_and_odd_records():
    current = capture_environment(None)
    lines = diff_environments({}, current)
    assert any(line.startswith("CPU instruction set: (none) →") for line in lines)
    assert diff_environments({"cpu": "not a dict"}, {}) == []
    assert diff_environments(None, None) == []


@pytest.mark.slow
def test_forced_kernels_show_in_the_diff():
    # Every CPU torch runs on has its `default` (scalar) kernels, so forcing them is real on
    # any host; the recorded machine, one that used AVX-512 kernels unforced, is built here.
    pytest.importorskip("torch")
    forced = capture_in_subprocess(env={"ATEN_CPU_CAPABILITY": "default"})
    assert forced["torch"]["cpu_capability"] == "DEFAULT"
    assert forced["env_vars"]["ATEN_CPU_CAPABILITY"] == "default"
    recorded = json.loads(json.dumps(forced))
    recorded["torch"]["cpu_capability"] = "AVX512"
    recorded["env_vars"]["ATEN_CPU_CAPABILITY"] = None
    lines = diff_environments(recorded, forced)
    assert "torch CPU capability: AVX512 → DEFAULT" in lines
    assert "ATEN_CPU_CAPABILITY: (none) → default" in lines


def test_capture_without_torch_installed(tmp_path):
    env = capture_in_subprocess(tmp_path, block="torch")
    assert env["torch"] is None
    assert "torch" not in env["summary"]
    assert env["python"]["version"] == platform.python_version()
