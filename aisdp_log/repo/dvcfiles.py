"""DVC's records without DVC: `.dvc` files and `dvc.lock` parsed from git blobs, the local
cache statted, and (only for `--remote`) the default remote asked through DVC itself.

Starting DVC costs >= 350 ms and opening `dvc.repo.Repo` writes files, so the default path reads
the YAML with CSafeLoader and stats the cache; `import dvc` happens in `remote_missing` only.
"""

from __future__ import annotations

import os
import posixpath
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from aisdp_log.system import inputs

#: `git grep` / `git log` pathspecs for DVC's records anywhere in the tree (`*` matches `/`).
PATHSPECS = ("*.dvc", "*dvc.lock")
#: An md5 as DVC writes it: 32 hex, `.dir` for a directory's manifest.
MD5 = re.compile(r"^([0-9a-f]{32})(\.dir)?$")
#: What a `Data version` cell holds when it names an md5: 8 to 32 hex, optional `.dir`.
VERSION_MD5 = re.compile(r"^(?:md5:)?([0-9a-f]{8,32})(\.dir)?$")


@dataclass(frozen=True)
class Out:
    """One DVC-tracked output: its path (from the repository root), md5 and record."""

    path: str
    md5: str
    source: str  # the `.dvc` file or `dvc.lock` that pins it

    @property
    def is_dir(self) -> bool:
        return self.md5.endswith(".dir")


def is_record(path: str) -> bool:
    """A `.dvc` file or a `dvc.lock` (the pathspecs also catch `foo-dvc.lock`)."""
    name = posixpath.basename(path)
    return name == "dvc.lock" or (name.endswith(".dvc") and name != ".dvc")


