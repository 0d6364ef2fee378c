"""checks/git.py: G001-G007 on real git repositories: each finding at its cell (the git
findings only: the other families have their own tests), clean rows silent."""

from __future__ import annotations

import datetime as dt
import hashlib
import subprocess

import pytest
from builders import assert_findings, commit, git, init_repo, row, write_log
from test_gitrepo import colliding_commits

from aisdp_log.domain.locks import lock_entries, lock_matches, lock_repo_path
from aisdp_log.errors import RepositoryError
from aisdp_log.lint.runner import validate

# Column letters with builders.BASE_ROW's order: F = Code commit, K = Environment.
COMMIT, ENVIRONMENT = "F", "K"
LOCK = "version = 1\n[[package]]\nname = \"torch\"\n"
LOCK_SHA = hashlib.sha256(LOCK.encode()).hexdigest()


@pytest.fixture
def repo(tmp_path):
    repo = init_repo(tmp_path / "repo")
    commit(repo, {"train.py": "print('v1')\n", "uv.lock": LOCK},
           date="2026-07-01T09:00:00+00:00")
    return repo


def check(tmp_path, repo, rows):
    log = write_log(tmp_path / "log.xlsx", rows)
    return validate(log, repo=repo)


def head(repo) -> str:
    return git(repo, "rev-parse", "HEAD")


def test_clean_rows_with_short_and_full_shas_pass(tmp_path, repo):
    sha = head(repo)
    report = check(tmp_path, repo, [
        row(experiment_id="EXP-001", code_commit=sha[:7],
            environment=f"uv.lock sha256:{LOCK_SHA}; torch 2.13.0+cpu"),
        row(experiment_id="EXP-002", code_commit=sha, environment="python 3.11"),
        row(experiment_id="EXP-003", code_commit=sha.upper()[:12], date="2026-07-01")])
    assert_findings(report, [], "G")


def test_g001_commit_not_in_repository(tmp_path, repo):
    report = check(tmp_path, repo, [row(experiment_id="EXP-001", code_commit=head(repo)[:7]),
                                    row(experiment_id="EXP-002", code_commit="deadbee0")])
    assert_findings(report, [("G001", f"{COMMIT}3")], "G")


def test_g002_short_sha_matching_two_commits(tmp_path, repo):
    prefix, first, second = colliding_commits(repo)
    git(repo, "branch", "keep-a", first)
    git(repo, "branch", "keep-b", second)  # reachable, so only the ambiguity is reported
    report = check(tmp_path, repo, [row(code_commit=prefix)])
    assert_findings(report, [("G002", f"{COMMIT}2")], "G")


def test_g003_commit_dated_after_the_experiment(tmp_path, repo):
    later = commit(repo, {"train.py": "print('v2')\n"}, date="2026-07-21T01:00:00+02:00")
    report = check(tmp_path, repo, [
        row(experiment_id="EXP-001", code_commit=later[:8], date="2026-07-19"),
        row(experiment_id="EXP-002", code_commit=later[:8], date="2026-07-20"),
        row(experiment_id="EXP-003", code_commit=later[:8], date=dt.date(2026, 7, 21))])
    # 2026-07-20 23:00 UTC is the 21st in the committer's own zone: only row 2 is too early
    # in both (the 20th itself is fine: the run may be dated in UTC, see test_git_real)
    assert_findings(report, [("G003", f"{COMMIT}2")], "G")


def test_g004_dangling_commit(tmp_path, repo):
    dangling = commit(repo, {"train.py": "print('lost')\n"})
    git(repo, "reset", "-q", "--hard", "HEAD~1")
    report = check(tmp_path, repo, [row(experiment_id="EXP-001", code_commit=head(repo)[:7]),
                                    row(experiment_id="EXP-002", code_commit=dangling[:7])])
    assert_findings(report, [("G004", f"{COMMIT}3")], "G")


def test_g004_commit_on_a_tag_only_is_fine(tmp_path, repo):
    tagged = commit(repo, {"train.py": "print('tagged')\n"})
    git(repo, "tag", "run-1")
    git(repo, "reset", "-q", "--hard", "HEAD~1")
    assert_findings(check(tmp_path, repo, [row(code_commit=tagged[:7])]), [], "G")


def test_g005_lock_file_hash_differs_or_is_missing(tmp_path, repo):
    sha = head(repo)[:7]
    report = check(tmp_path, repo, [
        row(experiment_id="EXP-001", code_commit=sha, environment=f"uv.lock sha256:{'0' * 64}"),
        row(experiment_id="EXP-002", code_commit=sha,
            environment=f"poetry.lock sha256:{LOCK_SHA}"),
        row(experiment_id="EXP-003", code_commit=sha,
            environment=f"./uv.lock sha256:{LOCK_SHA[:12]}; image python@sha256:{'1' * 64}"),
        row(experiment_id="EXP-004", code_commit=sha,
            environment=f"../outside.lock sha256:{LOCK_SHA}")])
    # the image digest ties to no file: G007 says nothing checked it
    assert_findings(report, [("G005", f"{ENVIRONMENT}2"), ("G005", f"{ENVIRONMENT}3"),
                             ("G005", f"{ENVIRONMENT}5"), ("G007", f"{ENVIRONMENT}4")], "G")


