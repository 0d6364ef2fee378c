"""`aisdp-log verify` of a log: its signed sign-offs (a bundle: `signing.bundle_check`).

What each check proves, and against which anchor (`signing.anchor`):

- R007: the signature matches the statement, and the Sign-off cells say what it signs.
- R008: the key is listed **for the principal (e-mail) the statement names**, in the allowed
  signers the anchor gives, at the sign-off's time (`ssh-keygen -Y verify -I <email>`).
- R011: the name and role are the ones `[signers]` allows that principal.
- R009: each statement names the one before it, so no row before the last was removed.
- R013: every statement committed under `.aisdp/signoffs/` is in the sheet, so the newest rows
  cannot be removed either (the chain alone cannot see that).
- S004: a signed Experiment ID is used by one row only, so what was signed is unambiguous.
- R006: the reviewed rows still hash to what their latest trusted sign-off signed.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from aisdp_log import spec
from aisdp_log.errors import AisdpLogError
from aisdp_log.findings import Finding, Report
from aisdp_log.repo.roots import config_for, find_repo_root
from aisdp_log.signing import anchor as anchors
from aisdp_log.signing import identity, records, signatures, signoff
from aisdp_log.workbook.container import display_name
from aisdp_log.workbook.reader import load_log

BUNDLE_SUMS = "SHA256SUMS"
BUNDLE_ALLOWED_SIGNERS = "allowed_signers"


@dataclass
class SignoffCheck:
    """The signature findings of a log and the Sign-off rows whose signature is trusted."""

    findings: list[Finding] = field(default_factory=list)
    trusted: set[int] = field(default_factory=set)
    #: Sign-off row number -> one line for the review: who, which key, verified or why not
    status: dict[int, str] = field(default_factory=dict)
    #: one entry per Sign-off row, for `verify`'s output: period, signer, principal, key
    signers: list[dict] = field(default_factory=list)


def _claimed(record, statement: dict | None) -> str:
    if statement is not None:
        signer = identity.statement_signer(statement)
        if signer is not None and signer.name:
            return signer.display
    return record.name_and_role or "someone"


def check_signoffs(log, records: list, allowed: Path | None,
                   signers: dict[str, str] | None = None) -> SignoffCheck:
    """R007-R011 for each Sign-off row; signed rows' hashes are taken from the verified
    statement, so the R006 comparison uses what was signed, not what a cell says now.
    `signers` is `[signers]` of aisdp.toml (default: the log's config)."""
    result = SignoffCheck()
    signers = log.config.signers if signers is None else signers
    sheet = log.workbook.find_sheet(spec.SHEET_SIGNOFF) or spec.SHEET_SIGNOFF
    previous_text: str | None = None
    previous_row: int | None = None
    for record in records:
        def at(code: str, header: str, message: str, record=record) -> None:
            cell = record.cells.get(header) or record.cells.get("Period") or \
                f"A{record.row_number}"
            result.findings.append(log.finding_at(code, sheet, cell, record.row_number,
                                                  header, message))

        where = f"sign-off of {record.period or 'an unnamed period'}"
        statement, problem = (signatures.parse_statement(record.statement)
                              if record.statement else (None, None))
        claimed = _claimed(record, statement)
        signer = identity.statement_signer(statement) if statement is not None else None
        entry = {"row": record.row_number, "period": record.period, "signer": claimed,
                 "principal": signer.email if signer and signer.email else None,
                 "key": None, "status": "unsigned"}
        result.signers.append(entry)
        if record.statement and statement is not None:
            expected = None if previous_text is None else \
                signatures.sha256_hex(previous_text.encode("utf-8"))
            if statement.get("previous") != expected:
                if expected is None:
                    why = "names an earlier signed statement, but no earlier Sign-off row " \
                          "holds one: a sign-off row was removed"
                else:
                    why = (f"names the earlier statement sha256:"
                           f"{str(statement.get('previous'))[:12]}..., but Sign-off row "
                           f"{previous_row} holds sha256:{expected[:12]}...: a sign-off row "
                           "was removed, reordered or replaced")
                at("R009", "Statement", f"{where} by {claimed} {why}")
        if record.statement:
            previous_text, previous_row = record.statement, record.row_number
        if not record.signature:
            result.status[record.row_number] = "not cryptographically signed"
            at("R010", "Signature" if "Signature" in record.cells else "Name and role",
               f"{where} by {claimed} is not cryptographically signed: anyone who can edit "
               f"the log could have written it; sign with `aisdp-log review LOG --period "
               f"{record.period or 'P'} --sign \"Name, Role <email>\" --key KEY`")
            continue
        if problem is not None or statement is None or signer is None:
            result.status[record.row_number] = f"does not verify: {problem or 'no statement'}"
            entry["status"] = "invalid"
            at("R007", "Statement", f"{where}: {problem or 'the Statement cell is empty'}, "
               "so its signature cannot be checked")
            continue
        check = signatures.check_signature(record.statement.encode("utf-8"), record.signature,
                                           allowed, signer.email or None,
                                           str(statement.get("signed_at") or ""))
        key = check.fingerprint or "an unreadable key"
        entry["key"] = check.fingerprint
        if not check.valid:
            result.status[record.row_number] = \
                "does not verify: the statement or signature changed"
            entry["status"] = "invalid"
            at("R007", "Signature", f"{where} by {claimed}: the signature does not verify "
               f"against the signed statement ({check.detail}); the statement or the "
               "signature changed after signing")
            continue
        if statement.get("key") != check.fingerprint:
            result.status[record.row_number] = \
                "does not verify: signed with another key than named"
            entry["status"] = "invalid"
            at("R007", "Statement", f"{where}: the statement names key {statement.get('key')} "
               f"but was signed with {key}")
            continue
        if not signer.email:
            listed = f" (the allowed signers list it for {', '.join(check.principals)})" \
                if check.principals else ""
            result.status[record.row_number] = f"not trusted: names no principal (key {key})"
            entry["status"] = "not trusted"
            at("R008", "Signature", f"{where} claims {claimed!r} but names no e-mail "
               f"principal to check key {key} against{listed}: its identity is not bound; "
               "sign the period again with --sign \"Name, Role <email>\"")
            continue
        if not check.verified:
            result.status[record.row_number] = \
                f"not trusted: key {key} is not an allowed signer for {signer.email}"
            entry["status"] = "not trusted"
            at("R008", "Signature", f"{where} claims {claimed!r} but was signed with key "
               f"{key}, and ssh-keygen -Y verify -I {signer.email} refused it against "
               f"{_shown(allowed)} ({check.detail}): an untrusted signer")
            continue
        result.trusted.add(record.row_number)
        entry["status"] = "verified"
        result.status[record.row_number] = f"verified: key {key} of {signer.email}"
        policy = identity.policy_problem(signer, signers)
        if policy is not None:
            at("R011", "Name and role", f"{where} by {claimed}: {policy}")
        _compare_cells(record, statement, signer, at, where)
        signed, _ = signoff.parse_row_hashes(json.dumps(statement["rows"]))
        record.hashes = signed
        record.experiment_ids = list(signed)
    return result


def _shown(allowed: Path | None) -> str:
    return "no allowed signers" if allowed is None else f"the allowed signers ({allowed})"


def _compare_cells(record, statement: dict, signer, at, where: str) -> None:
    """R007 at each Sign-off cell that says other than the verified statement."""
    cell_hashes, _ = signoff.parse_row_hashes(record.hashes_text or None)
    signed_hashes, _ = signoff.parse_row_hashes(json.dumps(statement["rows"]))
    checks = [("Period", record.period, statement.get("period")),
              ("Name and role", record.name_and_role, signer.display),
              ("Signed at", record.signed_at, statement.get("signed_at")),
              ("Row hashes", cell_hashes, signed_hashes)]
    for header, now, signed in checks:
        if now != signed:
            shown = signed if not isinstance(signed, dict) else "the signed row hashes"
            at("R007", header, f"{where}: {header} differs from the signed statement "
               f"({shown!s:.80}); the cell changed after signing")


def duplicate_signed_ids(log, signoffs: list) -> list[Finding]:
    """S004 at every later row that reuses a signed Experiment ID: which row was signed
    would be ambiguous, and the row a reader sees may not be the one the hash covers."""
    signed = {i: r for r in signoffs for i in r.hashes}
    seen: set[str] = set()
    found = []
    for row in log.rows:
        experiment_id = log.experiment_id(row)
        if experiment_id not in signed:
            continue
        if experiment_id in seen:
            record = signed[experiment_id]
            found.append(log.finding("S004", row, None, f"{experiment_id} is signed (sign-off "
                                     f"of {record.period or 'a review'}) and used again by "
                                     "this row: which row was signed is ambiguous"))
        seen.add(experiment_id)
    return found


def missing_records(signoffs: list, repo: Path, log_path: Path,
                    notes: list[str] | None = None) -> list[Finding]:
    """R013 for every statement of this log committed under `.aisdp/signoffs/` that no
    Sign-off row holds (`records.records_of_log` decides which are this log's); a note for
    the log's signed statements no commit holds yet (nothing would show their removal)."""
    relative = records.log_path_in_repo(log_path, repo)
    held = [r.statement for r in signoffs if r.statement]
    held_set = set(held)
    recorded = records.recorded_statements(repo)
    mine = records.records_of_log(recorded, held, log_path.name, relative)
    unrecorded = held_set - {r.text for r in recorded}
    if unrecorded and notes is not None:
        notes.append(f"{len(unrecorded)} sign-off{'s' * (len(unrecorded) != 1)} of "
                     f"{log_path.name} {'are' if len(unrecorded) != 1 else 'is'} not yet "
                     f"committed under {records.SIGNOFFS_IN_REPO.as_posix()}/, so its removal "
                     "would go unnoticed: git add .aisdp/signoffs && git commit")
    return [anchors.file_finding("R013", "repository", found.path,
                                 f"sign-off of {found.period} by {found.signer} at "
                                 f"{found.signed_at} is recorded in the repository but "
                                 f"missing from {log_path.name}'s Sign-off sheet: a sign-off "
                                 "was removed")
            for found in mine if found.text not in held_set]


def verify_log(path: Path, *, allowed_signers: Path | None = None, repo: Path | None = None,
               notes: list[str] | None = None, records_out: list | None = None,
               anchor: anchors.Anchor | None = None) -> Report:
    """Check a log's signed sign-offs (see the module docstring). The allowed signers:
    `anchor` (a bundle's), else `allowed_signers`, else the repository's (`signing.anchor`)."""

    notes = [] if notes is None else notes
    if not path.exists():
        raise AisdpLogError(f"{display_name(path)}: no such file; check the path")
    in_bundle = anchor is not None
    root = Path(repo) if repo is not None else find_repo_root(path.resolve().parent)
    with tempfile.TemporaryDirectory(prefix="aisdp-log-anchor-") as scratch:
        if anchor is None:
            anchor = anchors.explicit(allowed_signers) if allowed_signers is not None else \
                anchors.for_repository(root, Path(scratch))
            if anchor is None:
                raise AisdpLogError(f"{display_name(path)}: no allowed signers to check "
                                    "against: pass --allowed-signers FILE, set git config "
                                    "gpg.ssh.allowedSignersFile, or commit "
                                    ".aisdp/allowed_signers")
            notes.append(anchor.note())
        signatures.ssh_keygen()  # one line, exit 2, where OpenSSH is missing
        # the nearest aisdp.toml to the log, as `validate` reads it
        log = load_log(path, config_for(path, root or path.resolve().parent))
        try:
            found = signoff.read_signoffs(log.workbook)
            removed = missing_records(found, root, path, notes) \
                if root is not None and not in_bundle else []
            if not found and removed:  # every Sign-off row removed: not "nothing to check"
                return Report(log=str(path), rows=len(log.rows), findings=removed,
                              trust=anchor.trust(), signoffs=[])
            if not found:
                raise AisdpLogError(f"{display_name(path)}: no Sign-off rows; nothing to "
                                    "verify (sign a review with `aisdp-log review LOG "
                                    "--sign ...`)")
            if records_out is not None:
                records_out.extend(found)
            checked = check_signoffs(log, found, anchor.path)
            findings = checked.findings + list(signoff.check(log, found, checked.trusted))
            findings += duplicate_signed_ids(log, found)
            findings += anchors.worktree_findings(anchor)
            findings += removed
            return Report(log=str(path), rows=len(log.rows),
                          findings=sorted(findings, key=lambda f: f.sort_key),
                          trust=anchor.trust(), signoffs=checked.signers)
        finally:
            log.workbook.close()
