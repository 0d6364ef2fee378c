"""Sign-off builders shared by test_signoff.py, test_signatures.py and test_checks_signoff.py:
the review project with a signed review (by name, or with Ada's SSH key), one cell edited as a
spreadsheet program would, Mallory's forged re-signing, and the Sign-off rows read back."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from builders import git
from test_review import make_project

from aisdp_log.review.write import write_review
from aisdp_log.signing.signoff import read_signoffs
from aisdp_log.workbook.reader import load_log

SIGNER = "Ana Ruiz, Head of ML"
ADA = "Ada Lovelace, ML lead <ada@example.com>"


def make_key(folder: Path, name: str) -> Path:
    """A real ed25519 key pair without passphrase, as `ssh-keygen -t ed25519 -N ''` makes it."""
    key = folder / name
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"{name}@example.com",
                    "-f", str(key)], check=True, capture_output=True)
    return key


def fingerprint(key: Path) -> str:
    out = subprocess.run(["ssh-keygen", "-l", "-E", "sha256", "-f", str(key)], check=True,
                         capture_output=True, text=True).stdout
    return out.split()[1]


def allow(repo: Path, principal: str, key: Path, *, options: str = "",
          commit: bool = True) -> Path:
    """Add `key` to the repository's `.aisdp/allowed_signers` for `principal` (with OpenSSH
    `options` such as `valid-before="20260101"`), and commit it: `verify` trusts the list
    as committed, never the work tree."""
    allowed = repo / ".aisdp" / "allowed_signers"
    allowed.parent.mkdir(exist_ok=True)
    public = " ".join(Path(f"{key}.pub").read_text().split()[:2])
    with open(allowed, "a") as fh:
        fh.write(f"{principal} {options + ' ' if options else ''}{public}\n")
    if commit:
        git(repo, "add", ".aisdp/allowed_signers")
        git(repo, "commit", "-q", "-m", f"allow {principal}", date="2026-04-02T09:00:00+00:00")
    return allowed


@dataclass
class Signed:
    project: object
    ada: Path
    mallory: Path
    allowed: Path
    out: Path

    @property
    def log(self) -> Path:
        return self.project.log


def ssh_signed_project(tmp_path: Path) -> Signed:
    """The demo-like project, 2026-Q3 signed by Ada with her key; her key is allowed."""
    project = make_project(tmp_path, tamper=None)
    keys = tmp_path / "keys"
    keys.mkdir()
    ada, mallory = make_key(keys, "ada"), make_key(keys, "mallory")
    allowed = allow(project.repo, "ada@example.com", ada)
    out = tmp_path / "out"
    write_review(project.log, period="2026-Q3", output_dir=out, sign=ADA, key=ada)
    return Signed(project, ada, mallory, allowed, out)


def sign_elsewhere(log: Path, scratch: Path, signer: str, key: Path, period: str = "2026-Q3"
                   ) -> None:
    """What an attacker does to get past `review --sign`'s up-front check of the allowed
    signers: sign a copy of the log outside the repository (no allowed signers there), then
    copy it back over the log."""
    scratch.mkdir(parents=True, exist_ok=True)
    copy = scratch / log.name
    shutil.copyfile(log, copy)
    write_review(copy, period=period, output_dir=scratch / "out", sign=signer, key=key)
    shutil.copyfile(copy, log)


def mallory_resigns(signed: Signed) -> str:
    """Mallory edits the signed hypothesis of EXP-004 and signs 2026-Q3 again as Ada, with her
    own key (outside the repository, so nothing refuses up front); the edited cell."""
    cell = signed.project.cell("EXP-004", "Hypothesis")
    edit(signed.log, "Experiments", cell, "a better story, written after the fact")
    sign_elsewhere(signed.log, signed.log.parent.parent / "mallory", ADA, signed.mallory)
    return cell


def signed_project(tmp_path: Path):
    """The review project with 2026-Q3 reviewed and signed."""
    project = make_project(tmp_path)
    write_review(project.log, period="2026-Q3", output_dir=tmp_path / "out", sign=SIGNER)
    return project


def edit(log: Path, sheet: str, cell: str, value) -> None:
    """Change one cell the way a person's spreadsheet program would: load, set, save."""
    import openpyxl

    workbook = openpyxl.load_workbook(log)
    workbook[sheet][cell].value = value
    workbook.save(log)


def read_signoffs_of(path: Path):
    log = load_log(path)
    try:
        return read_signoffs(log.workbook)
    finally:
        log.workbook.close()
