"""`aisdp-log verify BUNDLE.zip`: a bundle's integrity, completeness and trust anchor.

In order, each against what it proves:

1. The zip itself: every member name checked in one linear pass before anything is written
   (absolute, `..`, links, backslashes, aliases such as `./X`, `a//b` or names differing only
   in case, duplicates, a file that is also a folder, zip bombs); a corrupt member, a
   truncated or non-zip file: one line, exit 2.
2. `SHA256SUMS` (B001): every file is as listed. This proves only that the files agree with
   the bundle's own list: whoever edits a file can rewrite the list too.
3. The bundled log's sign-offs (`signing.verify`), against `--allowed-signers` (independent),
   or the bundle's own `allowed_signers`: then each signer's principal and key fingerprint are
   shown and R012 says identity was not established, unless `--trust-bundle-signers`.
4. Completeness (B002, B001): for every Sign-off row, the bundle holds its statement, its
   signature and each review file the statement names, with the sha256 it records, whatever
   `SHA256SUMS` says; so a period's files cannot be dropped or swapped.
5. `--since EARLIER.zip` (R013): every sign-off of the earlier bundle is in this one.
"""

from __future__ import annotations

import stat
import tempfile
import zipfile
import zlib
from pathlib import Path, PurePosixPath

from aisdp_log.artefacts.digests import file_sha256
from aisdp_log.errors import AisdpLogError
from aisdp_log.findings import Finding, Report
from aisdp_log.signing import anchor as anchors
from aisdp_log.signing import records as sign_records
from aisdp_log.signing import signatures, signoff
from aisdp_log.signing.logcheck import BUNDLE_ALLOWED_SIGNERS, BUNDLE_SUMS, verify_log
from aisdp_log.workbook.reader import load_log

#: A bundle larger than this once extracted is refused before anything is written.
MAX_BUNDLE_BYTES = 16 << 30
MAX_RATIO = 200
MAX_MEMBERS = 1_000_000


def bundle_finding(member: str, message: str, code: str = "B001") -> Finding:
    return anchors.file_finding(code, "bundle", member, message)


def open_bundle(path: Path) -> zipfile.ZipFile:
    """The zip, or one line (exit 2) naming why it is none: missing, not a zip, truncated."""
    if not path.is_file():
        raise AisdpLogError(f"{path}: no such file; check the path")
    try:
        return zipfile.ZipFile(path)
    except zipfile.BadZipFile as exc:
        raise AisdpLogError(f"{path}: not a zip file, or a truncated one ({exc})") from exc
    except (OSError, ValueError, EOFError) as exc:
        raise AisdpLogError(f"{path}: cannot be read as a zip file ({exc})") from exc


def check_members(archive: zipfile.ZipFile, shown: str) -> list[zipfile.ZipInfo]:
    """The regular-file members, after refusing (AisdpLogError) any member name that is not
    one plain relative path, names that alias each other, and zip bombs. One pass over the
    names with sets: linear in the member count."""
    infos = archive.infolist()
    if len(infos) > MAX_MEMBERS:
        raise AisdpLogError(f"{shown}: {len(infos)} members, more than a bundle holds "
                            f"({MAX_MEMBERS}); refusing it")
    total = sum(info.file_size for info in infos)
    packed = sum(info.compress_size for info in infos) or 1
    if total > MAX_BUNDLE_BYTES or (total > (64 << 20) and total / packed > MAX_RATIO):
        raise AisdpLogError(f"{shown}: declares {total} bytes unpacked; refusing to extract "
                            "it (a zip bomb?)")
    files: list[zipfile.ZipInfo] = []
    seen: dict[str, str] = {}
    folders: set[str] = set()
    for info in infos:
        name = info.filename
        if info.is_dir():
            continue
        parts = name.split("/")
        pure = PurePosixPath(name)
        if ("\\" in name or ":" in name or pure.is_absolute() or ".." in parts
                or stat.S_ISLNK(info.external_attr >> 16)):
            raise AisdpLogError(f"{shown}: member {name!r} would be written outside the "
                                "bundle folder or is a link; refusing to extract it")
        if any(part in ("", ".") for part in parts):
            raise AisdpLogError(f"{shown}: member {name!r} is an aliased name (another "
                                f"spelling of {pure.as_posix()!r}); refusing the bundle")
        key = name.casefold()
        if key in seen:
            also = "" if seen[key] == name else f" (as {seen[key]!r}, differing in case)"
            raise AisdpLogError(f"{shown}: member {name!r} appears twice{also}; refusing "
                                "the bundle")
        seen[key] = name
        folders.update("/".join(parts[:depth]).casefold() for depth in range(1, len(parts)))
        files.append(info)
    clash = next((n for n in seen if n in folders), None)
    if clash is not None:
        raise AisdpLogError(f"{shown}: member {seen[clash]!r} is both a file and a folder; "
                            "refusing the bundle")
    return files


