"""The locked environment `--env lock` runs in: read the row's lock file from git, build (with
uv) or reuse its virtual environment in the cache.

`--env lock` reads the lock file the row's Environment cell names (`<path> sha256:<hex>`) from
git at the row's commit, checks its hash, and builds a virtual environment from it with
`uv venv` + `uv pip install -r` in `<cache>/aisdp-log/envs/<lock sha256>-py<version>`
(`<cache>` is `$XDG_CACHE_HOME`, else `~/.cache`). It is built in a temp folder and renamed into
place, so a half-built environment is never reused; later reruns of any row with the same lock
file reuse it. Packages come from the indexes pip is configured with (`pip config list`,
`PIP_INDEX_URL`, `PIP_EXTRA_INDEX_URL`, `PIP_FIND_LINKS`, `PIP_NO_INDEX`), since uv does not read
pip.conf. The training script imports `aisdp_log.training`: the environment gets a copy of the
running tool's own package, put on its path by a `.pth` file (no symlink, so no admin rights on
Windows; a line in the lock naming aisdp-log is skipped), so a lock file need not pin a tool
version no index holds.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from aisdp_log.domain.locks import lock_entries, lock_matches, lock_repo_path
from aisdp_log.errors import AisdpLogError
from aisdp_log.repo.git import blob_at
from aisdp_log.rerun.preflight import PROBE_TIMEOUT, TOOL_MODULE, recorded_environment
from aisdp_log.rerun.tail import stderr_tail
from aisdp_log.system.platform import python_in_venv
from aisdp_log.system.tooldir import user_cache_dir

#: Lock files `--env lock` can build from (a `*.txt` is read as a requirements file).
LOCK_KINDS = ("requirements.txt", "uv.lock", "poetry.lock", "pylock.toml")
BUILD_TIMEOUT = 3600.0


# --------------------------------------------------------------------------- lock files

def read_lock(plan, repo_root: Path) -> tuple[str, str, bytes]:
    """(path, full sha256, bytes) of the lock file the row names, read from git at the row's
    commit and checked against the recorded hash."""

    entries = lock_entries(plan.environment_cell or "")
    recorded, _ = recorded_environment(plan.artefact_dir, None)
    lock = recorded.get("lock_file") if isinstance(recorded.get("lock_file"), dict) else None
    if not entries and lock and lock.get("path") and lock.get("sha256"):
        entries = [(str(lock["path"]), str(lock["sha256"]).lower())]
    usable = [(p, h) for p, h in entries if lock_kind(p)]
    if not usable:
        named = ", ".join(p for p, _ in entries) or "no lock file"
        raise AisdpLogError(f"{plan.experiment_id}: --env lock needs a lock file "
                            f"({', '.join(LOCK_KINDS)}) named as `<path> sha256:<hex>` in the "
                            f"Environment cell; it names {named}")
    path, digest = usable[0]
    repo_path = lock_repo_path(path, "")
    if repo_path is None:
        raise AisdpLogError(f"{plan.experiment_id}: {path} is outside the repository (G005); "
                            "--env lock reads lock files from git")
    blob = blob_at(repo_root, plan.commit, repo_path)
    if blob is None:
        raise AisdpLogError(f"{plan.experiment_id}: {path} is not in commit "
                            f"{plan.commit[:12]} (G005), so --env lock cannot rebuild it")
    actual = hashlib.sha256(blob).hexdigest()
    if not lock_matches(blob, digest):
        raise AisdpLogError(f"{plan.experiment_id}: {path} at commit {plan.commit[:12]} has "
                            f"sha256 {actual[:12]}…, not the {digest[:12]}… the Environment cell "
                            "names (G005); --env lock builds only the recorded file")
    return path, actual, blob


def lock_kind(path: str) -> str | None:
    name = Path(path).name
    if name in ("uv.lock", "poetry.lock"):
        return name
    if name == "pylock.toml" or (name.startswith("pylock.") and name.endswith(".toml")):
        return "pylock.toml"
    if name.endswith(".txt") or name == "requirements.lock":
        return "requirements.txt"
    return None


def requirements_from_lock(path: str, blob: bytes, uv: str, repo_root: Path, commit: str,
                           work: Path) -> tuple[str, list[str]]:
    """The lock file as requirements text for `uv pip install -r`, and notes."""
    kind = lock_kind(path)
    notes: list[str] = []
    if kind == "requirements.txt":
        text = blob.decode("utf-8", errors="replace")
    elif kind == "uv.lock":
        project = work / "project"
        project.mkdir()
        (project / "uv.lock").write_bytes(blob)
        parent = str(Path(path).parent).replace(os.sep, "/")
        spec_path = "pyproject.toml" if parent in ("", ".") else f"{parent}/pyproject.toml"
        shown = blob_at(repo_root, commit, spec_path)
        if shown is None:
            raise AisdpLogError(f"{path}: uv export needs {spec_path} beside it, and commit "
                                f"{commit[:12]} has none")
        (project / "pyproject.toml").write_bytes(shown)
        exported = _run([uv, "export", "--frozen", "--no-hashes", "--no-emit-project",
                         "--format", "requirements-txt", "--directory", str(project)],
                        f"uv export of {path}")
        text = exported.stdout
    else:
        text = _requirements_from_toml(path, blob, kind or "lock file", notes)
    kept = []
    for line in text.splitlines():
        if re.match(r"^\s*aisdp[-_.]log\b", line, re.IGNORECASE):
            notes.append(f"{path}: `{line.strip()}` skipped: the running aisdp-log serves "
                         "the run (via a .pth file)")
            continue
        kept.append(line)
    return "\n".join(kept) + "\n", notes


def _requirements_from_toml(path: str, blob: bytes, kind: str, notes: list[str]) -> str:
    if sys.version_info >= (3, 11):  # a version check mypy follows (tomllib is new in 3.11)
        import tomllib
    else:  # Python 3.10
        import tomli as tomllib
    try:
        data = tomllib.loads(blob.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise AisdpLogError(f"{path}: not a readable {kind}: {exc}") from None
    entries = data.get("packages" if kind == "pylock.toml" else "package") or []
    lines = []
    for entry in entries if isinstance(entries, list) else []:
        if not isinstance(entry, dict) or not entry.get("name"):
            continue
        source: dict = entry["source"] if isinstance(entry.get("source"), dict) else {}
        if not entry.get("version") or source.get("type") in ("directory", "file", "git",
                                                                "url"):
            notes.append(f"{path}: {entry['name']} has no index version (a "
                         f"{source.get('type') or 'local'} source) and is not installed")
            continue
        marker = entry.get("marker") if kind == "pylock.toml" else entry.get("markers")
        line = f"{entry['name']}=={entry['version']}"
        if isinstance(marker, str) and marker.strip():
            line += f" ; {marker.strip()}"
        lines.append(line)
    return "\n".join(lines)


# --------------------------------------------------------------------------- building

def cache_root() -> Path:
    return user_cache_dir() / "envs"


def env_folder(lock_hex: str, base_interpreter: str) -> Path:
    """The cache folder of a lock file's environment: its sha256 and the base Python's version
    (the same lock installs other wheels on another Python)."""
    version = _python_version(base_interpreter)
    return cache_root() / f"{lock_hex}-py{version}"


def _python_version(interpreter: str) -> str:
    result = subprocess.run([interpreter, "-c", "import platform; "
                             "print(platform.python_version())"], capture_output=True,
                            encoding="utf-8", errors="replace", timeout=PROBE_TIMEOUT,
                            stdin=subprocess.DEVNULL)
    version = result.stdout.strip()
    if result.returncode != 0 or not re.fullmatch(r"[0-9][0-9A-Za-z.+]*", version):
        raise AisdpLogError(f"--env lock: {interpreter} does not report a Python version")
    return version


def python_in(venv: Path) -> Path:
    return python_in_venv(venv)


def environment_variables(venv: Path) -> dict[str, str | None]:
    """What a run in the environment sets: its bin folder first on PATH, VIRTUAL_ENV; and
    PYTHONPATH / PYTHONHOME unset, so the shell's packages cannot leak into the locked set."""
    bin_dir = python_in(venv).parent
    return {"VIRTUAL_ENV": str(venv), "PYTHONPATH": None, "PYTHONHOME": None,
            "PATH": str(bin_dir) + os.pathsep + os.environ.get("PATH", os.defpath)}


