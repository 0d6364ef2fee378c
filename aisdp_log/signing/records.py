"""Sign-off records outside the log: `.aisdp/signoffs/` in the repository, and the names that
keep an earlier sign-off's files when a period is signed again.

The chain of statements (R009) protects what comes before its last link; removing the newest
Sign-off rows leaves a shorter chain that still holds. So `review --sign` also writes each
statement and signature under `.aisdp/signoffs/` (new files per sign-off, never overwritten),
and the user commits them. `verify` reads every statement ever committed there (at HEAD or in
the history of any branch, tag or remote branch) and requires each in the log's Sign-off
sheet (R013): to hide a sign-off, an attacker must now also rewrite the shared history.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from aisdp_log.errors import AisdpLogError, RepositoryError
from aisdp_log.repo.git import GitRepo
from aisdp_log.signing.signatures import parse_statement, sha256_hex
from aisdp_log.system.atomic import write_new
from aisdp_log.system.tooldir import remove_orphans

SIGNOFFS_IN_REPO = Path(".aisdp") / "signoffs"
_SAFE = re.compile(r"[^A-Za-z0-9._-]+")
_TEMP = re.compile(r"^\..+\.(?P<pid>\d+)-[A-Za-z0-9_]+\.tmp$")


def stamp(signed_at: str) -> str:
    """`2026-11-26T09:00:00Z` as `20261126T090000Z`, for file names."""
    return _SAFE.sub("", signed_at.replace("-", "").replace(":", "")) or "unsigned"


def kept_stem(period: str, signed_at: str) -> str:
    """The file stem of a sign-off's files once a later sign-off of the same period took the
    plain `review-<period>` names: `review-<period>.<stamp>`."""
    return f"review-{_SAFE.sub('_', period)}.{stamp(signed_at)}"


def bundle_stems(records: list) -> dict[int, str]:
    """Sign-off row number -> the stem of its files in a bundle's `reviews/`: the latest
    sign-off of each period `review-<period>` (the names `review` writes), each earlier one
    `review-<period>.<stamp>` (the names `review --sign` keeps it under). Only rows with a
    statement have files. The bundle writer and `verify` both name files by this rule."""
    latest: dict[str, int] = {}
    for record in records:
        if record.statement:
            latest[_period_of(record)] = record.row_number
    stems: dict[int, str] = {}
    taken: set[str] = set()
    for record in records:
        if not record.statement:
            continue
        period = _period_of(record)
        stem = f"review-{_SAFE.sub('_', period)}" if latest[period] == record.row_number \
            else kept_stem(period, _signed_at_of(record))
        candidate, number = stem, 2
        while candidate in taken:
            candidate, number = f"{stem}-{number}", number + 1
        taken.add(candidate)
        stems[record.row_number] = candidate
    return stems


def _period_of(record) -> str:
    statement, _ = parse_statement(record.statement)
    return str((statement or {}).get("period") or record.period or "unnamed")


def _signed_at_of(record) -> str:
    statement, _ = parse_statement(record.statement)
    return str((statement or {}).get("signed_at") or record.signed_at or "")


def free_stem(folder: Path, stem: str, suffixes: tuple[str, ...]) -> str:
    """`stem`, or `stem-2`, `stem-3`...: the first whose files (one per suffix) all do not
    exist yet in `folder`, so nothing is ever overwritten."""
    candidate, number = stem, 2
    while any((folder / f"{candidate}{suffix}").exists() for suffix in suffixes):
        candidate, number = f"{stem}-{number}", number + 1
    return candidate


def log_path_in_repo(log_path: Path, repo: Path | None) -> str | None:
    """The log's path in its repository (`docs/log.xlsx`) as a statement's `log_path` names
    it, or None outside one: `review --sign` writes it and `verify` compares with it."""
    if repo is None:
        return None
    try:
        return log_path.resolve().relative_to(repo.resolve()).as_posix()
    except ValueError:
        return None


def write_record(repo: Path, statement: dict, text: str, armored: str) -> list[Path]:
    """Write the statement (and its signature, when signed) under `.aisdp/signoffs/` in new
    files: `<period>.<stamp>.json` (`-2`, `-3`... where taken); opened exclusively, so an
    existing record is never overwritten. Returns the files written."""
    folder = repo / SIGNOFFS_IN_REPO
    folder.mkdir(parents=True, exist_ok=True)
    remove_orphans(folder, _temp_owner, pattern=".*.tmp")  # a killed signer's temp files
    stem = free_stem(folder, f"{_SAFE.sub('_', str(statement.get('period')))}."
                     f"{stamp(str(statement.get('signed_at')))}", (".json", ".json.sig"))
    written = []
    # the signature first: a record whose statement is there always has its signature too
    for suffix, data in ((".json.sig", armored.encode("ascii") if armored else None),
                         (".json", text.encode("utf-8"))):
        if data is None:
            continue
        path = folder / f"{stem}{suffix}"
        try:
            write_new(path, data)
        except FileExistsError as exc:
            raise AisdpLogError(f"{path}: a sign-off record of that name appeared while "
                                "signing; nothing overwritten, sign again") from exc
        written.append(path)
    return sorted(written, key=lambda p: p.name.endswith(".sig"))


def _temp_owner(name: str) -> int | None:
    """The pid in a temp file's name as `write_new` makes it (`.<name>.<pid>-<rand>.tmp`)."""
    match = _TEMP.match(name)
    return int(match["pid"]) if match else None


