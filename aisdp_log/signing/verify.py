"""`aisdp-log verify`: check the signed sign-offs of a log, or a whole evidence bundle.

For a log: every `Sign-off` row's SSH signature against the allowed signers (R007, R008), the
chain of statements (R009), unsigned sign-offs (R010), and the reviewed rows against the hashes
their latest trusted sign-off signed (R006). For a bundle (`aisdp-log bundle`): first every
file against `SHA256SUMS` and the review files against their signed sha256 (B001), then the
bundled log as above.
"""

from __future__ import annotations

import json
import stat
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from aisdp_log import spec
from aisdp_log.artefacts.digests import file_sha256
from aisdp_log.errors import AisdpLogError
from aisdp_log.findings import CATALOGUE, Finding, Report
from aisdp_log.repo.roots import config_for, find_repo_root
from aisdp_log.signing import signatures, signoff
from aisdp_log.workbook.container import display_name
from aisdp_log.workbook.reader import load_log

BUNDLE_SUMS = "SHA256SUMS"
BUNDLE_ALLOWED_SIGNERS = "allowed_signers"
#: A bundle larger than this once extracted is refused before anything is written.
MAX_BUNDLE_BYTES = 16 << 30
MAX_RATIO = 200


@dataclass
class SignoffCheck:
    """The signature findings of a log and the Sign-off rows whose signature is trusted."""

    findings: list[Finding] = field(default_factory=list)
    trusted: set[int] = field(default_factory=set)
    #: Sign-off row number -> one line for the review: who, which key, verified or why not
    status: dict[int, str] = field(default_factory=dict)


def _claimed(record, statement: dict | None) -> str:
    if statement is not None:
        signer = statement.get("signer") or {}
        name = ", ".join(str(signer.get(k, "")) for k in ("name", "role") if signer.get(k))
        if name:
            return name
    return record.name_and_role or "someone"


def check_signoffs(log, records: list, allowed: Path | None) -> SignoffCheck:
    """R007-R010 for each Sign-off row; signed rows' hashes are taken from the verified
    statement, so the R006 comparison uses what was signed, not what a cell says now."""
    result = SignoffCheck()
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
               f"{record.period or 'P'} --sign \"Name, Role\" --key KEY`")
            continue
        if problem is not None or statement is None:
            result.status[record.row_number] = f"does not verify: {problem or 'no statement'}"
            at("R007", "Statement", f"{where}: {problem or 'the Statement cell is empty'}, "
               "so its signature cannot be checked")
            continue
        check = signatures.check_signature(record.statement.encode("utf-8"), record.signature,
                                           allowed)
        key = check.fingerprint or "an unreadable key"
        if not check.valid:
            result.status[record.row_number] = \
                "does not verify: the statement or signature changed"
            at("R007", "Signature", f"{where} by {claimed}: the signature does not verify "
               f"against the signed statement ({check.detail}); the statement or the "
               "signature changed after signing")
            continue
        if statement.get("key") != check.fingerprint:
            result.status[record.row_number] = \
                "does not verify: signed with another key than named"
            at("R007", "Statement", f"{where}: the statement names key {statement.get('key')} "
               f"but was signed with {key}")
            continue
        if not check.principals or not check.verified:
            reason = (f"which {allowed} does not list" if not check.principals else
                      f"listed for {', '.join(check.principals)}, but ssh-keygen -Y verify "
                      f"refused it ({check.detail})")
            result.status[record.row_number] = \
                f"not trusted: key {key} is not an allowed signer"
            at("R008", "Signature", f"{where} claims {claimed!r} but was signed with key "
               f"{key}, {reason}: an untrusted signer")
            continue
        result.trusted.add(record.row_number)
        result.status[record.row_number] = (f"verified: key {key} of "
                                            f"{', '.join(check.principals)}")
        _compare_cells(record, statement, at, where)
        signed, _ = signoff.parse_row_hashes(json.dumps(statement["rows"]))
        record.hashes = signed
        record.experiment_ids = list(signed)
    return result


def _compare_cells(record, statement: dict, at, where: str) -> None:
    """R007 at each Sign-off cell that says other than the verified statement."""
    cell_hashes, _ = signoff.parse_row_hashes(record.hashes_text or None)
    signed_hashes, _ = signoff.parse_row_hashes(json.dumps(statement["rows"]))
    signer = statement.get("signer") or {}
    claimed = f"{signer.get('name', '')}, {signer.get('role', '')}"
    checks = [("Period", record.period, statement.get("period")),
              ("Name and role", record.name_and_role, claimed),
              ("Signed at", record.signed_at, statement.get("signed_at")),
              ("Row hashes", cell_hashes, signed_hashes)]
    for header, now, signed in checks:
        if now != signed:
            shown = signed if not isinstance(signed, dict) else "the signed row hashes"
            at("R007", header, f"{where}: {header} differs from the signed statement "
               f"({shown!s:.80}); the cell changed after signing")


