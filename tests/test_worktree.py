"""Isolated worktrees and data checkout for reruns (aisdp_log.repo.worktree) on real git and DVC."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from builders import commit, git, init_repo

from aisdp_log.repo.dvcfiles import Out
from aisdp_log.repo.worktree import (
    RerunError,
    checkout_data,
    copy_from_cache,
    isolated_worktree,
    worktrees,
    write_local_config,
)

DVC_ENV = dict(os.environ, DVC_NO_ANALYTICS="1")


def dvc(repo: Path, *args: str) -> None:
    subprocess.run(["dvc", *args], cwd=repo, env=DVC_ENV, check=True, capture_output=True)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = init_repo(tmp_path / "repo")
    commit(root, {"train.py": "print('v1')\n", "README.md": "hello\n"})
    return root


def test_worktree_is_at_the_commit_and_removed_afterwards(repo):
    first = git(repo, "rev-parse", "HEAD")
    commit(repo, {"train.py": "print('v2')\n"})
    with isolated_worktree(repo, first) as tree:
        assert (tree / "train.py").read_text() == "print('v1')\n"
        assert git(tree, "rev-parse", "HEAD") == first
        assert worktrees(repo) == [tree]
        assert not str(tree).startswith(str(repo))    # nothing appears in git status
    assert not tree.exists() and worktrees(repo) == []
    assert (repo / "train.py").read_text() == "print('v2')\n"


def test_worktree_is_removed_on_failure_and_interrupt(repo):
    sha = git(repo, "rev-parse", "HEAD")
    for error in (RuntimeError, KeyboardInterrupt):
        with pytest.raises(error):
            with isolated_worktree(repo, sha) as tree:
                (tree / "junk.txt").write_text("left behind?")  # a dirty worktree too
                raise error()
        assert not tree.exists() and worktrees(repo) == []


def test_users_working_tree_index_and_branches_are_untouched(repo):
    sha = git(repo, "rev-parse", "HEAD")
    (repo / "README.md").write_text("edited, not committed\n")
    (repo / "new.txt").write_text("untracked\n")
    git(repo, "add", "new.txt")
    state = [git(repo, *args) for args in (["status", "--porcelain"], ["diff"],
                                           ["diff", "--cached"], ["for-each-ref"],
                                           ["rev-parse", "HEAD"])]
    with isolated_worktree(repo, sha) as tree:
        assert (tree / "README.md").read_text() == "hello\n"
        (tree / "README.md").write_text("changed in the worktree\n")
    assert [git(repo, *args) for args in (["status", "--porcelain"], ["diff"],
                                          ["diff", "--cached"], ["for-each-ref"],
                                          ["rev-parse", "HEAD"])] == state
    assert (repo / "README.md").read_text() == "edited, not committed\n"


def test_an_unknown_commit_is_a_one_line_error(repo):
    with pytest.raises(RerunError):
        with isolated_worktree(repo, "0" * 40):
            pass
    assert worktrees(repo) == []


# --------------------------------------------------------------------------- data

@pytest.fixture
def dvc_repo(tmp_path: Path):
    root = init_repo(tmp_path / "proj")
    dvc(root, "init", "-q")
    (root / "data").mkdir()
    (root / "data" / "train.csv").write_text("a,b\n1,2\n")
    (root / "data" / "images").mkdir()
    (root / "data" / "images" / "one.txt").write_text("one\n")
    dvc(root, "add", "-q", "data/train.csv", "data/images")
    remote = tmp_path / "remote"
    dvc(root, "remote", "add", "-d", "store", str(remote))
    dvc(root, "push", "-q")
    sha = commit(root, message="data v1")
    import yaml
    outs = [Out(f"data/{name}", yaml.safe_load((root / "data" / f"{name}.dvc").read_text())
                ["outs"][0]["md5"], f"data/{name}.dvc") for name in ("train.csv", "images")]
    return root, sha, outs, remote


@pytest.mark.slow
def test_data_comes_from_the_cache_without_dvc_and_from_the_remote_with_it(dvc_repo):
    root, sha, outs, _ = dvc_repo
    targets = ["data/train.csv.dvc", "data/images.dvc"]
    with isolated_worktree(root, sha) as tree:
        assert checkout_data(tree, root, targets, outs=outs) == "cache"
        assert (tree / "data" / "train.csv").read_text() == "a,b\n1,2\n"
        assert (tree / "data" / "images" / "one.txt").read_text() == "one\n"
    with isolated_worktree(root, sha) as tree:   # without the outs: `dvc checkout` itself
        assert checkout_data(tree, root, targets) == "dvc"
        assert (tree / "data" / "images" / "one.txt").read_text() == "one\n"
    shutil.rmtree(root / ".dvc" / "cache")
    with isolated_worktree(root, sha) as tree:
        assert checkout_data(tree, root, targets, outs=outs) == "remote"
        assert (tree / "data" / "train.csv").read_text() == "a,b\n1,2\n"
    assert (root / ".dvc" / "cache").is_dir()  # fetched into the project's own cache


@pytest.mark.slow
def test_data_in_neither_cache_nor_remote_raises(dvc_repo):
    root, sha, outs, remote = dvc_repo
    shutil.rmtree(root / ".dvc" / "cache")
    shutil.rmtree(remote)
    with isolated_worktree(root, sha) as tree:
        with pytest.raises(RerunError, match="neither"):
            checkout_data(tree, root, ["data/train.csv.dvc"], outs=outs[:1])
    assert worktrees(root) == []


def test_a_damaged_cache_object_is_not_copied(dvc_repo):
    root, sha, outs, _ = dvc_repo
    train = outs[0]
    obj = root / ".dvc" / "cache" / "files" / "md5" / train.md5[:2] / train.md5[2:]
    obj.chmod(0o644)
    obj.write_text("tampered\n")
    with isolated_worktree(root, sha) as tree:
        assert copy_from_cache(tree, [train], root / ".dvc" / "cache") is False
        assert not (tree / "data" / "train.csv").exists()
        escaping = Out("../outside.csv", train.md5, "x.dvc")
        assert copy_from_cache(tree, [escaping], root / ".dvc" / "cache") is False


@pytest.mark.parametrize("manifest", [
    "[" * 100_000,                                                # nested past the limit
    '[{"md5": "../../../../../../etc/hostname", "relpath": "one.txt"}]',  # not an md5
])
def test_a_hostile_directory_manifest_is_not_followed(dvc_repo, manifest):
    root, sha, outs, _ = dvc_repo
    images = outs[1]
    obj = root / ".dvc" / "cache" / "files" / "md5" / images.md5[:2] / images.md5[2:]
    obj.chmod(0o644)
    obj.write_text(manifest)
    with isolated_worktree(root, sha) as tree:
        assert copy_from_cache(tree, [images], root / ".dvc" / "cache") is False
        assert not (tree / "data" / "images").exists()


def test_local_config_points_at_the_main_cache_and_absolute_remotes(tmp_path):
    main = tmp_path / "main"
    (main / ".dvc").mkdir(parents=True)
    (main / ".dvc" / "config").write_text("[core]\n    remote = store\n"
                                          "['remote \"store\"']\n    url = ../../storage\n")
    (main / ".dvc" / "config.local").write_text("['remote \"store\"']\n"
                                                "    password = secret\n")
    tree = tmp_path / "tree"
    write_local_config(tree, main)
    import configparser
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(tree / ".dvc" / "config.local")
    assert parser.get("cache", "dir") == str((main / ".dvc" / "cache").resolve())
    assert parser.get("'remote \"store\"'", "url") == os.path.normpath(main / ".dvc" /
                                                                   "../../storage")
    assert parser.get("'remote \"store\"'", "password") == "secret"
    assert parser.get("core", "remote") == "store"
