"""The container engine on this machine (Docker or Podman): which one answers, its version,
whether an image is in its store or pullable, and the containers killed reruns left behind.

    engine, reason = find_engine(None)   # docker, else podman: the first that answers
    image_local(engine, "localhost/train@sha256:...")   # True / False
    image_pullable(engine, ref)          # (False, "pinging container registry ...: refused")

Every engine process runs without a shell, with a timeout, its stdin closed; nothing here
guesses: a missing engine is a reason, never an answer about an image."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
from dataclasses import dataclass

from aisdp_log.system.tooldir import pid_alive

ENGINES = ("docker", "podman")
INSTALL_HINT = ("install Podman (Debian/Ubuntu: `apt-get install podman runc`, "
                "https://podman.io/docs/installation) or Docker Engine "
                "(https://docs.docker.com/engine/install/)")
#: The label every rerun container carries (its value: the pid of the aisdp-log that started
#: it); the name carries host and pid too, `aisdp-rerun-<host>-<pid>-<random>`.
LABEL = "aisdp-log.rerun"
NAME_PREFIX = "aisdp-rerun-"
ASK_TIMEOUT = 60.0
PULL_TIMEOUT = 3600.0


@dataclass(frozen=True)
class Engine:
    """A container engine that answered: `docker` or `podman`, its path and version."""

    name: str
    path: str
    version: str

    @property
    def label(self) -> str:
        return f"{self.name} {self.version}"


def ask(engine: Engine | str, *args: str, timeout: float = ASK_TIMEOUT
        ) -> subprocess.CompletedProcess:
    """Run one engine command and capture its output; an engine that cannot start or hangs
    gives a failed result (returncode 127 / 124) whose stderr says why."""
    path = engine.path if isinstance(engine, Engine) else engine
    try:
        return subprocess.run([path, *args], capture_output=True, encoding="utf-8",
                              timeout=timeout, stdin=subprocess.DEVNULL, errors="replace")
    except OSError as exc:
        return subprocess.CompletedProcess([path, *args], 127, "", exc.strerror or str(exc))
    except subprocess.TimeoutExpired:
        return subprocess.CompletedProcess([path, *args], 124, "",
                                           f"{path} {args[0]} gave no answer in {timeout:g} s")


def message(result: subprocess.CompletedProcess) -> str:
    """The engine's own reason, on one line (its last non-empty stderr line, else stdout's)."""
    for text in (result.stderr, result.stdout):
        lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
        if lines:
            return re.sub(r"^(Error|error):\s*", "", lines[-1])[:400]
    return f"exit code {result.returncode}"


def find_engine(preferred: str | None = None) -> tuple[Engine | None, str]:
    """The engine to use and, when there is none, why (one line naming both engines and how
    to install one). `preferred` (`[rerun] engine`) asks for one; otherwise docker, then
    podman: the first on PATH that answers (a Docker CLI without its daemon does not)."""
    names = (preferred,) if preferred else ENGINES
    problems = []
    for name in names:
        path = shutil.which(name)
        if path is None:
            continue
        # docker answers its server's version only when the daemon runs; podman has none
        what = "{{.Server.Version}}" if name == "docker" else "{{.Client.Version}}"
        result = ask(path, "version", "--format", what, timeout=30)
        version = result.stdout.strip()
        if result.returncode == 0 and version:
            return Engine(name, path, version), ""
        problems.append(f"{name} is on PATH ({path}) but does not answer: {message(result)}")
    if problems:
        return None, "; ".join(problems)
    if preferred:
        return None, f"[rerun] engine = {preferred!r}, but {preferred} is not on PATH; " \
                     + INSTALL_HINT
    return None, "no container engine: neither docker nor podman is on PATH; " + INSTALL_HINT


def image_local(engine: Engine, reference: str) -> bool:
    """Whether the engine's store holds the image (by name and digest)."""
    return ask(engine, "image", "inspect", "--format", "{{.Id}}", reference).returncode == 0


def image_environment(engine: Engine, reference: str) -> dict[str, str]:
    """The variables the image sets (its `ENV`), empty when they cannot be read."""
    result = ask(engine, "image", "inspect", "--format", "{{json .Config.Env}}", reference)
    try:
        pairs = json.loads(result.stdout) if result.returncode == 0 else []
    except ValueError:
        pairs = []
    return dict(pair.split("=", 1) for pair in pairs or [] if isinstance(pair, str) and "=" in pair)


def image_pullable(engine: Engine, reference: str) -> tuple[bool, str]:
    """Whether a registry serves the image's manifest (nothing is downloaded but the manifest),
    and the engine's message when it does not."""
    result = ask(engine, "manifest", "inspect", reference)
    return result.returncode == 0, "" if result.returncode == 0 else message(result)


def pull(engine: Engine, reference: str) -> tuple[bool, str]:
    """Pull the image; (done, the engine's message when not)."""
    result = ask(engine, "pull", "--quiet", reference, timeout=PULL_TIMEOUT)
    return result.returncode == 0, "" if result.returncode == 0 else message(result)


def host_tag() -> str:
    """This host's name as a container name allows it."""
    return re.sub(r"[^a-zA-Z0-9]+", "-", socket.gethostname()).strip("-")[:40] or "host"


def container_name(token: str) -> str:
    """`aisdp-rerun-<host>-<pid>-<token>`: a later rerun on this host removes it when that
    pid is gone (`remove_stale_containers`)."""
    return f"{NAME_PREFIX}{host_tag()}-{os.getpid()}-{token}"


def owner_pid(name: str) -> int | None:
    """The pid in a rerun container's name if it was started on this host, else None."""
    match = re.fullmatch(re.escape(f"{NAME_PREFIX}{host_tag()}-") + r"(\d+)-[A-Za-z0-9]+",
                         name.strip().lstrip("/"))
    return int(match[1]) if match else None


def remove_argv(engine: Engine, names: list[str]) -> list[str]:
    """The command that kills and removes containers at once (Podman's `rm --force` would
    first wait 10 s for a SIGTERM a training process as pid 1 never handles)."""
    wait = ["--time", "0"] if engine.name == "podman" else []
    return [engine.path, "rm", "--force", *wait, *names]


def remove_containers(engine: Engine, names: list[str]) -> None:
    """Kill and remove containers (gone already is fine)."""
    if names:
        ask(engine, *remove_argv(engine, names)[1:], timeout=120)


def rerun_containers(engine: Engine) -> list[str]:
    """The names of every container (running or not) that carries the rerun label."""
    result = ask(engine, "ps", "--all", "--filter", f"label={LABEL}", "--format", "{{.Names}}")
    return [line.strip() for line in result.stdout.splitlines() if line.strip()] \
        if result.returncode == 0 else []


def remove_stale_containers(engine: Engine) -> list[str]:
    """Remove the rerun containers of this host whose aisdp-log is gone (killed outright);
    returns their names."""
    stale = [name for name in rerun_containers(engine)
             if (pid := owner_pid(name)) is not None and not pid_alive(pid)]
    remove_containers(engine, stale)
    return stale
