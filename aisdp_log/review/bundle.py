"""`aisdp-log bundle`: one zip an assessor keeps for ten years and checks with standard tools.

Layout: the log under its own name; `reviews/review-<period>.{html,md,json,json.sig}` for the
latest sign-off of each period and `reviews/review-<period>.<signed-at>.*` for earlier ones
(every Sign-off row's files, whatever `--period`: `verify` requires them, B002);
`artefacts/<ID>/...` (each reviewed row's artefact folder, rerun folders left out);
`locks/<commit>/<path>` (the lock files the rows' `Environment` names, from git objects);
`allowed_signers`; `SHA256SUMS` (sha256sum format, every other file); `VERIFY.md`. The zip is
deterministic: members sorted, fixed timestamps and modes.
"""

from __future__ import annotations

import os
import re
import stat
import subprocess
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from aisdp_log.artefacts.digests import file_sha256, manifest_text
from aisdp_log.domain.locks import lock_entries, lock_repo_path
from aisdp_log.errors import AisdpLogError
from aisdp_log.repo.git import blob_at, resolve_commit
from aisdp_log.review.gather import (
    artefact_folder_or_none,
    parse_period,
    resolve_setting,
)
from aisdp_log.review.render import render_verify
from aisdp_log.signing import anchor as anchors
from aisdp_log.signing import identity, signatures, signoff
from aisdp_log.signing import records as sign_records
from aisdp_log.signing.logcheck import BUNDLE_ALLOWED_SIGNERS, BUNDLE_SUMS
from aisdp_log.system.atomic import atomic_replace
from aisdp_log.workbook.container import display_name
from aisdp_log.workbook.reader import load_log

FIXED_TIME = (1980, 1, 1, 0, 0, 0)
COMMIT = re.compile(r"^[0-9a-fA-F]{7,40}$")
#: Artefact sub-folders left out: rerun outputs are evidence of the rerun, kept in the log.
SKIPPED_FOLDERS = ("reruns",)


@dataclass
class BundleResult:
    path: Path
    #: name in the bundle -> size in bytes
    files: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)



def write_bundle(log_path: Path | str, output: Path | str, *, period: str | None = None,
                 reviews_dir: Path | str | list | None = None,
                 repo: Path | str | None = None) -> BundleResult:
    """Write the evidence bundle of `log_path` to `output` (see the module docstring)."""

    log_path, output = Path(log_path), Path(output)
    if not log_path.is_file():
        raise AisdpLogError(f"{display_name(log_path)}: no such file; check the path")
    if output.exists() and output.is_dir():
        raise AisdpLogError(f"{output}: -o must be a file name ending in .zip")
    period = parse_period(period) if period else None
    root, git_root, config = resolve_setting(log_path, repo, None)
    result = BundleResult(output)
    members: dict[str, Path | bytes] = {log_path.name: log_path}
    log = load_log(log_path, config)
    try:
        every = signoff.read_signoffs(log.workbook)
        records = [r for r in every if period is None or r.period == period]
        if not records:
            raise AisdpLogError(f"{display_name(log_path)}: no sign-off"
                                f"{' of ' + period if period else ''} to bundle; sign the "
                                "review first (`aisdp-log review LOG --sign ...`)")
        rows: dict = {}
        for row in log.rows:
            rows.setdefault(log.experiment_id(row), row)
        reviewed = list(dict.fromkeys(i for r in records for i in r.experiment_ids))
        for experiment_id in reviewed:
            reviewed_row = rows.get(experiment_id)
            if reviewed_row is None:
                result.notes.append(f"{experiment_id}: signed but no longer in the log; no "
                                    "artefacts bundled for it")
                continue
            folder = artefact_folder_or_none(config.artefacts_dir, experiment_id, config.id_regex)
            if folder is None:
                result.notes.append(f"{experiment_id}: no artefact folder under "
                                    f"{config.artefacts_dir}")
            else:
                for file in _folder_files(folder, result.notes):
                    members["artefacts/" + experiment_id + "/" +
                            file.relative_to(folder).as_posix()] = file
            environment = log.typed(reviewed_row, "environment")
            commit = log.typed(reviewed_row, "code_commit")
            for path, _ in lock_entries(str(environment or "")):
                # read as G005 and `rerun --env lock` read it: `envs\requirements.txt` is
                # `envs/requirements.txt`, on every OS
                repo_path = lock_repo_path(path, "")
                blob = (_lock_at_commit(git_root, str(commit or ""), repo_path)
                        if repo_path is not None else f"{path}: not a path inside the repository")
                if isinstance(blob, str):
                    result.notes.append(f"{experiment_id}: {blob}")
                else:
                    full, data = blob
                    members[f"locks/{full}/{repo_path}"] = data
        # where `review -o` usually writes: beside the log, its reviews/ folder, or here
        folder = log_path.resolve().parent
        given = reviews_dir if isinstance(reviews_dir, list) else \
            ([reviews_dir] if reviews_dir else [])
        search = [Path(d) for d in given] or [folder, folder / "reviews", Path.cwd()]
        # every sign-off's files, whatever --period: `verify` requires them all (B002)
        stems = sign_records.bundle_stems(every)
        for record in every:
            if record.row_number in stems:
                _add_review(members, stems[record.row_number], record, search, result.notes)
    finally:
        log.workbook.close()
    allowed = _committed_allowed_signers(git_root or root, result.notes)
    if allowed is not None:
        members[BUNDLE_ALLOWED_SIGNERS] = allowed
    else:
        result.notes.append("no allowed signers file (git config gpg.ssh.allowedSignersFile or "
                            ".aisdp/allowed_signers): the bundle's signatures can be checked "
                            "only against a list the assessor brings")
        allowed = None
    sums = {name: (signatures.sha256_hex(item) if isinstance(item, bytes)
                   else file_sha256(item)) for name, item in members.items()}
    verify_md = _verify_text(members, allowed, log_path.name).encode("utf-8")
    # VERIFY.md is covered too: SHA256SUMS is the one file outside the sums
    members["VERIFY.md"] = verify_md
    sums["VERIFY.md"] = signatures.sha256_hex(verify_md)
    members[BUNDLE_SUMS] = manifest_text([(digest, name) for name, digest in sums.items()]
                                         ).encode("utf-8")
    output.parent.mkdir(parents=True, exist_ok=True)
    with atomic_replace(output, suffix=".zip.tmp") as temp:
        with zipfile.ZipFile(temp, "w", zipfile.ZIP_DEFLATED, compresslevel=6) as archive:
            for name in sorted(members):
                result.files[name] = _write_member(archive, name, members[name])
    return result


