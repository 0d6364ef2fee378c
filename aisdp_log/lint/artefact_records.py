"""A003, A004, A006: an artefact folder's records against its row. `metrics.json` must hold
each metric within the rounding of the value typed; `run.json` the row's seed, commit, data
version, params and artefact hash, and no uncommitted changes at training time."""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass

from aisdp_log.artefacts.cache import HashCache
from aisdp_log.artefacts.digests import FolderScan
from aisdp_log.artefacts.records import read_record
from aisdp_log.domain.nested import MISSING, lookup
from aisdp_log.domain.values import (
    as_text,
    decimals_typed,
    is_number,
    looks_equal,
    parse_artefact_hash,
)
from aisdp_log.findings import Finding
from aisdp_log.lint.artefact_verdicts import NOTHING, Cells
from aisdp_log.workbook.log import Log
from aisdp_log.workbook.table import Row

HEX = re.compile(r"^[0-9a-f]+$")
#: The keys of run.json the checks below compare: the cached summary keeps these alone (an
#: `environment` entry can hold a whole `pip freeze`). Keep in step with `run_json`.
RUN_JSON_KEYS = ("experiment_id", "seed", "commit", "dirty", "data_version", "params",
                 "artefact_hash")


@dataclass(slots=True)
class Planned:
    """A row whose artefact folder was found, with what its checks compare."""

    row: Row
    experiment_id: str
    folder: str
    scan: FolderScan
    expected_hash: str | None
    verdict: str | None = None  # digest of every input, when all are out of the racy window



def metrics_json(log: Log, plan: Planned, shown: str, cache: HashCache,
                  cells: Cells) -> Iterator[Finding]:
    data, error = read_record(plan.scan, "metrics.json", cache)
    if error is not None:
        yield log.finding("A003", plan.row, None, f"{shown}/{plan.experiment_id}/{error}")
        return
    if data is None:
        return
    number = plan.row.number
    for name, column, parsed in cells.metrics:
        typed = parsed.get(number, NOTHING)[0]
        if typed is None:
            continue  # empty, or S003 already
        where = f"{shown}/{plan.experiment_id}/"
        # `avg_prec.test` names {"avg_prec": {"test": ...}} as `dvc metrics show` does
        recorded = lookup(data, name)
        if recorded is MISSING:
            # a metric measured elsewhere (a notebook, a human rating) may be typed in the
            # log; then nothing confirms it, and the report says so
            cells.lack(plan.row, column, f"{where}metrics.json has no {name}, so nothing "
                       "confirms the cell (record it there, or check the column's name)")
            continue
        cells.verify(plan.row, column)
        if not is_number(recorded) or not math.isfinite(float(recorded)):
            yield log.finding("A003", plan.row, column, f"{where}metrics.json holds "
                              f"{json.dumps(recorded)[:40]} for {name}, not a number")
            continue
        decimals = decimals_typed(plan.row.get(column))
        if not _agrees(float(typed), float(recorded), decimals):
            rounding = (f" (the cell's {decimals} decimals allow "
                        f"±{0.5 * 10.0 ** -decimals:g})" if decimals is not None else "")
            hint = looks_equal(plan.row.get(column), recorded, decimals)
            yield log.finding("A003", plan.row, column, f"{name} is {as_text(typed)} in the "
                              f"cell but {recorded!r} in {where}metrics.json{rounding}{hint}")


def _agrees(typed: float, recorded: float, decimals: int | None) -> bool:
    """Equal within the rounding of what was typed: 0.912 stands for 0.9115..0.9125."""
    if decimals is None:
        return math.isclose(typed, recorded, rel_tol=1e-9, abs_tol=1e-12)
    allowed = 0.5 * 10.0 ** -decimals
    return abs(typed - recorded) <= allowed * (1 + 1e-9) + 1e-12


def run_json(log: Log, plan: Planned, shown: str, cache: HashCache,
              cells: Cells) -> Iterator[Finding]:
    data, error = read_record(plan.scan, "run.json", cache, RUN_JSON_KEYS)
    if error is not None:
        yield log.finding("A004", plan.row, None, f"{shown}/{plan.experiment_id}/{error}")
        return
    if not data:
        return
    where = f"{shown}/{plan.experiment_id}/run.json"
    row = plan.row
    recorded_id = data.get("experiment_id")
    if isinstance(recorded_id, (str, int)) and str(recorded_id).strip() != plan.experiment_id:
        yield log.finding("A004", row, None, f"{where} belongs to experiment "
                          f"{str(recorded_id)[:60]!r}, not {plan.experiment_id!r}")
    # each comparison only where run.json recorded its key (each skips a null or absent key)
    for key, check in _SINGLE_CHECKS:
        if data[key] is not None:
            finding = check(log, cells, row, data, where)
            if finding is not None:
                yield finding
    yield from _params(log, cells, row, data, where)
    dirty = data["dirty"]
    if dirty is True or (dirty is not None and str(dirty).casefold() == "true"):
        yield log.finding("A006", row, None, f"{where} records uncommitted changes when the "
                          "run was trained, so the code commit may not recreate it")


