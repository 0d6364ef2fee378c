"""The attacker of issue 21 can edit every file (the log, the repository's work tree, a bundle)
but holds no one else's private key. Each of the five attacks is played for real (ssh-keygen
keys, git history, bundles) and ends with exit 1 and a finding at its cell or file; the honest
path still exits 0, and an assessor following VERIFY.md by hand gets the same answer."""

from __future__ import annotations

import hashlib
import json
import shlex
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest
from builders import git, run_cli
from signoffs import ADA, allow, edit, fingerprint, make_key, read_signoffs_of, sign_elsewhere
from test_review import make_project

from aisdp_log.review.bundle import write_bundle
from aisdp_log.review.write import write_review

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("ssh-keygen") is None, reason="ssh-keygen not installed"),
]

BOB = "Bob Stone, Data scientist <bob@example.org>"


class Team:
    """A project whose committed `.aisdp/allowed_signers` lists Ada's key for
    ada@example.com and Bob's for bob@example.org; Mallory's key is listed nowhere."""

    def __init__(self, tmp_path: Path):
        self.tmp = tmp_path
        self.project = make_project(tmp_path, tamper=None)
        self.repo = self.project.repo
        self.log = self.project.log
        keys = tmp_path / "keys"
        keys.mkdir()
        self.ada, self.bob, self.mallory = (make_key(keys, n) for n in ("ada", "bob", "mallory"))
        allow(self.repo, "ada@example.com", self.ada)
        self.allowed = allow(self.repo, "bob@example.org", self.bob)
        # the assessor's own copy, kept away from the evidence
        self.assessor_list = tmp_path / "assessor" / "allowed_signers"
        self.assessor_list.parent.mkdir()
        shutil.copyfile(self.allowed, self.assessor_list)
        self.out = tmp_path / "out"

    def sign(self, period: str, signer: str = ADA, key: Path | None = None) -> None:
        write_review(self.log, period=period, output_dir=self.out, sign=signer,
                     key=key or self.ada)

    def commit_records(self, message: str = "sign-off records") -> None:
        git(self.repo, "add", ".aisdp/signoffs")
        git(self.repo, "commit", "-q", "-m", message)

    def bundle(self, name: str) -> Path:
        return write_bundle(self.log, self.tmp / name, reviews_dir=self.out).path


def verify_json(*args: str) -> tuple[int, dict]:
    done = run_cli("verify", *args, "--format", "json")
    assert done.returncode in (0, 1), done.stderr
    return done.returncode, json.loads(done.stdout)


def found(report: dict) -> set[tuple[str, str, str]]:
    return {(f["code"], f["sheet"], f["cell"]) for f in report["findings"]}


def rezip(source: Path, target: Path, change: dict[str, bytes | None]) -> Path:
    """`source` with members replaced (bytes) or removed (None), and SHA256SUMS rewritten to
    match, as a forger would."""
    with zipfile.ZipFile(source) as old:
        members = {i.filename: old.read(i) for i in old.infolist()}
    for name, data in change.items():
        if data is None:
            members.pop(name, None)
        else:
            members[name] = data
    members["SHA256SUMS"] = "".join(
        f"{hashlib.sha256(data).hexdigest()}  {name}\n"
        for name, data in sorted(members.items()) if name != "SHA256SUMS").encode()
    with zipfile.ZipFile(target, "w") as new:
        for name, data in sorted(members.items()):
            new.writestr(name, data)
    return target


@pytest.fixture
def team(tmp_path: Path) -> Team:
    return Team(tmp_path)


# --------------------------------------------------------------------------- the honest path

