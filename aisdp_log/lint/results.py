"""Whole validations remembered: a log validated again with nothing changed gets the same
report without a cell being parsed or a git process started.

A validation's report is a function of what it read: the workbook's bytes, the config, this
code, the options, the environment, the git repository's refs, objects and config, and the
files and folders the checks read or probed (artefact folders and their files, DVC's cache and
config, params files, `aisdp.toml` candidates). The checks note each path as they touch it
(`aisdp_log.system.inputs`); at the end of a run the path list and a digest of every path's
stat are stored beside the report. A later run with the same key (workbook digest, config,
code, options, environment, date) stats the same paths, and only when every stat is as it was
replays the report. Anything else runs the checks.

Kept honest four ways:
- the store is sealed with an HMAC under a key of the user's, kept outside every repository
  (`aisdp_log.system.seal`): it lives in the repository, where anyone who can write a file
  could otherwise put a clean report in the place of one with findings; a store edited,
  copied from elsewhere or sealed by another user is never replayed;
- a run noted as depending on something a stat cannot vouch for (a symlink inside an
  artefact folder, an `ssh-keygen` verdict, a remote, git alternates or config includes, a
  git layout only git can read) is never stored;
- a path changed within a timestamp tick of the run's start ("racily clean") keeps the run
  from being stored, so a later write in that tick cannot hide behind an equal stat;
- `tests/test_results_cache.py` runs validations of three project shapes under `strace` and
  fails for any file the process or its git children touched in the test's folder (the
  project, a linked work tree, the DVC cache) that the stored inputs do not cover.

The store is `<repository>/.aisdp-log/results/` (the tool's own folder, ignored by git), one
file per stored run named by its key, so a replay reads only its own; the `MAX_RESULTS` newest
are kept. Each is written atomically; one that cannot be read or written only costs the full
run. Measured with `benchmarks/bench_crosscheck_scale.py`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
import stat
import sys
from pathlib import Path
from typing import Any

from aisdp_log import __version__
from aisdp_log.artefacts.digests import file_sha256
from aisdp_log.errors import AisdpLogError
from aisdp_log.findings import Finding, Report, Severity
from aisdp_log.lint.summary import CoverageSummary
from aisdp_log.system import inputs, seal
from aisdp_log.system.fingerprint import code_fingerprint

#: `<repository>/.aisdp-log/results/<key>.json`, one sealed file per stored run
STORE_DIR = "results"
FORMAT = 3
MAX_RESULTS = 8
#: A workbook this large is no log (10,000 rows take about 1 MB): not hashed, checked afresh.
MAX_WORKBOOK_BYTES = 256 << 20
#: Environment variables that change between shells without changing any answer.
VOLATILE_ENV = frozenset({"_", "OLDPWD", "SHLVL", "COLUMNS", "LINES", "TERM_SESSION_ID",
                          "WINDOWID", "SSH_AUTH_SOCK", "SSH_AGENT_PID"})


def head_key(log_path: Path, root: Path, config: Any, *, offline: bool) -> str | None:
    """What must match before stored inputs are even looked at: the workbook's bytes, the
    config, this code, the interpreter and its libraries, the options, the environment, the
    date. None when the workbook cannot be read, is no regular file or is larger than any log
    (the full run says why, or refuses it before reading it)."""
    digest = hashlib.blake2b(f"results {FORMAT} {__version__}".encode(), digest_size=32)
    inputs.note(log_path)  # changed while the run reads it: the racy check keeps it unstored
    try:
        info = os.stat(log_path)
        if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_WORKBOOK_BYTES:
            return None  # a pipe would block the read; the full run refuses it in one line
        workbook = file_sha256(log_path)
    except OSError:
        return None
    now = dt.datetime.now().astimezone()
    parts = [
        code_fingerprint(), sys.version, sys.platform, workbook, str(log_path),
        os.path.abspath(log_path), os.getcwd(), str(root), repr(config), str(offline),
        now.date().isoformat(), str(now.utcoffset()),
        repr(sorted((k, v) for k, v in os.environ.items() if k not in VOLATILE_ENV)),
        # the libraries that parse the workbook, the YAML and the TOML: installing, upgrading
        # or removing any package moves the stat of the folder it lives in
        *(inputs.path_key(folder) for folder in sys.path if folder),
    ]
    for part in parts:
        digest.update(part.encode("utf-8", "surrogateescape") + b"\0")
    return digest.hexdigest()


def replay(root: Path, key: str) -> Report | None:
    """The report stored under `key` when its seal is this user's and every input's stat is
    as it was, else None."""
    document = _load(root, key)
    if document is None:
        return None
    paths, stats = _paths(root, document), document.get("stats")
    if paths is None or not isinstance(stats, str):
        return None
    if stats != _stats_digest(inputs.path_keys(paths)):
        return None
    try:
        return _report(document["report"])
    except (KeyError, TypeError, ValueError):
        return None  # not a report this code wrote


def store(root: Path, key: str, recorder: inputs.Inputs, started_ns: int,
          report: Report, *, offline: bool) -> str | None:
    """Remember `report` under `key` with the stats of every input; returns why it was not
    kept (None when it was)."""
    if not offline or recorder.git:
        git_state(root, recorder)
    if recorder.refused:
        return recorder.refused[0]
    # stored in three lists, paths under the repository relative to it (a third of the
    # bytes to read back), and stated in the order `_paths` gives them back
    prefix = str(root).rstrip(os.sep) + os.sep
    inside, outside, identities = [], [], []
    for path in recorder.paths:
        if path.startswith(inputs.IDENTITY):
            identities.append(path[len(inputs.IDENTITY):])
        elif path.startswith(prefix):
            inside.append(path[len(prefix):])
        else:
            outside.append(path)
    document = {"format": FORMAT, "key": key, "inside": inside, "outside": outside,
                "identities": identities}
    try:
        stats = inputs.path_keys(_paths(root, document) or [], since_ns=started_ns)
    except inputs.Racy as exc:
        return f"{exc} changed within a timestamp tick of the run"
    document.update(stats=_stats_digest(stats), report=_document(report))
    try:
        from aisdp_log.system.tooldir import tool_dir

        folder = tool_dir(root) / STORE_DIR
        folder.mkdir(exist_ok=True)
    except (OSError, AisdpLogError) as exc:  # a read-only repository: only speed is lost
        return f"the store cannot be written ({exc})"
    text = json.dumps(document, separators=(",", ":"))
    if not seal.write_sealed(folder / f"{key}.json", text.encode("utf-8")):
        return "the store cannot be written, or no sealing key made"
    _prune(folder)
    return None


def _paths(root: Path, document: dict) -> list[str] | None:
    """Every stored input as `inputs.path_keys` takes it, in the order stored; None when the
    document does not hold three lists of text."""
    inside, outside, identities = (document.get(name)
                                   for name in ("inside", "outside", "identities"))
    if not (isinstance(inside, list) and isinstance(outside, list)
            and isinstance(identities, list)):
        return None
    if not all(type(p) is str for p in inside + outside + identities):
        return None
    prefix = str(root).rstrip(os.sep) + os.sep
    identity = inputs.IDENTITY
    return ([prefix + path for path in inside] + outside
            + [identity + path for path in identities])


def _prune(folder: Path) -> None:
    """Keep the `MAX_RESULTS` newest stored runs (other logs of the repository, other
    options), the rest being only never asked for again; and remove the temp files of
    writes whose process was killed (`system.atomic` names them with its pid)."""
    from aisdp_log.system.atomic import temp_owner
    from aisdp_log.system.tooldir import remove_orphans

    try:
        stored = sorted(folder.glob("*.json"), key=lambda p: p.stat().st_mtime_ns)
        for old in stored[:-MAX_RESULTS]:
            old.unlink()
    except OSError:
        pass  # another run pruned it first
    remove_orphans(folder, temp_owner, pattern="*.tmp")


def _stats_digest(stats: list[str]) -> str:
    return hashlib.blake2b("\n".join(stats).encode(), digest_size=32).hexdigest()


def _load(root: Path, key: str) -> dict | None:
    """The run stored under `key`, when its seal is this user's (see `system.seal`)."""
    body = seal.read_sealed(os.path.join(root, ".aisdp-log", STORE_DIR, f"{key}.json"))
    if body is None:
        return None
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        return None
    if not isinstance(data, dict) or data.get("format") != FORMAT or data.get("key") != key:
        return None
    return data


