"""Checks before a write, and the writer lock: refuse or wait *before* any training or rendering.

Every command that changes a log (`add`, `rerun`, `review --sign`, `template --force`) asks
here first, so a refusal costs nothing:

- `preflight(path, force=...)`: Excel's `~$<name>` and LibreOffice's `.~lock.<name>#` beside
  the name given and beside a symlink's target; write permission as the user's own rights
  decide (`os.access` on the file and its folder, and the owner: replacing a file someone else
  owns would make it ours); a log with several hard links (replacing it would split them).
  It also waits for another aisdp-log writing the same file, and takes over a dead one's lock.
- `writer_lock(path, force=...)`: the same checks, then the lock, held for as long as the
  caller needs it (a rerun holds it across training and the write-back). Re-entrant within a
  thread, so `open_workbook_for_update` inside it does not wait for itself.

Lock and temp files live in `.aisdp-log/` beside the log, a folder whose `.gitignore` holds
`*` (it ignores itself too), so they never show in `git status`. The lock is an `flock` on
`.aisdp-log/<name>.lock`, which records pid, host, user and time: a writer waits up to
`LOCK_WAIT_S` for a live holder (saying so once on stderr), takes over a lock whose process is
gone (this host), and names a lock from another host, or one it may not take, with its age and
how to clear it. Temp files are `.aisdp-log/<name>.<pid>-<random><suffix>`: the next writer of
that name removes its leftovers, and `remove_stale_temps` those of any dead process.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import socket
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from aisdp_log.errors import WriteRefused
from aisdp_log.system.atomic import TEMP_NAME, office_owner_files, temp_owner, temp_prefix
from aisdp_log.system.platform import IS_WINDOWS
from aisdp_log.system.tooldir import TOOL_DIR, remove_orphans, tool_dir
from aisdp_log.workbook.container import check_container

#: How long a writer waits for another aisdp-log writing the same file (seconds).
LOCK_WAIT_S = 60.0
LOCK_SUFFIX = ".lock"
#: The suffix of the writer's temp files: in `.aisdp-log/` now, beside the log in 0.1 (whose
#: leftovers the next writer cleans up).
TEMP_SUFFIX = ".aisdp-tmp"
LEGACY_LOCK_SUFFIX = ".aisdp-lock"

_held: dict[tuple[str, int], int] = {}
_held_guard = threading.Lock()
_warned: set[str] = set()


# --------------------------------------------------------------------------- the tool folder


def write_target(path: Path | str) -> Path:
    """The file a write really replaces: a symlink's final target (writing beside the link
    would cut it off from its target), else the path as given."""
    path = Path(path)
    return Path(os.path.realpath(path)) if path.is_symlink() else path


def stale_temp_files(path: Path | str) -> list[Path]:
    """Temp files a killed writer of `path` left (only meaningful under its writer lock):
    in `.aisdp-log/`, and 0.1's `.<name>.<random>.aisdp-tmp` beside the file."""
    path = Path(path)
    found = []
    folder = path.parent if str(path.parent) else Path(".")
    with contextlib.suppress(OSError):
        for entry in (folder / TOOL_DIR).iterdir():
            match = TEMP_NAME.match(entry.name)
            if match and match["name"] == path.name:
                found.append(entry)
    with contextlib.suppress(OSError):
        legacy = f".{path.name}."
        found += [p for p in folder.iterdir()
                  if p.name.startswith(legacy) and p.name.endswith(TEMP_SUFFIX)]
    return sorted(found)


def remove_stale_temps(folder: Path | str) -> list[Path]:
    """Remove the temp files in `folder/.aisdp-log/` whose writing process is gone."""
    return remove_orphans(Path(folder) / TOOL_DIR, temp_owner)


# --------------------------------------------------------------------------- Office locks

def _excel_owner_files(path: Path) -> list[Path]:
    return [owner for owner in office_owner_files(path) if owner.name.startswith("~$")]


def _excel_holder(owner_file: Path) -> str:
    """The user name in Excel's owner file: a length byte, the name in ANSI padded to 54
    bytes, then the name again in UTF-16. Unreadable -> 'someone'."""
    try:
        blob = owner_file.read_bytes()[:512]
    except OSError:
        return "someone"
    if not blob:
        return "someone"
    length = blob[0]
    if 0 < length <= 53:
        wide = blob[56:56 + 2 * length]
        if len(wide) == 2 * length:
            with contextlib.suppress(UnicodeDecodeError):
                name = wide.decode("utf-16-le").strip()
                if name.isprintable() and name:
                    return name
        name = blob[1:1 + length].decode("cp1252", "replace").strip()
        if name.isprintable() and name:
            return name
    return "someone"


