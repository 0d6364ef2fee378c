"""D001-D003 on a real DVC project (dvc init, dvc add, a local-folder remote, dvc repro), and the
whole git + DVC cross-check on a log holding one defect per code."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from builders import assert_findings, commit, finding_pairs, git, init_repo, row, write_log

from aisdp_log.lint.runner import validate
from aisdp_log.repo.dvcfiles import LocalCache, cache_dirs, parse_record, version_matches

pytestmark = pytest.mark.slow

# Column letters with builders.BASE_ROW's order.
DATA, COMMIT, ENVIRONMENT = "E", "F", "K"
DVC_ENV = dict(os.environ, DVC_NO_ANALYTICS="1")


def dvc(repo: Path, *args: str) -> None:
    subprocess.run(["dvc", *args], cwd=repo, env=DVC_ENV, check=True, capture_output=True)


def pinned(repo: Path, record: str) -> str:
    return yaml.safe_load((repo / record).read_text())["outs"][0]["md5"]


def cache_object(repo: Path, md5: str) -> Path:
    return repo / ".dvc" / "cache" / "files" / "md5" / md5[:2] / md5[2:]


class Project:
    """What the module's DVC project holds: commits, tags and the md5s they pin."""

    def __init__(self, root: Path, remote: Path):
        self.root, self.remote = root, remote


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Project:
    base = tmp_path_factory.mktemp("dvc")
    root = init_repo(base / "repo")
    p = Project(root, base / "remote")
    dvc(root, "init", "-q")
    dvc(root, "config", "core.analytics", "false")
    p.c0 = commit(root, {"train.py": "print('train')\n", "uv.lock": "lock v1\n"},
                  message="dvc init", date="2026-07-01T09:00:00+00:00")
    git(root, "tag", "no-data")
    (root / "data" / "images").mkdir(parents=True)
    (root / "data" / "train.csv").write_text("x,y\n1,2\n")
    (root / "data" / "images" / "a.txt").write_text("image a\n")
    (root / "data" / "images" / "b.txt").write_text("image b\n")
    dvc(root, "add", "-q", "data/train.csv", "data/images")
    p.c1 = commit(root, message="data v1", date="2026-07-02T09:00:00+00:00")
    git(root, "tag", "data-v1")
    p.train1, p.images = pinned(root, "data/train.csv.dvc"), pinned(root, "data/images.dvc")
    dvc(root, "remote", "add", "-d", "store", str(p.remote))
    dvc(root, "push", "-q")
    p.c1b = commit(root, message="remote", date="2026-07-03T09:00:00+00:00")
    (root / "data" / "train.csv").write_text("x,y\n1,2\n3,4\n")
    dvc(root, "add", "-q", "data/train.csv")  # v2 is never pushed
    p.c2 = commit(root, message="data v2", date="2026-07-05T09:00:00+00:00")
    p.train2 = pinned(root, "data/train.csv.dvc")
    dvc(root, "stage", "add", "-q", "-n", "prep", "-d", "data/train.csv", "-o", "data/prep.csv",
        "sed s/x/z/ data/train.csv > data/prep.csv")
    dvc(root, "repro", "-q")
    p.c3 = commit(root, message="prep stage", date="2026-07-06T09:00:00+00:00")
    lock = yaml.safe_load((root / "dvc.lock").read_text())
    p.prep = lock["stages"]["prep"]["outs"][0]["md5"]
    return p


def copy(project: Project, tmp_path: Path) -> Path:
    target = tmp_path / "copy"
    shutil.copytree(project.root, target, symlinks=True)
    return target


def codes(report, prefixes: str | tuple[str, ...] = ("G", "D")) -> list[tuple[str, str]]:
    return sorted(finding_pairs(report, prefixes))


def check(tmp_path, repo, rows, **options):
    return validate(write_log(tmp_path / "log.xlsx", rows), repo=repo, **options)