def safe_extract(archive: zipfile.ZipFile, target: Path, shown: str | None = None
                 ) -> list[str]:
    """Extract every regular file of `archive` into `target` after `check_members`; a member
    whose data is corrupt is AisdpLogError naming it."""
    shown = shown or str(archive.filename)
    names = []
    for info in check_members(archive, shown):
        destination = target.joinpath(*PurePosixPath(info.filename).parts)
        destination.parent.mkdir(parents=True, exist_ok=True)
        try:
            with archive.open(info) as source, open(destination, "xb") as out:
                while chunk := source.read(1 << 20):
                    out.write(chunk)
        except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError,
                RuntimeError, ValueError) as exc:
            raise AisdpLogError(f"{shown}: member {info.filename!r} is corrupt or "
                                f"unreadable ({exc}); the bundle is damaged") from exc
        names.append(info.filename)
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


def _sums_findings(root: Path, names: list[str]) -> list[Finding]:
    if BUNDLE_SUMS not in names:
        raise AisdpLogError(f"{root}: no {BUNDLE_SUMS} in the bundle; nothing to check it "
                            "against")
    findings = []
    sums, bad = parse_sums((root / BUNDLE_SUMS).read_text(encoding="utf-8", errors="replace"))
    for line in bad:
        findings.append(bundle_finding(BUNDLE_SUMS, f"unreadable line {line[:60]!r}"))
    present = set(names)
    for name, digest in sorted(sums.items()):
        if name not in present:
            findings.append(bundle_finding(name, f"listed in {BUNDLE_SUMS} but missing"))
        elif file_sha256(root / name) != digest:
            findings.append(bundle_finding(name, f"differs from its sha256 in {BUNDLE_SUMS}: "
                                           "the file changed"))
    for name in names:
        if name != BUNDLE_SUMS and name not in sums:
            findings.append(bundle_finding(name, f"not covered by {BUNDLE_SUMS}"))
    return findings


def _the_log(path: Path, names: list[str]) -> str:
    logs = [n for n in names if "/" not in n and n.lower().endswith((".xlsx", ".xlsm"))]
    if len(logs) != 1:
        raise AisdpLogError(f"{path}: expected one log (.xlsx) at the bundle's top level, "
                            f"found {len(logs)}")
    return logs[0]


def verify_bundle(path: Path, *, allowed_signers: Path | None = None,
                  notes: list[str] | None = None, trust_bundle_signers: bool = False,
                  since: Path | None = None) -> Report:
    """Check a bundle (see the module docstring)."""
    notes = [] if notes is None else notes
    if allowed_signers is not None and trust_bundle_signers:
        raise AisdpLogError("--trust-bundle-signers and --allowed-signers exclude each other")
    archive = open_bundle(path)
    with archive, tempfile.TemporaryDirectory(prefix="aisdp-log-bundle-") as folder:
        root = Path(folder)
        names = safe_extract(archive, root, str(path))
        findings = _sums_findings(root, names)
        log_name = _the_log(path, names)
        if allowed_signers is not None:
            anchor = anchors.explicit(allowed_signers)
        else:
            own = root / BUNDLE_ALLOWED_SIGNERS
            if not own.is_file():
                raise AisdpLogError(f"{path}: no {BUNDLE_ALLOWED_SIGNERS} in the bundle; pass "
                                    "--allowed-signers FILE")
            anchor = anchors.Anchor(own, anchors.BUNDLE_SOURCE, False)
        notes.append(anchor.note())
        try:
            found: list = []
            report = verify_log(root / log_name, repo=root, anchor=anchor, records_out=found)
        except AisdpLogError as exc:
            if not findings:
                raise
            # a changed log may not open at all: the sums already said why
            findings.append(bundle_finding(log_name, f"cannot be read: {exc}"))
            return Report(log=f"{path}!{log_name}", rows=0, trust=anchor.trust(),
                          findings=sorted(findings, key=lambda f: f.sort_key))
        findings += completeness(root, names, found)
        if not anchor.independent and not trust_bundle_signers:
            findings.append(_not_established(report.signoffs or []))
        if since is not None:
            findings += missing_since(since, found)
        report.findings = sorted(findings + report.findings, key=lambda f: f.sort_key)
        report.log = f"{path}!{log_name}"
        return report


