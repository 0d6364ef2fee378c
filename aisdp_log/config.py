"""`aisdp.toml`: lookup, parsing and defaults. Settings come from this file, never from cells."""

from __future__ import annotations

import math
import re
import sys

# A version check, not try/except ImportError: mypy follows it (tomllib is new in 3.11).
if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10
    import tomli as tomllib
from dataclasses import dataclass, field
from pathlib import Path

from aisdp_log.errors import ConfigError
from aisdp_log.spec import DEFAULT_ID_PATTERN, GOALS, MetricSpec

CONFIG_NAME = "aisdp.toml"
PARAM_KINDS = ("float", "int", "str", "bool")

#: What the template declares when there is no `[template]` table.
EXAMPLE_PARAMS: dict[str, object] = {
    "learning_rate": "float",
    "epochs": "int",
    "batch_size": "int",
    "optimizer": ["sgd", "adam"],
}
EXAMPLE_METRICS: dict[str, MetricSpec] = {
    "accuracy": MetricSpec("accuracy", "max", 0.85, "holdout accuracy"),
    "f1": MetricSpec("f1", "max", None, "holdout macro F1"),
}


@dataclass(frozen=True)
class ParamSpec:
    name: str
    kind: str = "float"
    choices: tuple[str, ...] = ()


EXECUTORS = ("local", "slurm")


@dataclass(frozen=True)
class SlurmConfig:
    """`[rerun.slurm]`: what each run's `sbatch` asks for; None leaves Slurm's default."""

    partition: str | None = None
    gpus_per_run: int | None = None      # default: [rerun] gpus
    cpus_per_run: int | None = None
    mem: str | None = None               # as sbatch --mem takes it: "16G"
    time: str | None = None              # as sbatch --time takes it: "02:00:00"
    account: str | None = None
    sbatch_args: tuple[str, ...] = ()    # more arguments, passed to sbatch as they are


@dataclass(frozen=True)
class RerunConfig:
    command: tuple[str, ...] = ()
    runs: int = 5
    confidence: float = 0.95
    timeout: float | None = 3600.0
    executor: str = "local"
    gpus: int = 0                        # devices per run (0: runs see the parent's devices)
    slurm: SlurmConfig = field(default_factory=SlurmConfig)
    #: `--env image`: "docker" or "podman" (None: whichever answers, docker first)
    engine: str | None = None
    #: `--env image`: the container's `--network` ("none": no network)
    network: str = "none"


@dataclass(frozen=True)
class Config:
    """Everything `aisdp.toml` can set, with the defaults that apply without it."""

    root: Path = field(default_factory=Path.cwd)
    path: Path | None = None
    artefacts: str = "artefacts"
    id_pattern: str = DEFAULT_ID_PATTERN
    data: tuple[str, ...] = ()
    params: tuple[ParamSpec, ...] = ()
    metrics: tuple[MetricSpec, ...] = ()
    has_template: bool = False
    rerun: RerunConfig = field(default_factory=RerunConfig)
    #: `[signers]`: principal (e-mail) -> the only "Name, Role" it may sign as; empty: any
    signers: dict[str, str] = field(default_factory=dict)

    @property
    def artefacts_dir(self) -> Path:
        return self.root / self.artefacts

    @property
    def id_regex(self) -> re.Pattern:
        return re.compile(self.id_pattern)

    def template_params(self) -> tuple[ParamSpec, ...]:
        return self.params if self.has_template else _parse_params(EXAMPLE_PARAMS, None)

    def template_metrics(self) -> tuple[MetricSpec, ...]:
        return self.metrics if self.has_template else tuple(EXAMPLE_METRICS.values())

    def param(self, name: str) -> ParamSpec | None:
        for spec in self.params:
            if spec.name.casefold() == name.casefold():
                return spec
        return None


def find_config(root: Path) -> Path | None:
    path = Path(root) / CONFIG_NAME
    return path if path.is_file() else None


