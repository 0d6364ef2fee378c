"""Write a review: gather it, render `review-<period>.html` and `.md`, and with `--sign` the
signed statement and the `Sign-off` row, in that order, from a scratch folder that a killed
review does not leave behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from aisdp_log import __version__
from aisdp_log.errors import AisdpLogError
from aisdp_log.review.gather import (
    changes_since_signoff,
    gather_review,
    period_rows,
    resolve_setting,
)
from aisdp_log.review.model import Review, SignatureInfo
from aisdp_log.review.render import render
from aisdp_log.signing import anchor as anchors
from aisdp_log.signing import identity, signatures, signoff
from aisdp_log.signing import records as sign_records
from aisdp_log.signing.logcheck import check_signoffs
from aisdp_log.signing.sign import append_signoff, signoff_values
from aisdp_log.system.atomic import write_bytes
from aisdp_log.system.tooldir import remove_orphans
from aisdp_log.workbook import guard
from aisdp_log.workbook.reader import load_log


@dataclass
class ReviewResult:
    review: Review
    html_path: Path
    markdown_path: Path
    statement_path: Path | None = None
    signature_path: Path | None = None
    #: the earlier sign-off's files moved aside (new names) so that nothing signed is lost
    kept: list[Path] = field(default_factory=list)
    #: the statement and signature written under `.aisdp/signoffs/` (to commit)
    records: list[Path] = field(default_factory=list)



def write_review(log_path: Path | str, *, period: str | None = None,
                 output_dir: Path | str = ".", sign: str | None = None,
                 key: Path | str | None = None, repo: Path | str | None = None, config=None,
                 force: bool = False) -> ReviewResult:
    """Gather, optionally sign, and write `review-<period>.html` and `.md` into `output_dir`.

    With `sign`, the review files are written first, then the statement
    `review-<period>.json` (which holds their sha256) and its SSH signature `.json.sig` (with
    `key`, else git's `user.signingkey` when `gpg.format` is `ssh`), and the `Sign-off` row
    last: a process killed on the way leaves no signature without its review and no Sign-off
    row without its statement. "Changes since the last signed review" compares with the
    sign-off before this one, and the report names its own signature."""

    if sign is not None:
        identity.split_signer(sign)  # a malformed --sign is refused before anything else
    if key is not None and sign is None:
        raise AisdpLogError("--key signs a sign-off: give --sign \"Name, Role <email>\" too")
    output_dir = Path(output_dir)
    if output_dir.exists() and not output_dir.is_dir():
        raise AisdpLogError(f"{output_dir}: -o must be a folder")
    log_path = Path(log_path)
    if sign is not None:  # refuse or wait before gathering and rendering, not after
        guard.preflight(log_path, force=force)
    root, git_root, config = resolve_setting(log_path, repo, config)
    signer: identity.Signer | None = None
    with _scratch() as scratch:
        info: SignatureInfo | None = None
        if sign is not None:
            key_path = Path(key) if key is not None else \
                signatures.default_signing_key(git_root or root, scratch / "signing.pub")
            # a key signs for a principal, so it needs the e-mail; a sign-off without a key
            # is not cryptographically signed (R010) and may name none
            signer = identity.parse_signer(sign, _git_email(git_root or root),
                                           required=key_path is not None)
            policy = identity.policy_problem(signer, config.signers)
            if policy is not None:
                raise AisdpLogError(f"--sign {signer.display!r}: {policy}; refusing to sign")
            info = _signature_info(key_path, git_root or root, signer, scratch)
        log = load_log(log_path, config)
        try:
            review = gather_review(log, log_path, period, root, git_root, config)
            # the signature covers the very values the report shows: one read of the workbook
            values = signoff_values(log, review.period, period_rows(log, review.period),
                                    signer.display) if signer is not None else None
            records = signoff.read_signoffs(log.workbook)
            review.signoff_history, trusted = _history(log, records, git_root or root)
            if trusted is not None:
                review.changes = changes_since_signoff(log, records, trusted)
        finally:
            log.workbook.close()
        record = None
        if values is not None and info is not None:
            if len(values["Row hashes"]) + 4000 > signoff.EXCEL_CELL_LIMIT:
                raise AisdpLogError(f"{log_path}: the signed statement of {review.period} "
                                    "would not fit a cell; review fewer rows per period")
            info.statement_file = f"review-{review.period}.json"
            info.previous = next((signatures.sha256_hex(r.statement.encode("utf-8"))
                                  for r in reversed(records) if r.statement), None)
            hashes, _ = signoff.parse_row_hashes(values["Row hashes"])
            record = signoff.SignoffRecord(
                0, values["Period"], values["Name and role"], values["Signed at"],
                [i.strip() for i in values["Experiment IDs"].split(",")], hashes, {})
            review.signoff, review.signature = record, info
        output_dir.mkdir(parents=True, exist_ok=True)
        kept = _keep_earlier_signoff(output_dir, review.period)
        html_path = output_dir / f"review-{review.period}.html"
        markdown_path = output_dir / f"review-{review.period}.md"
        html_text, markdown_text = render(review)
        html_bytes, markdown_bytes = html_text.encode("utf-8"), markdown_text.encode("utf-8")
        write_bytes(html_path, html_bytes)
        write_bytes(markdown_path, markdown_bytes)
        statement_path = signature_path = None
        written: list[Path] = []
        if values is not None and info is not None and record is not None and \
                signer is not None:
            statement = signatures.build_statement(
                period=review.period, signer=signer,
                signed_at=values["Signed at"], key=info.key,
                rows=dict(json.loads(values["Row hashes"])),
                html_sha256=signatures.sha256_hex(html_bytes),
                markdown_sha256=signatures.sha256_hex(markdown_bytes),
                previous=info.previous, tool_version=__version__, log_name=log_path.name,
                log_path=sign_records.log_path_in_repo(log_path, git_root))
            text = signatures.statement_text(statement)
            statement_path = output_dir / info.statement_file
            signature_path = output_dir / (info.statement_file + ".sig")
            armored = ""
            if info.key is not None and info.key_path is not None:
                # signed in memory first: a key that cannot sign leaves no statement behind
                armored = signatures.sign(text.encode("utf-8"), info.key_path)
            write_bytes(statement_path, text.encode("utf-8"))
            if armored:
                write_bytes(signature_path, armored.encode("ascii"))
            else:
                # a signature left from an earlier sign-off would sign another statement
                signature_path.unlink(missing_ok=True)
                signature_path = None
            values["Signature"], values["Statement"] = armored, text
            # last: a Sign-off row is never without its review, statement and signature
            record.row_number = append_signoff(log_path, values, force=force)
            if git_root is not None:
                # after the row: a record always has its row; a row without its record (a
                # killed review) is what the record guards against only for later rows
                written = sign_records.write_record(git_root, statement, text, armored)
    return ReviewResult(review, html_path, markdown_path, statement_path, signature_path,
                        kept, written)


def _git_email(repo: Path | None) -> str | None:
    """The e-mail git would sign a commit with: `user.email`, else the environment variables
    git reads (GIT_COMMITTER_EMAIL, GIT_AUTHOR_EMAIL, EMAIL)."""
    found = signatures.git_config(repo, "user.email")
    for name in ("GIT_COMMITTER_EMAIL", "GIT_AUTHOR_EMAIL", "EMAIL"):
        found = found or os.environ.get(name, "").strip() or None
    return found


def _keep_earlier_signoff(folder: Path, period: str) -> list[Path]:
    """Where `folder` holds a signed statement of `period`, move it, its signature and the
    review files it signed to `review-<period>.<stamp>.*` (never over an existing file), so
    the review written now replaces nothing signed. Returns the new paths."""
    statement_path = folder / f"review-{period}.json"
    try:
        text = statement_path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return []
    statement, _ = signatures.parse_statement(text)
    if statement is None:
        return []
    signed = {entry.get("sha256") for entry in (statement.get("review") or {}).values()
              if isinstance(entry, dict)}
    moving = [(statement_path, ".json"), (folder / f"review-{period}.json.sig", ".json.sig")]
    for suffix in (".html", ".md"):
        candidate = folder / f"review-{period}{suffix}"
        if candidate.is_file() and signatures.sha256_hex(candidate.read_bytes()) in signed:
            moving.append((candidate, suffix))
    stem = sign_records.free_stem(
        folder, sign_records.kept_stem(period, str(statement.get("signed_at"))),
        (".json", ".json.sig", ".html", ".md"))
    kept = []
    for source, suffix in moving:
        if source.is_file():
            target = folder / f"{stem}{suffix}"
            try:
                os.link(source, target)  # fails rather than overwrite
                source.unlink()
            except FileExistsError:
                raise
            except OSError:  # no hard links on this file system: free_stem chose a new name
                os.replace(source, target)
            kept.append(target)
    return kept


_SCRATCH_PREFIX = "aisdp-log-review-"


@contextlib.contextmanager
def _scratch():
    """A temp folder named with this process's pid; the folders of killed reviews (whose pid
    is gone) are removed first, so a SIGKILL leaves nothing behind for long."""
    remove_orphans(tempfile.gettempdir(), _scratch_owner, pattern=f"{_SCRATCH_PREFIX}*-*")
    with tempfile.TemporaryDirectory(prefix=f"{_SCRATCH_PREFIX}{os.getpid()}-") as folder:
        yield Path(folder)


def _scratch_owner(name: str) -> int | None:
    pid = name[len(_SCRATCH_PREFIX):].split("-", 1)[0]
    return int(pid) if pid.isdigit() else None


def _signature_info(key: Path | None, repo: Path, signer: identity.Signer,
                    scratch: Path) -> SignatureInfo:
    """The key's fingerprint and whether the allowed signers list it for the signer's
    e-mail, found by signing a probe (so a public key held by an ssh-agent works as well as a
    private key file). Where an allowed signers list exists and does not list the key for
    that principal, AisdpLogError: `verify` would report R008, so nothing is signed."""

    anchor = anchors.for_repository(repo, scratch / "anchor")
    shown = None
    if anchor is not None:
        # as the team knows it: relative to the repository where it lives there
        shown = anchor.source
        if Path(anchor.source).is_relative_to(repo):
            shown = str(Path(anchor.source).relative_to(repo))
    info = SignatureInfo(None, [], shown, "", None, key)
    if key is None:
        return info
    info.key = signatures.key_fingerprint(key)
    if anchor is not None:
        probe = b"aisdp-log: does the allowed signers list this key for this principal?"
        check = signatures.check_signature(probe, signatures.sign(probe, key), anchor.path,
                                           signer.email)
        if not check.verified:
            raise AisdpLogError(f"{key}: the allowed signers ({shown}) do not list key "
                                f"{info.key} for {signer.email} ({check.detail}); refusing "
                                "to sign a sign-off `aisdp-log verify` would reject")
        info.principals = [signer.email]
    return info


def _history(log, records: list, repo: Path
             ) -> tuple[list[tuple[str, str, str, str]], set[int] | None]:
    """(period, name and role, signed at, verification) for each earlier Sign-off row, and
    the rows whose signature verified (None where no allowed signers file could check them)."""

    if not records:
        return [], None
    trusted = None
    with tempfile.TemporaryDirectory(prefix="aisdp-log-anchor-") as scratch:
        anchor = anchors.for_repository(repo, Path(scratch))
        if anchor is None or shutil.which("ssh-keygen") is None:
            status = {r.row_number: ("signed, not checked (no committed allowed signers)"
                                     if r.signature else "not cryptographically signed")
                      for r in records}
        else:
            checked = check_signoffs(log, records, anchor.path)
            status, trusted = checked.status, checked.trusted
    return [(r.period, r.name_and_role, r.signed_at, status.get(r.row_number, ""))
            for r in records], trusted