# ------------------------------------------------------------------------ the git repository

def git_state(root: Path, recorder: inputs.Inputs) -> None:
    """Note what git's answers about the repository rest on: HEAD, every ref, the object
    folders (a folder's stat moves when an object or pack is added or removed), the shallow
    and graft files, every config file git reads, and the git program itself. A layout
    only git can read (GIT_DIR, an unusual `.git` file) or objects borrowed from another
    repository (alternates) or config includes refuse the store instead."""
    from aisdp_log.repo.gitparse import common_dir, find_work_tree

    found = find_work_tree(root)
    if found is None:
        recorder.refuse("no git folder read from the files (GIT_DIR, another layout, or no "
                        "repository): git's state cannot be keyed on stats")
        return
    top, git_dir, _ = found
    common = common_dir(git_dir)
    objects = common / "objects"
    # the git folders' own entries: a ref, ORIG_HEAD or a lock appearing at their top level
    noted: list[str | Path] = [
        git_dir, common, git_dir / "HEAD", git_dir / "commondir", git_dir / "config.worktree",
        git_dir / "shallow", common / "packed-refs", common / "shallow",
        common / "info" / "grafts", common / "info" / "alternates", objects, objects / "pack",
        objects / "info", objects / "info" / "alternates",
        # a linked work tree's `.git` file, and the mailmap git applies to names it prints
        top / ".git", top / ".mailmap"]
    noted += [objects / f"{n:02x}" for n in range(256)]
    if os.path.exists(objects / "info" / "alternates"):
        recorder.refuse("git objects borrowed from another repository (alternates)")
    for folder in dict.fromkeys((git_dir, common)):
        for name in ("refs", "reftable"):
            noted += _tree(folder / name)
    configs = _git_configs(common)
    noted += configs
    for path in configs:
        try:
            text = Path(path).read_bytes()
        except OSError:
            continue
        if b"[include" in text.lower():
            recorder.refuse(f"{path} includes other config files")
    # the git that answers: every place on PATH one could appear before the one found
    for entry in os.environ.get("PATH", "").split(os.pathsep):
        if entry:
            noted.append(os.path.join(entry, "git.exe" if os.name == "nt" else "git"))
            if shutil.which("git", path=entry):
                break
    recorder.note_many(noted)


