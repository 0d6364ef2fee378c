"""`aisdp-log bundle`: the evidence zip verifies with `sha256sum -c` and `ssh-keygen` alone
and with `aisdp-log verify`, is the same bytes when written twice, and fails both after a
byte changes in any file."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest
from signoffs import ADA, allow, make_key
from test_review import make_project

from aisdp_log.cli.main import main
from aisdp_log.review.bundle import write_bundle
from aisdp_log.review.render import render_verify
from aisdp_log.review.write import write_review

pytestmark = [
    pytest.mark.skipif(shutil.which("ssh-keygen") is None, reason="ssh-keygen not installed"),
    pytest.mark.skipif(shutil.which("sha256sum") is None, reason="sha256sum not installed"),
]


@pytest.fixture(scope="module")
def bundled(tmp_path_factory) -> Path:
    """The demo-like project signed by Ada for 2026-Q3, bundled (read-only for the tests)."""
    tmp = tmp_path_factory.mktemp("bundle")
    project = make_project(tmp, tamper=None)
    for folder in (project.repo / "artefacts").iterdir():
        (folder / "run.json").write_text(json.dumps({"experiment_id": folder.name}))
    ada = make_key(tmp, "ada")
    allow(project.repo, "ada@example.com", ada)
    write_review(project.log, period="2026-Q3", output_dir=tmp / "out", sign=ADA, key=ada)
    write_bundle(project.log, tmp / "evidence.zip", reviews_dir=tmp / "out")
    return tmp / "evidence.zip"


def run_verify(capsys, path: Path, *options: str) -> tuple[int, list[tuple[str, str]]]:
    """`verify BUNDLE --format json` trusting the bundle's own list (the trust anchor's
    tests: test_trust.py), unless `options` say otherwise."""
    with pytest.raises(SystemExit) as exit_info:
        main(["verify", str(path), "--format", "json", *(options or
                                                         ["--trust-bundle-signers"])])
    report = json.loads(capsys.readouterr().out)
    return exit_info.value.code, [(f["code"], f["cell"]) for f in report["findings"]]


def unzip(bundle: Path, target: Path) -> Path:
    with zipfile.ZipFile(bundle) as archive:
        archive.extractall(target)
    return target


def rezip(source: Path, target: Path, change: dict[str, bytes]) -> Path:
    """`source` with some members' bytes replaced, everything else as it was."""
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w") as new:
        for info in old.infolist():
            new.writestr(info, change.get(info.filename, old.read(info.filename)))
    return target


def member_names() -> list[str]:
    return ["experiment-log.xlsx", "SHA256SUMS", "VERIFY.md", "allowed_signers",
            "artefacts/EXP-004/model.bin", "artefacts/EXP-004/run.json",
            "artefacts/EXP-003/history.csv", "artefacts/EXP-005/metrics.json",
            "reviews/review-2026-Q3.html", "reviews/review-2026-Q3.md",
            "reviews/review-2026-Q3.json", "reviews/review-2026-Q3.json.sig"]


@pytest.mark.slow
def test_the_bundle_holds_the_evidence_and_verifies_without_aisdp_log(bundled, tmp_path,
                                                                       capsys):
    names = zipfile.ZipFile(bundled).namelist()
    assert names == sorted(names)
    assert {"experiment-log.xlsx", "SHA256SUMS", "VERIFY.md", "allowed_signers",
            "reviews/review-2026-Q3.html", "reviews/review-2026-Q3.md",
            "reviews/review-2026-Q3.json", "reviews/review-2026-Q3.json.sig",
            "artefacts/EXP-004/model.bin", "artefacts/EXP-004/metrics.json",
            "artefacts/EXP-004/history.csv"} <= set(names)
    assert any(n.startswith("locks/") and n.endswith("/uv.lock") for n in names)
    folder = unzip(bundled, tmp_path / "x")
    sums = (folder / "SHA256SUMS").read_text().splitlines()
    assert sorted(line[66:] for line in sums) == sorted(set(names) - {"SHA256SUMS"})
    done = subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=folder, capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    # VERIFY.md's ssh-keygen command, run as written
    verify_md = (folder / "VERIFY.md").read_text()
    [command] = [line for line in verify_md.splitlines() if line.startswith("ssh-keygen -Y verify")]
    assert "-I ada@example.com" in command
    done = subprocess.run(command, shell=True, cwd=folder, capture_output=True, text=True)
    assert done.returncode == 0 and "Good \"aisdp-log\" signature" in done.stdout
    assert run_verify(capsys, bundled) == (0, [])


