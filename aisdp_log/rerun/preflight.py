"""The pre-flight of a rerun: ask the interpreter a run will start which Python and package
versions it has, before anything runs.

A reproduction that depends on the shell it was started from is not evidence. So before any
worktree or run folder exists, `rerun` asks the interpreter the run will start (the first word
of `[rerun] command`, found on the same PATH) for its Python version and the versions of the
packages the row's `run.json` (else its Environment cell) records, in one subprocess that reads
`importlib.metadata` and imports nothing. A missing package refuses the rerun in one line; a
different version is printed and the run goes ahead (the bitwise verdict will say if it
mattered).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

from aisdp_log.errors import AisdpLogError
from aisdp_log.record.environment import diff_environments
from aisdp_log.rerun.tail import stderr_tail
from aisdp_log.system.platform import which

#: A first word that names a Python interpreter (`python`, `python3.11`, `pypy3`, ...).
PYTHON_NAME = re.compile(r"^(python|pypy)(\d+(\.\d+)*)?[dmtu]*(\.exe)?$", re.IGNORECASE)
#: Packages the pre-flight asks for: (distribution, module, key in run.json's environment).
RECORDED_PACKAGES = (("torch", "torch", "torch"), ("numpy", "numpy", "numpy"))
TOOL_DIST, TOOL_MODULE = "aisdp-log", "aisdp_log"
PROBE_TIMEOUT = 120.0

# One process: the interpreter's version and each package's version (metadata) and whether its
# module is importable (find_spec of a top-level name runs no module code).
PROBE = r"""
import importlib.metadata as md, importlib.util as iu, json, platform, sys
out = {"executable": sys.executable, "python": platform.python_version(),
       "implementation": platform.python_implementation(), "packages": {}}
for dist, module in json.loads(sys.argv[1]):
    try:
        version = md.version(dist)
    except Exception:
        version = None
    try:
        found = iu.find_spec(module) is not None
    except Exception:
        found = False
    out["packages"][dist] = {"version": version, "found": found}
print(json.dumps(out))
"""


def is_python(word: str) -> bool:
    return bool(PYTHON_NAME.match(Path(word).name))


def resolve_first_word(command: list[str], env: dict, cwd: Path) -> str | None:
    """The executable the run will start: a word with a slash relative to `cwd`, else found
    on the PATH of the run's environment, the same way on every OS (the runner starts what
    this returns, so the pre-flight checks the interpreter that trains)."""
    first = command[0]
    if os.sep in first or (os.altsep and os.altsep in first):
        path = Path(first) if Path(first).is_absolute() else cwd / first
        return str(path) if path.is_file() and os.access(path, os.X_OK) else None
    return which(first, env.get("PATH"))


def probe(interpreter: str, wanted: list[tuple[str, str]], env: dict, cwd: Path) -> dict:
    """Ask `interpreter` for its version and the packages in `wanted`; one line on failure."""
    try:
        result = subprocess.run([interpreter, "-c", PROBE, json.dumps(wanted)], cwd=cwd,
                                env=env, capture_output=True, encoding="utf-8",
                                errors="replace",
                                timeout=PROBE_TIMEOUT, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise AisdpLogError(f"pre-flight: cannot run {interpreter}: "
                            f"{getattr(exc, 'strerror', None) or exc}") from None
    try:
        answer = json.loads(result.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        reason = " | ".join(stderr_tail(result.stderr.encode()) or ["no answer"])
        raise AisdpLogError(f"pre-flight: {interpreter} did not report its packages "
                            f"(exit code {result.returncode}): {reason}") from None
    return answer


def recorded_environment(artefact_dir: Path, environment_cell: str | None) -> tuple[dict, str]:
    """What the row recorded (run.json's `environment`, else versions read from the Environment
    cell) and where it came from."""
    try:
        record = json.loads((artefact_dir / "run.json").read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        record = None
    environment = record.get("environment") if isinstance(record, dict) else None
    if isinstance(environment, dict):
        return environment, "run.json"
    text = environment_cell or ""
    found = {key: re.search(rf"(?:^|[;\s]){key} ([0-9][^\s;,]*)", text)
             for key in ("python", "torch", "numpy")}
    parsed = {"python": {"version": found["python"][1]} if found["python"] else None,
              "torch": {"version": found["torch"][1]} if found["torch"] else None,
              "numpy": found["numpy"][1] if found["numpy"] else None}
    return parsed, "the Environment cell"


def _wanted(recorded: dict, needs_tool: bool) -> list[tuple[str, str]]:
    wanted = [(dist, module) for dist, module, key in RECORDED_PACKAGES if recorded.get(key)]
    if needs_tool:
        wanted.append((TOOL_DIST, TOOL_MODULE))
    return wanted


def _versions(env: dict) -> dict:
    """The part of an environment the pre-flight compares, in capture_environment's shape."""
    python: dict = env["python"] if isinstance(env.get("python"), dict) else {}
    torch: dict | None = env["torch"] if isinstance(env.get("torch"), dict) else None
    return {"python": {"version": python.get("version"),
                       "implementation": python.get("implementation")},
            "torch": {"version": torch.get("version")} if torch else None,
            "numpy": env.get("numpy")}


def _probed_as_environment(answer: dict) -> dict:
    packages = answer.get("packages") or {}

    def version(dist: str):
        return (packages.get(dist) or {}).get("version")
    return {"python": {"version": answer.get("python"),
                       "implementation": answer.get("implementation")},
            "torch": {"version": version("torch")} if "torch" in packages else None,
            "numpy": version("numpy")}


def check_interpreter(experiment_id: str, command: list[str], env: dict, cwd: Path,
                      recorded: dict, source: str, needs_tool: bool, fix: str
                      ) -> tuple[str, list[str]]:
    """Pre-flight one row: (the `Environment` summary of the interpreter, lines to print).
    Raises AisdpLogError naming the missing packages, the interpreter and `fix`."""

    first = command[0]
    interpreter = resolve_first_word(command, env, cwd)
    if interpreter is None:
        raise AisdpLogError(f"{experiment_id}: the rerun command's {first!r} is not found on "
                            f"PATH ({env.get('PATH', '')}); {fix}")
    if not is_python(interpreter) and not is_python(first):
        return (f"{interpreter} (not a Python interpreter: not checked)",
                [f"{experiment_id}: pre-flight cannot check {first!r} ({interpreter}): it is "
                 "not a Python interpreter, so the packages the row records are not verified "
                 "before the run"])
    answer = probe(interpreter, _wanted(recorded, needs_tool), env, cwd)
    packages = answer.get("packages") or {}
    missing = [dist for dist, info in packages.items() if not info.get("found")]
    if missing:
        wants = []
        for dist in missing:
            key = next((k for d, _, k in RECORDED_PACKAGES if d == dist), None)
            value = recorded.get(key) if key else None
            value = value.get("version") if isinstance(value, dict) else value
            wants.append(f"{dist} {value}" if value else dist)
        raise AisdpLogError(
            f"{experiment_id}: {interpreter} (python {answer.get('python')}) has no "
            f"{', '.join(missing)}, which the run needs ({source} records "
            f"{', '.join(wants)}); {fix}")
    summary = "; ".join([f"python {answer.get('python')}"] + [
        f"{dist} {info.get('version') or '(version unknown)'}"
        for dist, info in packages.items() if dist != TOOL_DIST])
    changes = diff_environments(_versions(recorded), _probed_as_environment(answer))
    lines = []
    if changes:
        lines.append(f"{experiment_id}: environment differs from the row's ({source}): "
                     + "; ".join(changes) + f"; running with {interpreter} anyway")
    return f"{interpreter} {summary}", lines
