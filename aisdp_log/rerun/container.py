"""`rerun --env image`: run `[rerun] command` inside the container image the row recorded
(`image: NAME@sha256:<64 hex>` in its Environment cell), with Docker or Podman.

Before any worktree or run folder exists, each row's image entry is read (none, one by tag
only, a malformed or a second one refuses the rerun), the engine is found (`[rerun] engine`,
else docker then podman: the first that answers), the image is looked up in the engine's
store and pulled when absent (refused with the engine's message when it cannot be), and one
short container asks the image's interpreter for its Python version and whether it has
`aisdp_log` and the packages the row records.

Each run then starts as

    <engine> run --rm --name aisdp-rerun-<host>-<pid>-<token> --label aisdp-log.rerun=<pid>
        --pull=never --network none --user <uid>:<gid> --tmpfs /tmp
        -v <worktree>:<worktree> -v <run folder>:<run folder> -w <worktree>
        [-v <DVC cache>:<same>:ro] [-v <repo>/.git:<same>:ro]
        [-v <aisdp_log>:/opt/aisdp-log/aisdp_log:ro -e PYTHONPATH=/opt/aisdp-log]
        [--gpus N | --device nvidia.com/gpu=I ...] -e AISDP_...=... <NAME@sha256:hex> <command>

so paths inside are the paths outside, the data is the worktree's (fetched by DVC as for the
other environments), and files written belong to the caller. An image without `aisdp_log`
gets the running tool's package mounted read-only and put on `PYTHONPATH` (it is pure
Python: `record_run` needs only the standard library). The container is removed when its run
ends, is stopped, times out, or when aisdp-log is killed outright (the lifeline runs
`<engine> rm --force <name>`); a later rerun removes any that still carry the label of a dead
aisdp-log (`system/containers.py`).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from aisdp_log.domain.images import ImageEntry, image_entries
from aisdp_log.errors import AisdpLogError
from aisdp_log.record.environment import DETERMINISM_VARS, IMAGE_VAR
from aisdp_log.repo.dvcfiles import cache_dirs
from aisdp_log.rerun.preflight import PROBE, RECORDED_PACKAGES, TOOL_DIST, TOOL_MODULE, is_python
from aisdp_log.system.containers import (
    LABEL,
    Engine,
    ask,
    container_name,
    find_engine,
    image_local,
    message,
    pull,
)

#: Where the running tool's package is mounted in an image that lacks it.
TOOL_MOUNT = "/opt/aisdp-log"


@dataclass
class ContainerSpec:
    """How one row's runs start in its image."""

    engine: Engine
    image: str  # NAME@sha256:<hex>
    #: the tool's package folder to mount read-only (the image lacks aisdp_log), else None
    tool: Path | None = None
    gpus: int = 0
    network: str = "none"
    #: (host path, read-only) mounted at the same path inside
    mounts: list[tuple[Path, bool]] = field(default_factory=list)
    #: the variables the image itself sets (its `ENV`)
    image_env: dict[str, str] = field(default_factory=dict)

    def argv(self, command: list[str], tree: Path, folder: Path, variables: dict[str, str],
             name: str, devices: list[str] | None = None) -> list[str]:
        """The engine command line of one run (see the module docstring); `devices` are the
        GPUs the pool leased to this run (else the first `gpus`)."""
        argv = [self.engine.path, "run", "--rm", "--name", name, "--label",
                f"{LABEL}={os.getpid()}", "--pull=never", "--network", self.network,
                *user_options(self.engine), "--tmpfs", "/tmp",
                "-v", f"{tree}:{tree}", "-v", f"{folder}:{folder}", "-w", str(tree)]
        for path, read_only in self.mounts:
            argv += ["-v", f"{path}:{path}" + (":ro" if read_only else "")]
        passed = dict(variables)
        if self.tool is not None:  # before the image's own PYTHONPATH, which stays
            argv += ["-v", f"{self.tool}:{TOOL_MOUNT}/{TOOL_MODULE}:ro"]
            passed["PYTHONPATH"] = ":".join(
                [TOOL_MOUNT] + ([self.image_env["PYTHONPATH"]]
                                if self.image_env.get("PYTHONPATH") else []))
        if "HOME" not in self.image_env:  # the caller's uid may have no home in the image
            passed.setdefault("HOME", "/tmp")
        argv += gpu_options(self.engine.name, self.gpus, devices)
        for key, value in sorted(passed.items()):
            argv += ["-e", f"{key}={value}"]
        return [*argv, self.image, *command]


def user_options(engine: Engine) -> list[str]:
    """Run as the caller: `--user uid:gid`; rootless Podman also keeps the caller's id in the
    container's user namespace (`--userns=keep-id`), so files written are the caller's."""
    if not hasattr(os, "getuid"):
        return []
    options = ["--user", f"{os.getuid()}:{os.getgid()}"]
    if engine.name == "podman" and os.getuid() != 0:
        options.insert(0, "--userns=keep-id")
    return options