def _not_established(signers: list[dict]) -> Finding:
    keys = "; ".join(f"{s.get('principal') or 'no principal'} {s.get('key') or 'no key'}"
                     for s in signers if s.get("key")) or "no signed sign-off"
    return bundle_finding(BUNDLE_ALLOWED_SIGNERS, "identity not established: the signatures "
                          f"were checked against the bundle's own {BUNDLE_ALLOWED_SIGNERS}, "
                          "which whoever wrote the bundle chose; compare these principals and "
                          f"key fingerprints with a list you hold ({keys}), then pass "
                          "--allowed-signers FILE (or --trust-bundle-signers)", "R012")


def completeness(root: Path, names: list[str], records: list) -> list[Finding]:
    """B002/B001 for each Sign-off row's statement, signature and review files (named by
    `records.bundle_stems`), and B001 for a bundled statement no Sign-off row holds."""
    findings = []
    present = set(names)
    stems = sign_records.bundle_stems(records)
    for record in records:
        stem = stems.get(record.row_number)
        if stem is None:
            continue
        where = f"Sign-off row {record.row_number} ({record.period or 'unnamed period'})"
        member = f"reviews/{stem}.json"
        if member not in present:
            findings.append(bundle_finding(member, f"the statement of {where} is not in the "
                                           "bundle", "B002"))
        elif (root / member).read_bytes() != record.statement.encode("utf-8"):
            findings.append(bundle_finding(member, f"is not the statement {where} holds"))
        if record.signature:
            sig = member + ".sig"
            if sig not in present:
                findings.append(bundle_finding(sig, f"the signature of {where} is not in the "
                                               "bundle", "B002"))
            elif signatures.normalise_armor(record.signature) != signatures.normalise_armor(
                    (root / sig).read_text(encoding="ascii", errors="replace")):
                findings.append(bundle_finding(sig, f"is not the signature {where} holds"))
        statement, _ = signatures.parse_statement(record.statement)
        for entry in ((statement or {}).get("review") or {}).values():
            if not isinstance(entry, dict):
                continue
            file = f"reviews/{stem}{PurePosixPath(str(entry.get('file'))).suffix}"
            if file not in present:
                findings.append(bundle_finding(file, f"{entry.get('file')}, named by the "
                                               f"statement of {where}, is not in the bundle",
                                               "B002"))
            elif file_sha256(root / file) != entry.get("sha256"):
                findings.append(bundle_finding(file, f"differs from the sha256 the statement "
                                               f"of {where} records"))
    held = {r.statement for r in records if r.statement}
    for name in names:
        if name.startswith("reviews/") and name.endswith(".json") and \
                (root / name).read_text(encoding="utf-8", errors="replace") not in held:
            findings.append(bundle_finding(name, "is the statement of no Sign-off row of the "
                                           "bundled log"))
    return findings


def missing_since(earlier: Path, records: list) -> list[Finding]:
    """R013 for every sign-off of the `earlier` bundle's log that this bundle's log lacks."""
    archive = open_bundle(earlier)
    with archive, tempfile.TemporaryDirectory(prefix="aisdp-log-since-") as folder:
        root = Path(folder)
        names = safe_extract(archive, root, str(earlier))
        log = load_log(root / _the_log(earlier, names))
        try:
            before = signoff.read_signoffs(log.workbook)
        finally:
            log.workbook.close()
    held = {r.statement for r in records if r.statement}
    stems = sign_records.bundle_stems(before)
    return [anchors.file_finding(
        "R013", "bundle", f"{earlier.name}!reviews/{stems[r.row_number]}.json",
        f"sign-off of {r.period or 'an unnamed period'} by {r.name_and_role or 'someone'} at "
        f"{r.signed_at or 'an unknown time'} is in {earlier.name} but missing from this "
        "bundle's Sign-off sheet: a sign-off was removed")
        for r in before if r.statement and r.statement not in held]