def test_clean_rows_with_md5_prefixes_dir_hashes_tags_and_lock_outs_pass(tmp_path, project):
    p = project
    report = check(tmp_path, p.root, [
        row(experiment_id="EXP-001", code_commit=p.c1[:7], data_version=p.train1[:8]),
        row(experiment_id="EXP-002", code_commit=p.c2, data_version=p.train2),
        row(experiment_id="EXP-003", code_commit=p.c1[:9], data_version=p.images),
        row(experiment_id="EXP-004", code_commit=p.c2[:7], data_version=p.images[:10]),
        row(experiment_id="EXP-005", code_commit=p.c1b[:7], data_version="data-v1"),
        row(experiment_id="EXP-006", code_commit=p.c3[:7], data_version=p.prep[:12]),
        row(experiment_id="EXP-007", code_commit=p.c2[:7], data_version="md5:" + p.train2),
    ])
    assert_findings(report, [], ("G", "D"))


def test_d001_data_version_that_no_record_ever_pinned(tmp_path, project):
    p = project
    report = check(tmp_path, p.root, [
        row(experiment_id="EXP-001", code_commit=p.c1[:7], data_version="0123456789abcdef"),
        row(experiment_id="EXP-002", code_commit=p.c1[:7], data_version="no-such-tag"),
        row(experiment_id="EXP-003", code_commit=p.c1[:7], data_version="no-data"),
        row(experiment_id="EXP-004", code_commit="deadbee0", data_version="fedcba9876543210"),
    ])
    assert_findings(report, [("D001", f"{DATA}2"), ("D001", f"{DATA}3"),
                             ("D001", f"{DATA}4"), ("D001", f"{DATA}5")], "D")


def test_d002_data_version_other_than_the_commit_pins(tmp_path, project):
    p = project
    report = check(tmp_path, p.root, [
        row(experiment_id="EXP-001", code_commit=p.c2[:7], data_version=p.train1[:8]),
        row(experiment_id="EXP-002", code_commit=p.c2[:7], data_version="data-v1"),
        row(experiment_id="EXP-003", code_commit=p.c0[:7], data_version=p.train1),
        row(experiment_id="EXP-004", code_commit=p.c2[:7], data_version=p.train2[:8]),
    ])
    assert_findings(report, [("D002", f"{DATA}2"), ("D002", f"{DATA}3"),
                             ("D002", f"{DATA}4")], "D")


def test_configured_data_limits_which_outs_count(tmp_path, project):
    p = project
    repo = copy(project, tmp_path)
    (repo / "aisdp.toml").write_text('data = ["data/prep.csv"]\n')
    report = check(tmp_path, repo, [
        row(experiment_id="EXP-001", code_commit=p.c3[:7], data_version=p.prep[:8]),
        row(experiment_id="EXP-002", code_commit=p.c3[:7], data_version=p.train2[:8]),
    ])
    assert_findings(report, [("D002", f"{DATA}3")], "D")
    (repo / "aisdp.toml").write_text('data = ["data/train.csv.dvc"]\n')
    report = check(tmp_path, repo, [
        row(experiment_id="EXP-001", code_commit=p.c3[:7], data_version=p.prep[:8]),
        row(experiment_id="EXP-002", code_commit=p.c3[:7], data_version=p.train2[:8]),
    ])
    assert_findings(report, [("D002", f"{DATA}2")], "D")


def test_records_are_read_at_the_commit_not_from_the_working_tree(tmp_path, project):
    p = project
    repo = copy(project, tmp_path)
    # The working tree says v1 again; the commit still pins v2.
    (repo / "data" / "train.csv.dvc").write_text(git(repo, "show", f"{p.c1}:data/train.csv.dvc"))
    report = check(tmp_path, repo, [row(code_commit=p.c2[:7], data_version=p.train2[:8])])
    assert_findings(report, [], "D")


