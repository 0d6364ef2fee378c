"""Issue 10 items 4-8 and 11 on real repositories built here: lock-file spellings (G005, G007),
pushed history (G004 with a bare remote) and shallow clones (G006 alone), ref names with `@`,
`#` and `+`, `dvc.lock` stages with `wdir`, commit time zones (G003), and hints that work."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path

import pytest
from builders import commit, git, init_repo, row, write_log

from aisdp_log.lint.runner import validate
from aisdp_log.repo.gitparse import is_ref_name

# Column letters with builders.BASE_ROW's order.
DATA, COMMIT, ENVIRONMENT, OUTCOME = "E", "F", "K", "L"
LOCK = "version = 1\n[[package]]\nname = \"torch\"\n"
LOCK_SHA = hashlib.sha256(LOCK.encode()).hexdigest()
DVC_ENV = dict(os.environ, DVC_NO_ANALYTICS="1")


def codes(report, prefixes: str | tuple[str, ...] = ("G", "D")) -> list[tuple[str, str]]:
    return sorted((f.code, f.cell) for f in report.findings if f.code[0] in prefixes)


def message(report, code: str, cell: str) -> str:
    found = [f.message for f in report.findings if (f.code, f.cell) == (code, cell)]
    assert len(found) == 1, report.findings
    return found[0]


def dvc(repo: Path, *args: str) -> None:
    subprocess.run(["dvc", *args], cwd=repo, env=DVC_ENV, check=True, capture_output=True)


def dvc_project(path: Path) -> Path:
    repo = init_repo(path)
    dvc(repo, "init", "-q")
    dvc(repo, "config", "core.analytics", "false")
    commit(repo, message="dvc init", date="2026-07-01T09:00:00+00:00")
    return repo


def out_md5(repo: Path, record: str) -> str:
    import yaml

    return yaml.safe_load((repo / record).read_text())["outs"][0]["md5"]


@pytest.fixture
def repo(tmp_path):
    repo = init_repo(tmp_path / "repo")
    commit(repo, {"train.py": "print('v1')\n", "uv.lock": LOCK},
           date="2026-07-01T09:00:00+00:00")
    return repo


def check(tmp_path, repo, rows, **options):
    return validate(write_log(tmp_path / "log.xlsx", rows), repo=repo, **options)


# ------------------------------------------------------------------ 4. lock-file spellings

def test_lock_files_in_any_common_spelling_are_checked_and_a_stray_hash_is_g007(tmp_path, repo):
    sha = git(repo, "rev-parse", "HEAD")[:8]
    wrong = "0" * 64
    report = check(tmp_path, repo, [
        row(experiment_id="EXP-001", code_commit=sha, environment=f"uv.lock: sha256:{wrong}"),
        row(experiment_id="EXP-002", code_commit=sha, environment=f"uv.lock=sha256:{wrong}"),
        row(experiment_id="EXP-003", code_commit=sha,
            environment=f"sha256:{wrong} uv.lock; torch 2.13.0"),
        row(experiment_id="EXP-004", code_commit=sha,
            environment=f"uv.lock: sha256:{LOCK_SHA}; python 3.11"),
        row(experiment_id="EXP-005", code_commit=sha, environment=f"sha256:{LOCK_SHA} uv.lock"),
        row(experiment_id="EXP-006", code_commit=sha, environment=f"pinned sha256:{LOCK_SHA}"),
    ])
    assert codes(report, "G") == [("G005", f"{ENVIRONMENT}2"), ("G005", f"{ENVIRONMENT}3"),
                                  ("G005", f"{ENVIRONMENT}4"), ("G007", f"{ENVIRONMENT}7")]
    assert next(f for f in report.findings if f.code == "G007").severity.value == "warning"


# ------------------------------------------------------------------ 5. pushed history, shallow

def test_commit_only_on_an_unpushed_local_branch_is_g004_naming_the_branch(tmp_path):
    remote = tmp_path / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", str(remote)], check=True)
    repo = init_repo(tmp_path / "repo")
    git(repo, "remote", "add", "origin", str(remote))
    pushed = commit(repo, {"train.py": "v1\n"}, date="2026-07-01T09:00:00+00:00")
    git(repo, "push", "-q", "origin", "main")
    git(repo, "switch", "-q", "-c", "shared-feature")
    shared = commit(repo, {"train.py": "v2\n"}, date="2026-07-02T09:00:00+00:00")
    git(repo, "push", "-q", "origin", "shared-feature")
    git(repo, "switch", "-q", "-c", "my-experiment")
    local = commit(repo, {"train.py": "v3\n"}, date="2026-07-03T09:00:00+00:00")
    report = check(tmp_path, repo, [
        row(experiment_id="EXP-001", code_commit=pushed[:8]),
        row(experiment_id="EXP-002", code_commit=shared[:8]),
        row(experiment_id="EXP-003", code_commit=local[:8])])
    assert codes(report, "G") == [("G004", f"{COMMIT}4")]
    text = message(report, "G004", f"{COMMIT}4")
    assert "my-experiment" in text and "push" in text
    # once pushed, the same log is clean
    git(repo, "push", "-q", "origin", "my-experiment")
    assert codes(validate(tmp_path / "log.xlsx", repo=repo), "G") == []


def test_shallow_clone_reports_g006_alone_and_holds_back_history_findings(tmp_path, repo):
    old = git(repo, "rev-parse", "HEAD")
    git(repo, "tag", "data-v1")
    tip = commit(repo, {"train.py": "print('v2')\n"}, date="2026-07-10T09:00:00+00:00")
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", "--depth", "1", f"file://{repo}", str(clone)],
                   check=True, capture_output=True)
    report = check(tmp_path, clone, [
        row(experiment_id="EXP-001", code_commit=old[:8], date="2026-07-14"),
        row(experiment_id="EXP-002", code_commit=tip[:8], date="2026-07-05"),  # G003 in full
        row(experiment_id="EXP-003", code_commit=tip[:8], data_version="data-v1")])
    assert codes(report) == [("G006", f"{COMMIT}1")]
    assert "not run" in message(report, "G006", f"{COMMIT}1")
    # the same log on the full repository: the held-back findings are there
    full = validate(tmp_path / "log.xlsx", repo=repo)
    assert ("G003", f"{COMMIT}3") in codes(full)


# ------------------------------------------------------------------ 6. ref names

def test_model_registry_tags_work_as_data_versions_and_a_tag_in_code_commit_names_its_commit(
        tmp_path):
    repo = dvc_project(tmp_path / "repo")
    (repo / "data.csv").write_text("x,y\n1,2\n")
    dvc(repo, "add", "-q", "data.csv")
    sha = commit(repo, message="data v1", date="2026-07-02T09:00:00+00:00")
    for tag in ("text-classification@v1.1.0", "model#prod#1", "v1.0+build.7"):
        git(repo, "tag", tag)
    git(repo, "tag", "-a", "-m", "release", "release-1.0")
    report = check(tmp_path, repo, [
        row(experiment_id="EXP-001", code_commit=sha[:8],
            data_version="text-classification@v1.1.0"),
        row(experiment_id="EXP-002", code_commit=sha[:8], data_version="model#prod#1"),
        row(experiment_id="EXP-003", code_commit=sha[:8], data_version="v1.0+build.7"),
        row(experiment_id="EXP-004", code_commit="release-1.0", data_version="model#prod#1"),
        row(experiment_id="EXP-005", code_commit=sha[:8], data_version="model#prod#9"),
    ])
    assert codes(report, ("G", "D", "S")) == [("D001", f"{DATA}6"), ("S003", f"{COMMIT}5")]
    assert f"release-1.0 is a tag; write its commit {sha}" in \
        message(report, "S003", f"{COMMIT}5")
    assert "no such tag" in message(report, "D001", f"{DATA}6")


@pytest.mark.parametrize("name, valid", [
    ("text-classification@v1.1.0", True), ("model#prod#1", True), ("v1.0+build.7", True),
    ("data/v2", True), ("a..b", False), ("x@{1}", False), ("@", False), ("HEAD~1", False),
    ("v1.lock", False), ("dir/.hidden", False), ("two words", False), ("v1:path", False),
])
def test_ref_names_follow_git_check_ref_format(tmp_path, name, valid):
    repo = init_repo(tmp_path / "repo")
    result = subprocess.run(["git", "check-ref-format", "--allow-onelevel", name], cwd=repo,
                            capture_output=True)
    assert is_ref_name(name) is valid is (result.returncode == 0)


# ------------------------------------------------------------------ 7. dvc.lock wdir

def test_dvc_lock_stage_with_wdir_pins_its_outs_under_the_wdir(tmp_path):
    repo = dvc_project(tmp_path / "repo")
    (repo / "work").mkdir()
    (repo / "work" / "make.py").write_text(
        "open('out.csv', 'w').write('a,b\\n1,2\\n')\n")
    (repo / "dvc.yaml").write_text(
        "stages:\n  prep:\n    wdir: work\n    cmd: python make.py\n"
        "    deps:\n      - make.py\n    outs:\n      - out.csv\n")
    dvc(repo, "repro", "-q")
    import yaml

    lock = yaml.safe_load((repo / "dvc.lock").read_text())
    out = lock["stages"]["prep"]["outs"][0]
    assert out["path"] == "out.csv"  # relative to the wdir, as DVC writes it
    sha = commit(repo, message="prep", date="2026-07-02T09:00:00+00:00")
    (repo / "aisdp.toml").write_text('data = ["work/out.csv"]\n')
    report = check(tmp_path, repo, [row(code_commit=sha[:8], data_version=out["md5"][:8])])
    assert codes(report, "D") == []
    # a version the wdir stage does not pin is still told apart
    other = check(tmp_path, repo, [row(code_commit=sha[:8], data_version="0123abcd")])
    assert codes(other, "D") == [("D001", f"{DATA}2")]


# ------------------------------------------------------------------ 8. time zones

def test_g003_only_when_the_commit_is_later_in_utc_and_in_its_own_zone(tmp_path, repo):
    # 01:44 +02:00 on 21 May is 23:44 UTC on 20 May: a run dated 20 May (UTC) may use it
    night = commit(repo, {"train.py": "v2\n"}, date="2026-05-21T01:44:00+02:00")
    # 22:30 -05:00 on 19 May is 03:30 UTC on 20 May: a run dated 19 May (local) may use it
    evening = commit(repo, {"train.py": "v3\n"}, date="2026-05-19T22:30:00-05:00")
    late = commit(repo, {"train.py": "v4\n"}, date="2026-05-21T10:00:00+02:00")
    report = check(tmp_path, repo, [
        row(experiment_id="EXP-001", code_commit=night[:8], date="2026-05-20"),
        row(experiment_id="EXP-002", code_commit=evening[:8], date="2026-05-19"),
        row(experiment_id="EXP-003", code_commit=late[:8], date="2026-05-20"),
        row(experiment_id="EXP-004", code_commit=night[:8], date="2026-05-19")])
    assert codes(report, "G") == [("G003", f"{COMMIT}4"), ("G003", f"{COMMIT}5")]


def test_g003_does_not_depend_on_the_host_time_zone(tmp_path, repo):
    night = commit(repo, {"train.py": "v2\n"}, date="2026-05-21T01:44:00+02:00")
    log = write_log(tmp_path / "log.xlsx", [row(code_commit=night[:8], date="2026-05-20")])
    found = set()
    for zone in ("UTC", "Pacific/Kiritimati", "America/Adak"):
        script = ("import json, sys\nfrom aisdp_log.lint.runner import validate\n"
                  f"r = validate({str(log)!r}, repo={str(repo)!r})\n"
                  "print(json.dumps(sorted(f.code for f in r.findings if f.code[0] == 'G')))")
        out = subprocess.run([os.sys.executable, "-c", script], env=dict(os.environ, TZ=zone),
                             capture_output=True, text=True, check=True)
        found.add(out.stdout.strip())
    assert found == {json.dumps([])}


# ------------------------------------------------------------------ 11. hints that work

def test_d003_hint_says_dvc_pull_and_an_unreachable_remote_is_named_as_such(tmp_path):
    repo = dvc_project(tmp_path / "repo")
    (repo / "data.csv").write_text("x,y\n1,2\n")
    dvc(repo, "add", "-q", "data.csv")
    md5 = out_md5(repo, "data.csv.dvc")
    dvc(repo, "remote", "add", "-d", "store", "http://127.0.0.1:9/store")  # nothing listens
    sha = commit(repo, message="data", date="2026-07-02T09:00:00+00:00")
    cached = repo / ".dvc" / "cache" / "files" / "md5" / md5[:2] / md5[2:]
    cached.unlink()
    rows = [row(code_commit=sha[:8], data_version=md5[:8])]
    local = check(tmp_path, repo, rows)
    assert codes(local, "D") == [("D003", f"{DATA}2")]
    assert "dvc pull" in message(local, "D003", f"{DATA}2")
    remote = check(tmp_path, repo, rows, remote=True)
    assert codes(remote, "D") == [("D003", f"{DATA}2")]
    text = message(remote, "D003", f"{DATA}2")
    assert "unreachable" in text and "not that it is missing" in text
    # a local remote folder that does not exist is unreachable too, not empty
    dvc(repo, "remote", "modify", "store", "url", str(tmp_path / "unmounted"))
    text = message(check(tmp_path, repo, rows, remote=True), "D003", f"{DATA}2")
    assert "does not exist" in text


def test_a002_names_the_files_it_hashed(tmp_path, repo):
    folder = repo / "artefacts" / "EXP-001"
    folder.mkdir(parents=True)
    (folder / "model.pt").write_bytes(b"weights")
    (folder / "extra-weights.bin").write_bytes(b"left behind")
    report = check(tmp_path, repo, [row(code_commit=git(repo, "rev-parse", "HEAD")[:8])])
    hashes = [f for f in report.findings if f.code == "A002"]
    assert len(hashes) == 1
    assert "2 files: extra-weights.bin, model.pt" in hashes[0].message


def test_command_hints_use_the_log_path_as_typed(tmp_path, monkeypatch):
    project = tmp_path / "demo-project"
    project.mkdir()
    write_log(project / "experiment-log.xlsx",
              [row(outcome="selected", notes="best", reproducibility=None)])
    monkeypatch.chdir(tmp_path)
    report = validate("demo-project/experiment-log.xlsx", offline=True)
    text = message(report, "R005", f"{OUTCOME}2")
    assert "`aisdp-log rerun demo-project/experiment-log.xlsx --id EXP-001`" in text