def test_the_honest_path_sign_commit_bundle_verify_and_ssh_keygen_by_hand(team, tmp_path):
    done = run_cli("review", str(team.log), "--period", "2026-Q3", "-o", str(team.out),
                   "--sign", ADA, "--key", str(team.ada))
    assert done.returncode == 0, done.stderr
    assert "git add .aisdp/signoffs" in done.stderr
    assert "not yet committed under .aisdp/signoffs/" in run_cli("verify", str(team.log)).stderr
    team.commit_records()
    code, report = verify_json(str(team.log))
    assert (code, report["findings"]) == (0, [])
    assert report["trust"]["independent"] is True
    assert report["trust"]["source"] == str(team.repo / ".aisdp" / "allowed_signers")
    assert report["trust"]["revision"] == git(team.repo, "rev-parse", "HEAD")
    [entry] = report["signoffs"]
    assert (entry["principal"], entry["key"], entry["status"]) == \
        ("ada@example.com", fingerprint(team.ada), "verified")
    assert entry["signer"] == ADA
    bundle = team.bundle("evidence.zip")
    code, report = verify_json(str(bundle), "--allowed-signers", str(team.assessor_list))
    assert (code, report["findings"]) == (0, [])
    assert report["trust"] == {"source": str(team.assessor_list), "independent": True}
    # the assessor by hand: VERIFY.md's commands, with their own list in place of the bundle's
    folder = tmp_path / "unzipped"
    zipfile.ZipFile(bundle).extractall(folder)
    shutil.copyfile(team.assessor_list, folder / "allowed_signers")
    text = (folder / "VERIFY.md").read_text()
    assert fingerprint(team.ada) in text and "ada@example.com" in text
    assert "not evidence of" in text  # the bundle's own list is not a trust anchor
    [command] = [line for line in text.splitlines() if line.startswith("ssh-keygen -Y verify")]
    assert "-I ada@example.com" in command and "verify-time=" in command
    words = shlex.split(command.split(" < ")[0])
    with open(folder / command.split(" < ")[1].strip(), "rb") as statement:
        by_hand = subprocess.run(words, cwd=folder, stdin=statement, capture_output=True,
                                 text=True)
    assert by_hand.returncode == 0, by_hand.stderr
    assert 'Good "aisdp-log" signature for ada@example.com' in by_hand.stdout
    sums = subprocess.run(["sha256sum", "--quiet", "-c", "SHA256SUMS"], cwd=folder,
                          capture_output=True, text=True)
    assert sums.returncode == 0, sums.stdout


# --------------------------------------------------------------------------- 1. impersonation

def test_1_bob_signing_as_ada_is_refused_up_front_and_caught_by_verify(team):
    impersonation = "Ada Lovelace, Head of ML <ada@example.com>"
    done = run_cli("review", str(team.log), "--period", "2026-Q3", "-o", str(team.out),
                   "--sign", impersonation, "--key", str(team.bob))
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1
    assert "do not list key" in done.stderr and "for ada@example.com" in done.stderr
    assert read_signoffs_of(team.log) == []
    # without the tool's check (signed elsewhere, copied back): verify refuses it
    sign_elsewhere(team.log, team.tmp / "bob", impersonation, team.bob)
    code, report = verify_json(str(team.log))
    assert code == 1
    assert found(report) == {("R008", "Sign-off", "F2")}
    [r008] = report["findings"]
    assert fingerprint(team.bob) in r008["message"]
    assert "bob@example.org, not ada@example.com" in r008["message"]
    # and ssh-keygen by hand, as the README says, refuses it too
    [record] = read_signoffs_of(team.log)
    signature = team.tmp / "sig"
    signature.write_text(record.signature)
    by_hand = subprocess.run(["ssh-keygen", "-Y", "verify", "-f", str(team.allowed), "-I",
                              "ada@example.com", "-n", "aisdp-log", "-s", str(signature)],
                             input=record.statement.encode(), capture_output=True)
    assert by_hand.returncode != 0


def test_1_bob_under_his_own_email_shows_his_principal_and_signers_fixes_his_name(team):
    (team.repo / "aisdp.toml").write_text('[signers]\n"ada@example.com" = "Ada Lovelace, ML '
                                          'lead"\n"bob@example.org" = "Bob Stone, Data '
                                          'scientist"\n')
    disguised = "Ada Lovelace, Head of ML <bob@example.org>"
    done = run_cli("review", str(team.log), "--period", "2026-Q3", "-o", str(team.out),
                   "--sign", disguised, "--key", str(team.bob))
    assert done.returncode == 2
    assert "[signers]" in done.stderr and len(done.stderr.strip().splitlines()) == 1
    sign_elsewhere(team.log, team.tmp / "bob", disguised, team.bob)
    code, report = verify_json(str(team.log))
    assert code == 1
    assert found(report) == {("R011", "Sign-off", "B2")}
    [entry] = report["signoffs"]
    assert entry["principal"] == "bob@example.org" and entry["status"] == "verified"
    # the principal stands next to the name in the sheet, the review and verify's text
    [record] = read_signoffs_of(team.log)
    assert record.name_and_role == disguised
    markdown = (team.tmp / "bob" / "out" / "review-2026-Q3.md").read_text()
    assert "Ada Lovelace, Head of ML &lt;bob@example.org&gt;" in markdown
    text = run_cli("verify", str(team.log)).stdout
    assert "principal bob@example.org" in text
    # validate reports the same, from the same committed list and aisdp.toml
    from aisdp_log.lint.runner import validate

    assert ("R011", "B2") in validate(team.log, offline=True).codes()