def test_records_only_on_a_dangling_commit_are_found(tmp_path, project):
    repo = copy(project, tmp_path)
    (repo / "extra.csv").write_text("only on a lost commit\n")
    dvc(repo, "add", "-q", "extra.csv")
    dangling = commit(repo, message="extra data", date="2026-07-07T09:00:00+00:00")
    extra = pinned(repo, "extra.csv.dvc")
    git(repo, "reset", "-q", "--hard", "HEAD~1")
    report = check(tmp_path, repo, [row(code_commit=dangling[:7], data_version=extra[:8])])
    assert_findings(report, [("G004", f"{COMMIT}2")], ("G", "D"))


def test_d003_data_missing_from_the_local_cache(tmp_path, project):
    p = project
    repo = copy(project, tmp_path)
    cache_object(repo, p.train2).unlink()
    first_image = json.loads(cache_object(repo, p.images).read_text())[0]["md5"]
    cache_object(repo, first_image).unlink()
    report = check(tmp_path, repo, [
        row(experiment_id="EXP-001", code_commit=p.c2[:7], data_version=p.train2[:8]),
        row(experiment_id="EXP-002", code_commit=p.c1[:7], data_version=p.images),
        row(experiment_id="EXP-003", code_commit=p.c1[:7], data_version=p.train1[:8]),
    ])
    assert_findings(report, [("D003", f"{DATA}2"), ("D003", f"{DATA}3")], "D")


def test_d003_fresh_clone_asks_the_remote_only_with_remote_flag(tmp_path, project):
    p = project
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", f"file://{p.root}", str(clone)], check=True,
                   capture_output=True)
    rows = [row(experiment_id="EXP-001", code_commit=p.c1[:7], data_version=p.train1[:8]),
            row(experiment_id="EXP-002", code_commit=p.c1[:7], data_version=p.images),
            row(experiment_id="EXP-003", code_commit=p.c2[:7], data_version=p.train2[:8])]
    offline_cache = check(tmp_path, clone, rows)
    assert_findings(offline_cache, [("D003", f"{DATA}2"), ("D003", f"{DATA}3"),
                                    ("D003", f"{DATA}4")], "D")
    with_remote = check(tmp_path, clone, rows, remote=True)
    assert_findings(with_remote, [("D003", f"{DATA}4")], "D")  # v2 was never pushed


def test_remote_flag_without_a_remote_is_a_d003_not_a_traceback(tmp_path, project):
    p = project
    repo = copy(project, tmp_path)
    dvc(repo, "remote", "remove", "store")
    cache_object(repo, p.train1).unlink()
    rows = [row(code_commit=p.c1[:7], data_version=p.train1[:8])]
    assert_findings(check(tmp_path, repo, rows, remote=True), [("D003", f"{DATA}2")], "D")


def test_configured_cache_dir_is_respected(tmp_path, project):
    p = project
    repo = copy(project, tmp_path)
    moved = tmp_path / "elsewhere-cache"
    shutil.move(repo / ".dvc" / "cache", moved)
    rows = [row(code_commit=p.c2[:7], data_version=p.train2[:8])]
    assert_findings(check(tmp_path, repo, rows), [("D003", f"{DATA}2")], "D")
    dvc(repo, "cache", "dir", "--local", str(moved))
    assert_findings(check(tmp_path, repo, rows), [], "D")