def find_uv() -> str:
    """uv on PATH, else the one the `uv` package installed beside this tool."""
    found = shutil.which("uv")
    if found:
        return found
    try:
        from uv import find_uv_bin
        return find_uv_bin()
    except (ImportError, OSError, FileNotFoundError):  # no uv package, or no binary in it
        pass
    beside = Path(sys.executable).parent / ("uv.exe" if os.name == "nt" else "uv")
    if beside.is_file():
        return str(beside)
    raise AisdpLogError("--env lock builds environments with uv, which is not installed: "
                        "pip install 'aisdp-log[rerun]' (or pipx inject aisdp-log uv, or see "
                        "https://docs.astral.sh/uv/getting-started/installation/)")


def pip_index_options() -> tuple[list[str], dict[str, str]]:
    """uv options for the indexes pip is configured with, and variables for uv (pip's `cert`).
    pip's order: environment variables, then site, user and global configuration files."""
    settings: dict[str, tuple[int, str]] = {}
    rank = {":env:": 4, "site": 3, "user": 2, "global": 1}
    for line in _pip_config_lines():
        match = re.match(r"^([^.=]+)\.([^=]+)=(.*)$", line.strip())
        if not match:
            continue
        scope, key, value = match[1], match[2], match[3]
        try:
            value = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            value = value.strip("'\"")
        priority = rank.get(scope, 1)
        if key not in settings or settings[key][0] <= priority:
            settings[key] = (priority, str(value))
    for key in ("index-url", "extra-index-url", "find-links", "no-index", "cert"):
        value = os.environ.get("PIP_" + key.upper().replace("-", "_"))
        if value is not None:
            settings[key] = (5, value)
    options: list[str] = []
    if settings.get("no-index", (0, ""))[1].strip().lower() in ("1", "true", "yes", "on"):
        options.append("--no-index")
    elif "index-url" in settings:
        options += ["--index-url", settings["index-url"][1].split()[0]]
    for url in settings.get("extra-index-url", (0, ""))[1].split():
        options += ["--extra-index-url", url]
    for place in settings.get("find-links", (0, ""))[1].split():
        options += ["--find-links", place]
    variables = {}
    if "cert" in settings and not os.environ.get("SSL_CERT_FILE"):
        variables["SSL_CERT_FILE"] = settings["cert"][1]
    return options, variables


