"""Which Python a rerun trains with: for every planned row, the command, variables and
`Environment` label its runs start with, settled before any worktree or run folder exists.

`--env current` runs the command as configured, after the pre-flight of its interpreter
(`preflight.py`); `--env lock` runs it in the environment built from the row's lock file
(`lockenv.py`), pre-flighted the same way; `--env image` runs it inside the container image
the row recorded (`container.py`). The stderr tail of a failed run is `tail.py`.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from aisdp_log.errors import AisdpLogError
from aisdp_log.record.environment import summarise
from aisdp_log.rerun.container import (
    ContainerSpec,
    engine_for,
    ensure_image,
    image_entry,
    missing_packages,
    needs_tool,
    probe_image,
    same_path_mounts,
    tool_package,
)
from aisdp_log.rerun.lockenv import (
    ensure_environment,
    env_folder,
    environment_variables,
    python_in,
    read_lock,
)
from aisdp_log.rerun.preflight import (
    check_interpreter,
    is_python,
    recorded_environment,
    resolve_first_word,
)
from aisdp_log.system.containers import Engine, image_environment, image_local

ENV_MODES = ("current", "lock", "image")


@dataclass
class RunEnvironment:
    """How the runs of one row start: the command, variables to set, and the `Environment`
    text of its `Reruns` rows."""

    command: list[str]
    label: str
    #: variables to set; None removes one (a locked environment drops PYTHONPATH)
    variables: dict[str, str | None] = field(default_factory=dict)
    #: `--env image`: the command runs inside this container (see container.py)
    container: ContainerSpec | None = None

    def describe(self, captured: dict | None) -> str:
        """The `Reruns` row's `Environment`: the label, then what the run itself recorded
        (run.json's environment): for `lock` the versions the rebuilt environment had, for
        both the CPU instruction set, which no environment rebuild can promise."""

        if not isinstance(captured, dict):
            return self.label
        try:
            if self.label.startswith(("lock:", "image:")):
                extra = summarise(dict(captured, lock_file=None, image=None))
            else:
                isa = (captured.get("cpu") or {}).get("isa")
                extra = f"cpu {isa}" if isa else ""
        except (AttributeError, TypeError):  # a hand-edited run.json
            extra = ""
        return f"{self.label}; {extra}" if extra else self.label

    def apply(self, env: Mapping[str, str]) -> dict[str, str]:
        env = dict(env)
        for name, value in self.variables.items():
            if value is None:
                env.pop(name, None)
            else:
                env[name] = value
        return env


@dataclass
class Preparation:
    """The pre-flight's verdict for every planned row."""

    by_experiment: dict[str, RunEnvironment] = field(default_factory=dict)
    lines: list[str] = field(default_factory=list)
    #: `--env image`: the engine the runs use (its leftovers are swept before they start)
    engine: Engine | None = None


# --------------------------------------------------------------------------- preparing a rerun

def prepare(outcomes: list, command: tuple[str, ...] | list[str], env_mode: str,
            repo_root: Path, dry_run: bool = False,
            progress=None, settings=None) -> Preparation:
    """Pre-flight every planned row (for `lock`, build or reuse its environment; for `image`,
    find the engine and the image) before anything runs; raises AisdpLogError (exit 2) for a
    row that cannot run as asked. `settings` is the config's `[rerun]` (engine, gpus,
    network)."""
    if env_mode not in ENV_MODES:
        raise AisdpLogError(f"--env must be one of {', '.join(ENV_MODES)}, not {env_mode!r}")
    result = Preparation()
    env = dict(os.environ)
    command = list(command)
    if env_mode == "image":
        return _prepare_images(outcomes, command, repo_root, dry_run, progress, settings)
    for outcome in outcomes:
        plan = outcome.plan
        if plan is None:
            continue
        recorded, source = recorded_environment(plan.artefact_dir, plan.environment_cell)
        needs_tool = source == "run.json"
        if env_mode == "current":
            summary, lines = check_interpreter(
                plan.experiment_id, command, env, repo_root, recorded, source, needs_tool,
                "activate the project's environment (where the training dependencies are "
                "installed), or rerun with --env lock to build the row's locked environment")
            result.by_experiment[plan.experiment_id] = RunEnvironment(
                command, f"current: {summary}")
            result.lines += lines
            continue
        lock_path, lock_hex, blob = read_lock(plan, repo_root)
        label = f"lock: {lock_path} sha256:{lock_hex}"
        base = _base_interpreter(command, env, repo_root)
        folder = env_folder(lock_hex, base)
        if dry_run:
            state = "reuse" if folder.is_dir() else "build"
            result.lines.append(f"{plan.experiment_id}: would {state} the environment of "
                                f"{lock_path} sha256:{lock_hex[:12]} in {folder}")
            result.by_experiment[plan.experiment_id] = RunEnvironment(command, label)
            continue
        venv, built = ensure_environment(folder, lock_path, blob, base, repo_root, plan.commit,
                                         progress)
        run_env = RunEnvironment(list(command), label, environment_variables(venv))
        if is_python(command[0]):
            run_env.command[0] = str(python_in(venv))
        _, lines = check_interpreter(
            plan.experiment_id, run_env.command, run_env.apply(env), repo_root, recorded, source,
            needs_tool, f"the environment built from {lock_path} lacks it: add it to the lock "
            f"file (the environment is in {venv})")
        result.lines.append(f"{plan.experiment_id}: {'built' if built else 'reusing'} the "
                            f"environment of {lock_path} sha256:{lock_hex[:12]} in {venv}")
        result.lines += lines
        result.by_experiment[plan.experiment_id] = run_env
    return result


def _prepare_images(outcomes: list, command: list[str], repo_root: Path, dry_run: bool,
                    progress, settings) -> Preparation:
    """`--env image`: every row's image entry first (no process yet), then the engine, then
    each distinct image (pulled when absent) and one probe of its interpreter."""
    result = Preparation()
    planned = [outcome.plan for outcome in outcomes if outcome.plan is not None]
    entries = {plan.experiment_id: image_entry(plan.experiment_id, plan.environment_cell)
               for plan in planned}
    if not planned:
        return result
    engine = result.engine = engine_for(getattr(settings, "engine", None))
    network = getattr(settings, "network", "none")
    gpus = getattr(settings, "gpus", 0)
    mounts = same_path_mounts(repo_root)
    probed: dict[str, dict | None] = {}
    declared: dict[str, dict[str, str]] = {}
    for plan in planned:
        image = entries[plan.experiment_id].pinned
        label = f"image: {image}; {engine.label}"
        if dry_run:
            where = "in the local store" if image_local(engine, image) else \
                "not local: it would be pulled"
            result.lines.append(f"{plan.experiment_id}: would run in {image} with "
                                f"{engine.label} ({where}; network {network})")
            result.by_experiment[plan.experiment_id] = RunEnvironment(list(command), label)
            continue
        recorded, source = recorded_environment(plan.artefact_dir, plan.environment_cell)
        if image not in probed:
            if ensure_image(engine, image, progress):
                result.lines.append(f"pulled {image} with {engine.label}")
            probed[image] = probe_image(engine, image, command, recorded, network)
            declared[image] = image_environment(engine, image)
        answer = probed[image]
        missing = missing_packages(answer)
        if missing:
            raise AisdpLogError(f"{plan.experiment_id}: image {image} has no "
                                f"{', '.join(missing)}, which the run needs ({source} "
                                "records it); rerun in the image the run was trained in")
        tool = tool_package() if needs_tool(answer) else None
        spec = ContainerSpec(engine, image, tool, gpus, network, list(mounts),
                             image_env=declared[image])
        result.by_experiment[plan.experiment_id] = RunEnvironment(list(command), label,
                                                                  container=spec)
        python = (answer or {}).get("python")
        result.lines.append(
            f"{plan.experiment_id}: running in {image} with {engine.label}"
            + (f" (python {python})" if python else "")
            + ("; aisdp_log mounted read-only from this aisdp-log" if tool else "")
            + (f"; network {network}" if network != "none" else "; no network"))
    return result


def _base_interpreter(command: list[str], env: dict, cwd: Path) -> str:
    """The Python a locked environment is made from: the command's own interpreter when it is
    one (so `python` means the same version), else the one running this tool."""
    found = resolve_first_word(command, env, cwd) if is_python(command[0]) else None
    return found or sys.executable