# --------------------------------------------------------------------------- 2. self-vouching

def test_2_a_bundle_that_vouches_for_itself_does_not_establish_identity(team, tmp_path):
    team.sign("2026-Q3")
    team.commit_records()
    honest = team.bundle("honest.zip")
    # the forger: a copy of the repository where Mallory's key is listed as Ada's, a row
    # edited, the period re-signed "as Ada" with Mallory's key, and a fresh bundle
    forged_repo = tmp_path / "forger" / "project"
    shutil.copytree(team.repo, forged_repo)
    (forged_repo / ".aisdp" / "allowed_signers").write_text("")
    allow(forged_repo, "ada@example.com", team.mallory)
    forged_log = forged_repo / team.log.name
    edit(forged_log, "Experiments", team.project.cell("EXP-004", "Hypothesis"), "rewritten")
    shutil.copytree(team.out, tmp_path / "forger" / "out")
    write_review(forged_log, period="2026-Q3", output_dir=tmp_path / "forger" / "out",
                 sign=ADA, key=team.mallory)
    forged = write_bundle(forged_log, tmp_path / "forged.zip",
                          reviews_dir=tmp_path / "forger" / "out").path
    # without a list of their own: integrity checks pass, identity is not established
    code, report = verify_json(str(forged))
    assert code == 1
    assert ("R012", "bundle", "allowed_signers") in found(report)
    assert report["trust"] == {"source": "bundle", "independent": False}
    assert fingerprint(team.mallory) in {s["key"] for s in report["signoffs"]}
    text = run_cli("verify", str(forged))
    assert text.returncode == 1 and fingerprint(team.mallory) in text.stdout
    # with the assessor's list: Mallory's key is not Ada's
    code, report = verify_json(str(forged), "--allowed-signers", str(team.assessor_list))
    assert code == 1
    assert {("R008", "Sign-off", "F3")} <= found(report)
    # the honest bundle: exit 0 only with an anchor, independent or explicitly accepted
    assert verify_json(str(honest))[0] == 1
    code, report = verify_json(str(honest), "--trust-bundle-signers")
    assert (code, report["findings"]) == (0, [])
    assert report["trust"] == {"source": "bundle", "independent": False}


# --------------------------------------------------------------------------- 3. truncation

def test_3_removing_the_newest_signoff_is_caught_from_the_repository_history(team):
    import openpyxl

    team.sign("2026-Q2")
    team.sign("2026-Q3")
    team.commit_records()
    earlier = team.bundle("q3.zip")
    [q3_record] = [p for p in (team.repo / ".aisdp" / "signoffs").glob("2026-Q3.*.json")]
    # the attacker removes the newest Sign-off row, edits a row it signed, and deletes the
    # record from the work tree in a new commit
    workbook = openpyxl.load_workbook(team.log)
    workbook["Sign-off"].delete_rows(3)
    workbook.save(team.log)
    edit(team.log, "Experiments", team.project.cell("EXP-004", "Hypothesis"), "rewritten")
    git(team.repo, "rm", "-q", str(q3_record.relative_to(team.repo)))
    git(team.repo, "commit", "-q", "-m", "tidy")
    code, report = verify_json(str(team.log))
    assert code == 1
    relative = q3_record.relative_to(team.repo).as_posix()
    assert found(report) == {("R013", "repository", relative)}
    # renaming the log does not disown the record: its chain links to the statements kept
    renamed = team.repo / "docs" / "renamed-log.xlsx"
    renamed.parent.mkdir()
    shutil.copyfile(team.log, renamed)
    code, report = verify_json(str(renamed))
    assert code == 1 and found(report) == {("R013", "repository", relative)}
    # the assessor's view: this quarter's bundle must extend last quarter's
    later = _bundle_with_reviews(team, "later.zip")
    code, report = verify_json(str(later), "--allowed-signers", str(team.assessor_list),
                               "--since", str(earlier))
    assert code == 1
    assert found(report) == {("R013", "bundle", "q3.zip!reviews/review-2026-Q3.json")}
    # every Sign-off row removed: not "nothing to verify" but each recorded sign-off missing
    workbook = openpyxl.load_workbook(team.log)
    workbook["Sign-off"].delete_rows(2, 2)
    workbook.save(team.log)
    code, report = verify_json(str(team.log))
    assert code == 1
    assert {cell for code_, _, cell in found(report) if code_ == "R013"} == {
        relative, *(p.relative_to(team.repo).as_posix()
                    for p in (team.repo / ".aisdp" / "signoffs").glob("2026-Q2.*.json"))}