def _pip_config_lines() -> list[str]:
    for command in ([sys.executable, "-m", "pip"], [shutil.which("pip") or "pip"]):
        try:
            result = subprocess.run([*command, "config", "list"], capture_output=True,
                                    encoding="utf-8", errors="replace", timeout=60,
                                    stdin=subprocess.DEVNULL,
                                    env=dict(os.environ, PIP_DISABLE_PIP_VERSION_CHECK="1"))
        except (OSError, subprocess.TimeoutExpired):
            continue
        if result.returncode == 0:
            return result.stdout.splitlines()
    return []  # no pip: the PIP_* variables alone say where packages come from


def ensure_environment(folder: Path, lock_path: str, blob: bytes, base: str, repo_root: Path,
                       commit: str, progress=None) -> tuple[Path, bool]:
    """The environment in `folder`, built first if absent; (folder, whether built now)."""
    if python_in(folder).exists():
        _link_tool(folder)
        return folder, False
    uv = find_uv()
    folder.parent.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(prefix=f".{folder.name[:16]}-", dir=folder.parent))
    try:
        with tempfile.TemporaryDirectory(prefix="aisdp-lock-") as work:
            requirements, notes = requirements_from_lock(lock_path, blob, uv, repo_root, commit,
                                                         Path(work))
            listed = Path(work) / "requirements.txt"
            listed.write_text(requirements, encoding="utf-8")
            if progress:
                progress(f"building the environment of {lock_path} in {folder} (uv)")
                for note in notes:
                    progress(note)
            options, variables = pip_index_options()
            _run([uv, "venv", "--quiet", "--relocatable", "--python", base, str(building)],
                 "uv venv")
            if requirements.strip():
                _run([uv, "pip", "install", "--quiet", "--python", str(python_in(building)),
                      *options, "-r", str(listed)], f"uv pip install -r {lock_path}",
                     variables)
        (building / "aisdp-env.json").write_text(json.dumps({
            "lock_file": lock_path, "commit": commit,
            "sha256": hashlib.sha256(blob).hexdigest(), "base_python": base}, indent=2) + "\n",
            encoding="utf-8")
        _link_tool(building)
        try:
            os.rename(building, folder)
        except OSError:
            if not python_in(folder).exists():
                raise
            shutil.rmtree(building, ignore_errors=True)  # another rerun built it meanwhile
            return folder, False
    except BaseException:
        shutil.rmtree(building, ignore_errors=True)
        raise
    return folder, True


