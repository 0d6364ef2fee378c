"""`aisdp-log verify`: check the signed sign-offs of a log (`signing.logcheck`), or a whole
evidence bundle (`signing.bundle_check`). What each check proves, and against which trust
anchor, is in those modules and in docs/trust-model.md."""

from __future__ import annotations

import zipfile
from pathlib import Path

from aisdp_log.errors import AisdpLogError
from aisdp_log.findings import Report
from aisdp_log.signing.bundle_check import safe_extract, verify_bundle
from aisdp_log.signing.logcheck import (
    BUNDLE_ALLOWED_SIGNERS,
    BUNDLE_SUMS,
    SignoffCheck,
    check_signoffs,
    verify_log,
)
from aisdp_log.workbook.container import display_name

__all__ = ["BUNDLE_ALLOWED_SIGNERS", "BUNDLE_SUMS", "SignoffCheck", "check_signoffs",
           "safe_extract", "verify", "verify_bundle", "verify_log"]


def verify(path: Path | str, *, allowed_signers: Path | str | None = None,
           notes: list[str] | None = None, trust_bundle_signers: bool = False,
           since: Path | str | None = None) -> Report:
    """Check a log or a bundle zip; AisdpLogError (exit 2) where nothing could be checked.
    A `.zip` is a bundle whatever it holds, so a damaged one is named as such."""
    path = Path(path)
    allowed = Path(allowed_signers) if allowed_signers is not None else None
    if path.is_file() and (path.suffix.lower() == ".zip" or
                           (zipfile.is_zipfile(path) and not _is_workbook(path))):
        return verify_bundle(path, allowed_signers=allowed, notes=notes,
                             trust_bundle_signers=trust_bundle_signers,
                             since=Path(since) if since is not None else None)
    if since is not None:
        raise AisdpLogError(f"--since compares bundles: {display_name(path)} is not a "
                            "bundle (.zip)")
    if trust_bundle_signers:
        raise AisdpLogError("--trust-bundle-signers applies to a bundle (.zip) only")
    return verify_log(path, allowed_signers=allowed, notes=notes)


def _is_workbook(path: Path) -> bool:
    try:
        with zipfile.ZipFile(path) as archive:
            return "[Content_Types].xml" in archive.namelist()
    except (zipfile.BadZipFile, OSError):
        return False