def _committed_allowed_signers(repo: Path | None, notes: list[str]) -> bytes | None:
    """The allowed signers `verify` would use for the log (git's setting, else the list as
    committed), for the bundle: a convenience the assessor compares with their own list."""
    with tempfile.TemporaryDirectory(prefix="aisdp-log-anchor-") as scratch:
        found = anchors.for_repository(repo, Path(scratch))
        if found is None:
            return None
        if found.worktree_edit:
            notes.append(f"{found.source}: {found.worktree_edit}; the committed version is "
                         "bundled")
        return found.path.read_bytes()


def _folder_files(folder: Path, notes: list[str]) -> list[Path]:
    """Regular files under `folder`, sorted; rerun folders left out, and links and other
    non-files left out with a note (a link could lead out of the artefact folder)."""
    found = []
    for current, folders, files in os.walk(folder, followlinks=False):
        here = Path(current)
        links = [f for f in folders if (here / f).is_symlink()]
        folders[:] = sorted(f for f in folders if not (here == folder and f in SKIPPED_FOLDERS)
                            and f not in links)
        for name in sorted(files) + links:
            path = here / name
            relative = path.relative_to(folder).as_posix()
            if not stat.S_ISREG(path.lstat().st_mode):
                notes.append(f"{path}: not a regular file (a link?); not bundled")
                continue
            if any(ch in relative for ch in "\n\r\\"):
                # sha256sum would escape the name, and the zip would not extract the same
                raise AisdpLogError(f"{path}: a file name with a line break or backslash "
                                    "cannot go into SHA256SUMS; rename it")
            found.append(path)
    return found


def _lock_at_commit(git_root: Path | None, commit: str, path: str) -> tuple[str, bytes] | str:
    """(full commit, the lock file's bytes at it), or why it cannot be read. Commit and path
    are cell text: the commit must be hex, the path relative without `..`; both reach git as
    one argument, never through a shell."""
    if git_root is None:
        return f"{path}: no git repository to read it from"
    if not COMMIT.match(commit.strip()):
        return f"{path}: code commit {commit!r} is not a commit SHA"
    parts = Path(path).parts
    if Path(path).is_absolute() or ".." in parts or path.startswith("-"):
        return f"{path}: not a path inside the repository"
    try:
        full = resolve_commit(git_root, commit.strip(), timeout=60)
        if not full:
            return f"{path}: commit {commit} is not in the repository"
        blob = blob_at(git_root, full, path.removeprefix("./"), timeout=60)
    except (AisdpLogError, OSError, subprocess.SubprocessError) as exc:
        return f"{path}: git failed ({exc})"
    if blob is None:
        return f"{path}: not in commit {full[:12]}"
    return full, blob


