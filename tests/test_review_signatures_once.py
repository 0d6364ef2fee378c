"""A review checks each sign-off's signature once: its validation (the sign-off lint family)
and its sign-off history (review/write.py) share one verdict per statement, signature,
allowed signers content, principal and signing time (`signing.signatures.check_signature`).
Counted at the process boundary: a wrapper `ssh-keygen` first on PATH logs each call and
runs the real one."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from signoffs import ADA, make_key, read_signoffs_of, ssh_signed_project

from aisdp_log.signing import signatures

REAL = shutil.which("ssh-keygen")
pytestmark = pytest.mark.skipif(REAL is None, reason="ssh-keygen (openssh-client) not installed")


def counting_path(folder: Path) -> tuple[dict, Path]:
    """An environment whose PATH starts with a logging `ssh-keygen`, and its log file."""
    folder.mkdir()
    calls = folder / "calls.log"
    wrapper = folder / "ssh-keygen"
    wrapper.write_text(f'#!/bin/sh\necho "$*" >> "{calls}"\nexec "{REAL}" "$@"\n')
    wrapper.chmod(0o755)
    env = dict(os.environ, PATH=f"{folder}{os.pathsep}{os.environ.get('PATH', '')}",
               PYTHONPATH=os.pathsep.join(sys.path))
    return env, calls


def verify_calls(calls: Path) -> list[str]:
    lines = calls.read_text().splitlines() if calls.exists() else []
    return [line for line in lines if line.startswith("-Y verify")]


@pytest.mark.slow
def test_a_review_runs_ssh_keygen_verify_once_per_signoff(tmp_path):
    signed = ssh_signed_project(tmp_path)
    env, calls = counting_path(tmp_path / "bin")
    done = subprocess.run([sys.executable, "-m", "aisdp_log", "review", str(signed.log),
                           "--period", "2026-Q3", "-o", str(tmp_path / "again")],
                          cwd=signed.project.repo, env=env, capture_output=True, text=True)
    assert done.returncode in (0, 1), done.stderr
    assert len(read_signoffs_of(signed.log)) == 1
    made = verify_calls(calls)
    assert len(made) == 1, made
    assert "-I ada@example.com" in made[0]
    # the one verdict serves both: the validation trusts the row, the history shows it verified
    html_text = (tmp_path / "again" / "review-2026-Q3.html").read_text()
    assert "R008" not in html_text and "R007" not in html_text
    assert "Ada Lovelace" in html_text


@pytest.mark.slow
def test_a_remembered_verdict_follows_the_allowed_signers_content(tmp_path):
    """The cache never outlives what the verdict depends on: the same statement and signature
    against another allowed signers content (same path), another principal or a changed
    signature are checked afresh, and give their own verdicts."""
    keys = tmp_path / "keys"
    keys.mkdir()
    ada, mallory = make_key(keys, "ada"), make_key(keys, "mallory")
    statement = b'{"period": "2026-Q3", "signer": "' + ADA.encode() + b'"}\n'
    signature = signatures.sign(statement, ada)
    allowed = tmp_path / "allowed_signers"

    def listing(principal: str, key: Path) -> None:
        public = " ".join(Path(f"{key}.pub").read_text().split()[:2])
        allowed.write_text(f"{principal} {public}\n")

    listing("ada@example.com", ada)
    first = signatures.check_signature(statement, signature, allowed, "ada@example.com")
    again = signatures.check_signature(statement, signature, allowed, "ada@example.com")
    assert first.valid and first.verified and again == first
    again.principals.append("eve@example.com")  # a caller's copy, not the remembered verdict
    assert signatures.check_signature(statement, signature, allowed,
                                      "ada@example.com").principals == ["ada@example.com"]
    assert not signatures.check_signature(statement, signature, allowed,
                                          "eve@example.com").verified
    listing("ada@example.com", mallory)  # same path, Ada's key no longer listed
    revoked = signatures.check_signature(statement, signature, allowed, "ada@example.com")
    assert revoked.valid and not revoked.verified
    assert revoked.detail == "key not in the allowed signers"
    listing("ada@example.com", ada)
    forged = signatures.sign(statement, mallory)
    assert not signatures.check_signature(statement, forged, allowed,
                                          "ada@example.com").verified
    assert not signatures.check_signature(statement + b" ", signature, allowed,
                                          "ada@example.com").valid
