"""SSH-signed sign-offs: Ada signs with her key, `verify` and plain `ssh-keygen -Y verify`
accept it; Mallory's edit re-signed with her own key, a removed or reordered Sign-off row, an
edited statement and an unsigned sign-off are each caught at their cell."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import pytest
from builders import git, libreoffice_convert, needs_soffice
from signoffs import (
    ADA,
    Signed,
    allow,
    edit,
    fingerprint,
    make_key,
    mallory_resigns,
    read_signoffs_of,
    ssh_signed_project,
)
from test_review import make_project

from aisdp_log.cli.main import main
from aisdp_log.review.write import write_review
from aisdp_log.signing.verify import verify

pytestmark = pytest.mark.skipif(shutil.which("ssh-keygen") is None,
                                reason="ssh-keygen (openssh-client) not installed")

@pytest.fixture
def signed(tmp_path: Path) -> Signed:
    """The demo-like project, 2026-Q3 signed by Ada with her key; her key is allowed."""
    return ssh_signed_project(tmp_path)


def verify_codes(path: Path, **options) -> list[tuple[str, str, str]]:
    report = verify(path, **options)
    return [(f.code, f.sheet, f.cell) for f in report.findings]


def run_verify(capsys, *args: str) -> tuple[int, dict]:
    with pytest.raises(SystemExit) as exit_info:
        main(["verify", *args, "--format", "json"])
    return exit_info.value.code, json.loads(capsys.readouterr().out)


@pytest.mark.slow
def test_a_good_signature_verifies_with_verify_and_with_ssh_keygen(signed, capsys):
    statement = signed.out / "review-2026-Q3.json"
    signature = signed.out / "review-2026-Q3.json.sig"
    code, report = run_verify(capsys, str(signed.log))
    assert (code, report["findings"]) == (0, [])
    # An assessor without aisdp-log: the files beside the review...
    with open(statement, "rb") as data:
        done = subprocess.run(["ssh-keygen", "-Y", "verify", "-f", str(signed.allowed),
                               "-I", "ada@example.com", "-n", "aisdp-log", "-s",
                               str(signature)], stdin=data, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert fingerprint(signed.ada) in done.stdout
    # ...and the workbook alone carries the same statement and signature.
    [record] = read_signoffs_of(signed.log)
    assert record.statement.encode("utf-8") == statement.read_bytes()
    assert record.signature.split() == signature.read_text().split()


@pytest.mark.slow
def test_the_statement_is_canonical_and_names_the_review_files(signed):
    text = (signed.out / "review-2026-Q3.json").read_text(encoding="utf-8")
    statement = json.loads(text)
    assert text == json.dumps(statement, sort_keys=True, ensure_ascii=False,
                              separators=(",", ":"))
    assert statement["period"] == "2026-Q3" and statement["previous"] is None
    assert statement["signer"] == {"name": "Ada Lovelace", "role": "ML lead",
                                   "email": "ada@example.com"}
    assert statement["key"] == fingerprint(signed.ada)
    assert statement["log"] == "experiment-log.xlsx"
    assert sorted(statement["rows"]) == ["EXP-003", "EXP-004", "EXP-005", "EXP-006"]
    # the review files were written before the statement that holds their sha256
    for kind, suffix in (("html", "html"), ("markdown", "md")):
        written = (signed.out / f"review-2026-Q3.{suffix}").read_bytes()
        assert statement["review"][kind]["sha256"] == hashlib.sha256(written).hexdigest()
    markdown = (signed.out / "review-2026-Q3.md").read_text()
    assert f"Signed with SSH key {fingerprint(signed.ada)}" in markdown
    assert "list this key for ada@example.com" in markdown


@pytest.mark.slow
def test_mallory_edits_a_signed_hypothesis_and_signs_as_ada_with_her_own_key(signed, capsys):
    cell = mallory_resigns(signed)
    code, report = run_verify(capsys, str(signed.log))
    assert code == 1
    found = {(f["code"], f["sheet"], f["cell"]) for f in report["findings"]}
    assert found == {("R006", "Experiments", cell), ("R008", "Sign-off", "F3")}
    [r008] = [f for f in report["findings"] if f["code"] == "R008"]
    assert fingerprint(signed.mallory) in r008["message"]
    assert "Ada Lovelace" in r008["message"]
    # (what validate reports of the same forgery: test_checks_signoff.py)
    # the next review still lists the change, and says whose signature is not trusted
    again = write_review(signed.log, period="2026-Q3", output_dir=signed.out / "again")
    assert [(c.experiment_id, c.headers) for c in again.review.changes.changed] == \
        [("EXP-004", ["hypothesis"])]
    history = [status for *_, status in again.review.signoff_history]
    assert history[0] == f"verified: key {fingerprint(signed.ada)} of ada@example.com"
    assert history[1] == \
        f"not trusted: key {fingerprint(signed.mallory)} is not an allowed signer for " \
        "ada@example.com"


@pytest.mark.slow
def test_an_edited_statement_no_longer_verifies(signed):
    [record] = read_signoffs_of(signed.log)
    forged = record.statement.replace('"ML lead"', '"Head of ML"')
    edit(signed.log, "Sign-off", record.cells["Statement"], forged)
    assert ("R007", "Sign-off", record.cells["Signature"]) in verify_codes(signed.log)


@pytest.mark.slow
def test_a_signoff_cell_that_differs_from_the_statement_is_r007_there(signed):
    [record] = read_signoffs_of(signed.log)
    edit(signed.log, "Sign-off", record.cells["Name and role"], "Grace Hopper, CEO")
    assert verify_codes(signed.log) == [("R007", "Sign-off", record.cells["Name and role"])]


@pytest.mark.slow
def test_removed_or_reordered_signoff_rows_break_the_chain(signed, tmp_path):
    import openpyxl

    write_review(signed.log, period="2026-Q2", output_dir=signed.out, sign=ADA, key=signed.ada)
    assert verify_codes(signed.log) == []
    first, second = read_signoffs_of(signed.log)
    assert json.loads(second.statement)["previous"] == \
        hashlib.sha256(first.statement.encode()).hexdigest()

    removed = tmp_path / "removed.xlsx"
    workbook = openpyxl.load_workbook(signed.log)
    workbook["Sign-off"].delete_rows(2)
    workbook.save(removed)
    assert verify_codes(removed, allowed_signers=signed.allowed) == \
        [("R009", "Sign-off", "G2")]

    reordered = tmp_path / "reordered.xlsx"
    workbook = openpyxl.load_workbook(signed.log)
    sheet = workbook["Sign-off"]
    rows = [[c.value for c in sheet[n]] for n in (2, 3)]
    for number, values in zip((2, 3), reversed(rows)):
        for column, value in enumerate(values, start=1):
            sheet.cell(number, column).value = value
    workbook.save(reordered)
    assert verify_codes(reordered, allowed_signers=signed.allowed) == \
        [("R009", "Sign-off", "G2"), ("R009", "Sign-off", "G3")]


@pytest.mark.slow
def test_sign_without_a_key_records_the_signoff_and_says_it_is_unsigned(tmp_path, capsys):
    project = make_project(tmp_path, tamper=None)
    allow(project.repo, "ada@example.com", make_key(tmp_path, "ada"))
    with pytest.raises(SystemExit) as exit_info:
        main(["review", str(project.log), "--period", "2026-Q3", "-o", str(tmp_path / "out"),
              "--sign", ADA])
        raise SystemExit(0)
    assert exit_info.value.code == 0
    assert "not cryptographically signed" in capsys.readouterr().err
    assert not (tmp_path / "out" / "review-2026-Q3.json.sig").exists()
    [record] = read_signoffs_of(project.log)
    assert record.name_and_role == ADA and record.signature == ""
    code, report = run_verify(capsys, str(project.log))
    assert code == 0
    assert [(f["code"], f["cell"]) for f in report["findings"]] == [("R010", "F2")]


@pytest.mark.slow
def test_the_key_defaults_to_gits_ssh_signing_key(tmp_path):
    project = make_project(tmp_path, tamper=None)
    ada = make_key(tmp_path, "ada")
    allow(project.repo, "ada@example.com", ada)
    git(project.repo, "config", "gpg.format", "ssh")
    git(project.repo, "config", "user.signingkey", str(ada))
    result = write_review(project.log, period="2026-Q3", output_dir=tmp_path / "out", sign=ADA)
    assert result.signature_path is not None
    assert result.review.signature.key == fingerprint(ada)
    assert verify_codes(project.log) == []


def test_verify_without_allowed_signers_or_signoffs_is_exit_2(tmp_path, capsys):
    from builders import row, write_log

    log = write_log(tmp_path / "log.xlsx", [row()])
    with pytest.raises(SystemExit) as exit_info:
        main(["verify", str(log)])
    assert exit_info.value.code == 2
    assert "no allowed signers" in capsys.readouterr().err
    allowed = tmp_path / "allowed_signers"
    allowed.write_text("")
    with pytest.raises(SystemExit) as exit_info:
        main(["verify", str(log), "--allowed-signers", str(allowed)])
    assert exit_info.value.code == 2
    assert "no Sign-off rows" in capsys.readouterr().err


@pytest.mark.slow
@needs_soffice
def test_a_libreoffice_resave_of_a_signed_log_still_verifies(signed, tmp_path):
    resaved = libreoffice_convert(signed.log, "xlsx", tmp_path / "resaved", tmp_path / "lo")
    assert resaved.read_bytes() != signed.log.read_bytes()
    assert verify_codes(resaved, allowed_signers=signed.allowed) == []


@pytest.mark.slow
def test_the_signoff_row_comes_last_so_a_failed_signature_leaves_no_row(tmp_path, capsys,
                                                                        monkeypatch):
    """Issue 11 item 4: the review files are written first, the Sign-off row last. A public
    key with no ssh-agent to hold its private half cannot sign: the review is there, and
    neither a statement, a signature nor a Sign-off row."""
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    project = make_project(tmp_path, tamper=None)
    # the public half alone: beside its private half, ssh-keygen would sign with that
    public = tmp_path / "ada-public-only.pub"
    public.write_bytes(Path(f"{make_key(tmp_path, 'ada')}.pub").read_bytes())
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exit_info:
        main(["review", str(project.log), "--period", "2026-Q3", "-o", str(out),
              "--sign", ADA, "--key", str(public)])
    assert exit_info.value.code == 2
    assert "ssh-keygen could not sign" in capsys.readouterr().err
    assert (out / "review-2026-Q3.html").is_file() and (out / "review-2026-Q3.md").is_file()
    assert not (out / "review-2026-Q3.json").exists()
    assert not (out / "review-2026-Q3.json.sig").exists()
    assert read_signoffs_of(project.log) == []


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("ssh-agent") is None or shutil.which("ssh-add") is None,
                    reason="ssh-agent not installed")
def test_a_public_key_signs_through_the_ssh_agent_holding_its_private_half(tmp_path,
                                                                           monkeypatch):
    import os
    import signal

    project = make_project(tmp_path, tamper=None)
    ada = make_key(tmp_path, "ada")
    allow(project.repo, "ada@example.com", ada)
    public = tmp_path / "ada-public-only.pub"
    public.write_bytes(Path(f"{ada}.pub").read_bytes())
    socket = tmp_path / "agent.sock"
    agent = subprocess.run(["ssh-agent", "-s", "-a", str(socket)], check=True,
                           capture_output=True, text=True).stdout
    pid = int(agent.split("SSH_AGENT_PID=")[1].split(";")[0])
    try:
        monkeypatch.setenv("SSH_AUTH_SOCK", str(socket))
        subprocess.run(["ssh-add", "-q", str(ada)], check=True, capture_output=True)
        result = write_review(project.log, period="2026-Q3", output_dir=tmp_path / "out",
                              sign=ADA, key=public)
    finally:
        os.kill(pid, signal.SIGTERM)  # the agent this test started, by its id
    assert result.review.signature.key == fingerprint(ada)
    assert verify_codes(project.log) == []


def test_the_signing_key_is_read_from_the_signature_as_ssh_keygen_names_it(tmp_path):
    from aisdp_log.signing.signatures import principals_for, sign, signature_key

    ada = make_key(tmp_path, "ada")
    key_base64, key_fingerprint = signature_key(sign(b"statement", ada))
    assert key_fingerprint == fingerprint(ada)
    assert key_base64 == Path(f"{ada}.pub").read_text().split()[1]
    allowed = tmp_path / "allowed_signers"
    allowed.write_text(f"# the team\n*@example.com,ada@example.com namespaces=\"aisdp-log\" "
                       f"ssh-ed25519 {key_base64}\nben@example.com ssh-ed25519 AAAAother\n")
    assert principals_for(key_base64, allowed) == ["ada@example.com", "*@example.com"]
    assert signature_key("-----BEGIN SSH SIGNATURE-----\nnot base64!\n") is None
