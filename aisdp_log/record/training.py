"""Seed and record a training run into its artefact folder, so nobody copies hashes by hand.

    from aisdp_log.training import record_run

    with record_run("EXP-001", seed=42, params={"learning_rate": 1e-3, "epochs": 20}) as run:
        model = train(run.params)                      # already seeded
        for epoch, loss in ...:
            run.log_epoch(epoch, loss=loss)            # history.csv, `epoch` column first
        run.log_metrics(accuracy=0.93)                 # metrics.json, a flat object
        run.save_model(model)                          # model.safetensors: same weights, same bytes

torch is optional: this module imports it only inside the functions that need it.

`Run` attributes: `experiment_id`, `seed`, `params` (merged), `artefact_dir`, `repo`; methods
`log_epoch(epoch, **metrics)`, `log_metrics(**metrics)`, `save_model(model, name=...)`,
`path(name)`; after the block `status`, `artefact_hash` and `record` (run.json as written).

`seed_everything(seed, deterministic=False)` seeds `random`, NumPy's global generator and torch
(CPU and every CUDA device) when they are installed, and sets `PYTHONHASHSEED` for child
processes (the running interpreter's hash seed is fixed at start-up and cannot change).
`deterministic=True` also calls `torch.use_deterministic_algorithms(True)`, sets
`CUBLAS_WORKSPACE_CONFIG=:4096:8`, `cudnn.deterministic = True` and `cudnn.benchmark = False`;
`deterministic=False` leaves those settings as they are.

`record_run(...)` is a context manager returning a `Run`. Where things come from:
- Each of `AISDP_EXPERIMENT_ID`, `AISDP_SEED`, `AISDP_PARAMS` and `AISDP_ARTEFACT_DIR` wins over
  the matching argument: the rerun helper sets them from the log row, and a rerun must reproduce
  the row, not the script's current defaults. `AISDP_PARAMS` is a JSON object merged over
  `params` (keys the script does not know are added); a value takes the type of the script's
  default where that is exact (`20.0` for an int default becomes `20`), because a workbook
  stores every number as a float.
- No seed anywhere: a random one is drawn and recorded, so the run can still be repeated.
- The folder is `AISDP_ARTEFACT_DIR` when set, else `<artefacts>/<ID>/` where `<artefacts>` is
  the `artefacts` argument (relative to the current directory) or `aisdp.toml`'s `artefacts`
  under the repository root. The repository is `repo`, else the git work tree holding the current
  directory, else the current directory. The ID must match `id_pattern` and name one folder
  inside `<artefacts>`.
- A folder that already holds a run (a `run.json`, or any model file) is refused, because
  evidence is never silently overwritten; `overwrite=True` empties it first (keeping `reruns/`).
  The one exception is a folder whose `run.json` says the run failed or never finished
  (`status` `failed` or `running`): retrying it is allowed, with a warning, and empties it.

On entry the run writes `run.json` with status `running` (a killed process leaves that behind)
and seeds. On exit, normal or by exception, it rewrites `run.json` with status `completed` or
`failed` (with `error`: type and message; the exception propagates), the duration and the
artefact hash of the folder as it is at the end. `run.json` keys:
    experiment_id, seed, deterministic, params, commit (full SHA of HEAD, or None outside git),
    dirty (tracked changes outside the artefacts folder, `git status --untracked-files=no`),
    data_version, data, started (ISO 8601 UTC), duration_s, status, error, artefact_hash,
    tool_version, environment (see aisdp_log.record.environment; `environment.summary` is the
    `Environment` cell).
`data` lists every DVC output `{source, path, md5}` (`source` the `.dvc` file or `dvc.lock`,
`path` from the repository root) that `aisdp.toml` `data` names, else of every `.dvc` file and
`dvc.lock` in the working tree, chosen and parsed as the validator does (aisdp_log.repo.dvcfiles).
`data_version` is the one md5 when there is exactly one output; with several it is the commit
(docs/workbook-format.md: "a git commit at which the .dvc files pin the data"), or None when
those `.dvc` files have uncommitted changes, since then no commit pins them. None without DVC
data.

All JSON is written atomically (temporary file, fsync, os.replace) with sorted keys, indent 2.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import math
import operator
import os
import random
import secrets
import shutil
import time
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Literal, SupportsIndex

from aisdp_log import __version__
from aisdp_log.artefacts.digests import RECORD_DIRS, RECORD_FILES
from aisdp_log.artefacts.folders import plain_folder_name
from aisdp_log.artefacts.hashing import artefact_hash
from aisdp_log.config import load_config
from aisdp_log.errors import AisdpLogError
from aisdp_log.record.environment import capture_environment
from aisdp_log.record.provenance import data_versions, git_state
from aisdp_log.repo.roots import find_repo_root
from aisdp_log.spec import SEED_MAX
from aisdp_log.system.atomic import atomic_replace, new_file_mode, write_bytes

CUBLAS_WORKSPACE = ":4096:8"
ENV_EXPERIMENT_ID = "AISDP_EXPERIMENT_ID"
ENV_SEED = "AISDP_SEED"
ENV_PARAMS = "AISDP_PARAMS"
ENV_ARTEFACT_DIR = "AISDP_ARTEFACT_DIR"
#: Statuses of a run.json whose folder may be reused: the run never produced evidence.
RETRYABLE = ("failed", "running")

__all__ = ["seed_everything", "record_run", "Run", "RunRecordError", "SEED_MAX"]


class RunRecordError(AisdpLogError):
    """A run cannot be recorded: bad ID, bad AISDP_* variable, folder already holds a run."""


def seed_everything(seed: int, *, deterministic: bool = False) -> int:
    """Seed `random`, NumPy and torch (CPU and CUDA) where installed and set PYTHONHASHSEED for
    child processes; with `deterministic`, make torch pick deterministic algorithms. Returns the
    seed. Raises ValueError for a seed outside 0..4294967295 (NumPy's limit) or not an integer."""
    seed = _check_seed(seed)
    random.seed(seed)
    os.environ["PYTHONHASHSEED"] = str(seed)
    if deterministic:
        # cuBLAS reads this when its handle is created, so set it before any CUDA work.
        os.environ["CUBLAS_WORKSPACE_CONFIG"] = CUBLAS_WORKSPACE
    try:
        import numpy
    except ImportError:
        pass
    else:
        numpy.random.seed(seed)
    try:
        import torch
    except ImportError:
        return seed
    torch.manual_seed(seed)
    torch.cuda.manual_seed_all(seed)  # lazy: does nothing without CUDA
    if deterministic:
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
    return seed


def _check_seed(seed: object) -> int:
    if isinstance(seed, bool) or not isinstance(seed, SupportsIndex):  # no __index__: 4.2, "42"
        raise ValueError(f"seed must be a whole number from 0 to {SEED_MAX}, not {seed!r}")
    try:
        seed = operator.index(seed)  # int, numpy integers; not 4.2 or "42"
    except TypeError:  # an __index__ that returns no int
        raise ValueError(f"seed must be a whole number from 0 to {SEED_MAX}, "
                         f"not {seed!r}") from None
    if not 0 <= seed <= SEED_MAX:
        raise ValueError(f"seed must be a whole number from 0 to {SEED_MAX}, not {seed}")
    return seed


def record_run(experiment_id: str | None = None, *, seed: int | None = None,
               params: dict | None = None, artefacts: str | Path | None = None,
               repo: str | Path | None = None, deterministic: bool = False,
               overwrite: bool = False) -> Run:
    """A context manager that seeds and records one run into its artefact folder; see the
    module docstring for precedence (AISDP_* variables win) and what `run.json` holds.
    Raises RunRecordError (an AisdpLogError) for an ID, variable or folder it cannot use."""
    return Run(experiment_id, seed=seed, params=params, artefacts=artefacts, repo=repo,
               deterministic=deterministic, overwrite=overwrite)


class Run:
    """One training run being recorded. Use through `record_run`; after the `with` block,
    `status`, `artefact_hash` and `record` (the run.json contents) say what was written."""

    def __init__(self, experiment_id: str | None, *, seed: int | None, params: dict | None,
                 artefacts: str | Path | None, repo: str | Path | None, deterministic: bool,
                 overwrite: bool):

        self.repo = Path(repo).resolve() if repo is not None else \
            (find_repo_root(Path.cwd()) or Path.cwd().resolve())
        self.config = load_config(self.repo)
        self.experiment_id = _resolve_id(experiment_id, self.config.id_regex,
                                         self.config.id_pattern)
        self.seed = _resolve_seed(seed)
        self.params = _resolve_params(params)
        self.deterministic = bool(deterministic)
        self.overwrite = overwrite
        self.artefacts_root = (Path(artefacts).resolve() if artefacts is not None
                               else (self.repo / self.config.artefacts).resolve())
        if os.environ.get(ENV_ARTEFACT_DIR):
            self.artefact_dir = Path(os.environ[ENV_ARTEFACT_DIR]).resolve()
        else:
            self.artefact_dir = (self.artefacts_root / self.experiment_id).resolve()
            if self.artefact_dir.parent != self.artefacts_root:
                raise RunRecordError(f"experiment ID {self.experiment_id!r} does not name a "
                                     f"folder inside {self.artefacts_root}")
        self.status: str | None = None
        self.artefact_hash: str | None = None
        self.record: dict = {}
        self._metrics: dict[str, float] = {}
        self._history_columns: list[str] = []
        self._history_rows: list[dict] = []
        self._entered = False

    # -- the context manager ------------------------------------------------------------------
    def __enter__(self) -> Run:
        if self._entered:
            raise RunRecordError("a Run records once: call record_run() again for a new run")
        self._entered = True
        self._claim_folder()
        self._started = dt.datetime.now(dt.timezone.utc)
        self._clock = time.monotonic()
        commit, dirty = git_state(self.repo, self.artefact_dir, self.artefacts_root)
        data, data_version = data_versions(self.repo, self.config, commit,
                                           self.artefacts_root)
        self.record = {
            "experiment_id": self.experiment_id,
            "seed": self.seed,
            "deterministic": self.deterministic,
            "params": self.params,
            "commit": commit,
            "dirty": dirty,
            "data_version": data_version,
            "data": data,
            "started": self._started.isoformat(timespec="seconds"),
            "duration_s": None,
            "status": "running",
            "error": None,
            "artefact_hash": None,
            "tool_version": _tool_version(),
            "environment": None,
        }
        _write_json(self.artefact_dir / "run.json", self.record)
        seed_everything(self.seed, deterministic=self.deterministic)
        return self

    def __exit__(self, exc_type, exc, tb) -> Literal[False]:

        duration = time.monotonic() - self._clock
        self.status = "completed" if exc_type is None else "failed"
        try:
            self.artefact_hash = artefact_hash(self.artefact_dir)
        except (FileNotFoundError, AisdpLogError):
            # No model file (a failed run) or one that cannot be hashed (a symlink leaving the
            # folder): recorded as None; the validator reports the folder, the run stands.
            self.artefact_hash = None
        self.record.update(
            duration_s=round(duration, 3),
            status=self.status,
            error=None if exc_type is None else {"type": exc_type.__name__,
                                                 "message": str(exc)[:2000]},
            artefact_hash=self.artefact_hash,
            environment=capture_environment(self.repo),
        )
        _write_json(self.artefact_dir / "run.json", self.record)
        return False  # an exception in the training code propagates

    # -- what a training script calls ---------------------------------------------------------
    def log_epoch(self, epoch: int, **metrics: float) -> None:
        """Append one row to history.csv: `epoch` first, then metrics in first-seen order. A
        metric first seen in a later epoch adds a column (earlier rows get an empty cell)."""
        row: dict[str, float] = {"epoch": operator.index(epoch)}
        row.update({name: _number(name, value, allow_nan=True)
                    for name, value in metrics.items()})
        path = self.artefact_dir / "history.csv"
        new_columns = [name for name in row if name not in self._history_columns]
        self._history_columns.extend(new_columns)
        self._history_rows.append(row)
        if new_columns or not path.exists():
            text = io.StringIO()
            writer = csv.DictWriter(text, self._history_columns, lineterminator="\n")
            writer.writeheader()
            writer.writerows(self._history_rows)
            write_bytes(path, text.getvalue().encode("utf-8"), mode=new_file_mode())
        else:
            with open(path, "a", encoding="utf-8", newline="") as fh:
                csv.DictWriter(fh, self._history_columns, lineterminator="\n").writerow(row)

    def log_metrics(self, **metrics: float) -> None:
        """Record final metrics (on the holdout test set) in metrics.json, a flat object; later
        calls add to or replace earlier values. NaN and infinity are refused: JSON has none."""
        self._metrics.update({name: _number(name, value, allow_nan=False)
                              for name, value in metrics.items()})
        _write_json(self.artefact_dir / "metrics.json", self._metrics)

    def save_model(self, model, name: str = "model.safetensors") -> Path:
        """Save the model into the folder and return its path.

        A torch module or a state dict (name -> tensor) is written as safetensors: keys
        sorted, tensors contiguous on the CPU, no metadata, so equal weights give equal bytes
        whatever the file name or dict type (torch.save's bytes depend on both). `bytes` are
        written as they are; a `str` or Path names a file or folder to copy (other
        frameworks' models)."""
        target = self.path(name)
        if isinstance(model, (bytes, bytearray, memoryview)):
            write_bytes(target, bytes(model), mode=new_file_mode())
        elif isinstance(model, (str, os.PathLike)):
            source = Path(model)
            if source.is_dir():
                shutil.copytree(source, target)
            elif source.is_file():
                shutil.copyfile(source, target)
            else:
                raise FileNotFoundError(f"{source}: no such model file or folder to copy")
        else:
            _save_safetensors(model, target)
        return target

    def path(self, name: str) -> Path:
        """Path for an extra artefact file inside the folder (parents created). The record
        files (run.json, metrics.json, history.csv) and `reruns/` are the tool's."""
        relative = Path(name)
        if relative.is_absolute() or not relative.parts or ".." in relative.parts:
            raise ValueError(f"{name!r} must be a relative path inside the artefact folder")
        if relative.parts[0] in RECORD_DIRS or \
                (len(relative.parts) == 1 and relative.name in RECORD_FILES):
            raise ValueError(f"{name!r} is written by aisdp-log: use log_metrics/log_epoch, "
                             "or pick another name")
        target = self.artefact_dir / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        return target

    # -- internals ------------------------------------------------------------------------------
    def _claim_folder(self) -> None:
        folder = self.artefact_dir
        if folder.exists() and not folder.is_dir():
            raise RunRecordError(f"{folder} exists and is not a folder")
        folder.mkdir(parents=True, exist_ok=True)
        contents = [p for p in folder.iterdir() if p.name not in RECORD_DIRS]
        if not contents:
            return
        status = _recorded_status(folder / "run.json")
        if not self.overwrite:
            if status not in RETRYABLE:
                what = f"a run with status {status!r}" if status else "files"
                raise RunRecordError(
                    f"{folder} already holds {what}: evidence is never overwritten silently; "
                    "use a new experiment ID, or pass overwrite=True to replace it")
            warnings.warn(f"{folder}: replacing a run that did not complete "
                          f"(status {status!r})", stacklevel=3)
        for path in contents:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()


def _recorded_status(path: Path) -> str | None:
    try:
        status = json.loads(path.read_text(encoding="utf-8")).get("status")
    except (OSError, ValueError, AttributeError, RecursionError):
        return None
    return status if isinstance(status, str) else None


def _resolve_id(experiment_id: str | None, id_regex, id_pattern: str) -> str:

    value = os.environ.get(ENV_EXPERIMENT_ID) or experiment_id
    if not value:
        raise RunRecordError(f"no experiment ID: pass record_run('EXP-001') or set "
                             f"{ENV_EXPERIMENT_ID}")
    if not isinstance(value, str):
        raise RunRecordError(f"experiment ID must be text, not {value!r}")
    # A folder name, whatever the configured pattern allows: no separators, no `.` or `..`.
    if not plain_folder_name(value):
        raise RunRecordError(f"experiment ID {value!r} cannot name an artefact folder")
    if not id_regex.search(value):
        raise RunRecordError(f"experiment ID {value!r} does not match the id pattern "
                             f"{id_pattern}")
    return value


def _resolve_seed(seed: int | None) -> int:
    text = os.environ.get(ENV_SEED, "").strip()
    if text:
        try:
            return _check_seed(int(text))
        except ValueError:
            raise RunRecordError(f"{ENV_SEED}={text!r} is not a whole number from 0 to "
                                 f"{SEED_MAX}") from None
    if seed is None:
        return secrets.randbelow(SEED_MAX + 1)
    try:
        return _check_seed(seed)
    except ValueError as exc:
        raise RunRecordError(str(exc)) from None


def _resolve_params(params: dict | None) -> dict:
    merged = dict(params or {})
    text = os.environ.get(ENV_PARAMS, "").strip()
    if not text:
        return merged
    try:
        overrides = json.loads(text)
    except ValueError as exc:
        raise RunRecordError(f"{ENV_PARAMS} is not valid JSON ({exc})") from None
    if not isinstance(overrides, dict):
        raise RunRecordError(f"{ENV_PARAMS} must be a JSON object such as "
                             '{"learning_rate": 0.001}')
    for name, value in overrides.items():
        merged[name] = _like(merged.get(name), value) if name in merged else value
    return merged


def _like(default: object, value: object) -> object:
    """`value` in the type of the script's `default` where the conversion loses nothing."""
    if isinstance(default, bool) or isinstance(value, bool):
        return value
    if isinstance(default, int) and isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(default, float) and isinstance(value, int):
        return float(value)
    return value


def _number(name: str, value: object, *, allow_nan: bool) -> float | int:
    if hasattr(value, "item") and not isinstance(value, (int, float)):
        value = value.item()  # a torch or NumPy scalar
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"metric {name!r} must be a number, not {type(value).__name__}")
    if not allow_nan and not math.isfinite(value):
        raise ValueError(f"metric {name!r} is {value}: metrics.json needs a finite number")
    return value