@pytest.mark.slow
def test_the_bundle_is_the_same_bytes_when_written_twice(bundled, tmp_path):
    source = bundled.parent
    again = write_bundle(source / "project" / "experiment-log.xlsx", tmp_path / "again.zip",
                         reviews_dir=source / "out")
    assert again.path.read_bytes() == bundled.read_bytes()
    for info in zipfile.ZipFile(bundled).infolist():
        assert info.date_time == (1980, 1, 1, 0, 0, 0)


@pytest.mark.slow
@pytest.mark.parametrize("name", member_names())
def test_a_changed_byte_in_any_file_fails_sha256sum_and_verify(bundled, tmp_path, capsys, name):
    original = zipfile.ZipFile(bundled).read(name)
    position = len(original) // 2
    changed = bytearray(original)
    changed[position] = changed[position] ^ 0x01
    tampered = rezip(bundled, tmp_path / "tampered.zip", {name: bytes(changed)})
    folder = unzip(tampered, tmp_path / "x")
    done = subprocess.run(["sha256sum", "--quiet", "-c", "SHA256SUMS"], cwd=folder,
                          capture_output=True, text=True)
    assert done.returncode != 0
    code, found = run_verify(capsys, tampered)
    assert code == 1
    assert "B001" in {c for c, _ in found}


@pytest.mark.slow
def test_a_changed_review_with_recomputed_sums_fails_against_its_signed_statement(
        bundled, tmp_path, capsys):
    import hashlib

    archive = zipfile.ZipFile(bundled)
    html = archive.read("reviews/review-2026-Q3.html").replace(b"Signed by", b"Approved by")
    sums = archive.read("SHA256SUMS").decode().splitlines()
    sums = [f"{hashlib.sha256(html).hexdigest()}  reviews/review-2026-Q3.html"
            if line.endswith("  reviews/review-2026-Q3.html") else line for line in sums]
    tampered = rezip(bundled, tmp_path / "t.zip", {"reviews/review-2026-Q3.html": html,
                                                   "SHA256SUMS": "\n".join(sums).encode() + b"\n"})
    done = subprocess.run(["sha256sum", "--quiet", "-c", "SHA256SUMS"],
                          cwd=unzip(tampered, tmp_path / "x"), capture_output=True)
    assert done.returncode == 0  # the sums alone are fooled...
    assert run_verify(capsys, tampered) == (1, [("B001", "reviews/review-2026-Q3.html")])


def test_a_member_that_escapes_the_bundle_folder_is_refused(tmp_path, capsys):
    hostile = tmp_path / "hostile.zip"
    with zipfile.ZipFile(hostile, "w") as archive:
        archive.writestr("SHA256SUMS", "")
        archive.writestr("../escaped.txt", "outside")
    with pytest.raises(SystemExit) as exit_info:
        main(["verify", str(hostile)])
    assert exit_info.value.code == 2
    assert "outside the bundle folder" in capsys.readouterr().err
    assert not (tmp_path.parent / "escaped.txt").exists()


@pytest.mark.slow
def test_bundle_of_an_unsigned_period_is_a_one_line_error(bundled, tmp_path, capsys):
    log = bundled.parent / "project" / "experiment-log.xlsx"
    with pytest.raises(SystemExit) as exit_info:
        main(["bundle", str(log), "--period", "2026-Q2", "-o", str(tmp_path / "b.zip")])
    assert exit_info.value.code == 2
    assert "no sign-off of 2026-Q2 to bundle" in capsys.readouterr().err
    assert not (tmp_path / "b.zip").exists()