def _add_review(members: dict, stem: str, record, search: list[Path], notes: list) -> None:
    """One sign-off's statement and signature (from the workbook, which carries them) as
    `reviews/<stem>.json[.sig]`, and the review files whose sha256 the statement records as
    `reviews/<stem>.html` and `.md`, found by that sha256 among `review-<period>*` files of
    the `search` folders (an earlier sign-off's files keep new names: `review --sign`)."""
    statement, problem = signatures.parse_statement(record.statement)
    period = str((statement or {}).get("period") or record.period)
    if statement is None:
        notes.append(f"{period}: {problem}; its review files are not bundled")
    members[f"reviews/{stem}.json"] = record.statement.encode("utf-8")
    if record.signature:
        members[f"reviews/{stem}.json.sig"] = \
            signatures.normalise_armor(record.signature).encode("ascii", "replace")
    for entry in ((statement or {}).get("review") or {}).values():
        if not isinstance(entry, dict):
            continue
        name, signed = str(entry.get("file")), entry.get("sha256")
        suffix = Path(name).suffix
        candidates = [c for folder in search if folder.is_dir()
                      for c in sorted(folder.glob(f"review-{glob_escape(period)}*{suffix}"))
                      if c.is_file()]
        matching = [c for c in candidates if file_sha256(c) == signed]
        if not matching:
            where = ", ".join(str(f) for f in search)
            raise AisdpLogError(f"{name}: no copy in {where} has the sha256 the signed "
                                f"statement of {period} ({record.signed_at}) records "
                                "(re-rendered since signing?); pass --reviews with the "
                                "folder of the signed files (repeat it for several)")
        members[f"reviews/{stem}{suffix}"] = matching[0]


def glob_escape(text: str) -> str:
    """`text` with glob's special characters made literal."""
    return "".join(f"[{c}]" if c in "*?[" else c for c in text)


def _write_member(archive: zipfile.ZipFile, name: str, item: Path | bytes) -> int:
    info = zipfile.ZipInfo(name, date_time=FIXED_TIME)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = (stat.S_IFREG | 0o644) << 16
    info.create_system = 3
    if isinstance(item, bytes):
        archive.writestr(info, item, compresslevel=6)
        return len(item)
    size = 0
    with open(item, "rb") as source, archive.open(info, "w") as target:
        while chunk := source.read(1 << 20):
            target.write(chunk)
            size += len(chunk)
    return size


def _verify_text(members: dict, allowed: bytes | None, log_name: str) -> str:
    """VERIFY.md: the exact commands that check the bundle with standard tools (Linux, macOS
    and Windows PowerShell) and OpenSSH, each
    signature against the principal (e-mail) its statement names, at its signing time."""
    statements = sorted(n for n in members if n.startswith("reviews/") and n.endswith(".json"))
    signed = []
    review_files = []
    for name in statements:
        statement, _ = signatures.parse_statement(
            _member_bytes(members[name]).decode("utf-8", "replace"))
        statement = statement or {}
        signer = identity.statement_signer(statement)
        if name + ".sig" in members:
            signed.append({
                "name": name, "principal": (signer.email if signer else "") or "PRINCIPAL",
                "signer": signer.display if signer else "someone",
                "key": statement.get("key") or "unknown",
                "args": signatures.verify_args(BUNDLE_ALLOWED_SIGNERS,
                                               (signer.email if signer else "") or "PRINCIPAL",
                                               name + ".sig",
                                               str(statement.get("signed_at") or ""))})
        review_files += [{"file": entry.get("file"), "sha256": entry.get("sha256"),
                          "statement": name}
                         for entry in (statement.get("review") or {}).values()
                         if isinstance(entry, dict)]
    return render_verify({
        "log_name": log_name, "sums_name": BUNDLE_SUMS, "namespace": signatures.NAMESPACE,
        "allowed_name": None if allowed is None else BUNDLE_ALLOWED_SIGNERS,
        "allowed_file": BUNDLE_ALLOWED_SIGNERS, "signed": signed,
        "unsigned": [n for n in statements if n + ".sig" not in members],
        "review_files": review_files})


def _member_bytes(item: bytes | Path) -> bytes:
    return item if isinstance(item, bytes) else item.read_bytes()