def _link_tool(venv: Path) -> None:
    """Make the running aisdp_log importable in the environment, with no symlink (Windows
    allows those only to administrators or in Developer Mode): a copy of this package in
    `<venv>/aisdp-tool/aisdp_log`, and a relative `.pth` line putting `aisdp-tool` on sys.path
    (relative, so it survives the rename of the build folder). Refreshed on every use when
    the running package's files differ from the copy's stamp: it follows the installed tool.
    Only aisdp_log is exposed, never the rest of the tool's site-packages."""
    package = Path(__file__).resolve().parent.parent  # aisdp_log/, not aisdp_log/rerun/
    holder = venv / "aisdp-tool"
    holder.mkdir(exist_ok=True)
    target = holder / TOOL_MODULE
    stamp_file = holder / f"{TOOL_MODULE}.stamp"
    stamp = _package_stamp(package)
    current = stamp_file.read_text("utf-8", "replace") if stamp_file.is_file() else ""
    if target.is_symlink() or not target.is_dir() or current != stamp:
        fresh = holder / f".{TOOL_MODULE}.{os.getpid()}"
        stale = holder / f".{TOOL_MODULE}.old.{os.getpid()}"
        shutil.rmtree(fresh, ignore_errors=True)
        shutil.copytree(package, fresh, ignore=shutil.ignore_patterns("__pycache__"))
        if target.is_symlink():  # made by an aisdp-log before 0.2
            target.unlink()
        elif target.exists():
            os.replace(target, stale)
        os.replace(fresh, target)
        shutil.rmtree(stale, ignore_errors=True)
        stamp_file.write_text(stamp, encoding="utf-8")
    for site in list(venv.glob("lib/python*/site-packages")) + list(venv.glob("Lib/site-packages")):
        pth = site / "aisdp-log-tool.pth"
        line = os.path.relpath(holder, site) + "\n"
        if not pth.exists() or pth.read_text("utf-8", "replace") != line:
            pth.write_text(line, encoding="utf-8")


def _package_stamp(package: Path) -> str:
    """What tells one installed aisdp_log from another: each file's path, size and time."""
    digest = hashlib.sha256()
    for path in sorted(package.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            info = path.stat()
            digest.update(f"{path.relative_to(package).as_posix()}\0{info.st_size}\0"
                          f"{info.st_mtime_ns}\n".encode("utf-8", "surrogateescape"))
    return digest.hexdigest()


def _run(command: list[str], what: str, variables: dict | None = None
         ) -> subprocess.CompletedProcess:
    try:
        result = subprocess.run(command, capture_output=True, encoding="utf-8",
                                errors="replace", timeout=BUILD_TIMEOUT,
                                stdin=subprocess.DEVNULL, env=dict(os.environ, **(variables or {})))
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise AisdpLogError(f"--env lock: {what} failed: "
                            f"{getattr(exc, 'strerror', None) or exc}") from None
    if result.returncode != 0:
        reason = " | ".join(stderr_tail(result.stderr.encode(), lines=3)) or \
            f"exit code {result.returncode}"
        raise AisdpLogError(f"--env lock: {what} failed: {reason}")
    return result