def load_config(root: Path | str | None = None, path: Path | str | None = None) -> Config:
    """Read `aisdp.toml` from `path`, or from `root`; defaults where there is none."""
    root = Path(root) if root is not None else Path.cwd()
    if path is None:
        path = find_config(root)
        if path is None:
            return Config(root=root)
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    try:
        return _build(data, root, path)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def _build(data: dict, root: Path, path: Path) -> Config:
    known = {"artefacts", "id_pattern", "data", "template", "rerun", "signers"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"unknown key {unknown[0]!r} (known: {', '.join(sorted(known))})")
    artefacts = data.get("artefacts", "artefacts")
    if not isinstance(artefacts, str) or not artefacts.strip():
        raise ConfigError("'artefacts' must be a folder path as text")
    id_pattern = data.get("id_pattern", DEFAULT_ID_PATTERN)
    if not isinstance(id_pattern, str):
        raise ConfigError("'id_pattern' must be a regular expression as text")
    try:
        re.compile(id_pattern)
    except re.error as exc:
        raise ConfigError(f"'id_pattern' is not a valid regular expression ({exc})") from None
    dvc_files = data.get("data", [])
    if isinstance(dvc_files, str):
        dvc_files = [dvc_files]
    if not isinstance(dvc_files, list) or not all(isinstance(p, str) for p in dvc_files):
        raise ConfigError("'data' must be a list of .dvc file or dvc.lock paths")
    template = data.get("template")
    has_template = template is not None
    template = template or {}
    if not isinstance(template, dict):
        raise ConfigError("[template] must be a table")
    params = _parse_params(template.get("params", {}), "template.params")
    metrics = _parse_metrics(template.get("metrics", {}))
    return Config(
        root=root, path=path, artefacts=artefacts, id_pattern=id_pattern,
        data=tuple(dvc_files), params=params, metrics=metrics, has_template=has_template,
        rerun=_parse_rerun(data.get("rerun", {})),
        signers=_parse_signers(data.get("signers", {})),
    )


def _parse_signers(table: object) -> dict[str, str]:
    """`[signers]`: `"ada@example.org" = "Ada Lovelace, Head of ML"`, one line per principal."""
    if not isinstance(table, dict):
        raise ConfigError("[signers] must be a table of \"e-mail\" = \"Name, Role\"")
    signers = {}
    for principal, name_and_role in table.items():
        name, sep, role = str(name_and_role).partition(",")
        if "@" not in principal or any(c.isspace() or c in "<>," for c in principal):
            raise ConfigError(f"signers: {principal!r} is not an e-mail principal")
        if not isinstance(name_and_role, str) or not sep or not name.strip() \
                or not role.strip():
            raise ConfigError(f"signers.{principal!r}: write \"Name, Role\", e.g. "
                              "\"Ada Lovelace, Head of ML\"")
        signers[principal] = f"{' '.join(name.split())}, {' '.join(role.split())}"
    return signers


def _parse_params(table: object, where: str | None) -> tuple[ParamSpec, ...]:
    if not isinstance(table, dict):
        raise ConfigError(f"'{where}' must be a table of name = type")
    specs = []
    for name, kind in table.items():
        if isinstance(kind, list):
            if not kind or not all(isinstance(c, (str, int, float)) for c in kind):
                raise ConfigError(f"params.{name}: a choice list needs at least one value")
            specs.append(ParamSpec(name, "choice", tuple(str(c) for c in kind)))
        elif isinstance(kind, str) and kind in PARAM_KINDS:
            specs.append(ParamSpec(name, kind))
        else:
            raise ConfigError(
                f"params.{name}: type must be one of {', '.join(PARAM_KINDS)} or a list of choices")
    return tuple(specs)


def _parse_metrics(table: object) -> tuple[MetricSpec, ...]:
    if not isinstance(table, dict):
        raise ConfigError("'template.metrics' must be a table")
    specs = []
    for name, entry in table.items():
        if not isinstance(entry, dict):
            raise ConfigError(f"metrics.{name}: expected {{ goal = \"max\", threshold = ... }}")
        goal = entry.get("goal", "max")
        if goal not in GOALS:
            raise ConfigError(f"metrics.{name}: goal must be 'max' or 'min', not {goal!r}")
        threshold = entry.get("threshold")
        # TOML has nan and inf; neither is a threshold (nor can the template write it)
        if threshold is not None and (isinstance(threshold, bool)
                                      or not isinstance(threshold, (int, float))
                                      or not math.isfinite(threshold)):
            raise ConfigError(f"metrics.{name}: threshold must be a finite number")
        tolerance = entry.get("tolerance")
        if tolerance is not None and (isinstance(tolerance, bool)
                                      or not isinstance(tolerance, (int, float))
                                      or not math.isfinite(tolerance) or tolerance < 0):
            raise ConfigError(f"metrics.{name}: tolerance must be a finite number of 0 or more "
                              "(how far a recorded value may lie from the reruns' mean)")
        description = entry.get("description", "")
        specs.append(MetricSpec(name, goal, None if threshold is None else float(threshold),
                                str(description),
                                None if tolerance is None else float(tolerance)))
    return tuple(specs)