def test_g005_accepts_the_hash_of_a_windows_crlf_checkout(tmp_path, repo):
    crlf = hashlib.sha256(LOCK.replace("\n", "\r\n").encode()).hexdigest()
    report = check(tmp_path, repo, [row(code_commit=head(repo)[:7],
                                        environment=f"uv.lock sha256:{crlf}")])
    assert_findings(report, [], "G")


def test_g005_reads_the_lock_at_the_rows_commit_not_the_working_tree(tmp_path, repo):
    old = head(repo)
    commit(repo, {"uv.lock": "version = 2\n"})
    (repo / "uv.lock").write_text(LOCK)  # the working tree matches; the new commit does not
    report = check(tmp_path, repo, [
        row(experiment_id="EXP-001", code_commit=old[:7], environment=f"uv.lock sha256:{LOCK_SHA}"),
        row(experiment_id="EXP-002", code_commit=head(repo)[:7],
            environment=f"uv.lock sha256:{LOCK_SHA}")])
    assert_findings(report, [("G005", f"{ENVIRONMENT}3")], "G")


def test_g006_shallow_clone_is_one_finding_not_a_g001_per_row(tmp_path, repo):
    old = head(repo)
    commit(repo, {"train.py": "print('v2')\n"})
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", "--depth", "1", f"file://{repo}", str(clone)],
                   check=True, capture_output=True)
    report = check(tmp_path, clone, [row(experiment_id="EXP-001", code_commit=old[:7]),
                                     row(experiment_id="EXP-002", code_commit=old[:7])])
    assert_findings(report, [("G006", f"{COMMIT}1")], "G")


def test_bad_commit_cells_are_left_to_the_schema_check(tmp_path, repo):
    report = check(tmp_path, repo, [row(code_commit="not-a-sha")])
    assert_findings(report, [], "G")
    assert ("S003", f"{COMMIT}2") in report.codes()


def test_not_a_git_repository_is_exit_2_unless_offline(tmp_path):
    folder = tmp_path / "plain"
    folder.mkdir()
    log = write_log(tmp_path / "log.xlsx", [row()])
    with pytest.raises(RepositoryError):
        validate(log, repo=folder)
    assert_findings(validate(log, repo=folder, offline=True), [], "G")


def test_cli_exit_codes(tmp_path, repo):
    log = write_log(tmp_path / "log.xlsx", [row(code_commit="deadbee0")])
    result = subprocess.run(["aisdp-log", "validate", str(log), "--repo", str(repo),
                             "--format", "json"], capture_output=True, text=True)
    assert result.returncode == 1 and '"G001"' in result.stdout
    plain = tmp_path / "plain"
    plain.mkdir()
    result = subprocess.run(["aisdp-log", "validate", str(log), "--repo", str(plain)],
                            capture_output=True, text=True)
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("cell, expected", [
    ("uv.lock sha256:" + "a" * 64, [("uv.lock", "a" * 64)]),
    ("requirements.txt sha256:" + "B" * 64 + "; torch 2.13", [("requirements.txt", "b" * 64)]),
    ("envs/conda-lock.yml sha256:" + "c" * 12, [("envs/conda-lock.yml", "c" * 12)]),
    ("image sha256:" + "d" * 64, []),
    ("ghcr.io/org/img@sha256:" + "e" * 64, []),
    ("torch==2.1 sha256:" + "f" * 64, []),
    ("Dockerfile sha256:" + "1" * 64, [("Dockerfile", "1" * 64)]),
    ("uv.lock: sha256:" + "2" * 64, [("uv.lock", "2" * 64)]),
    ("uv.lock=sha256:" + "3" * 64 + ", torch 2.1", [("uv.lock", "3" * 64)]),
    ("sha256:" + "4" * 64 + " uv.lock; python 3.11", [("uv.lock", "4" * 64)]),
    ("sha256:" + "5" * 12 + " a.lock sha256:" + "6" * 12 + " b.lock",
     [("a.lock", "5" * 12), ("b.lock", "6" * 12)]),
])
def test_lock_entries(cell, expected):
    assert lock_entries(cell) == expected


def test_a_lock_matches_its_hash_its_prefix_and_its_crlf_checkout():
    # one rule for G005 and `rerun --env lock`: what validate accepts, a rerun rebuilds
    lf = b"version = 1\n[[package]]\n"
    crlf = hashlib.sha256(lf.replace(b"\n", b"\r\n")).hexdigest()
    assert lock_matches(lf, hashlib.sha256(lf).hexdigest())
    assert lock_matches(lf, hashlib.sha256(lf).hexdigest()[:8])
    assert lock_matches(lf, crlf)
    assert not lock_matches(lf.replace(b"\n", b"\r\n"), hashlib.sha256(lf).hexdigest())
    assert not lock_matches(lf, "0" * 64)


@pytest.mark.parametrize("path, prefix, expected", [
    ("uv.lock", "", "uv.lock"), ("./uv.lock", "", "uv.lock"), ("env\\uv.lock", "", "env/uv.lock"),
    ("uv.lock", "ml", "ml/uv.lock"), ("../uv.lock", "ml", "uv.lock"), ("../uv.lock", "", None),
    ("/etc/uv.lock", "", None), ("C:/uv.lock", "", None), (".", "", None)])
def test_a_lock_path_is_read_from_the_repository_root_and_never_outside(path, prefix, expected):
    assert lock_repo_path(path, prefix) == expected