def _seed(log: Log, cells: Cells, row: Row, data: dict,
          where: str) -> Finding | None:
    recorded = data.get("seed")
    typed = cells.typed(row, "random_seed")
    if recorded is None or typed is None:
        return None
    seed = _whole_number(recorded)
    cells.verify(row, "random_seed")
    if seed is None:
        return log.finding("A004", row, "random_seed", f"{where} seed {recorded!r} is not a "
                           "whole number")
    if seed != typed:
        return log.finding("A004", row, "random_seed", f"the row says seed {typed}, {where} "
                           f"says {seed}")
    return None


def _whole_number(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"\s*[+-]?\d+\s*", value):
        return int(value)
    return None


def _prefix_match(a: str, b: str) -> bool:
    """One of two hex strings is a prefix of the other (both already lower case)."""
    return a.startswith(b) or b.startswith(a)


def _commit(log: Log, cells: Cells, row: Row, data: dict,
            where: str) -> Finding | None:
    recorded = data.get("commit")
    typed = cells.typed(row, "code_commit")  # parse_commit gives a str, None when empty or bad
    if not isinstance(recorded, str) or not recorded.strip() or not isinstance(typed, str):
        return None
    commit = recorded.strip().lower()
    cells.verify(row, "code_commit")
    if len(commit) < 7 or not HEX.match(commit):
        return log.finding("A004", row, "code_commit", f"{where} commit {recorded[:60]!r} is "
                           "not a git SHA")
    if not _prefix_match(commit, typed):
        return log.finding("A004", row, "code_commit", f"the row says commit {typed}, {where} "
                           f"says {commit[:12]}")
    return None


def _md5_like(value: object) -> str | None:
    """The hex of an md5 or md5 prefix (8 to 32 hex, `.dir` suffix allowed), else None."""
    if not isinstance(value, str):
        return None
    return _md5_text(value)


@functools.lru_cache(maxsize=4096)  # a log names a handful of data versions, 10,000 times
def _md5_text(value: str) -> str | None:
    text = value.strip().lower()
    text = text[:-4] if text.endswith(".dir") else text
    return text if 8 <= len(text) <= 32 and HEX.match(text) else None


def _data_version(log: Log, cells: Cells, row: Row, data: dict,
                  where: str) -> Finding | None:
    typed = _md5_like(cells.typed(row, "data_version"))
    if typed is None:
        # the cell names a git tag or commit (7 or 40 hex, or not hex): what it pins is for
        # the DVC checks to resolve from git objects; this family reads no git
        return None
    recorded = data.get("data_version")
    values = list(recorded.values()) if isinstance(recorded, dict) else \
        list(recorded) if isinstance(recorded, list) else [recorded]
    hashes = [h for h in (_md5_like(v) for v in values) if h is not None]
    if not hashes:
        return None  # not recorded, or recorded as a tag: nothing comparable
    cells.verify(row, "data_version")
    if not any(_prefix_match(typed, h) for h in hashes):
        return log.finding("A004", row, "data_version", f"the row says data version {typed}, "
                           f"{where} says {', '.join(h[:12] for h in hashes)}")
    return None


def _canonical(value: object):
    """A param value in a form where 0.01, 1e-2 and "0.01" are equal, ints equal floats of the
    same value, and text compares case-insensitively (choices are written `Adam` or `adam`)."""
    if type(value) in (str, int, float):  # what cells and run.json mostly hold, 10,000 times
        return _canonical_scalar(value)
    return _canonical_any(value)


@functools.lru_cache(maxsize=4096)
def _canonical_scalar(value: str | int | float):
    return _canonical_any(value)