@pytest.mark.slow
def test_a_statement_swapped_in_with_its_signature_and_sums_is_not_the_logs(bundled, tmp_path,
                                                                            capsys):
    """Mallory replaces the bundled statement with one she signed and recomputes the sums:
    the log's Sign-off row still holds Ada's statement."""
    import hashlib

    from aisdp_log.signing.signatures import sign

    mallory = make_key(tmp_path, "mallory")
    archive = zipfile.ZipFile(bundled)
    statement = archive.read("reviews/review-2026-Q3.json").replace(b"ML lead", b"CEO")
    signature = sign(statement, mallory).encode()
    changed = {"reviews/review-2026-Q3.json": statement,
               "reviews/review-2026-Q3.json.sig": signature}
    sums = []
    for line in archive.read("SHA256SUMS").decode().splitlines():
        name = line[66:]
        sums.append(f"{hashlib.sha256(changed[name]).hexdigest()}  {name}" if name in changed
                    else line)
    changed["SHA256SUMS"] = "\n".join(sums).encode() + b"\n"
    code, found = run_verify(capsys, rezip(bundled, tmp_path / "t.zip", changed))
    assert code == 1
    assert set(found) == {("B001", "reviews/review-2026-Q3.json"),
                          ("B001", "reviews/review-2026-Q3.json.sig")}


@pytest.mark.slow
def test_a_link_in_an_artefact_folder_is_left_out_and_said(tmp_path, capsys):
    project = make_project(tmp_path, tamper=None)
    secret = tmp_path / "secret.txt"
    secret.write_text("not evidence")
    (project.repo / "artefacts" / "EXP-004" / "extra.txt").symlink_to(secret)
    write_review(project.log, period="2026-Q3", output_dir=tmp_path / "out", sign=ADA)
    with pytest.raises(SystemExit) as exit_info:
        main(["bundle", str(project.log), "-o", str(tmp_path / "b.zip"),
              "--reviews", str(tmp_path / "out")])
        raise SystemExit(0)
    assert exit_info.value.code == 0
    assert "extra.txt: not a regular file (a link?); not bundled" in capsys.readouterr().err
    names = zipfile.ZipFile(tmp_path / "b.zip").namelist()
    assert "artefacts/EXP-004/model.bin" in names
    assert "artefacts/EXP-004/extra.txt" not in names


def test_verify_md_quotes_every_name_for_the_shell_and_markdown():
    # a principal and a log name are text others wrote: in VERIFY.md's commands each stays one
    # shell argument, and in its prose no name can end a code span or open a link
    text = render_verify({
        "log_name": "log`](http://x)$(touch pwned).xlsx", "sums_name": "SHA256SUMS",
        "namespace": "aisdp-log", "allowed_name": "allowed_signers",
        "allowed_file": "allowed_signers",
        "signed": [{"name": "reviews/review-2026-Q3.json", "principal": "ada; touch pwned",
                    "signer": "Ada `x` | y", "key": "SHA256:abc",
                    "args": ["-Y", "verify", "-f", "allowed_signers", "-I", "ada; touch pwned",
                             "-n", "aisdp-log", "-s", "reviews/review-2026-Q3.json.sig"]}],
        "unsigned": ["reviews/review-2026-Q2.json"],
        "review_files": [{"file": "review-2026-Q3.html", "sha256": "ab" * 32,
                          "statement": "reviews/review-2026-Q3.json"}]})
    [verify] = [line for line in text.splitlines() if line.startswith("ssh-keygen -Y verify")]
    assert shlex.split(verify)[shlex.split(verify).index("-I") + 1] == "ada; touch pwned"
    assert "-I 'ada; touch pwned'" in verify
    assert text.startswith("# Checking this evidence bundle of log\\`\\]")
    assert "``log`](http://x)$(touch pwned).xlsx``" in text
    assert "Not cryptographically signed: `reviews/review-2026-Q2.json`" in text


# --------------------------------------------------------------------------- other OSes

def fenced_after(text: str, heading: str, language: str) -> list[str]:
    """The fenced blocks of `language` that follow a line `heading` in VERIFY.md."""
    return re.findall(rf"^{re.escape(heading)}[^\n]*\n\n```{language}\n(.*?)\n```", text,
                      re.S | re.M)