def verify_log(path: Path, *, allowed_signers: Path | None = None, repo: Path | None = None,
               notes: list[str] | None = None, records_out: list | None = None) -> Report:
    """Check a log's signed sign-offs (see the module docstring)."""

    notes = [] if notes is None else notes
    if not path.exists():
        raise AisdpLogError(f"{display_name(path)}: no such file; check the path")
    root = Path(repo) if repo is not None else find_repo_root(path.resolve().parent)
    allowed = allowed_signers
    if allowed is None:
        allowed, source = signatures.allowed_signers_file(root)
        if allowed is None:
            raise AisdpLogError(f"{display_name(path)}: no allowed signers to check against: "
                                "pass --allowed-signers FILE, set git config "
                                "gpg.ssh.allowedSignersFile, or add .aisdp/allowed_signers")
        notes.append(f"allowed signers: {allowed} (from {source})")
    if not allowed.is_file():
        raise AisdpLogError(f"{allowed}: allowed signers file not found")
    signatures.ssh_keygen()  # one line, exit 2, where OpenSSH is missing
    # the nearest aisdp.toml to the log, as `validate` reads it
    log = load_log(path, config_for(path, root or path.resolve().parent))
    try:
        records = signoff.read_signoffs(log.workbook)
        if not records:
            raise AisdpLogError(f"{display_name(path)}: no Sign-off rows; nothing to verify "
                                "(sign a review with `aisdp-log review LOG --sign ...`)")
        if records_out is not None:
            records_out.extend(records)
        checked = check_signoffs(log, records, allowed)
        findings = checked.findings + list(signoff.check(log, records, checked.trusted))
        return Report(log=str(path), rows=len(log.rows),
                      findings=sorted(findings, key=lambda f: f.sort_key))
    finally:
        log.workbook.close()


# --------------------------------------------------------------------------- bundles

def _bundle_finding(member: str, message: str) -> Finding:
    entry = CATALOGUE["B001"]
    return Finding("B001", entry.severity, "bundle", member, 0, None, None, message)


def safe_extract(archive: zipfile.ZipFile, target: Path) -> list[str]:
    """Extract every regular file of `archive` into `target`; AisdpLogError for a member that
    would land outside it (absolute, `..`, a drive or backslash path), a link, a duplicate
    name, or sizes that make it a zip bomb."""
    infos = archive.infolist()
    total = sum(info.file_size for info in infos)
    packed = sum(info.compress_size for info in infos) or 1
    if total > MAX_BUNDLE_BYTES or (total > (64 << 20) and total / packed > MAX_RATIO):
        raise AisdpLogError(f"{archive.filename}: declares {total} bytes unpacked; refusing "
                            "to extract it (a zip bomb?)")
    names = []
    for info in infos:
        name = info.filename
        pure = PurePosixPath(name)
        mode = info.external_attr >> 16
        if info.is_dir():
            continue
        if ("\\" in name or pure.is_absolute() or ".." in pure.parts or ":" in name
                or not pure.parts or stat.S_ISLNK(mode)):
            raise AisdpLogError(f"{archive.filename}: member {name!r} would be written outside "
                                "the bundle folder or is a link; refusing to extract it")
        if name in names:
            raise AisdpLogError(f"{archive.filename}: member {name!r} appears twice")
        names.append(name)
        destination = target.joinpath(*pure.parts)
        destination.parent.mkdir(parents=True, exist_ok=True)
        with archive.open(info) as source, open(destination, "xb") as out:
            while chunk := source.read(1 << 20):
                out.write(chunk)
    return names


def parse_sums(text: str) -> tuple[dict[str, str], list[str]]:
    """`sha256sum` output as {path: hex}, and the lines it cannot read."""
    sums, bad = {}, []
    for line in text.splitlines():
        if not line.strip():
            continue
        digest, sep, name = line.partition(" ")
        if not sep or len(digest) != 64 or not name or name[0] not in " *":
            bad.append(line)
            continue
        sums[name[1:]] = digest.lower()
    return sums, bad


