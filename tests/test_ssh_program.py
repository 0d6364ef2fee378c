"""Which ssh-keygen signs and verifies (signing/signatures.ssh_keygen): the one git uses
(`gpg.ssh.program`) when set, and an OpenSSH too old for `ssh-keygen -Y` named in one line,
never taken for a bad signature (R007)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from builders import run_cli
from signoffs import ssh_signed_project

pytestmark = pytest.mark.skipif(os.name == "nt" or shutil.which("ssh-keygen") is None,
                                reason="the stand-in ssh-keygen is a POSIX shell script; "
                                       "needs OpenSSH")

OLD_KEYGEN = """#!/bin/sh
echo "ssh-keygen: unknown option -- Y" >&2
echo "usage: ssh-keygen [-q] [-b bits] [-t dsa | ecdsa | ed25519 | rsa] [-f output_keyfile]" >&2
exit 1
"""
OLD_SSH = """#!/bin/sh
echo "OpenSSH_7.4p1, OpenSSL 1.0.2k-fips  26 Jan 2017" >&2
exit 0
"""


def script(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(0o755)
    return path


@pytest.fixture
def global_config(tmp_path, monkeypatch) -> Path:
    """A global git configuration of this test's own."""
    config = tmp_path / "gitconfig"
    config.write_text("")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(config))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    return config


def set_program(config: Path, program: Path) -> None:
    config.write_text(f"[gpg \"ssh\"]\n\tprogram = {program}\n")


def test_the_ssh_keygen_git_is_configured_with_signs_and_verifies(tmp_path, global_config):
    from aisdp_log.signing import signatures

    calls = tmp_path / "calls"
    wrapper = script(tmp_path / "bin" / "my-ssh-keygen",
                     f'#!/bin/sh\necho "$2" >> "{calls}"\nexec "{shutil.which("ssh-keygen")}" '
                     '"$@"\n')
    set_program(global_config, wrapper)
    assert signatures.ssh_keygen() == str(wrapper)

    signed = ssh_signed_project(tmp_path / "project")

    result = run_cli("verify", str(signed.log), cwd=signed.project.repo)
    assert result.returncode == 0, result.stdout + result.stderr
    used = calls.read_text().split()
    assert "sign" in used and "verify" in used


def test_a_missing_configured_program_is_one_line(tmp_path, global_config):
    from aisdp_log.errors import AisdpLogError
    from aisdp_log.signing import signatures

    set_program(global_config, tmp_path / "nowhere" / "ssh-keygen")
    with pytest.raises(AisdpLogError, match="gpg.ssh.program"):
        signatures.ssh_keygen()


def test_an_openssh_without_signing_is_named_never_a_false_r007(tmp_path, global_config):
    signed = ssh_signed_project(tmp_path / "project")  # signed with the real ssh-keygen
    old = script(tmp_path / "old" / "ssh-keygen", OLD_KEYGEN)
    script(tmp_path / "old" / "ssh", OLD_SSH)
    set_program(global_config, old)

    verified = run_cli("verify", str(signed.log), cwd=signed.project.repo)
    assert verified.returncode == 2
    [line] = verified.stderr.strip().splitlines()[-1:]
    assert "OpenSSH_7.4p1" in line and "older than" in line and str(old) in line
    assert "R007" not in verified.stdout

    validated = run_cli("validate", str(signed.log), "--format", "json",
                        cwd=signed.project.repo)
    assert "R007" not in validated.stdout
    assert validated.returncode == 2 and "OpenSSH_7.4p1" in validated.stderr