@pytest.mark.slow
def test_verify_md_gives_the_check_for_linux_macos_and_windows(bundled, tmp_path):
    folder = unzip(bundled, tmp_path / "x")
    verify_md = (folder / "VERIFY.md").read_text(encoding="utf-8")
    assert fenced_after(verify_md, "Linux:", "sh") == ["sha256sum -c SHA256SUMS"]
    assert fenced_after(verify_md, "macOS:", "sh") == ["shasum -a 256 -c SHA256SUMS"]
    [sums] = fenced_after(verify_md, "Windows PowerShell (5.1 or 7):", "powershell")
    assert "Get-FileHash -Algorithm SHA256" in sums and "<" not in sums
    [signature] = fenced_after(verify_md, "the last line, ssh-keygen", "powershell")
    assert "-RedirectStandardInput 'reviews/review-2026-Q3.json'" in signature
    assert "-s reviews/review-2026-Q3.json.sig" in signature and " < " not in signature


@pytest.mark.slow
def test_the_macos_check_shasum_passes_as_verify_md_writes_it(bundled, tmp_path):
    if shutil.which("shasum") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("shasum is missing: .ci/run installs perl, which provides it")
        pytest.skip("shasum (perl) not installed")
    folder = unzip(bundled, tmp_path / "x")
    [command] = fenced_after((folder / "VERIFY.md").read_text(encoding="utf-8"), "macOS:", "sh")
    done = subprocess.run(shlex.split(command), cwd=folder, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert all(line.endswith(": OK") for line in done.stdout.splitlines())
    (folder / "artefacts" / "EXP-004" / "model.bin").write_bytes(b"changed")
    done = subprocess.run(shlex.split(command), cwd=folder, capture_output=True, text=True)
    assert done.returncode != 0 and "artefacts/EXP-004/model.bin: FAILED" in done.stdout


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("pwsh") is None and shutil.which("powershell") is None,
                    reason="PowerShell is not installed (the Windows runner has it)")
def test_the_powershell_checks_pass_as_verify_md_writes_them(bundled, tmp_path):
    shell = shutil.which("pwsh") or shutil.which("powershell")
    folder = unzip(bundled, tmp_path / "x")
    verify_md = (folder / "VERIFY.md").read_text(encoding="utf-8")
    [sums] = fenced_after(verify_md, "Windows PowerShell (5.1 or 7):", "powershell")
    done = subprocess.run([shell, "-NoProfile", "-Command", sums], cwd=folder,
                          capture_output=True, text=True)
    lines = done.stdout.splitlines()
    assert lines and all(line.endswith(": OK") for line in lines), done.stdout + done.stderr
    [signature] = fenced_after(verify_md, "the last line, ssh-keygen", "powershell")
    done = subprocess.run([shell, "-NoProfile", "-Command", signature], cwd=folder,
                          capture_output=True, text=True)
    assert done.stdout.strip().splitlines()[-1] == "0", done.stdout + done.stderr
    assert 'Good "aisdp-log" signature' in done.stdout


@pytest.mark.slow
def test_a_lock_path_typed_with_backslashes_is_bundled_as_validate_reads_it(tmp_path, capsys):
    from builders import commit, run_cli

    from aisdp_log.workbook.writer import find_rows, open_workbook_for_update, set_cell

    project = make_project(tmp_path, tamper=None)
    lock = b"numpy==2.0.0\n"
    sha = commit(project.repo, {"envs/requirements.txt": lock}, message="pinned")
    cell = f"envs\\requirements.txt sha256:{hashlib.sha256(lock).hexdigest()}; python 3.11"
    with open_workbook_for_update(project.log) as workbook:
        sheet = workbook["Experiments"]
        for experiment_id in ("EXP-001", "EXP-002", "EXP-003", "EXP-004", "EXP-005"):
            for row in find_rows(sheet, "Experiment ID", experiment_id):
                set_cell(sheet, row, "Environment", cell)
                set_cell(sheet, row, "Code commit", sha[:7])
    validated = run_cli("validate", str(project.log), "--format", "json")
    found = json.loads(validated.stdout)["findings"]
    assert not [f for f in found if f["code"] in ("G005", "G007")], found
    ada = make_key(tmp_path, "ada")
    allow(project.repo, "ada@example.com", ada)
    write_review(project.log, period="2026-Q3", output_dir=tmp_path / "out", sign=ADA, key=ada)

    result = write_bundle(project.log, tmp_path / "evidence.zip", reviews_dir=tmp_path / "out")

    assert f"locks/{sha}/envs/requirements.txt" in result.files
    assert not [note for note in result.notes if "requirements" in note], result.notes
