"""Sign-off builders shared by test_signoff.py, test_signatures.py and test_checks_signoff.py:
the review project with a signed review (by name, or with Ada's SSH key), one cell edited as a
spreadsheet program would, Mallory's forged re-signing, and the Sign-off rows read back."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from test_review import make_project

from aisdp_log.review.write import write_review
from aisdp_log.signing.signoff import read_signoffs
from aisdp_log.workbook.reader import load_log

SIGNER = "Ana Ruiz, Head of ML"
ADA = "Ada Lovelace, ML lead"


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


def allow(repo: Path, principal: str, key: Path) -> Path:
    """Add `key` to the repository's `.aisdp/allowed_signers` for `principal`."""
    allowed = repo / ".aisdp" / "allowed_signers"
    allowed.parent.mkdir(exist_ok=True)
    public = " ".join(Path(f"{key}.pub").read_text().split()[:2])
    with open(allowed, "a") as fh:
        fh.write(f"{principal} {public}\n")
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


def mallory_resigns(signed: Signed) -> str:
    """Mallory edits the signed hypothesis of EXP-004 and signs 2026-Q3 again as Ada, with her
    own key; the edited cell."""
    cell = signed.project.cell("EXP-004", "Hypothesis")
    edit(signed.log, "Experiments", cell, "a better story, written after the fact")
    write_review(signed.log, period="2026-Q3", output_dir=signed.out, sign=ADA,
                 key=signed.mallory)
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