def test_dvc_is_not_imported_without_remote(tmp_path, project):
    p = project
    log = write_log(tmp_path / "log.xlsx", [row(code_commit=p.c2[:7], data_version="data-v1")])
    script = ("import sys\nfrom aisdp_log.lint.runner import validate\n"
              f"r = validate({str(log)!r}, repo={str(p.root)!r})\n"
              "assert any(f.code == 'D002' for f in r.findings), r.findings\n"
              "print(sorted(m for m in sys.modules if m == 'dvc' or m.startswith('dvc.')))\n")
    out = subprocess.run(["python", "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_one_defect_per_code_each_at_its_cell_and_clean_rows_silent(tmp_path, project):
    p = project
    repo = copy(project, tmp_path)
    lock = hashlib.sha256(b"lock v1\n").hexdigest()
    dangling = commit(repo, {"train.py": "print('experiment')\n"}, date="2026-07-05T10:00:00Z")
    git(repo, "reset", "-q", "--hard", "HEAD~1")
    cache_object(repo, p.train2).unlink()
    rows = [
        row(experiment_id="EXP-001", code_commit=p.c1[:7], data_version=p.train1[:8],
            environment=f"uv.lock sha256:{lock}; torch 2.13.0+cpu"),          # clean
        row(experiment_id="EXP-002", code_commit="deadbee0", data_version=p.train1[:8]),
        row(experiment_id="EXP-003", code_commit=p.c1[:7], data_version=p.images[:8],
            environment=f"uv.lock sha256:{'0' * 64}"),                        # G005
        row(experiment_id="EXP-004", code_commit=p.c2[:7], data_version=p.train2[:8],
            date="2026-07-04"),                                               # G003 + D003
        row(experiment_id="EXP-005", code_commit=dangling[:7], data_version=p.images[:8],
            date="2026-07-06"),                                               # G004
        row(experiment_id="EXP-006", code_commit=p.c1b[:7], data_version="0badc0de0badc0de"),
        row(experiment_id="EXP-007", code_commit=p.c2[:7], data_version="data-v1"),  # D002
        row(experiment_id="EXP-008", code_commit=p.c3[:7], data_version=p.prep[:8],
            date="2026-07-06"),                                               # clean
    ]
    report = check(tmp_path, repo, rows)
    assert_findings(report, [
        ("G001", f"{COMMIT}3"), ("G005", f"{ENVIRONMENT}4"), ("G003", f"{COMMIT}5"),
        ("D003", f"{DATA}5"), ("G004", f"{COMMIT}6"), ("D001", f"{DATA}7"),
        ("D002", f"{DATA}8")], ("G", "D"))
    clean_rows = {2, 9}
    assert [f for f in report.findings if f.row in clean_rows and f.severity == "error"
            and not f.code.startswith("A")] == []
    # G006: the same log in a shallow CI checkout is one finding, not a G001 per row.
    shallow = tmp_path / "shallow"
    subprocess.run(["git", "clone", "-q", "--depth", "1", f"file://{repo}", str(shallow)],
                   check=True, capture_output=True)
    assert ("G006", f"{COMMIT}1") in codes(check(tmp_path, shallow, rows))
    assert not [c for c in codes(check(tmp_path, shallow, rows)) if c[0] == "G001"]


# ---------------------------------------------------------------- the records and the cache

def test_parse_records_of_both_dvc_generations():
    dvc3 = b"outs:\n- md5: " + b"a" * 32 + b".dir\n  size: 4\n  hash: md5\n  path: images\n"
    dvc2 = b"outs:\n- md5: " + b"B" * 32 + b"\n  path: train.csv\n"
    lock = (b"schema: '2.0'\nstages:\n  prep:\n    cmd: x\n    deps:\n    - path: raw\n"
            b"      md5: " + b"c" * 32 + b"\n    outs:\n    - path: out/p.csv\n      md5: "
            + b"d" * 32 + b"\n")
    assert [(o.path, o.md5) for o in parse_record("data/images.dvc", dvc3)] == \
        [("data/images", "a" * 32 + ".dir")]
    assert [(o.path, o.md5) for o in parse_record("train.csv.dvc", dvc2)] == \
        [("train.csv", "b" * 32)]
    assert [(o.path, o.md5) for o in parse_record("sub/dvc.lock", lock)] == \
        [("sub/out/p.csv", "d" * 32)]
    assert parse_record("x.dvc", b"outs: [: not yaml") == []
    assert parse_record("x.dvc", b"!!python/object:os.system ls") == []


@pytest.mark.parametrize("version, md5, expected", [
    ("abcdef12", "abcdef12" + "0" * 24, True),
    ("ABCDEF12", "abcdef12" + "0" * 24, True),
    ("abcdef1", "abcdef12" + "0" * 24, False),         # fewer than 8 hex
    ("abcdef12" + "0" * 24 + ".dir", "abcdef12" + "0" * 24 + ".dir", True),
    ("abcdef12" + ".dir", "abcdef12" + "0" * 24 + ".dir", False),
    ("abcdef12", "abcdef12" + "0" * 24 + ".dir", True),
    ("abcdef12" + "0" * 24 + ".dir", "abcdef12" + "0" * 24, False),
])
def test_version_matches(version, md5, expected):
    assert version_matches(version, md5) is expected


def test_local_cache_knows_both_layouts(tmp_path):
    root = tmp_path / "proj"
    (root / ".dvc").mkdir(parents=True)
    new, old = "a" * 32, "b" * 32
    for path in (root / ".dvc/cache/files/md5" / new[:2] / new[2:],
                 root / ".dvc/cache" / old[:2] / old[2:]):
        path.parent.mkdir(parents=True)
        path.write_text("data")
    cache = LocalCache(cache_dirs(root))
    assert cache.missing(new) == [] and cache.missing(old) == []
    assert cache.missing("c" * 32) == ["c" * 32]


def test_dvc_add_output_reads_the_same_without_yaml(project):
    for record in ("data/train.csv.dvc", "data/images.dvc"):
        blob = (project.root / record).read_bytes()
        outs = yaml.safe_load(blob)["outs"]
        assert [(o.path, o.md5) for o in parse_record(record, blob)] == \
            [("data/" + out["path"], out["md5"]) for out in outs]
    script = ("import sys\nfrom aisdp_log.repo.dvcfiles import parse_record\n"
              f"parse_record('t.dvc', {(project.root / 'data/train.csv.dvc').read_bytes()!r})\n"
              "print('yaml' in sys.modules)\n")
    out = subprocess.run(["python", "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# ------------------------------------------------------------------ resolve_data_versions

def outs_of(outs) -> dict[str, str] | None:
    return None if outs is None else {o.path: o.md5 for o in outs}


def resolve(root: Path, pairs, config=None, lookups=None):
    from aisdp_log.config import Config
    from aisdp_log.repo.data_versions import resolve_data_versions
    from aisdp_log.repo.git import GitRepo

    with GitRepo.open(root) as repo:
        return resolve_data_versions(repo, config or Config(root=root), pairs, lookups=lookups)


def test_resolve_data_versions_matches_refs_and_misses_in_one_call(project):
    p = project
    v1 = {"data/train.csv": p.train1, "data/images": p.images}
    v2 = {"data/train.csv": p.train2, "data/images": p.images}
    pairs = [(p.c2[:7], p.train2[:8]), (p.c1b[:7], "data-v1"), (p.c2[:7], "data-v1"),
             ("deadbee0", p.train1), (None, "data-v1"), (p.c1[:7], None),
             (p.c1[:7], "no-data"), (p.c1[:7], "no-such-tag"), (p.c3, "md5:" + p.train2),
             (p.c2[:7], p.train2[:8])]  # a repeated pair is resolved once
    got = resolve(p.root, pairs)
    assert list(got) == list(dict.fromkeys(pairs))

    plain = got[(p.c2[:7], p.train2[:8])]
    assert (plain.commit.status, plain.commit.sha) == ("found", p.c2)
    assert outs_of(plain.pinned) == v2
    assert outs_of(plain.matched) == {"data/train.csv": p.train2}
    assert plain.ref.status == "missing" and plain.ref_pins is None  # hex: asked as a commit

    same = got[(p.c1b[:7], "data-v1")]
    assert same.matched == [] and outs_of(same.ref_pins) == v1 and same.ref_pins_the_same
    other = got[(p.c2[:7], "data-v1")]
    assert outs_of(other.ref_pins) == v1 and not other.ref_pins_the_same

    lost = got[("deadbee0", p.train1)]
    assert lost.commit.status == "missing" and lost.pinned is None and lost.matched == []
    no_commit = got[(None, "data-v1")]
    assert no_commit.commit is None and no_commit.pinned is None
    assert outs_of(no_commit.ref_pins) == v1 and not no_commit.ref_pins_the_same
    no_version = got[(p.c1[:7], None)]
    assert outs_of(no_version.pinned) == v1 and no_version.matched == []
    assert no_version.ref is None
    assert got[(p.c1[:7], "no-data")].ref_pins == []  # a tag on a commit without data
    unknown = got[(p.c1[:7], "no-such-tag")]
    assert unknown.ref.status == "missing" and unknown.ref_pins is None
    md5_form = got[(p.c3, "md5:" + p.train2)]
    assert md5_form.ref is None  # `md5:` is no git name: git is not asked
    assert outs_of(md5_form.matched) == {"data/train.csv": p.train2}


def test_resolve_data_versions_counts_configured_data_only(project):
    from aisdp_log.config import Config

    p = project
    pairs = [(p.c3[:7], p.prep[:8]), (p.c3[:7], p.train2[:8])]
    # `data` is relative to the config's folder, here data/ below the repository root
    config = Config(root=p.root / "data", data=("train.csv",))
    got = resolve(p.root, pairs, config=config)
    prep, train = got[pairs[0]], got[pairs[1]]
    assert outs_of(train.pinned) == outs_of(train.matched) == {"data/train.csv": p.train2}
    assert outs_of(prep.pinned) == {"data/train.csv": p.train2} and prep.matched == []
    # what D002's search of the history needs: every out the records read pin, counted or not
    assert {o.md5 for o in prep.recorded} == {p.prep, p.train2}
    unconfigured = resolve(p.root, pairs)
    assert outs_of(unconfigured[pairs[0]].matched) == {"data/prep.csv": p.prep}


def test_resolve_data_versions_takes_given_lookups_and_nothing_for_no_pairs(project):
    from aisdp_log.repo.gitparse import CommitLookup

    p = project
    assert resolve(p.root, []) == {}
    # names already looked up (the validator's shared `cat-file` answer) are not asked again
    lookups = {"data-v1": CommitLookup("data-v1", "found", p.c2)}
    got = resolve(p.root, [(p.c1[:7], "data-v1")], lookups=lookups)[(p.c1[:7], "data-v1")]
    assert got.commit.sha == p.c1  # not in `lookups`: asked
    assert outs_of(got.ref_pins) == {"data/train.csv": p.train2, "data/images": p.images}


def test_a_deeply_nested_manifest_is_no_manifest_not_a_crash():
    from aisdp_log.repo.dvcfiles import read_manifest

    assert read_manifest(b"[" * 200_000) is None


def test_a_dvc_file_named_with_a_line_break_gives_findings_not_an_internal_error(tmp_path):
    repo = init_repo(tmp_path / "repo")
    sha = commit(repo, {"x\n.dvc": "outs:\n- md5: 3f2a9c1e3f2a9c1e3f2a9c1e3f2a9c1e\n  path: x\n",
                        "train.py": "print('hi')\n"}, date="2026-07-01T12:00:00+00:00")
    log = write_log(repo / "log.xlsx", [row(code_commit=sha[:10], data_version="3f2a9c1e")])
    result = subprocess.run(["aisdp-log", "validate", str(log), "--format", "json"], cwd=repo,
                            capture_output=True, text=True)
    assert result.returncode in (0, 1), result.stderr
    assert "internal error" not in result.stderr and "Traceback" not in result.stderr
    assert json.loads(result.stdout)["rows"] == 1