def _parse_rerun(table: object) -> RerunConfig:
    if not isinstance(table, dict):
        raise ConfigError("[rerun] must be a table")
    command = table.get("command", [])
    if isinstance(command, str):
        raise ConfigError("rerun.command must be an argument list such as "
                          "[\"python\", \"train.py\"], never a shell string")
    if not isinstance(command, list) or not all(isinstance(a, str) for a in command):
        raise ConfigError("rerun.command must be a list of strings")
    runs = table.get("runs", 5)
    if isinstance(runs, bool) or not isinstance(runs, int) or not 1 <= runs <= 100:
        raise ConfigError("rerun.runs must be a whole number from 1 to 100")
    confidence = table.get("confidence", 0.95)
    if isinstance(confidence, bool) or not isinstance(confidence, (int, float)) \
            or not 0 < confidence < 1:
        raise ConfigError("rerun.confidence must be a number between 0 and 1, such as 0.95")
    timeout = table.get("timeout", 3600)
    if timeout is not None and (isinstance(timeout, bool)
                                or not isinstance(timeout, (int, float)) or timeout <= 0):
        raise ConfigError("rerun.timeout must be a positive number of seconds")
    executor = table.get("executor", "local")
    if executor not in EXECUTORS:
        raise ConfigError(f"rerun.executor must be one of {', '.join(EXECUTORS)}, "
                          f"not {executor!r}")
    gpus = table.get("gpus", 0)
    if isinstance(gpus, bool) or not isinstance(gpus, int) or not 0 <= gpus <= 64:
        raise ConfigError("rerun.gpus must be a whole number of devices per run, 0 to 64")
    engine = table.get("engine")
    if engine is not None and engine not in ("docker", "podman"):
        raise ConfigError('rerun.engine must be "docker" or "podman"')
    network = table.get("network", "none")
    if not isinstance(network, str) or not re.fullmatch(r"[A-Za-z0-9][\w.:-]*", network):
        raise ConfigError('rerun.network must be a container network name such as "none" '
                          '(the default) or "bridge"')
    return RerunConfig(tuple(command), runs, float(confidence),
                       None if timeout is None else float(timeout), executor, gpus,
                       _parse_slurm(table.get("slurm", {})), engine=engine, network=network)


def _parse_slurm(table: object) -> SlurmConfig:
    if not isinstance(table, dict):
        raise ConfigError("[rerun.slurm] must be a table")
    known = {"partition", "gpus_per_run", "cpus_per_run", "mem", "time", "account",
             "sbatch_args"}
    unknown = sorted(set(table) - known)
    if unknown:
        raise ConfigError(f"rerun.slurm: unknown key {unknown[0]!r} "
                          f"(known: {', '.join(sorted(known))})")
    values: dict = {}
    for key in ("partition", "mem", "time", "account"):
        value = table.get(key)
        if value is not None and (not isinstance(value, str) or not value.strip()
                                  or any(c.isspace() for c in value.strip())):
            raise ConfigError(f"rerun.slurm.{key} must be one word of text, as sbatch "
                              f"--{key} takes it")
        values[key] = value.strip() if value is not None else None
    for key in ("gpus_per_run", "cpus_per_run"):
        value = table.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                  or not 0 <= value <= 1024):
            raise ConfigError(f"rerun.slurm.{key} must be a whole number")
        values[key] = value
    args = table.get("sbatch_args", [])
    if isinstance(args, str) or not isinstance(args, list) or \
            not all(isinstance(a, str) for a in args):
        raise ConfigError("rerun.slurm.sbatch_args must be a list of arguments such as "
                          "[\"--qos=high\", \"--constraint=a100\"], never a shell string")
    return SlurmConfig(sbatch_args=tuple(args), **values)