def parse_record(source: str, blob: bytes, wdirs: Mapping[str, str] | None = None
                 ) -> list[Out]:
    """The outs a `.dvc` file or `dvc.lock` pins; [] for YAML DVC would not accept.

    A `dvc.lock` stage's outs are relative to the stage's `wdir`: its own `wdir` if the lock
    records one, else `wdirs[stage name]` (from the `dvc.yaml` beside it, see `stage_wdirs`).

    A `.dvc` file as `dvc add` writes it is read by a strict line parser (importing yaml costs
    more than the rest of the DVC checks); anything else goes to yaml's CSafeLoader."""
    is_lock = posixpath.basename(source) == "dvc.lock"
    doc = None if is_lock else _plain_dvc_file(blob)
    if doc is None:
        import yaml

        try:
            doc = yaml.load(blob, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
        except (yaml.YAMLError, ValueError, RecursionError):
            return []
    if not isinstance(doc, dict):
        return []
    base = posixpath.dirname(source)
    if is_lock:
        # schema 2.0 nests stages under `stages:`; the 1.x lock is the stages table itself.
        stages = doc.get("stages", doc) if "schema" in doc or "stages" in doc else doc
        entries = [(_stage_dir(base, name, stage, wdirs), out)
                   for name, stage in (stages.items() if isinstance(stages, dict) else ())
                   if isinstance(stage, dict) for out in _as_list(stage.get("outs"))]
    else:
        entries = [(base, out) for out in _as_list(doc.get("outs"))]
    outs = []
    for folder, entry in entries:
        if not isinstance(entry, dict):
            continue
        md5, path = entry.get("md5"), entry.get("path")
        if not isinstance(md5, str) or not isinstance(path, str):
            continue
        md5 = md5.strip().lower()
        if MD5.match(md5) and not path.startswith("/"):
            outs.append(Out(posixpath.normpath(posixpath.join(folder, path)), md5, source))
    return outs


def _stage_dir(base: str, name: object, stage: dict, wdirs: Mapping[str, str] | None) -> str:
    """The folder a lock stage's out paths are relative to: `base` joined with its wdir."""
    wdir = stage.get("wdir")
    if not isinstance(wdir, str) and wdirs and isinstance(name, str):
        # foreach/matrix stages are locked as `name@key`; dvc.yaml declares `name`
        wdir = wdirs.get(name, wdirs.get(name.split("@", 1)[0]))
    if not isinstance(wdir, str) or not wdir.strip() or wdir.startswith("/"):
        return base
    return posixpath.normpath(posixpath.join(base, wdir.strip().replace("\\", "/")))


def stage_wdirs(blob: bytes | None) -> dict[str, str]:
    """Stage name -> `wdir` of the stages a `dvc.yaml` declares with one (a `foreach` stage's
    from its `do:`); {} when it declares none or is not YAML DVC would accept."""
    if not blob or b"wdir" not in blob:
        return {}
    import yaml

    try:
        doc = yaml.load(blob, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except (yaml.YAMLError, ValueError, RecursionError):
        return {}
    stages = doc.get("stages") if isinstance(doc, dict) else None
    result = {}
    for name, stage in (stages.items() if isinstance(stages, dict) else ()):
        if not isinstance(name, str) or not isinstance(stage, dict):
            continue
        wdir = stage.get("wdir")
        if wdir is None and isinstance(stage.get("do"), dict):
            wdir = stage["do"].get("wdir")
        if isinstance(wdir, str) and "${" not in wdir:
            result[name] = wdir
    return result


_PLAIN = r"[^\s:#'\"{}\[\],&*!|>%@`](?:[^:#'\"{}\[\],&*!|>%@`]*[^\s:#'\"{}\[\],&*!|>%@`])?"
_PLAIN_LINE = re.compile(rf"^(- |  )([A-Za-z_][A-Za-z0-9_-]*): ({_PLAIN})$")


def _plain_dvc_file(blob: bytes) -> dict | None:
    """`{"outs": [{key: text}, ...]}` for a `.dvc` file made only of `outs:` and list items
    of plain `key: value` lines (what `dvc add` writes); None for anything else."""
    try:
        lines = blob.decode("utf-8").splitlines()
    except UnicodeDecodeError:
        return None
    if not lines or lines[0] != "outs:":
        return None
    entries: list[dict[str, str]] = []
    for line in lines[1:]:
        match = _PLAIN_LINE.match(line)
        if match is None:
            return None
        indent, key, value = match.groups()
        if indent == "- ":
            entries.append({})
        elif not entries or key in entries[-1]:
            return None
        entries[-1][key] = value
    return {"outs": entries}


def _as_list(value: object) -> list:
    return value if isinstance(value, list) else []


def version_matches(version: str, md5: str) -> bool:
    """Whether a `Data version` cell (full md5, 8+ hex prefix, `.dir` allowed) names `md5`."""
    match = VERSION_MD5.match(version.strip().lower())
    if not match:
        return False
    digits, is_dir = match.groups()
    if is_dir and len(digits) != 32:
        return False  # `.dir` ends a full hash only
    return md5.startswith(digits) and (not is_dir or md5.endswith(".dir"))


# ------------------------------------------------------------------ which outs count

@dataclass(frozen=True)
class DataSpec:
    """Which outs name the data version: aisdp.toml `data`, else every tracked out.

    Entries are paths from the repository root: a `.dvc` file (its outs), a `dvc.lock` (all its
    stages' outs), or an out's path (looked up in `<path>.dvc` and in the `dvc.lock` files of
    its folder and every folder above)."""

    entries: tuple[str, ...] = ()

    @property
    def configured(self) -> bool:
        return bool(self.entries)

    def records(self) -> list[str]:
        """The record paths to read at each commit (configured case)."""
        paths: list[str] = []
        for entry in self.entries:
            if entry.endswith(".dvc") or posixpath.basename(entry) == "dvc.lock":
                paths.append(entry)
                continue
            paths.append(entry + ".dvc")
            folder = posixpath.dirname(entry)
            while True:
                paths.append(posixpath.join(folder, "dvc.lock") if folder else "dvc.lock")
                if not folder:
                    break
                folder = posixpath.dirname(folder)
        return list(dict.fromkeys(paths))

    def counted(self, outs: Iterable[Out]) -> list[Out]:
        """The outs that name the data version."""
        outs = list(outs)
        if not self.entries:
            return outs
        chosen = []
        for out in outs:
            for entry in self.entries:
                if entry == out.source or entry == out.path:
                    chosen.append(out)
                    break
        return chosen


def data_spec(entries: Iterable[str], prefix: str = "") -> DataSpec:
    """Config `data` entries (relative to the config's folder, `prefix` from the repository
    root, see `repo.gitparse.repo_prefix`) as repository-root paths; entries escaping it are
    dropped."""
    result = []
    for entry in entries:
        joined = posixpath.normpath(posixpath.join(prefix, entry.replace("\\", "/")))
        if not joined.startswith("../") and joined not in ("..", "."):
            result.append(joined)
    return DataSpec(tuple(result))


# ------------------------------------------------------------------ the local cache

def dvc_root(start: Path, toplevel: Path) -> Path:
    """The folder holding `.dvc/`, at or above `start` but not above the git top level."""
    start, toplevel = Path(start).resolve(), Path(toplevel).resolve()
    for folder in (start, *start.parents):
        inputs.note(folder / ".dvc")
        if (folder / ".dvc").is_dir():
            return folder
        if folder == toplevel:
            break
    return toplevel


def cache_dirs(root: Path) -> list[Path]:
    """The local cache: `.dvc/cache`, or `[cache] dir` of `.dvc/config(.local)` (a relative
    dir is relative to `.dvc/`)."""
    dvc_dir = root / ".dvc"
    chosen = dvc_dir / "cache"
    for name in ("config", "config.local"):  # config.local wins, as in DVC
        inputs.note(dvc_dir / name)
        try:
            text = (dvc_dir / name).read_text("utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        if "cache" not in text:
            continue  # the usual case: no configparser needed
        import configparser

        parser = configparser.ConfigParser(strict=False, interpolation=None)
        try:
            parser.read_string(text)
        except configparser.Error:
            continue
        if parser.has_option("cache", "dir"):
            configured = parser.get("cache", "dir").strip().strip("'\"")
            if configured:
                chosen = Path(os.path.expanduser(configured))
                if not chosen.is_absolute():
                    chosen = dvc_dir / chosen
    return [chosen]


class LocalCache:
    """Existence of md5 objects in DVC's local cache, both layouts: 3.x
    `files/md5/ab/cdef...` and 2.x `ab/cdef...`. Answers are remembered (many rows share
    one data version)."""

    def __init__(self, dirs: list[Path]):
        self.dirs = dirs
        self._bases = [os.path.join(d, *parts) for d in dirs for parts in (("files", "md5"), ())]
        self._missing: dict[str, list[str]] = {}

    def object_path(self, md5: str) -> Path | None:
        for base in self._bases:
            path = os.path.join(base, md5[:2], md5[2:])
            inputs.note(path)
            if os.path.isfile(path):
                return Path(path)
        return None

    def missing(self, md5: str) -> list[str]:
        """The objects of `md5` (for a `.dir`, the manifest and every file it lists) that the
        cache lacks; [] when all are there."""
        if md5 not in self._missing:
            self._missing[md5] = self._find_missing(md5)
        return self._missing[md5]

    def _find_missing(self, md5: str) -> list[str]:
        path = self.object_path(md5)
        if path is None:
            return [md5]
        if not md5.endswith(".dir"):
            return []
        try:
            entries = read_manifest(path.read_bytes())
        except OSError:  # removed or unreadable since the stat
            entries = None
        if entries is None:
            return [md5]  # a damaged manifest is as good as none
        return [m for m in entries if self.object_path(m) is None]


def read_manifest(blob: bytes) -> list[str] | None:
    """The file md5s a `.dir` manifest lists; None when it is not a manifest."""
    import json

    try:
        items = json.loads(blob)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        return None
    if not isinstance(items, list):
        return None
    md5s = []
    for item in items:
        md5 = item.get("md5") if isinstance(item, dict) else None
        if not isinstance(md5, str) or not MD5.match(md5.lower()):
            return None
        md5s.append(md5.lower())
    return md5s


def remote_missing(root: Path, md5s: Iterable[str], cache: LocalCache) -> tuple[set[str], str]:
    """The md5s that the project's default DVC remote lacks, asked through DVC itself (the only
    place this module imports DVC). Returns (missing, problem): problem is a one-line reason
    when the remote could not be asked (then every md5 counts as missing)."""
    md5s = sorted(set(md5s))
    if not md5s:
        return set(), ""
    try:
        from dvc.exceptions import DvcException
        from dvc.repo import Repo
    except ImportError:
        return set(md5s), "DVC is not installed, so the remote was not asked"
    try:
        with Repo(str(root)) as repo:
            # DVC 3 keeps objects under files/md5/, 2.x (md5-dos2unix) at the remote's root.
            odbs = [repo.cloud.get_remote_odb(None, command="validate", hash_name=name)
                    for name in ("md5", "md5-dos2unix")]

            def present(oids: list[str]) -> set[str]:
                found: set[str] = set()
                for odb in odbs:
                    found.update(odb.oids_exist([o for o in oids if o not in found]))
                return found

            there = present(md5s)
            if len(there) < len(md5s):
                # DVC's http and local remotes answer "absent" when they cannot be reached
                problem = _unreachable(repo, odbs[0])
                if problem:
                    return set(md5s), problem
            missing = set()
            for md5 in md5s:
                if md5 not in there:
                    missing.add(md5)
                elif md5.endswith(".dir"):
                    files = _remote_manifest(odbs, md5, cache)
                    if files is None or set(files) - present(files):
                        missing.add(md5)
            return missing, ""
    except DvcException as exc:
        return set(md5s), " ".join(str(exc).split())[:200]
    except OSError as exc:
        return set(md5s), f"the remote cannot be read ({exc})"


#: Ports of the remote kinds reached over TCP, when the URL names none.
_DEFAULT_PORTS = {"http": 80, "https": 443, "ssh": 22, "webdav": 80, "webdavs": 443,
                  "webhdfs": 9870}


def _unreachable(repo, odb) -> str:
    """Why the default remote cannot be reached ('' when it can, or when this cannot tell):
    a local remote whose folder does not exist, or a network remote no TCP connection
    reaches (DVC's own answer for those is "absent", which would blame the data)."""
    import socket
    from urllib.parse import urlsplit

    protocol = getattr(odb.fs, "protocol", "")
    protocol = protocol[0] if isinstance(protocol, (tuple, list)) else protocol
    if protocol in ("local", "file", ""):
        root = str(odb.path)
        for suffix in ("/files/md5", "\\files\\md5"):
            root = root.removesuffix(suffix)
        return "" if os.path.isdir(root) else f"its folder {root} does not exist"
    try:
        name = repo.config["core"].get("remote")
        url = repo.config["remote"][name]["url"]
        parts = urlsplit(url)
        port = parts.port or _DEFAULT_PORTS.get(parts.scheme)
    except (KeyError, TypeError, ValueError):
        return ""
    if not parts.hostname or port is None:
        return ""  # a cloud store: its client reports its own errors
    try:
        socket.create_connection((parts.hostname, port), timeout=5).close()
    except OSError as exc:
        return f"{parts.hostname}:{port} is unreachable ({exc.strerror or exc})"
    return ""


def _remote_manifest(odbs, md5: str, cache: LocalCache) -> list[str] | None:
    local = cache.object_path(md5)
    if local is not None:
        return read_manifest(local.read_bytes())
    for odb in odbs:
        try:
            return read_manifest(odb.fs.cat_file(odb.oid_to_path(md5)))
        except OSError:
            continue
    return None