def _bundle_with_reviews(team: Team, name: str) -> Path:
    """A bundle of the (truncated) log, its review files taken from the earlier bundle."""
    folder = team.tmp / "reviews-from-earlier"
    with zipfile.ZipFile(team.tmp / "q3.zip") as archive:
        for member in archive.namelist():
            if member.startswith("reviews/"):
                archive.extract(member, folder)
    return write_bundle(team.log, team.tmp / name, reviews_dir=folder / "reviews").path


# --------------------------------------------------------------------------- 4. swapped files

def test_4_a_periods_statement_removed_or_swapped_in_a_bundle_is_caught(team, tmp_path):
    team.sign("2026-Q2")
    team.sign("2026-Q3")
    team.commit_records()
    bundle = team.bundle("evidence.zip")
    with zipfile.ZipFile(bundle) as archive:
        html = archive.read("reviews/review-2026-Q3.html")
        q2_statement = archive.read("reviews/review-2026-Q2.json")
        q2_signature = archive.read("reviews/review-2026-Q2.json.sig")
    forged_html = html.replace(b"EXP-004", b"EXP-00X")
    removed = rezip(bundle, tmp_path / "removed.zip", {
        "reviews/review-2026-Q3.json": None, "reviews/review-2026-Q3.json.sig": None,
        "reviews/review-2026-Q3.html": forged_html})
    code, report = verify_json(str(removed), "--allowed-signers", str(team.assessor_list))
    assert code == 1
    assert found(report) == {("B002", "bundle", "reviews/review-2026-Q3.json"),
                             ("B002", "bundle", "reviews/review-2026-Q3.json.sig"),
                             ("B001", "bundle", "reviews/review-2026-Q3.html")}
    swapped = rezip(bundle, tmp_path / "swapped.zip", {
        "reviews/review-2026-Q3.json": q2_statement,
        "reviews/review-2026-Q3.json.sig": q2_signature,
        "reviews/review-2026-Q3.html": forged_html})
    code, report = verify_json(str(swapped), "--allowed-signers", str(team.assessor_list))
    assert code == 1
    assert found(report) == {("B001", "bundle", "reviews/review-2026-Q3.json"),
                             ("B001", "bundle", "reviews/review-2026-Q3.json.sig"),
                             ("B001", "bundle", "reviews/review-2026-Q3.html")}


# --------------------------------------------------------------------------- 5. duplicate IDs

def test_5_a_second_row_with_a_signed_experiment_id_is_an_error_in_verify(team):
    import openpyxl

    team.sign("2026-Q3")
    workbook = openpyxl.load_workbook(team.log)
    sheet = workbook["Experiments"]
    copy = [cell.value for cell in sheet[5]]  # EXP-004's row
    copy[team.project.headers.index("Hypothesis")] = "the story told later"
    sheet.append(copy)
    workbook.save(team.log)
    code, report = verify_json(str(team.log))
    assert code == 1
    assert found(report) == {("S004", "Experiments", "A8")}


# --------------------------------------------------------------------------- the anchor's edges

def test_a_work_tree_edit_of_the_allowed_signers_is_reported_and_ignored(team):
    team.sign("2026-Q3")
    allow(team.repo, "ada@example.com", team.mallory, commit=False)
    sign_elsewhere(team.log, team.tmp / "mallory", ADA, team.mallory, period="2026-Q2")
    code, report = verify_json(str(team.log))
    assert code == 1
    assert found(report) == {("R008", "Sign-off", "F3"),
                             ("R014", "repository", ".aisdp/allowed_signers")}