def _tree(folder: Path) -> list[str]:
    """`folder`, and every folder and file under it."""
    found = [str(folder)]
    for current, subfolders, files in os.walk(folder):
        found += [os.path.join(current, name) for name in subfolders + files]
    return found


def _git_configs(common: Path) -> list[str]:
    """The config files git reads for this repository, wherever it looks."""
    env = os.environ
    home = os.path.expanduser("~")
    configs = [str(common / "config")]
    if env.get("GIT_CONFIG_GLOBAL"):
        configs.append(env["GIT_CONFIG_GLOBAL"])
    else:
        xdg = env.get("XDG_CONFIG_HOME") or os.path.join(home, ".config")
        configs += [os.path.join(home, ".gitconfig"), os.path.join(xdg, "git", "config")]
    if env.get("GIT_CONFIG_SYSTEM"):
        configs.append(env["GIT_CONFIG_SYSTEM"])
    else:
        configs += ["/etc/gitconfig", os.path.join(sys.prefix, "etc", "gitconfig")]
        program = shutil.which("git")
        if program:  # a git installed under a prefix reads <prefix>/etc/gitconfig
            prefix = os.path.dirname(os.path.dirname(os.path.realpath(program)))
            configs.append(os.path.join(prefix, "etc", "gitconfig"))
    return list(dict.fromkeys(configs))


# ------------------------------------------------------------------------ the report

def _document(report: Report) -> dict:
    coverage = report.coverage
    return {
        "log": report.log, "rows": report.rows, "config": report.config,
        "findings": [finding.to_dict() for finding in report.findings],
        "coverage": None if coverage is None else {
            "verified": coverage.verified, "unverified": coverage.unverified,
            "offline": coverage.offline, "sheet": coverage.sheet,
            "cells": list(coverage.unverified_cells)},
    }


def _report(document: Any) -> Report:
    findings = [Finding(f["code"], Severity(f["severity"]), f["sheet"], f["cell"], f["row"],
                        f["column"], f["experiment_id"], f["message"])
                for f in document["findings"]]
    coverage = document["coverage"]
    summary = None if coverage is None else CoverageSummary(
        coverage["verified"], coverage["unverified"], coverage["offline"], coverage["sheet"],
        cells=list(coverage["cells"]))
    return Report(log=document["log"], rows=document["rows"], findings=findings,
                  config=document["config"], coverage=summary)