# -- writing ------------------------------------------------------------------------------------
def _write_json(path: Path, value: object) -> None:
    text = json.dumps(value, sort_keys=True, indent=2, ensure_ascii=False, allow_nan=False,
                      default=_jsonable)
    write_bytes(path, (text + "\n").encode("utf-8"), mode=new_file_mode())


def _jsonable(value: object) -> object:
    # params may hold numpy scalars, Paths or tuples; record them rather than fail the run.
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=str)
    return str(value)


def _save_safetensors(model, target: Path) -> None:
    try:
        import torch
        from safetensors.torch import save_file
    except ImportError:
        raise RunRecordError("saving a torch model needs torch and safetensors: "
                             "pip install 'aisdp-log[torch]'") from None
    state = model.state_dict() if isinstance(model, torch.nn.Module) else model
    if not isinstance(state, Mapping):
        raise TypeError(f"save_model takes a torch module, a state dict, bytes or a path, not "
                        f"{type(model).__name__}")
    tensors, storages = {}, set()
    for key in sorted(state):
        tensor = state[key]
        if not isinstance(tensor, torch.Tensor):
            raise TypeError(f"state dict entry {key!r} is a {type(tensor).__name__}, not a "
                            "tensor; save it with run.path() instead")
        tensor = tensor.detach().to("cpu").contiguous()
        # safetensors refuses tensors sharing memory (tied weights): store each as its own.
        pointer = tensor.untyped_storage().data_ptr() if tensor.numel() else None
        if pointer is not None and pointer in storages:
            tensor = tensor.clone()
        storages.add(pointer)
        tensors[str(key)] = tensor
    # mode: evidence a team shares, not the 0600 that safetensors and mkstemp make.
    with atomic_replace(target, mode=new_file_mode()) as temp:
        save_file(tensors, str(temp), metadata=None)


def _tool_version() -> str:

    return __version__