def verify_bundle(path: Path, *, allowed_signers: Path | None = None,
                  notes: list[str] | None = None) -> Report:
    """Check a bundle: its sums, its review files, then its log (see the module docstring)."""
    notes = [] if notes is None else notes
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise AisdpLogError(f"{path}: not a readable zip file ({exc})") from exc
    with archive, tempfile.TemporaryDirectory(prefix="aisdp-log-bundle-") as folder:
        root = Path(folder)
        names = safe_extract(archive, root)
        findings: list[Finding] = []
        if BUNDLE_SUMS not in names:
            raise AisdpLogError(f"{path}: no {BUNDLE_SUMS} in the bundle; nothing to check "
                                "it against")
        sums, bad = parse_sums((root / BUNDLE_SUMS).read_text(encoding="utf-8",
                                                               errors="replace"))
        for line in bad:
            findings.append(_bundle_finding(BUNDLE_SUMS, f"unreadable line {line[:60]!r}"))
        for name, digest in sorted(sums.items()):
            file = root / name
            if name not in names:
                findings.append(_bundle_finding(name, f"listed in {BUNDLE_SUMS} but missing"))
            elif file_sha256(file) != digest:
                findings.append(_bundle_finding(name, f"differs from its sha256 in "
                                                f"{BUNDLE_SUMS}: the file changed"))
        for name in names:
            if name != BUNDLE_SUMS and name not in sums:
                findings.append(_bundle_finding(name, f"not covered by {BUNDLE_SUMS}"))
        logs = [n for n in names if "/" not in n and n.lower().endswith((".xlsx", ".xlsm"))]
        if len(logs) != 1:
            raise AisdpLogError(f"{path}: expected one log (.xlsx) at the bundle's top level, "
                                f"found {len(logs)}")
        if allowed_signers is None:
            allowed_signers = root / BUNDLE_ALLOWED_SIGNERS
            if not allowed_signers.is_file():
                raise AisdpLogError(f"{path}: no {BUNDLE_ALLOWED_SIGNERS} in the bundle; pass "
                                    "--allowed-signers FILE")
            notes.append(f"allowed signers: the bundle's own {BUNDLE_ALLOWED_SIGNERS}; pass "
                         "--allowed-signers with a list you keep elsewhere to trust no file "
                         "the bundle brings")
        try:
            records: list = []
            report = verify_log(root / logs[0], allowed_signers=allowed_signers, repo=root,
                                records_out=records)
        except AisdpLogError as exc:
            if not findings:
                raise
            # a changed log may not open at all: the sums already said why
            findings.append(_bundle_finding(logs[0], f"cannot be read: {exc}"))
            return Report(log=f"{path}!{logs[0]}", rows=0,
                          findings=sorted(findings, key=lambda f: f.sort_key))
        findings += _review_files(root, names, records)
        report.findings = sorted(findings + report.findings, key=lambda f: f.sort_key)
        report.log = f"{path}!{logs[0]}"
        return report


def _review_files(root: Path, names: list[str], records: list) -> list[Finding]:
    """B001 for a bundled statement or signature that is not one of the log's Sign-off rows,
    and for a review file whose sha256 is not what its signed statement says."""
    findings = []
    statements = {r.statement: r for r in records if r.statement}
    for name in names:
        if not (name.startswith("reviews/") and name.endswith(".json")):
            continue
        text = (root / name).read_text(encoding="utf-8", errors="replace")
        record = statements.get(text)
        if record is None:
            findings.append(_bundle_finding(name, "is the statement of no Sign-off row of the "
                                            "bundled log"))
        elif name + ".sig" in names and signatures.normalise_armor(record.signature) != \
                signatures.normalise_armor((root / (name + ".sig")).read_text(
                    encoding="ascii", errors="replace")):
            findings.append(_bundle_finding(name + ".sig", "is not the signature the "
                                            "bundled log's Sign-off row holds"))
        statement, problem = signatures.parse_statement(text)
        if statement is None:
            findings.append(_bundle_finding(name, problem or "unreadable statement"))
            continue
        for entry in (statement.get("review") or {}).values():
            file = f"reviews/{entry.get('file')}"
            if file not in names:
                findings.append(_bundle_finding(file, f"named by the signed statement {name} "
                                                "but not in the bundle"))
            elif file_sha256(root / file) != entry.get("sha256"):
                findings.append(_bundle_finding(file, f"differs from the sha256 the signed "
                                                f"statement {name} records"))
    return findings


def verify(path: Path | str, *, allowed_signers: Path | str | None = None,
           notes: list[str] | None = None) -> Report:
    """Check a log or a bundle zip; AisdpLogError (exit 2) where nothing could be checked."""
    path = Path(path)
    allowed = Path(allowed_signers) if allowed_signers is not None else None
    if path.is_file() and zipfile.is_zipfile(path) and not _is_workbook(path):
        return verify_bundle(path, allowed_signers=allowed, notes=notes)
    return verify_log(path, allowed_signers=allowed, notes=notes)


def _is_workbook(path: Path) -> bool:
    try:
        with zipfile.ZipFile(path) as archive:
            return "[Content_Types].xml" in archive.namelist()
    except (zipfile.BadZipFile, OSError):
        return False