def _libreoffice_holder(lock_file: Path) -> str:
    """`name (user) on host since date` from LibreOffice's lock file, whose fields are
    `office user name,system user,host,date,profile url;` (the first is often empty)."""
    try:
        text = lock_file.read_text("utf-8", "replace")[:1024]
    except OSError:
        return "someone"
    fields = [f.strip() for f in text.strip().rstrip(";").split(",")]
    fields += [""] * (5 - len(fields))
    full_name, user, host, date = fields[0], fields[1], fields[2], fields[3]
    who = full_name or user or "someone"
    if full_name and user and user != full_name:
        who = f"{full_name} ({user})"
    if host:
        who += f" on {host}"
    if date:
        who += f" since {date}"
    return "".join(ch for ch in who if ch.isprintable())


def check_office_locks(path: Path | str, *, force: bool = False,
                       given: Path | str | None = None) -> None:
    """Raise WriteRefused while Excel or LibreOffice holds `path` open, unless `force`.
    `given` names the file in the message (the name the user typed, for a symlink).

    With `force` over an open file, say what follows where the program does not lock the
    file (Excel on macOS, LibreOffice everywhere): its next save overwrites this write.
    (Windows' Excel does lock it: the replace is then refused, system/atomic.)"""
    path = Path(path)
    shown = given if given is not None else path
    if force:
        if not IS_WINDOWS:
            _warn_forced(path, shown)
        return
    lo_lock = path.with_name(f".~lock.{path.name}#")
    if lo_lock.exists():
        raise WriteRefused(
            f"{shown}: open in LibreOffice by {_libreoffice_holder(lo_lock)} ({lo_lock}); "
            "close it there and retry, or pass --force if that lock is stale")
    for owner in _excel_owner_files(path):
        if owner.exists():
            raise WriteRefused(
                f"{shown}: open in Excel by {_excel_holder(owner)} ({owner}); close it "
                "there and retry, or pass --force if that lock is stale")


