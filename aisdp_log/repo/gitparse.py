"""Git's names, files and answers read without starting git: what a commit name resolved to
(`CommitLookup`), the output of `cat-file --batch` and `log --raw`, a commit's committer date,
valid ref names, a folder's prefix in the work tree, and where the `.git` of a folder is.

The git processes themselves start in `aisdp_log.repo.git`; this module only reads."""

from __future__ import annotations

import datetime as dt
import os
import re
from dataclasses import dataclass
from pathlib import Path

HEX = re.compile(r"^[0-9a-fA-F]{4,40}$")
#: A full object name: SHA-1 or SHA-256.
FULL_SHA = re.compile(r"[0-9a-fA-F]{40}|[0-9a-fA-F]{64}")
ZERO_OID = "0" * 40


@dataclass(frozen=True)
class CommitLookup:
    """What a name (a full or short SHA, a tag, a branch) resolves to.

    `status` is "found" (then `sha` and `committed` are set), "missing" or "ambiguous" (a
    short SHA that several commits start with)."""

    name: str
    status: str
    sha: str | None = None
    committed: dt.datetime | None = None  # committer date, in the committer's own time zone


def find_work_tree(start: Path) -> tuple[Path, Path, bool] | None:
    """(top level, git dir, shallow) for a plain `.git` folder or a worktree's `.git` file at or
    above `start`; None when the layout is anything else (then git itself is asked)."""
    if os.environ.get("GIT_DIR") or os.environ.get("GIT_WORK_TREE"):
        return None
    try:
        start = start.resolve()
        for folder in (start, *start.parents):
            dot_git = folder / ".git"
            if dot_git.is_dir():
                git_dir = dot_git
            elif dot_git.is_file():
                text = os.fsdecode(dot_git.read_bytes()).strip()  # holds a path
                if not text.startswith("gitdir:"):
                    return None
                git_dir = (folder / text[len("gitdir:"):].strip()).resolve()
            else:
                continue
            if not (git_dir / "HEAD").is_file():
                return None
            return folder, git_dir, (common_dir(git_dir) / "shallow").is_file()
    except (OSError, UnicodeDecodeError):
        return None
    return None


def read_head(start: Path) -> str | None:
    """The full SHA HEAD points to, read from the files of the repository at or above `start`
    (HEAD, the loose ref, `packed-refs`), for where no git program runs (a training container
    with the repository mounted); None when it cannot be read that way."""
    found = find_work_tree(start)
    if found is None:
        return None
    _, git_dir, _ = found
    try:
        common = common_dir(git_dir)
        head = (git_dir / "HEAD").read_text("utf-8").strip()
        if not head.startswith("ref:"):
            return head.lower() if FULL_SHA.fullmatch(head) else None
        ref = head[len("ref:"):].strip()
        for folder in (git_dir, common):
            loose = folder / ref
            if loose.is_file():
                sha = loose.read_text("utf-8").strip()
                return sha.lower() if FULL_SHA.fullmatch(sha) else None
        packed = common / "packed-refs"
        if packed.is_file():
            for line in packed.read_text("utf-8").splitlines():
                sha, _, name = line.partition(" ")
                if name.strip() == ref and FULL_SHA.fullmatch(sha):
                    return sha.lower()
    except (OSError, UnicodeDecodeError):
        return None
    return None


def common_dir(git_dir: Path) -> Path:
    """The folder a linked work tree's git directory shares (its `commondir`), else itself."""
    if (git_dir / "commondir").is_file():
        return (git_dir / os.fsdecode((git_dir / "commondir").read_bytes()).strip()).resolve()
    return git_dir


def parse_batch(stream, names: list[str], contents: bool):
    """Yield (status, oid, body) for each name from `cat-file --batch[-check]` output."""
    for _ in names:
        line = stream.readline()
        if not line.endswith(b"\n"):
            raise EOFError("no answer")
        header = line[:-1].decode("utf-8", "replace")
        if header.endswith(" missing") or header.endswith(" ambiguous"):
            yield header.rsplit(" ", 1)[1], "", None
            continue
        oid, kind, size = header.rsplit(" ", 2)
        body = None
        if contents:
            body = stream.read(int(size) + 1)[:-1]  # the object, then a newline
            if len(body) != int(size):
                raise EOFError("short object")
        yield kind, oid, body


def changed_paths(raw_log: bytes) -> set[tuple[str, str]]:
    """Every (path, blob oid) written in the output of `git log --raw -z --no-abbrev`
    (deletions, whose new oid is all zeros, left out)."""
    result = set()
    fields = raw_log.split(b"\0")
    # -z --raw: ":<mode> <mode> <old> <new> <status>" NUL "<path>" NUL ...
    i = 0
    while i < len(fields) - 1:
        meta = fields[i].strip().decode("ascii", "replace")
        if meta.startswith(":"):
            parts = meta.split()
            path = fields[i + 1].decode("utf-8", "surrogateescape")
            if len(parts) >= 4 and parts[3] != ZERO_OID:
                result.add((path, parts[3]))
            i += 2
        else:
            i += 1
    return result


def committer_date(body: bytes) -> dt.datetime | None:
    """The committer line's date, in the committer's own time zone."""
    for line in body.split(b"\n"):
        if not line:
            break  # end of the header
        if line.startswith(b"committer "):
            try:
                _, stamp, offset = line.rsplit(b" ", 2)
                sign = -1 if offset[:1] == b"-" else 1
                hours, minutes = int(offset[1:3]), int(offset[3:5])
                zone = dt.timezone(sign * dt.timedelta(hours=hours, minutes=minutes))
                return dt.datetime.fromtimestamp(int(stamp), zone)
            except (ValueError, OverflowError, OSError):
                return None
    return None


def first_line(stderr: bytes) -> str:
    """git's first line of complaint, without its `fatal: ` or `error: `."""
    for line in stderr.decode("utf-8", "replace").splitlines():
        line = line.strip()
        if line:
            return line.removeprefix("fatal: ").removeprefix("error: ")[:200]
    return ""


#: What git refuses in a ref name (`git check-ref-format`): controls, space, `~^:?*[\\`, DEL.
_REF_FORBIDDEN = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]")


def is_ref_name(name: str) -> bool:
    """Whether `name` is a valid git ref name (tag or branch), as `git check-ref-format
    --allow-onelevel` rules it: `text-classification@v1.1.0`, `model#prod#1` and `v1+build`
    are; `a..b`, `@{1}`, `x.lock`, `HEAD~1` are not."""
    if not name or name == "@" or len(name) > 255 or _REF_FORBIDDEN.search(name):
        return False
    if ".." in name or "@{" in name or "//" in name or name.endswith((".", "/")) or \
            name.startswith("/"):
        return False
    return all(part and not part.startswith(".") and not part.endswith(".lock")
               for part in name.split("/"))


def repo_prefix(path: Path | str, toplevel: Path | str) -> str:
    """`path` relative to the work tree's top level, as a posix prefix ('' at the top or
    outside it): cells and aisdp.toml name paths from the config's folder, git from the top."""
    try:
        rel = Path(os.path.realpath(path)).relative_to(os.path.realpath(toplevel)).as_posix()
    except ValueError:
        return ""
    return "" if rel == "." else rel