def _canonical_any(value: object):
    if value is None:
        return ("none", None)
    if isinstance(value, bool):
        return ("num", float(value))
    if isinstance(value, (int, float)):
        return ("num", float(value))
    if isinstance(value, (list, tuple)):
        return ("list", tuple(_canonical(v) for v in value))
    if isinstance(value, dict):
        return ("dict", tuple(sorted((str(k).casefold(), _canonical(v))
                                     for k, v in value.items())))
    text = str(value).strip()
    folded = text.casefold()
    if folded in ("true", "false"):
        return ("num", 1.0 if folded == "true" else 0.0)
    if folded in ("", "none", "null"):
        return ("none", None)
    if text[:1] in "[{":
        try:
            return _canonical(json.loads(text))
        except (ValueError, RecursionError):
            pass
    try:
        return ("num", float(text))
    except ValueError:
        return ("text", folded)


def same_param(a: object, b: object) -> bool:
    """Type-aware equality of a param as typed in a cell and as recorded in run.json."""
    return _same(_canonical(a), _canonical(b))


def _same(a, b) -> bool:
    if a[0] != b[0]:
        return False
    if a[0] == "num":
        x, y = a[1], b[1]
        return (math.isnan(x) and math.isnan(y)) or math.isclose(x, y, rel_tol=1e-9)
    if a[0] in ("list", "dict"):
        if len(a[1]) != len(b[1]):
            return False
        if a[0] == "list":
            return all(_same(x, y) for x, y in zip(a[1], b[1]))
        return all(kx == ky and _same(x, y) for (kx, x), (ky, y) in zip(a[1], b[1]))
    return a[1] == b[1]


def _params(log: Log, cells: Cells, row: Row, data: dict,
            where: str) -> Iterator[Finding]:
    recorded = data.get("params")
    if recorded is not None and not isinstance(recorded, dict):
        yield log.finding("A004", row, None, f"{where} params is not a JSON object")
    table = recorded if isinstance(recorded, dict) else {}
    for name, column, parsed in cells.params:
        typed = parsed.get(row.number, NOTHING)[0]
        if typed is None:
            continue
        # `train.n_est` names {"train": {"n_est": ...}} as `dvc params diff` does
        value = lookup(table, name)
        if value is MISSING:
            # the script may read this setting from elsewhere (a params file at that
            # commit, which D004 compares); if nothing else does, A008 says so
            cells.lack(row, column, f"{where} records no {name}"
                       + ("" if isinstance(recorded, dict) else " (it has no params)")
                       + ", so nothing confirms the cell")
            continue
        cells.verify(row, column)
        if not same_param(typed, value):
            yield log.finding("A004", row, column, f"the row says {name} = {as_text(typed)}, "
                              f"{where} says {json.dumps(value)[:60]}"
                              f"{looks_equal(row.get(column), value)}")
    others = cells.typed(row, "other_params")
    if isinstance(others, dict) and others:
        found = {key: lookup(table, key) for key in others}
        absent = [key for key, value in found.items() if value is MISSING]
        if absent:
            cells.lack(row, "other_params", f"{where} records no {', '.join(absent)[:80]}, "
                       "so nothing confirms the cell")
        else:
            cells.verify(row, "other_params")
        differing = [f"{key} = {text} (run.json: {json.dumps(found[key])[:40]})"
                     f"{looks_equal(text, found[key])}"
                     for key, text in others.items()
                     if found[key] is not MISSING and not same_param(text, found[key])]
        if differing:
            yield log.finding("A004", row, "other_params", f"{where} disagrees: "
                              + "; ".join(differing))


def _recorded_hash(log: Log, cells: Cells, row: Row, data: dict,
                   where: str) -> Finding | None:
    """run.json's `artefact_hash` is the model as trained; a row naming another hash means
    the files changed after the run (or the row describes another run)."""
    recorded = data.get("artefact_hash")
    typed = cells.typed(row, "artefact_hash")  # parse_artefact_hash: a str, None if empty/bad
    if not isinstance(recorded, str) or not isinstance(typed, str):
        return None
    try:
        trained = parse_artefact_hash(recorded)  # as the cell's own value is read
    except ValueError:
        return None  # not a sha256 this check can compare
    cells.verify(row, "artefact_hash")
    if trained != typed:
        return log.finding("A004", row, "artefact_hash", f"{where} records the trained model "
                           f"as {trained[:19]}..., the row names {typed[:19]}...")
    return None


#: run.json keys compared by a check that finds at most one thing, in the order reported.
_SINGLE_CHECKS = (("seed", _seed), ("commit", _commit), ("data_version", _data_version),
                  ("artefact_hash", _recorded_hash))