def _warn_forced(path: Path, shown) -> None:
    """The warning, once per file and process (a command checks before and at its write)."""
    if str(path) in _warned:
        return
    lo_lock = path.with_name(f".~lock.{path.name}#")
    owners = [owner for owner in _excel_owner_files(path) if owner.exists()]
    if owners:
        program = f"Excel (by {_excel_holder(owners[0])})"
    elif lo_lock.exists():
        program = f"LibreOffice (by {_libreoffice_holder(lo_lock)})"
    else:
        return
    name = program.split(" ", 1)[0]
    _warned.add(str(path))
    print(f"aisdp-log: warning: {shown} is open in {program}, which does not lock it here: "
          f"its next save will overwrite what aisdp-log writes now. Close it in {name} "
          "without saving, then open it again", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- pre-flight

def _user_name(uid: int) -> str:
    try:
        import pwd

        return pwd.getpwuid(uid).pw_name
    except (ImportError, KeyError):
        return f"uid {uid}"


def _can_give_to(folder: Path, uid: int, gid: int) -> bool:
    """Whether we may make a file owned by `uid` (root's CAP_CHOWN): tried on a scratch file."""
    import tempfile

    try:
        fd, name = tempfile.mkstemp(dir=folder, prefix=temp_prefix("owner-check"),
                                    suffix=".tmp")
    except OSError:
        return False
    try:
        os.close(fd)
        os.chown(name, uid, gid)
        return True
    except OSError:
        return False
    finally:
        with contextlib.suppress(OSError):
            os.unlink(name)


def _checks(path: Path | str, *, force: bool, hard_links_ok: bool | None,
            must_exist: bool = True) -> Path:
    """The pre-flight checks; returns the file to replace (a symlink's target)."""
    given = Path(path)
    target = write_target(given)
    if must_exist and not target.is_file():

        check_container(given).close()  # the reader's one-line reason (missing, a folder)
    check_office_locks(given, force=force)
    if target != given:
        check_office_locks(target, force=force, given=f"{given} (a link to {target})")
    folder = target.parent if str(target.parent) else Path(".")
    if not folder.is_dir():
        raise WriteRefused(f"{given}: folder {folder} does not exist")
    try:
        status = os.stat(target)
    except FileNotFoundError:
        status = None
    except OSError as exc:
        raise WriteRefused(f"{given}: cannot be read ({exc.strerror or exc})") from None
    if status is not None:
        import stat as stat_module

        if not stat_module.S_ISREG(status.st_mode):
            raise WriteRefused(f"{given}: is not a regular file")
        links_ok = force if hard_links_ok is None else hard_links_ok
        if status.st_nlink > 1 and not links_ok:
            raise WriteRefused(
                f"{given}: has {status.st_nlink} hard links; replacing it would leave the "
                "other names with the old version. Pass --force to write a new file here "
                "(the other links keep the old content), or remove the other links")
        mode = stat_module.S_IMODE(status.st_mode)
        owner = _user_name(status.st_uid)
        if not os.access(target, os.W_OK):
            raise WriteRefused(f"{given}: is read-only for you (mode {mode:04o}, owner "
                               f"{owner}); make it writable (chmod u+w) or ask {owner}")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise WriteRefused(f"{given}: its folder {folder} is read-only for you, and aisdp-log "
                           "replaces the file through a new one written there")
    tools = tool_dir(folder)
    if status is not None and hasattr(os, "geteuid") and status.st_uid != os.geteuid() \
            and not _can_give_to(tools, status.st_uid, status.st_gid):
        owner = _user_name(status.st_uid)
        raise WriteRefused(f"{given}: is owned by {owner}; replacing it would make it yours. "
                           f"Ask {owner} to run the command, or copy the file and write the "
                           "copy")
    return target


def preflight(path: Path | str, *, force: bool = False, hard_links_ok: bool | None = None,
              must_exist: bool = True) -> Path:
    """Check that `path` can be written, before any slow work; returns the file a write will
    replace (a symlink's target). Raises WriteRefused (one line, exit 2) for an Office lock
    (unless `force`), a file or folder the user may not write, a file owned by someone else,
    or several hard links (unless `force`, or `hard_links_ok`); a missing file unless
    `must_exist` is False. Waits for another aisdp-log writing the file (see `writer_lock`)
    and removes what a killed one left."""
    target = _checks(path, force=force, hard_links_ok=hard_links_ok, must_exist=must_exist)
    with _locked(target, Path(path)):
        pass
    return target


@contextlib.contextmanager
def writer_lock(path: Path | str, *, force: bool = False, hard_links_ok: bool | None = None,
                must_exist: bool = True) -> Iterator[Path]:
    """`preflight`, then hold the writer lock of `path` until the block ends; yields the file
    to replace. Hold it across slow work (training) and the write that follows."""
    target = _checks(path, force=force, hard_links_ok=hard_links_ok, must_exist=must_exist)
    with _locked(target, Path(path)):
        yield target



# --------------------------------------------------------------------------- the lock

def _record() -> bytes:
    return json.dumps({
        "pid": os.getpid(), "host": socket.gethostname(), "user": _user_name(os.getuid())
        if hasattr(os, "getuid") else os.environ.get("USERNAME", "someone"),
        "since": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }).encode("utf-8") + b"\n"


def _read_record(source) -> dict:
    try:
        if isinstance(source, int):
            blob = os.pread(source, 4096, 0) if hasattr(os, "pread") else b""
        else:
            blob = Path(source).read_bytes()[:4096]
        record = json.loads(blob.decode("utf-8"))
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def _age(record: dict, lock_path: Path) -> str:
    since = None
    with contextlib.suppress(TypeError, ValueError):
        since = dt.datetime.strptime(str(record.get("since")), "%Y-%m-%dT%H:%M:%SZ") \
            .replace(tzinfo=dt.timezone.utc).timestamp()
    if since is None:
        with contextlib.suppress(OSError):
            since = os.stat(lock_path).st_mtime
    if since is None:
        return "of unknown age"
    seconds = max(0, int(time.time() - since))
    if seconds < 120:
        return f"{seconds} s old"
    if seconds < 7200:
        return f"{seconds // 60} min old"
    return f"{seconds // 3600} h old"


def _describe(record: dict) -> str:
    if not record:
        return "another aisdp-log"
    return (f"aisdp-log pid {record.get('pid', '?')} of {record.get('user', 'someone')} on "
            f"{record.get('host', '?')}")


def _lock_wait() -> float:
    with contextlib.suppress(KeyError, ValueError):
        return max(0.0, float(os.environ["AISDP_LOG_LOCK_WAIT"]))
    return LOCK_WAIT_S


@contextlib.contextmanager
def _locked(target: Path, given: Path) -> Iterator[None]:
    folder = target.parent if str(target.parent) else Path(".")
    lock_path = tool_dir(folder) / f"{target.name}{LOCK_SUFFIX}"
    key = (os.path.abspath(lock_path), threading.get_ident())
    with _held_guard:
        if key in _held:
            _held[key] += 1
            nested = True
        else:
            nested = False
    if nested:
        try:
            yield
        finally:
            with _held_guard:
                _held[key] -= 1
        return
    fd = _acquire(lock_path, given)
    with _held_guard:
        _held[key] = 1
    try:
        for leftover in stale_temp_files(target):
            with contextlib.suppress(OSError):
                leftover.unlink()
        with contextlib.suppress(OSError):
            target.with_name(f".{target.name}{LEGACY_LOCK_SUFFIX}").unlink()
        remove_stale_temps(folder)
        yield
    finally:
        with _held_guard:
            _held.pop(key, None)
        with contextlib.suppress(OSError):
            lock_path.unlink()  # while still holding it: a taker checks it locked this name
        os.close(fd)


def _acquire(lock_path: Path, given: Path) -> int:
    """Lock `lock_path`: wait for a live holder, take over a dead one's, refuse a foreign
    one; returns the open descriptor."""
    wait = _lock_wait()
    deadline = time.monotonic() + wait
    said = False
    while True:
        try:
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o666)
        except PermissionError:
            record = _read_record(lock_path)
            raise WriteRefused(
                f"{given}: locked by {_describe(record)} ({_age(record, lock_path)}), and "
                f"you may not take its lock file {lock_path}; if no aisdp-log runs there any "
                "more, remove that file") from None
        except OSError as exc:
            raise WriteRefused(f"{given}: cannot create the lock file {lock_path} "
                               f"({exc.strerror or exc})") from None
        try:
            _lock_fd(fd)
        except OSError:
            os.close(fd)
            record = _read_record(lock_path)
            if time.monotonic() >= deadline:
                raise WriteRefused(
                    f"{given}: {_describe(record)} is writing it (lock {_age(record, lock_path)}"
                    f"); waited {wait:g} s. Retry when it has finished; if no aisdp-log runs "
                    f"any more, remove {lock_path}") from None
            if not said:
                print(f"aisdp-log: waiting for {_describe(record)}, which is writing {given} "
                      f"(up to {wait:g} s)", file=sys.stderr, flush=True)
                said = True
            time.sleep(0.05)
            continue
        try:
            held, named = os.fstat(fd), os.stat(lock_path)
            same = (held.st_ino, held.st_dev) == (named.st_ino, named.st_dev)
        except FileNotFoundError:
            same = False
        if not same:  # the previous holder removed this one: lock the new file instead
            os.close(fd)
            continue
        record = _read_record(fd)
        if record and record.get("host") != socket.gethostname():
            os.close(fd)
            raise WriteRefused(
                f"{given}: locked by {_describe(record)} ({_age(record, lock_path)}); this "
                f"host cannot tell whether it still runs. If it does not, remove {lock_path}")
        if record and record.get("pid") != os.getpid():
            # The flock is free, so the holder is gone (a dead pid, or a pid reused since).
            print(f"aisdp-log: taking over the lock of {_describe(record)}, which is no "
                  f"longer running ({_age(record, lock_path)})", file=sys.stderr, flush=True)
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, _record(), 0) if hasattr(os, "pwrite") else os.write(fd, _record())
        except OSError as exc:
            with contextlib.suppress(OSError):
                lock_path.unlink()
            os.close(fd)
            raise WriteRefused(f"{given}: cannot write the lock file {lock_path} "
                               f"({exc.strerror or exc})") from None
        return fd


def _lock_fd(fd: int) -> None:
    try:
        import fcntl
    except ModuleNotFoundError:  # Windows
        import msvcrt

        # Windows only: mypy checks for the platform it runs on, whose msvcrt stub lacks it.
        msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)  # type: ignore[attr-defined]
        return
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