def gpu_options(engine: str, gpus: int, devices: list[str] | None = None) -> list[str]:
    """GPUs for the container: Docker's `--gpus`, Podman's CDI devices (`nvidia.com/gpu=I`,
    from `nvidia-ctk cdi generate`). `devices` (ids or UUIDs leased from the GPU pool) name
    them; else the first `gpus`. Inside, the container sees only those, from index 0."""
    if not gpus:
        return []
    chosen = list(devices) if devices else [str(index) for index in range(gpus)]
    if engine == "docker":
        return ["--gpus", f'"device={",".join(chosen)}"'] if devices else ["--gpus", str(gpus)]
    return [option for device in chosen for option in ("--device", f"nvidia.com/gpu={device}")]


def container_variables(run_variables: dict[str, str], image: str) -> dict[str, str]:
    """What a run's container gets: the `AISDP_*` variables of the run, `AISDP_IMAGE` (so
    `record_run` inside records the image it ran in) and the host's result-changing
    variables that are set (MKL_CBWR, ...); nothing else of the host's environment."""
    passed = {key: value for key, value in run_variables.items() if key.startswith("AISDP_")}
    # (CUDA_VISIBLE_DEVICES stays out: the engine passes the leased devices, renumbered)
    passed.update({name: os.environ[name] for name in DETERMINISM_VARS if os.environ.get(name)})
    passed[IMAGE_VAR] = image
    return passed


# --------------------------------------------------------------------------- before any work

def image_entry(experiment_id: str, environment_cell: str | None) -> ImageEntry:
    """The row's one pinned image entry; AisdpLogError (one line) otherwise."""
    entries = image_entries(environment_cell)
    if not entries:
        raise AisdpLogError(f"{experiment_id}: --env image needs the image the run used, but "
                            "its Environment cell names none; record it as `image: "
                            "NAME@sha256:<64 hex>` (record_run does when AISDP_IMAGE is set)")
    if len(entries) > 1:
        raise AisdpLogError(f"{experiment_id}: its Environment cell names "
                            f"{len(entries)} images ({', '.join(e.text for e in entries)}); "
                            "--env image needs exactly one")
    entry = entries[0]
    if entry.problem is not None:
        raise AisdpLogError(f"{experiment_id}: image entry {entry.text!r} is malformed (S013): "
                            f"{entry.problem}")
    if entry.digest is None:
        raise AisdpLogError(f"{experiment_id}: image {entry.text} is named by tag, without a "
                            "digest (G008); --env image runs only the image the digest pins")
    return entry


def engine_for(preferred: str | None) -> Engine:
    """The engine `--env image` uses; AisdpLogError naming both engines when none answers."""
    engine, reason = find_engine(preferred)
    if engine is None:
        raise AisdpLogError(f"--env image needs a container engine: {reason}")
    return engine


def ensure_image(engine: Engine, image: str, progress=None) -> bool:
    """The image in the engine's store, pulled first when absent; True if pulled now.
    AisdpLogError naming the image and the engine's message when it cannot be had."""
    if image_local(engine, image):
        return False
    if progress:
        progress(f"pulling {image} ({engine.name})")
    done, why = pull(engine, image)
    if not done:
        raise AisdpLogError(f"image {image} is not in {engine.name}'s local store and cannot "
                            f"be pulled: {why}")
    return True


def probe_image(engine: Engine, image: str, command: list[str], recorded: dict,
                network: str) -> dict | None:
    """Ask the image's interpreter (the command's first word, inside the image) for its Python
    version and packages; None when the command is not a Python interpreter. AisdpLogError
    when the image cannot start it."""
    if not is_python(command[0]):
        return None
    wanted = [(dist, module) for dist, module, key in RECORDED_PACKAGES if recorded.get(key)]
    wanted.append((TOOL_DIST, TOOL_MODULE))
    name = container_name("probe" + os.urandom(3).hex())
    result = ask(engine, "run", "--rm", "--name", name, "--label", f"{LABEL}={os.getpid()}",
                 "--pull=never", "--network", network, *user_options(engine), image,
                 command[0], "-c", PROBE, json.dumps(wanted), timeout=300)
    try:
        answer = json.loads(result.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise AisdpLogError(f"image {image} cannot run {command[0]!r} ({engine.name}: "
                            f"{message(result)}); set [rerun] command to the image's "
                            "interpreter") from None
    return answer if isinstance(answer, dict) else None


def missing_packages(answer: dict | None) -> list[str]:
    """The recorded packages (torch, numpy) the image lacks."""
    if answer is None:
        return []
    packages = answer.get("packages") or {}
    return [dist for dist, info in packages.items()
            if dist != TOOL_DIST and not (info or {}).get("found")]


def needs_tool(answer: dict | None) -> bool:
    """Whether to mount the tool: the image lacks aisdp_log (or its interpreter could not be
    asked)."""
    if answer is None:
        return True
    return not ((answer.get("packages") or {}).get(TOOL_DIST) or {}).get("found")


def same_path_mounts(repo_root: Path) -> list[tuple[Path, bool]]:
    """Read-only mounts at the same path: the DVC cache (data checked out as links into it
    still resolve) and the repository's `.git` (a worktree's `.git` file points there, so an
    image with git records the commit)."""
    mounts = []
    cache = cache_dirs(repo_root)[0]
    if cache.is_dir():
        mounts.append((cache.resolve(), True))
    git_dir = repo_root / ".git"
    if git_dir.is_dir():
        mounts.append((git_dir.resolve(), True))
    return mounts


def tool_package() -> Path:
    """The running aisdp_log package folder."""
    return Path(__file__).resolve().parent.parent