def test_an_uncommitted_allowed_signers_file_does_not_establish_identity(tmp_path):
    project = make_project(tmp_path, tamper=None)
    ada = make_key(tmp_path, "ada")
    allow(project.repo, "ada@example.com", ada, commit=False)
    write_review(project.log, period="2026-Q3", output_dir=tmp_path / "out", sign=ADA, key=ada)
    code, report = verify_json(str(project.log))
    assert code == 1
    assert found(report) == {("R012", "repository", ".aisdp/allowed_signers")}
    assert report["trust"] == {"source": str(project.repo / ".aisdp" / "allowed_signers"),
                               "independent": False}


def test_valid_before_in_the_allowed_signers_is_honoured(team):
    # Ada's key was valid until 2020 only (the signing happens now): refused up front...
    (team.repo / ".aisdp" / "allowed_signers").write_text("")
    allow(team.repo, "ada@example.com", team.ada, options='valid-before="20200101"')
    done = run_cli("review", str(team.log), "--period", "2026-Q3", "-o", str(team.out),
                   "--sign", ADA, "--key", str(team.ada))
    assert done.returncode == 2
    # ...and a sign-off made anyway is R008 in verify
    sign_elsewhere(team.log, team.tmp / "late", ADA, team.ada)
    code, report = verify_json(str(team.log))
    assert code == 1 and found(report) == {("R008", "Sign-off", "F2")}
    # a window that holds the signing time verifies
    (team.repo / ".aisdp" / "allowed_signers").write_text("")
    allow(team.repo, "ada@example.com", team.ada,
          options='valid-after="20200101",valid-before="29991231"')
    code, report = verify_json(str(team.log))
    assert (code, report["findings"]) == (0, [])


def test_signing_a_period_twice_keeps_the_earlier_files_and_bundles_both(team):
    team.sign("2026-Q3")
    first = (team.out / "review-2026-Q3.json").read_bytes()
    done = run_cli("review", str(team.log), "--period", "2026-Q3", "-o", str(team.out),
                   "--sign", ADA, "--key", str(team.ada))
    assert done.returncode == 0, done.stderr
    assert "kept the earlier sign-off's file as" in done.stdout
    kept = [p for p in team.out.glob("review-2026-Q3.*.json")]
    assert [p.read_bytes() for p in kept] == [first]
    assert {p.suffix for p in team.out.glob(f"{kept[0].name[:-5]}*")} >= {".json", ".sig",
                                                                          ".html", ".md"}
    assert len(list((team.repo / ".aisdp" / "signoffs").glob("*.json"))) == 2
    team.commit_records()
    code, report = verify_json(str(team.bundle("both.zip")), "--allowed-signers",
                               str(team.assessor_list))
    assert (code, report["findings"]) == (0, [])


def test_every_signoff_is_bundled_from_review_folders_given_with_repeated_reviews(team):
    write_review(team.log, period="2026-Q2", output_dir=team.tmp / "q2", sign=ADA, key=team.ada)
    write_review(team.log, period="2026-Q3", output_dir=team.tmp / "q3", sign=ADA, key=team.ada)
    bundle = team.tmp / "b.zip"
    done = run_cli("bundle", str(team.log), "--period", "2026-Q3", "-o", str(bundle))
    assert done.returncode == 2 and "--reviews" in done.stderr  # Q2's files are elsewhere
    done = run_cli("bundle", str(team.log), "--period", "2026-Q3", "-o", str(bundle),
                   "--reviews", str(team.tmp / "q2"), "--reviews", str(team.tmp / "q3"))
    assert done.returncode == 0, done.stderr
    names = set(zipfile.ZipFile(bundle).namelist())
    assert {f"reviews/review-2026-Q{q}.{s}" for q in (2, 3)
            for s in ("json", "json.sig", "html", "md")} <= names
    code, report = verify_json(str(bundle), "--allowed-signers", str(team.assessor_list))
    assert (code, report["findings"]) == (0, [])


def test_an_unsigned_rerender_of_a_signed_period_keeps_the_signed_files(team):
    team.sign("2026-Q3")
    signed_html = (team.out / "review-2026-Q3.html").read_bytes()
    done = run_cli("review", str(team.log), "--period", "2026-Q3", "-o", str(team.out))
    assert done.returncode == 0, done.stderr
    assert "kept the earlier sign-off's file as" in done.stdout
    [kept] = team.out.glob("review-2026-Q3.*.html")
    assert kept.read_bytes() == signed_html
    assert not (team.out / "review-2026-Q3.json").exists()
