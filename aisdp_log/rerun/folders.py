"""A rerun's run folders (`<artefact folder>/reruns/<stamp>/<run>/`): their name, the JSON a run
leaves in them, and the marker by which the next rerun removes the folders of a killed one."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import shutil
from pathlib import Path

from aisdp_log.system.tooldir import pid_alive

#: In a rerun's `reruns/<stamp>/` folder while it runs: pid and host of the rerun. A folder
#: still holding it after its rerun died (SIGKILL) is unrecorded output: the next rerun
#: removes it, as Ctrl-C would have.
RUNNING_MARKER = ".aisdp-log-running"


def free_stamp(artefact_dirs: list[Path]) -> str:
    """A UTC timestamp naming this invocation's run folders, suffixed where a rerun in the same
    second already used it: evidence is never overwritten."""
    base = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    stamp, suffix = base, 1
    while any((folder / "reruns" / stamp).exists() for folder in artefact_dirs):
        suffix += 1
        stamp = f"{base}-{suffix}"
    return stamp


def read_json(path: Path) -> dict:
    """The JSON object in `path` (run.json, metrics.json, a marker), else {}."""
    try:
        with open(path, "rb") as fh:
            data = json.load(fh)
    except (OSError, ValueError, RecursionError):  # RecursionError: nested too deep
        return {}
    return data if isinstance(data, dict) else {}


def mark_running(stamp_dirs: list[Path | None]) -> None:
    import socket

    for folder in stamp_dirs:
        if folder is not None:
            folder.mkdir(parents=True, exist_ok=True)
            (folder / RUNNING_MARKER).write_text(
                json.dumps({"pid": os.getpid(), "host": socket.gethostname()}) + "\n",
                encoding="utf-8")


def unmark_running(stamp_dirs: list[Path | None]) -> None:
    for folder in stamp_dirs:
        if folder is not None:
            with contextlib.suppress(OSError):
                (folder / RUNNING_MARKER).unlink()


def remove_stale_run_folders(artefacts_dir: Path) -> list[Path]:
    """Remove `reruns/<stamp>/` folders of reruns that died (their pid is gone, this host)."""
    import socket

    removed = []
    for marker in Path(artefacts_dir).glob(f"*/reruns/*/{RUNNING_MARKER}"):
        record = read_json(marker)
        pid = record.get("pid")
        if record.get("host") == socket.gethostname() and isinstance(pid, int) \
                and not pid_alive(pid):
            shutil.rmtree(marker.parent, ignore_errors=True)
            remove_if_empty(marker.parent.parent)
            removed.append(marker.parent)
    return removed


def remove_if_empty(folder: Path) -> None:
    try:
        folder.rmdir()
    except OSError:
        pass