@dataclass(frozen=True)
class RecordedStatement:
    """A statement found under `.aisdp/signoffs/` in the repository's history."""

    path: str      # its path in the repository
    text: str      # the statement as written
    period: str
    signed_at: str
    signer: str
    log: str                # the log's file name the statement names
    log_path: str | None    # the log's path in the repository, where it names one
    previous: str | None    # the sha256 of the statement before it

    @cached_property
    def sha256(self) -> str:
        """Hashed once: `records_of_log` asks for it on every round of its chain walk."""
        return sha256_hex(self.text.encode("utf-8"))


def recorded_statements(repo: Path) -> list[RecordedStatement]:
    """Every statement ever committed under `.aisdp/signoffs/` (any version, on any branch,
    tag or remote branch), read from git objects, so deleting the files from the work tree or
    in a later commit hides none."""
    try:
        with GitRepo.open(repo) as git:
            found = git.changed_blobs([f"{SIGNOFFS_IN_REPO.as_posix()}/*.json"])
            blobs = git.read_blobs(oid for _, oid in found)
    except RepositoryError:
        return []
    result: dict[str, RecordedStatement] = {}
    for path, oid in sorted(found):
        data = blobs.get(oid)
        if data is None or not path.endswith(".json"):
            continue
        text = data.decode("utf-8", "replace").strip()
        statement, _ = parse_statement(text)
        if statement is None:
            continue
        signer = statement.get("signer") or {}
        who = f"{signer.get('name', '')}, {signer.get('role', '')} <{signer.get('email', '')}>"
        named = statement.get("log_path")
        previous = statement.get("previous")
        result.setdefault(text, RecordedStatement(
            path, text, str(statement.get("period")), str(statement.get("signed_at")), who,
            str(statement.get("log")), named if isinstance(named, str) else None,
            previous if isinstance(previous, str) else None))
    return list(result.values())


def records_of_log(recorded: list[RecordedStatement], held: list[str], log_name: str,
                   log_path: str | None) -> list[RecordedStatement]:
    """The recorded statements that belong to this log: those naming it (its repository path,
    or without one its file name), and those whose chain of `previous` links reaches a
    statement the log holds, so renaming or moving the log does not disown its newest
    sign-offs."""
    belongs = {sha256_hex(text.encode("utf-8")) for text in held}
    mine = {r.sha256 for r in recorded
            if (r.log_path == log_path if r.log_path and log_path else r.log == log_name)}
    belongs |= mine
    grew = True
    while grew:  # a chain of n records needs at most n rounds
        linked = {r.sha256 for r in recorded if r.previous in belongs} - belongs
        belongs |= linked
        grew = bool(linked)
    return [r for r in recorded if r.sha256 in belongs]
